//! CLI basics operators expect: shell completions, the man page, colour, `-q`, "did you mean",
//! one `--limit` error, running from a subdirectory, help for every flag.

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

/// The `error:` lines of a run.
fn errors(run: &Run) -> Vec<&str> {
    run.stderr.lines().filter(|l| l.starts_with("error:")).collect()
}

/// A `--limit` that selects nothing is one error, word for word and with the same exit code,
/// whether it is given to plan, apply or diff; it says what the limit was matched against and
/// what it could have said. No host is contacted (the fixture's hosts have no sshd).
#[test]
fn a_limit_matching_nothing_is_one_error_for_plan_apply_and_diff() {
    let repo = changed_repo();
    let expected = "error: --limit 'web1' matches no host of environment 'test': no host is called \
        'web1'; did you mean 'web01'? --limit takes host names or globs (compute*), role:NAME, \
        fact:KEY=VALUE or fact:KEY, joined by ',' (any of) or '&' (all of); the hosts of 'test' \
        are db01, web01, web02 (roles: db, web)";
    let limit = ["--env", "test", "--limit", "web1"];
    for command in [&["plan"][..], &["apply", "--yes"], &["diff", "HEAD~1"]] {
        let args: Vec<&str> = command.iter().chain(&limit).copied().collect();
        let run = repo.run(&args);
        run.expect(1, &[]);
        assert_eq!(errors(&run), [expected], "{}: {}", args.join(" "), run.stderr);
        assert_eq!(run.stdout, "", "{}", args.join(" "));
    }
    let run = repo.run(&["diff", "HEAD~1", "--env", "test", "--limit", "role:wbe & fact:az=b"]);
    run.expect(1, &["no host has role 'wbe'; did you mean 'web'?"]);
    // A limit that does match still works.
    repo.run(&["diff", "HEAD~1", "--env", "test", "--limit", "role:web"])
        .expect(0, &["1 web host: web01"]);
}

/// A mistyped host, environment, stage, role or profile names the closest real one; when the
/// name came from a file, the error still starts with that file and line.
#[test]
fn mistyped_names_get_a_did_you_mean() {
    let repo = crate::util::TestRepo::fixture("minimal");
    repo.run(&["lookup", "app::port", "--env", "test", "--host", "web1"]).expect(
        1,
        &["error: no host 'web1' in environment 'test' (hosts: db01, web01, web02); did you mean 'web01'?"],
    );
    repo.run(&["catalog", "--env", "tset", "--host", "web01"])
        .expect(1, &["no environment 'tset' in pipeline.toml (known: test); did you mean 'test'?"]);

    repo.edit("pipeline.toml", "role = \"web\", facts", "role = \"wbe\", facts");
    repo.edit("roles/web.toml", "\"app\", \"base\"", "\"app\", \"bsae\"");
    repo.commit("typos");
    repo.run(&["check"]).expect(
        1,
        &[
            "pipeline.toml:19: host 'web02' of environment 'test' has unknown role 'wbe' (roles: \
             db, web); did you mean 'web'? (or add roles/wbe.toml)",
            "roles/web.toml:2: role 'web' includes unknown profile 'bsae'; did you mean 'base'? \
             (or add profiles/bsae/profile.toml)",
        ],
    );

    repo.edit("pipeline.toml", "\"wbe\"", "\"web\"");
    repo.edit("roles/web.toml", "bsae", "base");
    let pipeline = repo.read("pipeline.toml");
    let stages = "\n[[stages]]\nname = \"precommit\"\nkind = \"precommit\"\n\n[[stages]]\n\
        name = \"deploy-test\"\nkind = \"deploy\"\nenvironment = \"test\"\n";
    repo.write("pipeline.toml", &format!("{pipeline}{stages}"));
    repo.commit("stages");
    let known = "(stages: precommit, deploy-test); did you mean 'deploy-test'?";
    repo.run(&["pipeline", "run", "--from", "deploy-tset", "--yes"])
        .expect(1, &[&format!("no stage 'deploy-tset' {known}")]);
    repo.run(&["approve", "HEAD", "--stage", "deploy-tset"])
        .expect(1, &[&format!("no stage 'deploy-tset' {known}")]);
    repo.run(&["pipeline", "gate", "--stage", "deplyo-test"]).expect(
        1,
        &["no stage 'deplyo-test' (stages: precommit, deploy-test); did you mean 'deploy-test'?"],
    );

    // The stage's `[[stages]]` line: the sixth of `stages`, which starts with a blank one.
    let line = pipeline.lines().count() + 6;
    repo.write("pipeline.toml", &format!("{pipeline}{stages}requires = [\"precomit\"]\n"));
    repo.commit("a typo in requires");
    repo.run(&["check"]).expect(
        1,
        &[&format!(
            "pipeline.toml:{line}: stage 'deploy-test' requires 'precomit', which is not an \
             earlier stage; did you mean 'precommit'?"
        )],
    );
}

/// From a subdirectory, commands find pipeline.toml in a parent (here a composition that is
/// itself a subdirectory of its repository); files named on the command line are where the
/// operator stands, the composition's own paths stay relative to its root.
#[test]
fn commands_find_pipeline_toml_upward_and_paths_stay_where_the_user_is() {
    let repo = crate::util::TestRepo::empty();
    crate::util::copy_tree(
        &crate::util::project_root().join("tests/fixtures/minimal"),
        &repo.path().join("deploy"),
    );
    repo.write("README", "the composition is in deploy/\n");
    repo.commit("composition in deploy/");
    repo.edit("deploy/hieradata/common.toml", "\"app::port\" = 8080", "\"app::port\" = 8081");
    repo.commit("port");

    let here = repo.path().join("deploy/profiles/app/templates");
    Run::new(&here, &["check"]).expect(0, &["ok: 1 environment(s), 3 host(s)"]);
    Run::new(&here, &["diff", "HEAD~1", "--env", "test", "--html", "review.html"])
        .expect(0, &["+port = 8081", "wrote review.html"]);
    assert!(here.join("review.html").is_file(), "--html is relative to where diff ran");
    assert!(!repo.path().join("deploy/review.html").exists());
    Run::new(&here, &["lookup", "app::port", "--env", "test", "--host", "web01", "--explain"])
        .expect(0, &["hieradata/common.toml", "8081"]);
    // -C names where to start looking, too.
    Run::new(repo.path(), &["-C", "deploy/roles", "check"]).success();
    // Above the composition there is none to find.
    Run::new(repo.path(), &["check"]).expect(1, &["no pipeline.toml"]);
}

/// `-q`: nothing but errors and the result a script reads.
#[test]
fn quiet_prints_only_errors_and_results() {
    let repo = changed_repo();
    let check = repo.run(&["-q", "check"]);
    check.success();
    assert_eq!((check.stdout.as_str(), check.stderr.as_str()), ("", ""), "-q check passing");

    let diff = repo.run(&["-q", "diff", "HEAD~1", "--env", "test", "--html", "r.html"]);
    diff.success();
    assert_eq!(
        diff.stdout,
        "Diff: 1 host(s) change, 2 unchanged, 0 added, 0 removed; 3 distinct change(s)\n"
    );
    assert_eq!(diff.stderr, "", "no `wrote r.html` under -q");
    assert!(repo.path().join("r.html").is_file());

    let json = repo.run(&["-q", "diff", "HEAD~1", "--env", "test", "--format", "json"]);
    assert_eq!(json.json()["changes"], 3, "JSON is the result: printed whole");
    repo.run(&["--quiet", "lookup", "app::port", "--env", "test", "--host", "web01"])
        .expect(0, &["8081"]);
    repo.run(&["-q", "lookup", "app::port", "--env", "test", "--host", "nope"])
        .expect(1, &["error: no host 'nope'"]);
    repo.run(&["-q", "-v", "check"]).expect(1, &["cannot be used with"]);
}

/// Top-level help lists every exit code, 3 included; every flag has a description.
#[test]
fn help_lists_exit_codes_and_describes_flags() {
    let dir = tmp();
    for flag in ["-h", "--help"] {
        let run = Run::new(dir.path(), &[flag]);
        run.expect(
            0,
            &[
                "Exit codes:",
                "\n  2  plan (and diff --exit-code) found changes",
                "\n  3  pipeline run stopped at a stage waiting",
            ],
        );
    }
    Run::new(dir.path(), &["plan", "--help"])
        .expect(0, &["--format <FORMAT>\n          Output format"]);
    Run::new(dir.path(), &["rollback", "-h"])
        .expect(0, &["Environment from pipeline.toml to roll back"]);
}
