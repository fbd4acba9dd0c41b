//! Shards: one of N parts of an environment's hosts, so that N CI jobs (GitLab `parallel:`,
//! Jenkins `parallel`) each work on a part, on agents the CI system already has.
//!
//! The assignment is a function of the inventory at the commit alone, so every job of one run
//! computes the same parts, and together they cover every host exactly once. By default the
//! hosts of each role are dealt out in turn (the i-th host of a role goes to shard i mod N + 1),
//! so every shard gets its share of every role and rolls out in role order and batches like
//! the whole environment does. With `by` a fact (`region`), hosts that share its value stay
//! together: the sorted distinct values are dealt out in turn instead (hosts without the fact
//! count as one value, the empty one).

use std::collections::BTreeMap;
use std::fmt;

use super::Host;

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Shard {
    /// 1-based.
    pub index: usize,
    pub count: usize,
    /// A static fact whose hosts stay in one shard.
    pub by: Option<String>,
}

impl Shard {
    /// `K/N`, with 1 <= K <= N.
    pub fn parse(text: &str, by: Option<String>) -> Result<Shard, String> {
        let bad = || format!("--shard {text}: expected K/N with 1 <= K <= N, e.g. 2/4");
        let (k, n) = text.split_once('/').ok_or_else(bad)?;
        let (index, count): (usize, usize) =
            (k.trim().parse().map_err(|_| bad())?, n.trim().parse().map_err(|_| bad())?);
        if index == 0 || index > count {
            return Err(bad());
        }
        Ok(Shard { index, count, by })
    }

    /// The shard (1-based) each of `hosts` belongs to, in their order.
    fn assign(&self, hosts: &[&Host]) -> Vec<usize> {
        match &self.by {
            Some(fact) => {
                let value = |h: &Host| h.facts.get(fact).map(fact_text).unwrap_or_default();
                let values: BTreeMap<String, usize> = {
                    let mut v: Vec<String> = hosts.iter().map(|h| value(h)).collect();
                    v.sort();
                    v.dedup();
                    v.into_iter().enumerate().map(|(i, v)| (v, i % self.count + 1)).collect()
                };
                hosts.iter().map(|h| values[&value(h)]).collect()
            }
            None => {
                let mut seen: BTreeMap<&str, usize> = BTreeMap::new();
                hosts
                    .iter()
                    .map(|h| {
                        let i = seen.entry(h.role.as_str()).or_default();
                        *i += 1;
                        (*i - 1) % self.count + 1
                    })
                    .collect()
            }
        }
    }

    /// The hosts of `all` (an environment's, in inventory order) in this shard, among `some`
    /// (a stage's selection or a `--limit`'s, also in inventory order). The parts come from the
    /// whole environment, so a selection does not move hosts between shards.
    pub fn take<'e>(&self, all: &'e [Host], some: &[&'e Host]) -> Vec<&'e Host> {
        let all: Vec<&Host> = all.iter().collect();
        let mine: std::collections::HashSet<&str> = all
            .iter()
            .zip(self.assign(&all))
            .filter(|(_, s)| *s == self.index)
            .map(|(h, _)| h.name.as_str())
            .collect();
        some.iter().copied().filter(|h| mine.contains(h.name.as_str())).collect()
    }

    /// The key a stage's result on this shard is recorded under: `deploy@2/4`.
    pub fn stage_key(&self, stage: &str) -> String {
        format!("{stage}@{}/{}", self.index, self.count)
    }
}

/// A shard key's parts: `deploy@2/4` → ("deploy", 2, 4).
pub fn parse_stage_key(key: &str) -> Option<(&str, usize, usize)> {
    let (stage, shard) = key.rsplit_once('@')?;
    let (k, n) = shard.split_once('/')?;
    Some((stage, k.parse().ok()?, n.parse().ok()?))
}

impl fmt::Display for Shard {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}/{}", self.index, self.count)?;
        if let Some(by) = &self.by {
            write!(f, " by {by}")?;
        }
        Ok(())
    }
}

/// A fact's value as text (shards, `status --by`): strings as they are, other values as TOML.
pub fn fact_text(v: &toml::Value) -> String {
    match v {
        toml::Value::String(s) => s.clone(),
        other => other.to_string(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn host(name: &str, role: &str, region: Option<&str>) -> Host {
        let mut facts = toml::Table::new();
        if let Some(r) = region {
            facts.insert("region".into(), r.into());
        }
        Host {
            name: name.into(),
            role: role.into(),
            address: "10.0.0.1".into(),
            port: 22,
            port_given: false,
            environment: "e".into(),
            line: 1,
            facts,
        }
    }

    fn names(hosts: &[&Host]) -> Vec<String> {
        hosts.iter().map(|h| h.name.clone()).collect()
    }

    #[test]
    fn every_host_is_in_exactly_one_shard_and_each_gets_every_role() {
        let all: Vec<Host> = (0..7)
            .map(|i| host(&format!("c{i}"), "compute", None))
            .chain((0..3).map(|i| host(&format!("k{i}"), "controller", None)))
            .collect();
        let some: Vec<&Host> = all.iter().collect();
        let parts: Vec<Vec<String>> = (1..=3)
            .map(|k| names(&Shard::parse(&format!("{k}/3"), None).unwrap().take(&all, &some)))
            .collect();
        assert_eq!(parts[0], ["c0", "c3", "c6", "k0"]);
        assert_eq!(parts[1], ["c1", "c4", "k1"]);
        assert_eq!(parts[2], ["c2", "c5", "k2"]);
        // A selection keeps each host in its shard.
        let canaries: Vec<&Host> = vec![&all[1], &all[8]];
        assert_eq!(names(&Shard::parse("2/3", None).unwrap().take(&all, &canaries)), ["c1", "k1"]);
    }

    #[test]
    fn hosts_sharing_a_fact_stay_together() {
        let all = vec![
            host("a1", "compute", Some("osaka")),
            host("b1", "compute", Some("berlin")),
            host("a2", "compute", Some("osaka")),
            host("n1", "compute", None),
            host("b2", "controller", Some("berlin")),
        ];
        let some: Vec<&Host> = all.iter().collect();
        let shard = |k| Shard::parse(&format!("{k}/2"), Some("region".into())).unwrap();
        // Values in order: "", berlin, osaka → shards 1, 2, 1.
        assert_eq!(names(&shard(1).take(&all, &some)), ["a1", "a2", "n1"]);
        assert_eq!(names(&shard(2).take(&all, &some)), ["b1", "b2"]);
    }

    #[test]
    fn a_shard_is_k_of_n() {
        assert!(Shard::parse("0/2", None).is_err());
        assert!(Shard::parse("3/2", None).is_err());
        assert!(Shard::parse("2", None).unwrap_err().contains("expected K/N"));
        assert_eq!(Shard::parse("2/4", None).unwrap().stage_key("deploy"), "deploy@2/4");
        assert_eq!(parse_stage_key("deploy@2/4"), Some(("deploy", 2, 4)));
        assert_eq!(parse_stage_key("deploy"), None);
    }
}
