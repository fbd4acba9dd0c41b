//! The integration suite: one test binary, one module per feature, all driving the real
//! `stackdeploy` binary against real git repositories (and, for SSH features, real sshd).

mod architecture;
mod catalog;
mod check;
mod cli;
mod converge;
mod examples;
mod gitlab;
mod import;
mod jinja2;
mod json;
mod junit;
mod lab;
mod lookup;
mod openstack;
mod pipeline;
mod puppet;
mod review;
mod schema;
mod shipped;
mod source;
mod state;
mod util;
