//! `[[patch]]` on real lab hosts: a unified diff, made with `diff -u`, applied to a file a
//! Debian package installed (`/etc/bash.bashrc`, from `bash`, which every host has; lab hosts
//! see the machine's `/etc` through a copy-on-write overlay, so the machine's own file is never
//! touched), and to a file of a package the same apply installs (`cowsay`, which the machine
//! does not have: lab hosts install it into their own `/usr` overlay, from Debian's mirror).
//! Nets 43 and 44 (converge.rs's table).

use std::process::Command;

use crate::converge::Lab;

const TARGET: &str = "/etc/bash.bashrc";
const PATCH: &str = "profiles/localpatch/patches/bashrc.patch";

/// A refresh-only exec for patches to notify, which logs each refresh to /root/patched.log.
const REFRESHED: &str = "[[exec]]\nname = \"patched\"\ncommand = \"echo refreshed >> /root/patched.log\"\nrefreshonly = true\n";

/// The profile: the patch, and the exec it notifies.
fn profile(with_patch: bool) -> String {
    let patch = "[[patch]]\npath = \"/etc/bash.bashrc\"\nsource = \"bashrc.patch\"\nnotify = [\"exec:patched\"]\n\n";
    format!(
        "description = \"a local patch over a package's file\"\n\n{}{REFRESHED}",
        if with_patch { patch } else { "" }
    )
}

/// Adds profile `name` to the compute role.
fn on_computes(lab: &Lab, name: &str) {
    lab.repo.edit(
        "roles/compute.toml",
        "\"masakari_monitors\"]",
        &format!("\"masakari_monitors\", \"{name}\"]"),
    );
}

/// The machine's file with two local changes far apart (two hunks), and the patch `diff -u`
/// makes of them.
fn patched_and_patch(original: &str) -> (String, String) {
    let mut lines: Vec<String> = original.split_inclusive('\n').map(String::from).collect();
    lines[1] = "# local patch: carried by stackdeploy\n".into();
    let last = lines.len() - 1;
    lines.insert(last, "export STACKDEPLOY_PATCHED=1\n".into());
    let patched = lines.concat();
    let dir = tempfile::tempdir().unwrap();
    std::fs::write(dir.path().join("new"), &patched).unwrap();
    let out = Command::new("diff")
        .args(["-u", "--label", "a/etc/bash.bashrc", "--label", "b/etc/bash.bashrc", TARGET])
        .arg(dir.path().join("new"))
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(1), "diff -u: {}", String::from_utf8_lossy(&out.stderr));
    (patched, String::from_utf8(out.stdout).unwrap())
}

#[test]
fn a_patch_applies_once_refuses_an_upgraded_file_and_comes_out_again() {
    let original = std::fs::read_to_string(TARGET).unwrap();
    let (patched, patch) = patched_and_patch(&original);
    let lab = Lab::staging(43);
    lab.repo.write(PATCH, &patch);
    lab.repo.write("profiles/localpatch/profile.toml", &profile(true));
    on_computes(&lab, "localpatch");
    lab.repo.commit("patch bash.bashrc on computes");

    // The plan shows what the patch does to the host's file, as a diff.
    lab.run(&["plan", "--env", "staging", "--limit", "compute01"]).expect(
        2,
        &[
            "patch profiles/localpatch/patches/bashrc.patch applied to /etc/bash.bashrc",
            "+# local patch: carried by stackdeploy",
            "+export STACKDEPLOY_PATCHED=1",
        ],
    );
    lab.apply().expect(0, &["Apply: 4 changed, 0 unchanged, 0 failed"]);
    let stat = "stat -c '%a %U:%G' /etc/bash.bashrc";
    for host in ["compute01", "compute02"] {
        assert_eq!(lab.sh(host, "cat /etc/bash.bashrc"), patched, "{host}");
        assert_eq!(
            lab.sh(host, stat),
            "644 root:root\n",
            "{host} keeps the package's owner and mode"
        );
        assert_eq!(lab.sh(host, "cat /root/patched.log"), "refreshed\n", "{host}: notified once");
    }
    let record: serde_json::Value =
        serde_json::from_str(&lab.sh("compute01", "cat /var/lib/stackdeploy/applied.json"))
            .unwrap();
    assert_eq!(record["patches"][TARGET]["source"], PATCH);
    assert_eq!(std::fs::read_to_string(TARGET).unwrap(), original, "the machine's own file");

    // In place: nothing to do, nothing refreshed.
    lab.run(&["plan", "--env", "staging"]).expect(0, &["Plan: 0 host(s) to change, 4 unchanged"]);
    lab.apply().expect(0, &["Apply: 0 changed, 4 unchanged, 0 failed"]);
    assert_eq!(lab.sh("compute01", "cat /root/patched.log"), "refreshed\n");

    // A package upgrade rewrote the file where the first hunk goes.
    let mut upgraded: Vec<&str> = original.split_inclusive('\n').collect();
    upgraded[1] = "# bash 5.3: a new header line\n";
    let upgraded = upgraded.concat();
    lab.sh(
        "compute01",
        &format!("printf '%s' '{}' > /etc/bash.bashrc", upgraded.replace('\'', "'\\''")),
    );
    let plan = lab.run(&["plan", "--env", "staging"]);
    plan.expect(
        1,
        &[
            "compute01: patch profiles/localpatch/patches/bashrc.patch does not apply to /etc/bash.bashrc: hunk 1 of 2 (@@ -1,",
            "line 3 of the patch) matches nowhere in the file: at line 2 the patch expects",
            "but the file has \"# bash 5.3: a new header line\"",
            "nothing was written to it",
        ],
    );
    let apply = lab.apply();
    apply.expect(1, &["compute01", "does not apply to /etc/bash.bashrc", "hunk 1 of 2"]);
    assert_eq!(lab.sh("compute01", "cat /etc/bash.bashrc"), upgraded, "nothing half-patched");
    assert_eq!(lab.sh("compute02", "cat /etc/bash.bashrc"), patched);

    // The patch leaves the composition: taken out where the file holds it (its notify runs
    // again), left alone where the upgrade already replaced the patched file.
    lab.repo.write("profiles/localpatch/profile.toml", &profile(false));
    lab.repo.commit("drop the bash.bashrc patch");
    lab.run(&["plan", "--env", "staging", "--limit", "compute02"]).expect(
        2,
        &["patch profiles/localpatch/patches/bashrc.patch taken out of /etc/bash.bashrc"],
    );
    lab.apply().expect(0, &["0 failed"]);
    assert_eq!(lab.sh("compute02", "cat /etc/bash.bashrc"), original, "the package's bytes again");
    assert_eq!(lab.sh("compute02", "cat /root/patched.log"), "refreshed\nrefreshed\n");
    assert_eq!(lab.sh("compute01", "cat /etc/bash.bashrc"), upgraded);
    lab.run(&["plan", "--env", "staging"]).expect(0, &["Plan: 0 host(s) to change, 4 unchanged"]);
}

const COW: &str = "/usr/share/cowsay/cows/default.cow";

/// cowsay's `default.cow` as bookworm's package has it (from the package itself, fetched with
/// `apt-get download`, not installed), and a patch of it.
fn cow_and_patch() -> (String, String, String) {
    let dir = tempfile::tempdir().unwrap();
    let got = Command::new("apt-get")
        .args(["download", "-q", "cowsay"])
        .current_dir(&dir)
        .output()
        .unwrap();
    assert!(
        got.status.success(),
        "apt-get download cowsay: {}",
        String::from_utf8_lossy(&got.stderr)
    );
    let deb = std::fs::read_dir(&dir)
        .unwrap()
        .map(|e| e.unwrap().path())
        .find(|p| p.extension().is_some_and(|e| e == "deb"))
        .unwrap();
    let tar = Command::new("sh")
        .arg("-c")
        .arg(format!("dpkg-deb --fsys-tarfile '{}' | tar -xO .{COW}", deb.display()))
        .output()
        .unwrap();
    assert!(tar.status.success());
    let original = String::from_utf8(tar.stdout).unwrap();
    let patched = original.replacen("^__^", "^oo^", 1);
    assert_ne!(patched, original, "default.cow changed upstream: {original}");
    std::fs::write(dir.path().join("old"), &original).unwrap();
    std::fs::write(dir.path().join("new"), &patched).unwrap();
    let out = Command::new("diff")
        .args(["-u", "--label", &format!("a{COW}"), "--label", &format!("b{COW}"), "old", "new"])
        .current_dir(&dir)
        .output()
        .unwrap();
    (original, patched, String::from_utf8(out.stdout).unwrap())
}

/// A fresh host gets a package and the patch of one of its files in one apply: the plan says
/// the patch waits for the package, the apply installs it, plans the host again and patches
/// the file (notifying once), and the next apply has nothing to do.
#[test]
fn a_patch_of_a_file_the_same_apply_installs_goes_in_with_its_package() {
    let (_original, patched, patch) = cow_and_patch();
    let lab = Lab::staging(44);
    lab.repo.write("profiles/cowpatch/patches/cow.patch", &patch);
    lab.repo.write(
        "profiles/cowpatch/profile.toml",
        &format!(
            "description = \"a patched file of a package installed with it\"\n\n\
             [[package]]\nname = \"cowsay\"\n\n\
             [[patch]]\npath = \"{COW}\"\nsource = \"cow.patch\"\nnotify = [\"exec:patched\"]\n\n\
             {REFRESHED}"
        ),
    );
    on_computes(&lab, "cowpatch");
    lab.repo.commit("cowsay with a patched cow on computes");

    lab.run(&["plan", "--env", "staging", "--limit", "compute01"]).expect(
        2,
        &[
            "+ package cowsay (present)",
            &format!("~ patch profiles/cowpatch/patches/cow.patch applied to {COW} (once this apply's packages install it; the host is planned again then)"),
        ],
    );
    lab.apply().expect(
        0,
        &[
            "compute01: planned again for 1 patch(es) of files the packages just installed",
            "Apply: 4 changed, 0 unchanged, 0 failed",
        ],
    );
    for host in ["compute01", "compute02"] {
        assert_eq!(lab.sh(host, &format!("cat {COW}")), patched, "{host}");
        assert_eq!(lab.sh(host, "cat /root/patched.log"), "refreshed\n", "{host}: notified once");
        assert_eq!(lab.sh(host, "dpkg-query -W -f '${Status}' cowsay"), "install ok installed");
    }
    assert!(!std::path::Path::new(COW).exists(), "the machine itself has no cowsay");
    lab.apply().expect(0, &["Apply: 0 changed, 4 unchanged, 0 failed"]);
    assert_eq!(lab.sh("compute01", "cat /root/patched.log"), "refreshed\n");
}
