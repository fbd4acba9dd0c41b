//! Converting another tool's data into the composition's: `hiera` turns a Puppet Hiera 5
//! setup into hieradata TOML and hierarchy levels. Pure: text in, converted text and a report
//! out; `commands::import` reads and writes the files.

pub mod hiera;
