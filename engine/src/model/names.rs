//! What names of packages, services and execs may be. They reach package managers, init
//! systems and the engine's own line-based protocols as words, so a name that could be read as
//! an option (`-oDPkg::Pre-Invoke=…`), or that holds spaces, quotes or control characters, is
//! refused where it is declared (or rendered), with its file and line.

/// A package name as Debian and RPM both allow it (letters, digits, `+ . _ -`, starting with a
/// letter or digit), optionally with an apt architecture (`:amd64`).
pub fn package(name: &str) -> Result<(), String> {
    let (base, arch) = name.split_once(':').unwrap_or((name, "x"));
    let ok = starts_alnum(base)
        && base.chars().all(|c| c.is_ascii_alphanumeric() || "+._-".contains(c))
        && !arch.is_empty()
        && arch.chars().all(|c| c.is_ascii_alphanumeric() || c == '-');
    ok.then_some(()).ok_or_else(|| {
        format!(
            "\"{name}\" is not a package name (letters, digits and + . _ -, starting with a \
             letter or digit; optionally :ARCH)"
        )
    })
}

/// A package `ensure`: present, installed, latest, absent, or a version as Debian and RPM write
/// them (epoch `1:`, `~`, `+`, `^`, `.`, `-`, `_`).
pub fn package_ensure(ensure: &str) -> Result<(), String> {
    let ok = matches!(ensure, "present" | "installed" | "latest" | "absent")
        || (starts_alnum(ensure)
            && ensure.chars().all(|c| c.is_ascii_alphanumeric() || ".+~:_^-".contains(c)));
    ok.then_some(()).ok_or_else(|| {
        format!(
            "ensure \"{ensure}\" is neither present, installed, latest, absent nor a package \
             version (letters, digits and . + ~ : _ ^ -, starting with a letter or digit)"
        )
    })
}

/// A service or exec name, or a systemd unit: letters, digits and `_ . @ : + -`, starting
/// with a letter or digit.
pub fn resource(what: &str, name: &str) -> Result<(), String> {
    let ok = starts_alnum(name)
        && name.chars().all(|c| c.is_ascii_alphanumeric() || "_.@:+-".contains(c));
    ok.then_some(()).ok_or_else(|| {
        format!(
            "{what} name \"{name}\" may hold only letters, digits and _ . @ : + -, starting with \
             a letter or digit"
        )
    })
}

fn starts_alnum(s: &str) -> bool {
    s.chars().next().is_some_and(|c| c.is_ascii_alphanumeric())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn real_names_pass_and_options_or_shell_do_not() {
        for ok in [
            "nova-compute",
            "python3-oslo.config",
            "libstdc++6",
            "g++",
            "galera-4",
            "libc6:amd64",
            "NetworkManager",
        ] {
            assert!(package(ok).is_ok(), "{ok}");
        }
        for bad in ["-oDPkg::Pre-Invoke::=touch /tmp/x", "a b", "", "x;id", "nova:", "$(id)", ".x"]
        {
            assert!(package(bad).is_err(), "{bad}");
        }
        for ok in ["present", "absent", "2:1.2.3-1+deb12u1", "1.0~rc1", "4.18.0_1^git", "latest"] {
            assert!(package_ensure(ok).is_ok(), "{ok}");
        }
        for bad in ["-1", "1.0 --force", "1.0;x", ""] {
            assert!(package_ensure(bad).is_err(), "{bad}");
        }
        for ok in ["nova-api", "getty@tty1", "keystone-db-sync", "app.service"] {
            assert!(resource("service", ok).is_ok(), "{ok}");
        }
        for bad in ["--now", "a\tb", "x y", "-x"] {
            assert!(resource("service", bad).is_err(), "{bad}");
        }
    }
}
