//! What the benchmarks share: a synthetic inventory on top of the shipped composition, and
//! peak memory.

use stackdeploy::Snapshot;

/// The shipped composition with pipeline.toml's environments replaced by one generated
/// environment: 0.5% database, 1% controller, the rest compute hosts (50 database and 100
/// controller hosts for 10,000: a large cell, where every controller is a haproxy backend).
pub fn with_inventory(shipped: &Snapshot, hosts: usize) -> Snapshot {
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
    // The shipped stages name the shipped environments, which are replaced.
    pipeline.remove("stages");
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

/// Peak resident memory of this process so far.
pub fn peak_rss_kib() -> u64 {
    std::fs::read_to_string("/proc/self/status")
        .ok()
        .and_then(|s| {
            s.lines()
                .find(|l| l.starts_with("VmHWM:"))
                .and_then(|l| l.split_whitespace().nth(1)?.parse().ok())
        })
        .unwrap_or(0)
}
