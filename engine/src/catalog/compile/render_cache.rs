//! Rendering once per distinct input: a template whose inputs are the same on two hosts
//! renders the same text, so the second host gets the first one's.
//!
//! Fleet-wide files (an `/etc/hosts` or a monitoring target list naming every host) make each
//! host's output grow with the fleet; rendered per host, compiling grows with its square. Each
//! template's inputs are the variables it reads (minijinja lists them, down to attribute paths
//! such as `host.name`); a digest of their values on a host keys the cache. The environment-wide
//! `hosts` and `roles` are digested once per environment, not once per host.
//!
//! A template is rendered without the cache when its inputs cannot be told from its text: it
//! calls `lookup` (whose keys are data), includes or imports another template, or reads a name
//! that is neither a context variable nor a global function. The cache holds at most
//! [`BUDGET`] bytes; once full, further distinct outputs are rendered and not kept.

use std::collections::HashMap;
use std::sync::atomic::{AtomicU32, Ordering};
use std::sync::{Arc, Mutex};

use minijinja::value::{Value, ValueKind};
use sha2::{Digest, Sha256};

/// How many bytes of rendered text the cache keeps at most.
pub(super) const BUDGET: usize = 256 << 20;

/// How many renders a template gets to show that hosts share its output: one whose first
/// renders all differ (it prints the host's own name) is then rendered without the cache, so
/// it costs neither digests nor memory.
const LEARN: u32 = 32;

/// The context variables a template can read; `hosts` and `roles` are the environment's.
const CONTEXT: [&str; 6] = ["params", "facts", "host", "environment", "hosts", "roles"];
const ENVIRONMENT_WIDE: [&str; 2] = ["hosts", "roles"];

pub(super) type Key = [u8; 32];

/// What a template reads: attribute paths into the context, each as its segments.
#[derive(Debug, Clone, PartialEq)]
pub(super) struct Inputs(Vec<Vec<String>>);

impl Inputs {
    /// The inputs of `template` (its source and its undeclared variables, nested), or `None`
    /// when they cannot be told from its text. `is_global` says whether a name is a global
    /// function of the environment (pure: `range`, `dict`, `namespace`, `cycler` …).
    pub fn of(
        source: &str,
        undeclared: impl IntoIterator<Item = String>,
        is_global: impl Fn(&str) -> bool,
    ) -> Option<Inputs> {
        // Another template's variables are not in this one's list.
        if ["include", "import", "extends"].iter().any(|tag| source.contains(tag)) {
            return None;
        }
        let mut paths = Vec::new();
        for name in undeclared {
            let path: Vec<String> = name.split('.').map(str::to_string).collect();
            let root = path[0].as_str();
            if CONTEXT.contains(&root) {
                paths.push(if ENVIRONMENT_WIDE.contains(&root) { vec![root.into()] } else { path });
            } else if !is_global(root) {
                // `lookup`, or a name no host defines (an error the render reports).
                return None;
            }
        }
        paths.sort();
        paths.dedup();
        Some(Inputs(paths))
    }

    /// The cache key of `template` on a host: the digest of each input's value there.
    /// `environment_wide` gives the digest of `hosts` or `roles`. `None` when a value is of a
    /// kind that cannot be digested (a function, an opaque object).
    pub fn key(
        &self,
        template: &str,
        ctx: &Value,
        environment_wide: impl Fn(&str) -> Option<Key>,
    ) -> Option<Key> {
        let mut h = Sha256::new();
        feed_str(&mut h, template);
        for path in &self.0 {
            feed_str(&mut h, &path.join("."));
            if let Some(k) = environment_wide(&path[0]) {
                h.update(k);
                continue;
            }
            let mut v = ctx.get_attr(&path[0]).ok()?;
            // Down the path only through maps that hold the next key: anywhere else the
            // template reads the whole value (`params.x.upper()` calls a method of the string
            // `params.x`; `params.m.items()` one of the map `params.m`).
            for segment in &path[1..] {
                match v.get_attr(segment) {
                    Ok(child) if v.kind() == ValueKind::Map && !child.is_undefined() => v = child,
                    _ => break,
                }
            }
            feed(&mut h, &v)?;
        }
        Some(h.finalize().into())
    }
}

/// The digest of a value as rendering sees it: kind, safe-string mark, text of numbers
/// (`1` and `1.0` print differently), order of map entries.
pub(super) fn digest(v: &Value) -> Option<Key> {
    let mut h = Sha256::new();
    feed(&mut h, v)?;
    Some(h.finalize().into())
}

fn feed_str(h: &mut Sha256, s: &str) {
    h.update((s.len() as u64).to_le_bytes());
    h.update(s.as_bytes());
}

fn feed(h: &mut Sha256, v: &Value) -> Option<()> {
    match v.kind() {
        ValueKind::Undefined => h.update([0]),
        ValueKind::None => h.update([1]),
        ValueKind::Bool => h.update([2, v.is_true() as u8]),
        ValueKind::Number => {
            h.update([3]);
            feed_str(h, &format!("{v:?}"));
        }
        ValueKind::String => {
            h.update([4, v.is_safe() as u8]);
            feed_str(h, v.as_str()?);
        }
        ValueKind::Bytes => {
            h.update([5]);
            let b = v.as_bytes()?;
            h.update((b.len() as u64).to_le_bytes());
            h.update(b);
        }
        ValueKind::Seq => {
            h.update([6]);
            h.update((v.len()? as u64).to_le_bytes());
            for item in v.try_iter().ok()? {
                feed(h, &item)?;
            }
        }
        ValueKind::Map => {
            h.update([7]);
            h.update((v.len()? as u64).to_le_bytes());
            for k in v.try_iter().ok()? {
                feed(h, &k)?;
                feed(h, &v.get_item(&k).ok()?)?;
            }
        }
        _ => return None,
    }
    Some(())
}

/// A file's rendered content with its hash, shared between the catalogs of hosts whose
/// template inputs are the same (hashing a large file per host costs as much as rendering it).
#[derive(Debug, Clone)]
pub(crate) struct Rendered {
    pub text: Arc<str>,
    pub sha256: String,
}

impl Rendered {
    pub fn new(text: impl Into<Arc<str>>) -> Rendered {
        let text = text.into();
        Rendered { sha256: crate::digest::sha256_hex(text.as_bytes()), text }
    }
}

/// How often a template was looked up in the cache, and found.
#[derive(Debug, Default)]
pub(super) struct Usage {
    tries: AtomicU32,
    hits: AtomicU32,
}

impl Usage {
    /// Whether looking the template up is still worth its digest.
    pub fn worth_it(&self) -> bool {
        self.hits.load(Ordering::Relaxed) > 0 || self.tries.load(Ordering::Relaxed) < LEARN
    }

    pub fn record(&self, hit: bool) {
        self.tries.fetch_add(1, Ordering::Relaxed);
        if hit {
            self.hits.fetch_add(1, Ordering::Relaxed);
        }
    }
}

/// Rendered files by template and input digest, shared by the compile workers.
#[derive(Default)]
pub(super) struct RenderCache {
    entries: Mutex<Entries>,
}

#[derive(Default)]
struct Entries {
    rendered: HashMap<Key, Rendered>,
    bytes: usize,
}

impl RenderCache {
    pub fn get(&self, key: &Key) -> Option<Rendered> {
        self.entries.lock().expect("render cache lock").rendered.get(key).cloned()
    }

    /// Keeps `rendered` under `key` while the budget allows.
    pub fn put(&self, key: Key, rendered: &Rendered) {
        let mut e = self.entries.lock().expect("render cache lock");
        let len = rendered.text.len();
        if e.bytes + len <= BUDGET && !e.rendered.contains_key(&key) {
            e.bytes += len;
            e.rendered.insert(key, rendered.clone());
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn inputs(source: &str, undeclared: &[&str]) -> Option<Inputs> {
        Inputs::of(source, undeclared.iter().map(|s| s.to_string()), |n| n == "range")
    }

    #[test]
    fn inputs_are_context_paths_and_unknowable_ones_refuse() {
        let i = inputs("{{ host.name }}{{ hosts }}", &["host.name", "hosts.x", "range"]).unwrap();
        assert_eq!(i.0, vec![vec!["host".to_string(), "name".into()], vec!["hosts".into()]]);
        assert_eq!(inputs("{{ lookup('a') }}", &["lookup"]), None);
        assert_eq!(inputs("{% include 'x' %}", &[]), None);
        assert_eq!(inputs("{{ nowhere }}", &["nowhere"]), None);
    }

    #[test]
    fn values_that_render_differently_digest_differently() {
        let d = |v: Value| digest(&v).unwrap();
        assert_ne!(d(Value::from(1)), d(Value::from(1.0)));
        assert_ne!(d(Value::from(true)), d(Value::from(1)));
        assert_ne!(d(Value::from("1")), d(Value::from(1)));
        assert_ne!(d(Value::from("<b>")), d(Value::from_safe_string("<b>".into())));
        assert_ne!(d(Value::from(vec!["ab"])), d(Value::from(vec!["a", "b"])));
        assert_ne!(d(Value::UNDEFINED), d(Value::from(())));
        let map = |pairs: &[(&str, i32)]| {
            Value::from_iter(pairs.iter().map(|(k, v)| (k.to_string(), Value::from(*v))))
        };
        assert_ne!(d(map(&[("a", 1), ("b", 2)])), d(map(&[("a", 1), ("b", 3)])));
        assert_eq!(d(map(&[("a", 1)])), d(map(&[("a", 1)])));
    }

    #[test]
    fn a_key_reads_only_the_paths_the_template_reads() {
        let i = inputs("", &["host.name"]).unwrap();
        let host = |name: &str, addr: &str| {
            minijinja::context! { host => minijinja::context! { name, address => addr } }
        };
        let none = |_: &str| None;
        let a = i.key("t", &host("a", "10.0.0.1"), none).unwrap();
        assert_eq!(a, i.key("t", &host("a", "10.0.0.2"), none).unwrap());
        assert_ne!(a, i.key("t", &host("b", "10.0.0.1"), none).unwrap());
        assert_ne!(a, i.key("u", &host("a", "10.0.0.1"), none).unwrap());
        // A path past a value that is not a map (a method call on it) keys on the whole value.
        let i = inputs("", &["params.x.upper"]).unwrap();
        let x = |x: &str| minijinja::context! { params => minijinja::context! { x } };
        assert_ne!(i.key("t", &x("a"), none), i.key("t", &x("b"), none));
        let i = inputs("", &["params.m.items"]).unwrap();
        let m = |v: i32| minijinja::context! { params => minijinja::context! { m => minijinja::context! { k => v } } };
        assert_ne!(i.key("t", &m(1), none), i.key("t", &m(2), none));
    }

    #[test]
    fn a_template_whose_outputs_all_differ_stops_being_cached() {
        let (shared, own) = (Usage::default(), Usage::default());
        shared.record(false);
        shared.record(true);
        for _ in 0..LEARN {
            own.record(false);
            shared.record(false);
        }
        assert!(shared.worth_it());
        assert!(!own.worth_it());
    }

    #[test]
    fn the_budget_bounds_what_is_kept() {
        let cache = RenderCache::default();
        cache.put([1; 32], &Rendered::new("x".repeat(BUDGET - 1)));
        cache.put([2; 32], &Rendered::new("yy"));
        assert!(cache.get(&[1; 32]).is_some());
        assert!(cache.get(&[2; 32]).is_none());
    }
}
