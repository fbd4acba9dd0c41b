//! The integration suite: one test binary, one module per feature, all driving the real
//! `stackdeploy` binary against real git repositories (and, for SSH features, real sshd).

mod architecture;
mod browser;
mod catalog;
mod check;
mod cli;
mod converge;
mod drift;
mod examples;
mod gitlab;
mod hooks;
mod host_certificates;
mod import;
mod jinja2;
mod json;
mod jump;
mod junit;
mod lab;
mod lookup;
mod openstack;
mod patch;
mod pipeline;
mod puppet;
mod review;
mod schema;
mod shipped;
mod source;
mod state;
mod util;
