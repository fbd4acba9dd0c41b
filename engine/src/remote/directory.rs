//! Directories on hosts: created with their owner and mode (probed with the files, see
//! `file.rs`).

use super::script::Sh;
use crate::catalog::Mode;

pub(super) fn render_create(
    sh: &mut Sh,
    id: &str,
    path: &str,
    owner: Option<&str>,
    group: Option<&str>,
    mode: Mode,
) {
    sh.code("mkdir -p --").path(path).code(" && own").path(path);
    sh.arg(owner.unwrap_or("")).arg(group.unwrap_or(""));
    sh.code(" && chmod").mode(mode).path(path);
    sh.code(" || fail").arg(id).code(" \"cannot create directory\"").nl();
    sh.code("say OK").arg(id).code(" created").nl();
}
