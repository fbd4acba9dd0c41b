//! What the benchmarks share: a synthetic inventory on top of the shipped composition, and
//! peak memory.

// Each benchmark uses part of what they share.
#![allow(dead_code)]

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

/// Small per-host files the `fleet` profile adds, on top of its two fleet-wide ones.
const FLEET_SMALL_FILES: usize = 20;

/// `snapshot` with a profile `fleet` on every role, shaped like an OpenStack deployment ported
/// from Ansible: `/etc/hosts.fleet` lists every host of the environment (the same text on every
/// host, growing with the fleet), controllers get a monitoring target list naming every host
/// with its role and zone, and every host gets small files of its own (its name, zone, role).
/// With the shipped profiles that is about 30 files per host.
pub fn with_fleet_wide_files(snapshot: &Snapshot) -> Snapshot {
    let mut files = snapshot.files.clone();
    let mut profile = String::from(
        "description = \"Benchmark: files that grow with the fleet, and small per-host ones\"\n\n\
         [params]\ndomain = { type = \"string\", default = \"bench.example\" }\n\n\
         [[file]]\npath = \"/etc/hosts.fleet\"\ntemplate = \"hosts.j2\"\nmode = \"0644\"\n\n\
         [[file]]\npath = \"/etc/prometheus/targets.yml\"\ntemplate = \"targets.j2\"\n\
         when = \"host.role == 'controller'\"\n",
    );
    for i in 0..FLEET_SMALL_FILES {
        profile.push_str(&format!(
            "\n[[file]]\npath = \"/etc/fleet/agent{i}.conf\"\ntemplate = \"agent{i}.j2\"\n"
        ));
    }
    let templates = [
        (
            "hosts.j2".to_string(),
            "# every host of {{ environment }}\n{% for h in hosts %}\n{{ h.address }}\t{{ h.name }}.{{ params.domain }} {{ h.name }}\n{% endfor %}\n".to_string(),
        ),
        (
            "targets.j2".to_string(),
            "- targets:\n{% for h in hosts %}\n  - {{ h.address }}:9100 # {{ h.name }} {{ h.role }} {{ h.facts.az }}\n{% endfor %}\n".to_string(),
        ),
    ];
    let small = (0..FLEET_SMALL_FILES).map(|i| {
        (
            format!("agent{i}.j2"),
            format!(
                "[agent{i}]\nhost = {{{{ host.name }}}}.{{{{ params.domain }}}}\nrole = {{{{ host.role }}}}\n\
                 zone = {{{{ facts.az }}}}\nlisten = {{{{ host.address }}}}:{}\n",
                9100 + i
            ),
        )
    });
    files.insert("profiles/fleet/profile.toml".into(), profile.into_bytes());
    for (name, text) in templates.into_iter().chain(small) {
        files.insert(format!("profiles/fleet/templates/{name}"), text.into_bytes());
    }
    for (path, text) in files.iter_mut() {
        if path.starts_with("roles/") && path.ends_with(".toml") {
            let mut role: toml::Table = toml::from_str(std::str::from_utf8(text).unwrap()).unwrap();
            role["profiles"].as_array_mut().unwrap().push("fleet".into());
            *text = toml::to_string(&role).unwrap().into_bytes();
        }
    }
    Snapshot { origin: snapshot.origin.clone(), files }
}

/// Starts the peak below ([`peak_rss_kib`]) afresh, at what the process holds now (Linux:
/// `clear_refs` 5 resets VmHWM), so a benchmark of several workloads reports each one's own.
pub fn reset_peak_rss() {
    let _ = std::fs::write("/proc/self/clear_refs", "5");
}

/// Peak resident memory of this process since it started or since [`reset_peak_rss`].
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
