//! The `secret` commands (stub).
use crate::app::{CmdResult, Context};
use crate::cli::SecretArgs;

pub fn command(_ctx: &Context, _args: &SecretArgs) -> CmdResult {
    Err(vec![crate::error::usage("not yet")])
}
