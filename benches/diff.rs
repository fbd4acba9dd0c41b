//! Benchmark: `diff` between two commits of the shipped composition for a synthetic
//! environment of 1,000 hosts (SPEC target: under 2 s on 2 cores).
//!
//! Run with `cargo bench --bench diff` (optionally `-- HOSTS`). The newer commit changes NTP
//! servers (every controller), a password (a secret in files on every host) and the motd
//! (every host), so most hosts have several changed files to diff, group and render. The
//! figure to compare with is "compile both commits" measured in the same run: what the diff
//! adds on top of the compiles it cannot avoid.

use std::time::Instant;

use stackdeploy::review::{self, Review, Style};
use stackdeploy::{Compiler, Composition, EnvContext, Repo, Side, Snapshot, compile_all, diff_env};

mod common;
use common::{peak_rss_kib, with_inventory};

fn changed(old: &Snapshot) -> Snapshot {
    let mut files = old.files.clone();
    let mut edit = |path: &str, from: &str, to: &str| {
        let text = String::from_utf8(files[path].clone()).unwrap();
        let line = text.lines().find(|l| l.starts_with(from)).unwrap().to_string();
        files.insert(path.to_string(), text.replace(&line, to).into_bytes());
    };
    edit(
        "hieradata/common.toml",
        "\"ntp::servers\"",
        "\"ntp::servers\" = [\"ntp1.example.net\", \"ntp2.example.net\"]",
    );
    edit("hieradata/common.toml", "\"base::organisation\"", "\"base::organisation\" = \"Bench\"");
    edit(
        "hieradata/environments/bench.toml",
        "\"rabbitmq::password\"",
        "\"rabbitmq::password\" = \"bench-new-password\"",
    );
    Snapshot { origin: old.origin.clone(), files }
}

fn main() {
    let hosts: usize = std::env::args().skip(1).find_map(|a| a.parse().ok()).unwrap_or(1_000);
    let root = std::path::Path::new(env!("CARGO_MANIFEST_DIR"));
    let shipped = Repo::discover(root)
        .and_then(|r| r.snapshot_worktree())
        .expect("read the shipped composition");
    let old_snapshot = with_inventory(&shipped, hosts);
    let new_snapshot = changed(&old_snapshot);

    // The floor: loading and compiling both commits, which any diff has to do.
    let start = Instant::now();
    for snapshot in [&old_snapshot, &new_snapshot] {
        let comp = Composition::load(snapshot).expect("loads");
        let compiler = Compiler::new(&comp).expect("parses");
        let env = comp.pipeline.environment("bench").unwrap();
        let ctx = EnvContext::new(&comp, env, &|h| h.facts.clone());
        let ok = compile_all(&compiler, &ctx, &env.hosts, &|h| h.facts.clone(), |_, r| r.is_ok());
        assert!(ok.iter().all(|ok| *ok));
    }
    let floor = start.elapsed();

    let start = Instant::now();
    let old = Composition::load(&old_snapshot).expect("loads");
    let new = Composition::load(&new_snapshot).expect("loads");
    let (old_compiler, new_compiler) = (Compiler::new(&old).unwrap(), Compiler::new(&new).unwrap());
    let (old_env, new_env) =
        (old.pipeline.environment("bench").unwrap(), new.pipeline.environment("bench").unwrap());
    let facts = |h: &stackdeploy::Host| h.facts.clone();
    let old_ctx = EnvContext::new(&old, old_env, &facts);
    let new_ctx = EnvContext::new(&new, new_env, &facts);
    let side = |commit, compiler, env| Side { commit, compiler, env: Some(env), facts: &facts };
    let diff = diff_env(
        "bench",
        &side("a".repeat(40).as_str(), &old_compiler, (old_env, &old_ctx)),
        &side("b".repeat(40).as_str(), &new_compiler, (new_env, &new_ctx)),
        &|_| true,
    )
    .expect("diffs");
    let view = Review::of_diff(&diff);
    let text = review::text(&view, Style { color: false });
    let html = review::html(&view, "diff.css");
    let total = start.elapsed();

    let changes: usize = diff.changed.iter().map(|d| d.changes.len()).sum();
    println!(
        "diff benchmark: {hosts} hosts, {} changed, {changes} file changes in {} groups",
        diff.changed.len(),
        view.groups.len()
    );
    println!("  report: {} KiB text, {} KiB HTML", text.len() / 1024, html.len() / 1024);
    println!(
        "  diff (load, compile both, diff, group, render): {:>7.3} s   (target < 2 s: {:.2}x of budget)",
        total.as_secs_f64(),
        total.as_secs_f64() / 2.0
    );
    println!(
        "  floor (load and compile both commits):          {:>7.3} s   (diff / floor = {:.2})",
        floor.as_secs_f64(),
        total.as_secs_f64() / floor.as_secs_f64()
    );
    println!("  peak RSS: {:.1} MiB", peak_rss_kib() as f64 / 1024.0);
}
