//! Benchmark: compile a synthetic inventory of 10,000 hosts, twice: the shipped composition
//! (about 8 files per host), and the shipped composition plus fleet-wide files (about 30 per
//! host, two of which list every host of the fleet, as /etc/hosts and monitoring targets do in
//! OpenStack deployments ported from Ansible).
//!
//! Run with `cargo bench --bench compile` (optionally `-- HOSTS`). Reports wall time and peak
//! memory of each; the targets are under 5 s (shipped, SPEC "Performance targets") and under
//! 10 s (fleet-wide), each under 1 GiB, on 2 cores. Catalogs are dropped as soon as they are
//! counted, as `check` does.

use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::Instant;

use stackdeploy::{Compiler, Composition, EnvContext, Repo, Snapshot, compile_all};

mod common;
use common::{peak_rss_kib, reset_peak_rss, with_fleet_wide_files, with_inventory};

fn main() {
    let hosts: usize = std::env::args().skip(1).find_map(|a| a.parse().ok()).unwrap_or(10_000);
    let root = std::path::Path::new(env!("CARGO_MANIFEST_DIR"));
    let shipped = Repo::discover(root)
        .and_then(|r| r.snapshot_worktree())
        .expect("read the shipped composition");
    let snapshot = with_inventory(&shipped, hosts);
    run("shipped composition", &snapshot, hosts, 5.0);
    run("with fleet-wide files", &with_fleet_wide_files(&snapshot), hosts, 10.0);
}

fn run(workload: &str, snapshot: &Snapshot, hosts: usize, target_secs: f64) {
    reset_peak_rss();
    let start = Instant::now();
    let comp =
        Composition::load(snapshot).unwrap_or_else(|e| panic!("composition does not load: {e:?}"));
    let compiler = Compiler::new(&comp).unwrap_or_else(|e| panic!("templates do not parse: {e:?}"));
    let loaded = start.elapsed();

    let env = comp.pipeline.environment("bench").unwrap();
    let env_ctx = EnvContext::new(&comp, env, &|h| h.facts.clone());
    let files = AtomicUsize::new(0);
    let bytes = AtomicUsize::new(0);
    let failures: Vec<String> =
        compile_all(&compiler, &env_ctx, &env.hosts, &|h| h.facts.clone(), |h, r| match r {
            Ok(catalog) => {
                for f in catalog.files() {
                    files.fetch_add(1, Ordering::Relaxed);
                    bytes.fetch_add(f.content.len(), Ordering::Relaxed);
                }
                None
            }
            Err(e) => Some(format!("{}: {}", h.name, e.first().expect("an error"))),
        })
        .into_iter()
        .flatten()
        .collect();
    let total = start.elapsed();
    assert!(failures.is_empty(), "{} hosts failed, first: {}", failures.len(), failures[0]);

    let files = files.into_inner();
    let peak = peak_rss_kib();
    println!(
        "compile benchmark, {workload}: {hosts} hosts, {files} files ({:.1} per host), {:.1} MiB rendered",
        files as f64 / hosts as f64,
        bytes.into_inner() as f64 / 1048576.0
    );
    println!("  load + parse templates: {:>8.3} s", loaded.as_secs_f64());
    println!(
        "  total wall time:        {:>8.3} s   (target < {target_secs} s: {:.2}x of budget)",
        total.as_secs_f64(),
        total.as_secs_f64() / target_secs
    );
    println!("  per host:               {:>8.1} us", total.as_secs_f64() * 1e6 / hosts as f64);
    println!(
        "  peak RSS:               {:>8.1} MiB (target < 1024 MiB: {:.2}x of budget)",
        peak as f64 / 1024.0,
        peak as f64 / 1024.0 / 1024.0
    );
}
