//! CLI basics operators expect: shell completions and the man page.

use std::process::Command;

use crate::util::Run;

fn tmp() -> tempfile::TempDir {
    tempfile::Builder::new().prefix("stackdeploy-cli").tempdir().unwrap()
}

/// The bash script parses, and completing `stackdeploy lo` offers `lookup`.
#[test]
fn bash_completion_completes_subcommands() {
    let dir = tmp();
    let run = Run::new(dir.path(), &["completions", "bash"]);
    run.success();
    let script = dir.path().join("stackdeploy.bash");
    std::fs::write(&script, &run.stdout).unwrap();
    let syntax = Command::new("bash").arg("-n").arg(&script).status().unwrap();
    assert!(syntax.success(), "bash -n rejects the completion script");
    let probe = format!(
        ". '{}'; COMP_WORDS=(stackdeploy lo); COMP_CWORD=1; COMP_LINE='stackdeploy lo'; \
         COMP_POINT=${{#COMP_LINE}}; _stackdeploy stackdeploy lo stackdeploy; \
         printf '%s\\n' \"${{COMPREPLY[@]}}\"",
        script.display()
    );
    let out = Command::new("bash").arg("-c").arg(&probe).output().unwrap();
    let replies = String::from_utf8_lossy(&out.stdout);
    assert_eq!(
        replies.lines().collect::<Vec<_>>(),
        ["lookup"],
        "stderr: {}",
        String::from_utf8_lossy(&out.stderr)
    );
}

#[test]
fn completions_for_every_shell() {
    let dir = tmp();
    for shell in ["bash", "zsh", "fish", "elvish", "powershell"] {
        let run = Run::new(dir.path(), &["completions", shell]);
        run.success();
        assert!(run.stdout.contains("lookup"), "{shell}: no `lookup` in\n{}", run.stdout);
    }
    Run::new(dir.path(), &["completions", "tcsh"]).expect(1, &["invalid value 'tcsh'"]);
}

/// The man page is roff with a title and a section per subcommand, and renders.
#[test]
fn man_page_names_every_subcommand_and_renders() {
    let dir = tmp();
    let run = Run::new(dir.path(), &["man"]);
    run.success();
    let page = &run.stdout;
    assert!(page.contains("\n.TH stackdeploy 1 "), "no .TH:\n{page}");
    for sub in [
        "CHECK",
        "CATALOG",
        "LOOKUP",
        "DIFF",
        "PLAN",
        "APPLY",
        "SECRET",
        "SECRET KEYGEN",
        "LAB",
        "LAB UP",
        "PIPELINE",
        "PIPELINE RUN",
        "APPROVE",
        "STATUS",
        "ROLLBACK",
        "IMPORT",
        "IMPORT HIERA",
        "COMPLETIONS",
        "MAN",
    ] {
        assert!(page.contains(&format!(".SH \"STACKDEPLOY {sub}\"\n")), "no section for {sub}");
    }
    assert!(page.contains("\\-\\-limit"), "options are not listed");
    let file = dir.path().join("stackdeploy.1");
    std::fs::write(&file, page).unwrap();
    let rendered = Command::new("man")
        .arg("-l")
        .arg(&file)
        .env("MANPAGER", "cat")
        .env("MANWIDTH", "80")
        .output();
    let out = rendered.unwrap_or_else(|e| {
        panic!("cannot run man ({e}); install it: `bash .ci/install-deps` (as root)")
    });
    let text = String::from_utf8_lossy(&out.stdout);
    assert!(out.status.success(), "man -l failed: {}", String::from_utf8_lossy(&out.stderr));
    assert!(text.contains("STACKDEPLOY PLAN"), "man -l output:\n{text}");
    assert!(text.contains("SYNOPSIS"), "man -l output:\n{text}");
}

/// A fixture repository whose HEAD changes a templated value, so `diff HEAD~1` has lines to
/// colour.
fn changed_repo() -> crate::util::TestRepo {
    let repo = crate::util::TestRepo::fixture("minimal");
    repo.edit("hieradata/common.toml", "\"app::port\" = 8080", "\"app::port\" = 8081");
    repo.commit("port");
    repo
}

const DIFF: &[&str] = &["diff", "HEAD~1", "--env", "test"];

fn diff_with(repo: &crate::util::TestRepo, flags: &[&str], env: &[(&str, &str)]) -> String {
    let args: Vec<&str> = flags.iter().chain(DIFF).copied().collect();
    let run = repo.run_env(&args, env);
    run.success();
    assert!(run.stdout.contains("8081"), "no change shown:\n{}", run.stdout);
    run.stdout.clone()
}

/// `--color always` colours into a pipe; NO_COLOR and CLICOLOR_FORCE decide when it is not
/// given; an explicit `--color` beats both. (The runner sets NO_COLOR=1 unless told otherwise;
/// an empty NO_COLOR counts as unset.)
#[test]
fn color_flag_and_environment() {
    let repo = changed_repo();
    let coloured =
        |flags: &[&str], env: &[(&str, &str)]| diff_with(&repo, flags, env).contains("\x1b[");
    let unset = ("NO_COLOR", "");
    assert!(!coloured(&[], &[unset]), "piped output is plain by default");
    assert!(coloured(&["--color", "always"], &[unset]), "--color always, piped");
    assert!(coloured(&["--color=always"], &[("NO_COLOR", "1")]), "--color always beats NO_COLOR");
    assert!(!coloured(&[], &[("NO_COLOR", "1")]), "NO_COLOR=1, CLICOLOR_FORCE unset");
    assert!(coloured(&[], &[unset, ("CLICOLOR_FORCE", "1")]), "CLICOLOR_FORCE=1");
    assert!(!coloured(&[], &[unset, ("CLICOLOR_FORCE", "0")]), "CLICOLOR_FORCE=0");
    assert!(!coloured(&[], &[("NO_COLOR", "1"), ("CLICOLOR_FORCE", "1")]), "NO_COLOR first");
    assert!(
        !coloured(&["--color", "never"], &[unset, ("CLICOLOR_FORCE", "1")]),
        "never beats CLICOLOR_FORCE=1"
    );
    assert!(
        !coloured(&["--color", "auto"], &[unset, ("CLICOLOR_FORCE", "1")]),
        "auto: off a terminal"
    );
    repo.run(&["--color", "sometimes", "check"]).expect(1, &["invalid value 'sometimes'"]);
}
