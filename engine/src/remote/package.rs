//! Packages on hosts: probed with dpkg-query or rpm, installed and removed with apt-get or dnf,
//! whichever the host has.

use super::apply::Step;
use super::script::Sh;

/// The step installing `name` at `ensure` (`present`, `installed`, `latest` or a version). A
/// version is pinned the way each package manager spells it: apt `name=version`, dnf
/// `name-version`.
pub(super) fn install(id: String, name: &str, ensure: &str, timeout: u64) -> Step {
    let (apt, dnf) = match ensure {
        "present" | "installed" | "latest" => (name.to_string(), name.to_string()),
        version => (format!("{name}={version}"), format!("{name}-{version}")),
    };
    Step::InstallPackage { id, name: name.to_string(), apt, dnf, timeout }
}

pub(super) fn render_install(
    sh: &mut Sh,
    id: &str,
    name: &str,
    apt: &str,
    dnf: &str,
    timeout: u64,
) {
    sh.code("pkg_install").arg(name).arg(apt).arg(dnf).int(timeout);
    sh.code(" || fail").arg(id).code(" \"install failed: $(tail_out)\"").nl();
    sh.code("say OK").arg(id).code(" installed").nl();
}

pub(super) fn render_remove(sh: &mut Sh, id: &str, name: &str, timeout: u64) {
    sh.code("pkg_remove").arg(name).int(timeout).code(" || fail").arg(id);
    sh.code(" \"removal failed: $(tail_out)\"").nl();
    sh.code("say OK").arg(id).code(" removed").nl();
}
