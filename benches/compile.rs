//! Benchmark: compile the shipped composition for a synthetic inventory of 10,000 hosts.
//!
//! Run with `cargo bench --bench compile` (optionally `-- HOSTS`). Reports wall time and peak
//! memory; the target (SPEC "Performance targets") is under 5 s and under 1 GiB on 2 cores.
//! Catalogs are dropped as soon as they are counted, as `check` does.

use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::Instant;

use stackdeploy::catalog::{Compiler, EnvContext, compile_all};
use stackdeploy::model::Composition;
use stackdeploy::source::{Repo, Snapshot};

fn main() {
    let hosts: usize = std::env::args().skip(1).find_map(|a| a.parse().ok()).unwrap_or(10_000);
    let root = std::path::Path::new(env!("CARGO_MANIFEST_DIR"));
    let shipped = Repo::discover(root)
        .and_then(|r| r.snapshot_worktree())
        .expect("read the shipped composition");

    let snapshot = with_inventory(&shipped, hosts);
    let start = Instant::now();
    let comp =
        Composition::load(&snapshot).unwrap_or_else(|e| panic!("composition does not load: {e:?}"));
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
            Err(e) => Some(format!("{}: {}", h.name, e[0])),
        })
        .into_iter()
        .flatten()
        .collect();
    let total = start.elapsed();
    assert!(failures.is_empty(), "{} hosts failed, first: {}", failures.len(), failures[0]);

    let files = files.into_inner();
    let peak = peak_rss_kib();
    println!(
        "compile benchmark: {hosts} hosts, {files} files ({:.1} per host), {:.1} MiB rendered",
        files as f64 / hosts as f64,
        bytes.into_inner() as f64 / 1048576.0
    );
    println!("  load + parse templates: {:>8.3} s", loaded.as_secs_f64());
    println!(
        "  total wall time:        {:>8.3} s   (target < 5 s: {:.2}x of budget)",
        total.as_secs_f64(),
        total.as_secs_f64() / 5.0
    );
    println!("  per host:               {:>8.1} us", total.as_secs_f64() * 1e6 / hosts as f64);
    println!(
        "  peak RSS:               {:>8.1} MiB (target < 1024 MiB: {:.2}x of budget)",
        peak as f64 / 1024.0,
        peak as f64 / 1024.0 / 1024.0
    );
}

/// The shipped composition with pipeline.toml's environments replaced by one generated
/// environment: 0.5% database, 1% controller, the rest compute hosts (50 database and 100
/// controller hosts for 10,000: a large cell, where every controller is a haproxy backend).
fn with_inventory(shipped: &Snapshot, hosts: usize) -> Snapshot {
    let text = std::str::from_utf8(shipped.get("pipeline.toml").unwrap()).unwrap();
    let mut pipeline: toml::Table = toml::from_str(text).unwrap();
    let template_env =
        pipeline["environments"].as_table().unwrap().values().next().unwrap().clone();
    let mut env = template_env.as_table().unwrap().clone();
    let db = (hosts / 200).max(1);
    let ctl = (hosts / 100).max(1);
    let mut inventory = toml::Table::new();
    for i in 0..hosts {
        let (role, name) = match i {
            i if i < db => ("database", format!("db{i:05}")),
            i if i < db + ctl => ("controller", format!("controller{i:05}")),
            i => ("compute", format!("compute{i:05}")),
        };
        let mut host = toml::Table::new();
        host.insert(
            "address".into(),
            format!("10.{}.{}.{}", i / 65536, (i / 256) % 256, i % 256).into(),
        );
        host.insert("role".into(), role.into());
        host.insert(
            "facts".into(),
            toml::Value::Table(toml::Table::from_iter([(
                "az".to_string(),
                toml::Value::from(format!("az{}", i % 3)),
            )])),
        );
        inventory.insert(name, toml::Value::Table(host));
    }
    env.insert("hosts".into(), toml::Value::Table(inventory));
    pipeline.insert(
        "environments".into(),
        toml::Value::Table(toml::Table::from_iter([(
            "bench".to_string(),
            toml::Value::Table(env),
        )])),
    );
    let mut files = shipped.files.clone();
    files.insert("pipeline.toml".into(), toml::to_string(&pipeline).unwrap().into_bytes());
    // Environment-level data of the shipped environments applies to the synthetic one too.
    let staging: Vec<(String, Vec<u8>)> = files
        .iter()
        .filter(|(p, _)| p.as_str() == "hieradata/environments/staging.toml")
        .map(|(_, c)| ("hieradata/environments/bench.toml".to_string(), c.clone()))
        .collect();
    files.extend(staging);
    Snapshot { origin: shipped.origin.clone(), files }
}

fn peak_rss_kib() -> u64 {
    std::fs::read_to_string("/proc/self/status")
        .ok()
        .and_then(|s| {
            s.lines()
                .find(|l| l.starts_with("VmHWM:"))
                .and_then(|l| l.split_whitespace().nth(1)?.parse().ok())
        })
        .unwrap_or(0)
}
