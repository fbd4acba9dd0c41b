//! One Hiera data file (YAML or JSON) as a stackdeploy hieradata TOML file: keys in file
//! order, interpolations rewritten, `lookup_options` as the `[lookup_options]` table. What
//! TOML or stackdeploy cannot hold is reported at its line: a null is left out where it is;
//! an eyaml-encrypted value, an interpolation without equivalent or a value of a type TOML
//! lacks leaves its whole top-level key out, so a lookup fails instead of returning something
//! else.

use super::Collector;
use super::interpolation::{Place, rewrite};
use super::yaml::{self, Kind, Node, Scalar, Schema};
use crate::error::{self, Result};

/// Converts `text` (the file `file`, written to `to`) into TOML text.
pub(super) fn convert(
    file: &str,
    to: &str,
    text: &str,
    schema: Schema,
    report: &mut Collector,
) -> Result<String> {
    let doc = yaml::parse(text).map_err(|e| {
        let what = if schema == Schema::Json { "JSON" } else { "YAML" };
        error::syntax(format!("{what}: {}; nothing of this file was converted", e.message))
            .at_file(file, Some(e.line))
    })?;
    if let Some(line) = doc.second_document {
        report.note(format!(
            "{file}:{line}: a second YAML document starts here; it is ignored, as Puppet ignores it"
        ));
    }
    let mut conv = Converter { file, to, schema, report };
    let mut data = toml::Table::new();
    let mut options: Vec<(String, toml::Table)> = Vec::new();
    match &doc.root {
        None => {}
        // An empty document (`---` alone, `~`) is an empty data file to Puppet too.
        Some(Node { kind: Kind::Scalar { text, plain, tag }, .. })
            if yaml::scalar(text, *plain, tag.as_deref(), schema) == Scalar::Null => {}
        Some(Node { kind: Kind::Map { entries, .. }, .. }) => {
            let entries = conv.entries(entries);
            for (key, value) in entries {
                let Some(name) = conv.top_key(key) else { continue };
                if name == "lookup_options" {
                    options = conv.lookup_options(value);
                    continue;
                }
                let line = key.line;
                match conv.value(value, &name, line, &name) {
                    Out::Value(v) => {
                        data.insert(name, v);
                    }
                    Out::Null => conv.report.problem(
                        file,
                        Some(line),
                        format!("`{name}` is null (~)"),
                        "left out: TOML has no null. In Puppet a null value is found and stops \
                         the search at this level; here lower levels or the profile's default \
                         apply. Give it a value if that matters"
                            .into(),
                    ),
                    Out::Failed => {}
                }
            }
        }
        Some(other) => {
            return Err(error::invalid(
                "the file does not hold a hash of keys (Puppet ignores it with a warning); \
                 nothing of it was converted",
            )
            .at_file(file, Some(other.line)));
        }
    }
    let mut out = format!("# Imported by `stackdeploy import hiera` from {file}\n");
    let body = toml::to_string(&data)
        .map_err(|e| error::invalid(format!("cannot write TOML: {e}")).at_file(file, None))?;
    if !body.is_empty() {
        out.push('\n');
        out.push_str(&body);
    }
    if !options.is_empty() {
        out.push_str("\n[lookup_options]\n");
        for (key, opts) in options {
            out.push_str(&format!("{} = {}\n", toml_key(&key), toml::Value::Table(opts)));
        }
    }
    // The result must read back: anything else is a bug here, not in the input.
    toml::from_str::<toml::Table>(&out).map_err(|e| {
        error::invalid(format!("the converted TOML does not parse: {e}")).at_file(file, None)
    })?;
    Ok(out)
}

/// A key as TOML writes it: always quoted (`"ntp::servers"`), as `secret encrypt` prints it.
pub(super) fn toml_key(key: &str) -> String {
    toml::Value::String(key.to_string()).to_string()
}

enum Out {
    Value(toml::Value),
    /// A null: left out where it is (already reported when nested).
    Null,
    /// Cannot be converted (reported): the top-level key is left out.
    Failed,
}

struct Converter<'a> {
    file: &'a str,
    to: &'a str,
    schema: Schema,
    report: &'a mut Collector,
}

impl Converter<'_> {
    /// A mapping's entries as Puppet sees them, noting keys written twice.
    fn entries<'n>(&mut self, entries: &'n [(Node, Node)]) -> Vec<(&'n Node, &'n Node)> {
        let merged = yaml::mapping_entries(entries);
        for (key, first, second) in &merged.duplicates {
            self.report.note(format!(
                "{}:{second}: key `{key}` is written twice in one hash (also at line {first}); \
                 Puppet keeps the last value, and so does the import",
                self.file
            ));
        }
        merged.entries
    }

    fn scalar(&self, node: &Node) -> Option<Scalar> {
        match &node.kind {
            Kind::Scalar { text, plain, tag } => {
                Some(yaml::scalar(text, *plain, tag.as_deref(), self.schema))
            }
            _ => None,
        }
    }

    /// A top-level key: a lookup key, never interpolated; `:sym` keys are strings, as in
    /// Puppet (`symkeys_to_string`).
    fn top_key(&mut self, key: &Node) -> Option<String> {
        match self.key_text(key, "") {
            Some(Ok(name)) => Some(name),
            Some(Err(())) => None,
            None => {
                self.report.problem(
                    self.file,
                    Some(key.line),
                    "a null (~) top-level key".into(),
                    "left out: a lookup key is a string".into(),
                );
                None
            }
        }
    }

    /// A key's text (`None` for a null key; `Err` when reported as not converted).
    fn key_text(&mut self, key: &Node, path: &str) -> Option<Result<String, ()>> {
        let Some(scalar) = self.scalar(key) else {
            self.report.problem(
                self.file,
                Some(key.line),
                format!("{}a hash key that is itself a hash or an array", at(path)),
                "TOML keys are strings; left out".into(),
            );
            return Some(Err(()));
        };
        let Kind::Scalar { text, .. } = &key.kind else { unreachable!() };
        let converted = match scalar {
            Scalar::Null => return None,
            Scalar::Str(s) | Scalar::Symbol(s) | Scalar::Timestamp(s) => s,
            Scalar::Bool(b) => b.to_string(),
            Scalar::Int(i) | Scalar::Based(i, _) => i.to_string(),
            Scalar::Float(f) => crate::text::ruby_float(f),
            _ => text.clone(),
        };
        let retyped = !matches!(
            self.scalar(key),
            Some(Scalar::Str(_) | Scalar::Symbol(_) | Scalar::Timestamp(_))
        );
        if retyped && &converted != text {
            self.report.note(format!(
                "{}:{}: {}key `{text}` is read as {converted} in YAML 1.1 (as Puppet reads it); \
                 the converted key is \"{converted}\"",
                self.file,
                key.line,
                at(path)
            ));
        }
        Some(Ok(converted))
    }

    /// Converts a value; `path` names it in messages (`key.sub[2]`), `top` is its top-level key.
    fn value(&mut self, node: &Node, path: &str, line: usize, top: &str) -> Out {
        match &node.kind {
            Kind::Scalar { .. } => self.scalar_value(node, path, line, top),
            Kind::Seq { items, tag } => {
                if let Some(t) = tag.as_deref().filter(|t| *t != "!!seq") {
                    return self.tagged(t, path, node.line, top);
                }
                let mut out = Vec::with_capacity(items.len());
                let mut failed = false;
                for (i, item) in items.iter().enumerate() {
                    let item_path = format!("{path}[{i}]");
                    match self.value(item, &item_path, item.line, top) {
                        Out::Value(v) => out.push(v),
                        Out::Null => self.nested_null(&item_path, item.line, "array"),
                        Out::Failed => failed = true,
                    }
                }
                if failed { Out::Failed } else { Out::Value(toml::Value::Array(out)) }
            }
            Kind::Map { entries, tag } => {
                if let Some(t) = tag.as_deref().filter(|t| *t != "!!map") {
                    return self.tagged(t, path, node.line, top);
                }
                let mut out = toml::Table::new();
                let mut failed = false;
                for (key, value) in self.entries(entries) {
                    let name = match self.key_text(key, path) {
                        None => {
                            self.report.problem(
                                self.file,
                                Some(key.line),
                                format!("{}a null (~) hash key", at(path)),
                                "left out of its hash: TOML keys are strings".into(),
                            );
                            continue;
                        }
                        Some(Err(())) => {
                            failed = true;
                            continue;
                        }
                        Some(Ok(name)) => name,
                    };
                    // Hash keys are interpolated, like values.
                    let name = match self.interpolate(&name, Place::Key, path, key.line, top) {
                        Some(n) => n,
                        None => {
                            failed = true;
                            continue;
                        }
                    };
                    let entry_path = format!("{path}.{name}");
                    match self.value(value, &entry_path, key.line, top) {
                        Out::Value(v) => {
                            out.insert(name, v);
                        }
                        Out::Null => self.nested_null(&entry_path, key.line, "hash"),
                        Out::Failed => failed = true,
                    }
                }
                if failed { Out::Failed } else { Out::Value(toml::Value::Table(out)) }
            }
        }
    }

    fn nested_null(&mut self, path: &str, line: usize, within: &str) {
        self.report.problem(
            self.file,
            Some(line),
            format!("`{path}` is null (~)"),
            format!("left out of its {within}: TOML has no null; give it a value if it is needed"),
        );
    }

    fn scalar_value(&mut self, node: &Node, path: &str, line: usize, top: &str) -> Out {
        let scalar = self.scalar(node).expect("a scalar");
        let file = self.file;
        let value = match scalar {
            Scalar::Null => return Out::Null,
            Scalar::Bool(b) => toml::Value::Boolean(b),
            Scalar::Int(i) => toml::Value::Integer(i),
            Scalar::Float(f) => toml::Value::Float(f),
            Scalar::Based(i, written) => {
                self.report.note(format!(
                    "{file}:{line}: `{path}`: {written} is the integer {i} in YAML 1.1 (Puppet \
                     reads it so); converted as {i}. Quote it (\"{written}\") in the TOML if \
                     the text was meant (a file mode)"
                ));
                toml::Value::Integer(i)
            }
            Scalar::Timestamp(t) => {
                self.report.note(format!(
                    "{file}:{line}: `{path}`: {t} is a YAML timestamp; converted as the string \
                     \"{t}\" (Puppet's yaml_data refuses a file holding one)"
                ));
                toml::Value::String(t)
            }
            Scalar::Symbol(s) => {
                self.report.note(format!(
                    "{file}:{line}: `{path}`: :{s} is a Ruby symbol; converted as the string \"{s}\""
                ));
                toml::Value::String(s)
            }
            Scalar::Binary(bytes) => match String::from_utf8(bytes) {
                Ok(s) => {
                    self.report.note(format!(
                        "{file}:{line}: `{path}`: !!binary converted as the text it decodes to"
                    ));
                    toml::Value::String(s)
                }
                Err(_) => {
                    return self.fail(
                        path,
                        line,
                        top,
                        "is !!binary data that is not UTF-8 text".into(),
                        "TOML holds text only: store it base64-encoded as a string and decode \
                         it where it is used"
                            .into(),
                    );
                }
            },
            Scalar::BigInt(t) => {
                return self.fail(
                    path,
                    line,
                    top,
                    format!("is {t}, too large for TOML's 64-bit integers"),
                    "quote it in the YAML if it is text (an ID), then import again".into(),
                );
            }
            Scalar::Sexagesimal(t) => {
                return self.fail(
                    path,
                    line,
                    top,
                    format!("is {t}, a base-60 number in YAML 1.1 (Puppet reads an integer, not the text)"),
                    format!("quote it ('{t}') in the YAML for the text, or write the number, then import again"),
                );
            }
            Scalar::Tagged(t) => return self.tagged(&t, path, line, top),
            Scalar::Str(s) => {
                if let Some(method) = eyaml(&s) {
                    return self.eyaml(method, path, line, top);
                }
                match self.interpolate(&s, Place::Value, path, line, top) {
                    Some(s) => toml::Value::String(s),
                    None => return Out::Failed,
                }
            }
        };
        Out::Value(value)
    }

    /// `s` with its interpolations rewritten, or `None` when one has no equivalent (reported).
    fn interpolate(
        &mut self,
        s: &str,
        place: Place,
        path: &str,
        line: usize,
        top: &str,
    ) -> Option<String> {
        match rewrite(s, place) {
            Ok((converted, used)) => {
                self.report.used(self.file, line, &used);
                Some(converted)
            }
            Err(e) => {
                let what = match place {
                    Place::Key => {
                        format!("a hash key of `{path}`: {} has no stackdeploy equivalent", e.token)
                    }
                    _ => format!("`{path}`: {} has no stackdeploy equivalent", e.token),
                };
                let advice = format!("{}; `{top}` is left out", e.advice);
                self.report.problem(self.file, Some(line), what, advice);
                None
            }
        }
    }

    fn tagged(&mut self, tag: &str, path: &str, line: usize, top: &str) -> Out {
        self.fail(
            path,
            line,
            top,
            format!("is tagged {tag}"),
            "Puppet's YAML loader refuses such tags too; write a plain value and import again"
                .into(),
        )
    }

    fn fail(&mut self, path: &str, line: usize, top: &str, what: String, advice: String) -> Out {
        self.report.problem(
            self.file,
            Some(line),
            format!("`{path}` {what}"),
            format!("{advice}; `{top}` is left out"),
        );
        Out::Failed
    }

    fn eyaml(&mut self, method: &str, path: &str, line: usize, top: &str) -> Out {
        let key = toml_key(top);
        let (what, encrypt, place) = if path == top {
            (
                format!("`{top}` is eyaml-encrypted (ENC[{method},...])"),
                format!("stackdeploy secret encrypt '{top}'"),
                format!("paste the printed `{key} = \"ENC[AGE,...]\"` line into {}", self.to),
            )
        } else {
            (
                format!("`{path}` is eyaml-encrypted (ENC[{method},...])"),
                format!("stackdeploy secret encrypt '{path}'"),
                format!(
                    "write `{key}` into {} again, with the printed \"ENC[AGE,...]\" string as \
                     the value at `{path}`",
                    self.to
                ),
            )
        };
        self.report.problem(
            self.file,
            Some(line),
            what,
            format!(
                "`{top}` is left out, so a lookup fails instead of returning ciphertext. Decrypt \
                 it (eyaml decrypt -s 'ENC[...]'), encrypt the plaintext with `echo -n \
                 'PLAINTEXT' | {encrypt}` and {place}"
            ),
        );
        Out::Failed
    }

    /// `lookup_options` as stackdeploy's: `merge` (a strategy, or its hash form with
    /// `knockout_prefix`); everything else is reported.
    fn lookup_options(&mut self, node: &Node) -> Vec<(String, toml::Table)> {
        let file = self.file;
        let Kind::Map { entries, .. } = &node.kind else {
            self.report.problem(
                file,
                Some(node.line),
                "lookup_options is not a hash".into(),
                "left out; write it as key: { merge: ... }".into(),
            );
            return Vec::new();
        };
        let mut out = Vec::new();
        for (key, value) in self.entries(entries) {
            let Some(name) = self.top_key(key) else { continue };
            if name.starts_with('^')
                && let Err(e) = regex::Regex::new(&name)
            {
                self.report.problem(
                    file,
                    Some(key.line),
                    format!(
                        "lookup_options `{name}`: the regex does not compile here ({})",
                        regex_error(&e.to_string())
                    ),
                    "rewrite it in the syntax of Rust's regex crate (no look-around or \
                         backreferences); left out"
                        .into(),
                );
                continue;
            }
            let Kind::Map { entries: opts, .. } = &value.kind else {
                self.report.problem(
                    file,
                    Some(key.line),
                    format!("lookup_options `{name}` is not a hash"),
                    "left out; write it as { merge: deep }".into(),
                );
                continue;
            };
            let mut table = toml::Table::new();
            for (opt, v) in self.entries(opts) {
                let opt_name = match &opt.kind {
                    Kind::Scalar { text, .. } => text.as_str(),
                    _ => "?",
                };
                match opt_name {
                    "merge" => {
                        if let Some(m) = self.merge(&name, v) {
                            table.insert("merge".into(), m);
                        }
                    }
                    "convert_to" => {
                        let sensitive = match &v.kind {
                            Kind::Scalar { text, .. } => text == "Sensitive",
                            Kind::Seq { items, .. } => items.first().is_some_and(|i| matches!(&i.kind, Kind::Scalar { text, .. } if text == "Sensitive")),
                            Kind::Map { .. } => false,
                        };
                        let advice = if sensitive {
                            "mark the profile parameter `secret = true` (redacted in every \
                             output), or encrypt the value with `stackdeploy secret encrypt KEY`"
                        } else {
                            "stackdeploy does not convert looked-up values; convert it where it \
                             is used (the template)"
                        };
                        self.report.problem(
                            file,
                            Some(opt.line),
                            format!("lookup_options `{name}`: convert_to is not converted"),
                            advice.into(),
                        );
                    }
                    other => self.report.problem(
                        file,
                        Some(opt.line),
                        format!("lookup_options `{name}`: option `{other}` is not converted"),
                        "stackdeploy's lookup_options have merge (and knockout_prefix) only".into(),
                    ),
                }
            }
            if !table.is_empty() {
                out.push((name, table));
            }
        }
        out
    }

    /// A `merge:` value: `deep`, or `{strategy: deep, knockout_prefix: "--", ...}`.
    fn merge(&mut self, key: &str, node: &Node) -> Option<toml::Value> {
        let file = self.file;
        let strategy = |this: &mut Self, node: &Node| -> Option<String> {
            match &node.kind {
                Kind::Scalar { text, .. }
                    if matches!(text.as_str(), "first" | "unique" | "hash" | "deep") =>
                {
                    Some(text.clone())
                }
                _ => {
                    let shown = match &node.kind {
                        Kind::Scalar { text, .. } => text.clone(),
                        _ => "?".into(),
                    };
                    this.report.problem(
                        file,
                        Some(node.line),
                        format!(
                            "lookup_options `{key}`: merge strategy `{shown}` is not converted"
                        ),
                        "use first, unique, hash or deep; the key's merge is left out".into(),
                    );
                    None
                }
            }
        };
        match &node.kind {
            Kind::Scalar { .. } | Kind::Seq { .. } => strategy(self, node).map(toml::Value::String),
            Kind::Map { entries, .. } => {
                let mut name = None;
                let mut knockout = None;
                for (k, v) in self.entries(entries) {
                    let opt = match &k.kind {
                        Kind::Scalar { text, .. } => text.as_str(),
                        _ => "?",
                    };
                    match opt {
                        "strategy" => name = strategy(self, v),
                        "knockout_prefix" => match &v.kind {
                            Kind::Scalar { text, .. } => knockout = Some(text.clone()),
                            _ => self.report.problem(
                                file,
                                Some(v.line),
                                format!("lookup_options `{key}`: knockout_prefix is not a string"),
                                "left out".into(),
                            ),
                        },
                        other => {
                            let advice = match other {
                                "sort_merged_arrays" => {
                                    "stackdeploy keeps merged arrays in merge order; sort them \
                                     where they are used (`| sort` in a template)"
                                }
                                "merge_hash_arrays" => {
                                    "stackdeploy does not merge hashes inside arrays; make the \
                                     array a hash keyed by name, which deep-merges"
                                }
                                _ => "stackdeploy's deep merge has no such option",
                            };
                            self.report.problem(
                                file,
                                Some(k.line),
                                format!("lookup_options `{key}`: merge option `{other}` is not converted"),
                                format!("{advice}; the merge is done without it"),
                            );
                        }
                    }
                }
                let name = name?;
                Some(match knockout {
                    Some(prefix) => {
                        let mut t = toml::Table::new();
                        t.insert("strategy".into(), toml::Value::String(name));
                        t.insert("knockout_prefix".into(), toml::Value::String(prefix));
                        toml::Value::Table(t)
                    }
                    None => toml::Value::String(name),
                })
            }
        }
    }
}

/// `key.sub: ` for messages about something inside a value.
fn at(path: &str) -> String {
    if path.is_empty() { String::new() } else { format!("`{path}`: ") }
}

/// The `error: ...` line of the regex crate's several-line message.
fn regex_error(s: &str) -> &str {
    s.lines().find_map(|l| l.trim().strip_prefix("error: ")).unwrap_or(s.trim())
}

/// The method of an eyaml-encrypted block (`ENC[PKCS7,...]`, `ENC[GPG,...]`) in `s`.
fn eyaml(s: &str) -> Option<&str> {
    let mut rest = s;
    while let Some(i) = rest.find("ENC[") {
        let after = &rest[i + 4..];
        if let Some(comma) = after.find(',') {
            let method = &after[..comma];
            if !method.is_empty()
                && method != "AGE"
                && method.chars().all(|c| c.is_ascii_uppercase() || c.is_ascii_digit() || c == '_')
            {
                return Some(method);
            }
        }
        rest = after;
    }
    None
}

#[cfg(test)]
mod tests {
    use super::*;

    fn convert_yaml(text: &str) -> (String, Collector) {
        let mut c = Collector::default();
        let out = convert("data/common.yaml", "hieradata/common.toml", text, Schema::Psych, &mut c)
            .unwrap_or_else(|e| panic!("{e}"));
        (out, c)
    }

    fn table(text: &str) -> toml::Table {
        toml::from_str(text).unwrap()
    }

    fn problems(c: &Collector) -> Vec<String> {
        c.not_converted.iter().map(|p| format!("{}: {}", p.line.unwrap_or(0), p.what)).collect()
    }

    #[test]
    fn values_keep_their_types_order_and_interpolations_are_rewritten() {
        let (out, c) = convert_yaml(
            "---\nntp::servers:\n  - 0.pool.ntp.org\n  - 1.pool.ntp.org\nb::port: 8080\n\
             b::ratio: 0.5\nb::on: yes\nb::name: \"%{trusted.certname}.example.com\"\n\
             b::hosts:\n  \"%{::hostname}.internal\": \"%{facts.networking.ip}\"\n\
             a::first: x\n",
        );
        assert!(c.not_converted.is_empty(), "{:?}", c.not_converted);
        let t = table(&out);
        let keys: Vec<&str> = t.keys().map(String::as_str).collect();
        // TOML puts the tables after the plain values; order is kept within each.
        assert_eq!(
            keys,
            ["ntp::servers", "b::port", "b::ratio", "b::on", "b::name", "a::first", "b::hosts"]
        );
        assert_eq!(t["b::port"].as_integer(), Some(8080));
        assert_eq!(t["b::on"].as_bool(), Some(true));
        assert_eq!(t["b::name"].as_str(), Some("%{host.name}.example.com"));
        assert_eq!(
            t["b::hosts"]["%{facts.hostname}.internal"].as_str(),
            Some("%{facts.networking.ip}")
        );
        assert!(out.contains("\"ntp::servers\" = ["), "{out}");
        assert!(
            out.starts_with("# Imported by `stackdeploy import hiera` from data/common.yaml\n")
        );
    }

    #[test]
    fn anchors_and_merge_keys_are_resolved() {
        let (out, c) = convert_yaml(
            "defaults: &defaults\n  timeout: 30\n  retries: 3\napp::a:\n  <<: *defaults\n  retries: 5\n\
             app::list: &l [a, b]\napp::copy: *l\n",
        );
        assert!(c.not_converted.is_empty());
        let t = table(&out);
        assert_eq!(t["app::a"]["timeout"].as_integer(), Some(30));
        assert_eq!(t["app::a"]["retries"].as_integer(), Some(5));
        assert_eq!(t["app::copy"], t["app::list"]);
    }

    #[test]
    fn nulls_are_left_out_and_reported_where_they_are() {
        let (out, c) = convert_yaml(
            "a::gone: ~\na::hash:\n  keep: 1\n  drop: null\na::list: [1, ~, 2]\na::empty:\n",
        );
        let t = table(&out);
        assert!(!t.contains_key("a::gone") && !t.contains_key("a::empty"));
        assert_eq!(t["a::hash"].as_table().unwrap().len(), 1);
        assert_eq!(t["a::list"].as_array().unwrap().len(), 2);
        assert_eq!(
            problems(&c),
            vec![
                "1: `a::gone` is null (~)",
                "4: `a::hash.drop` is null (~)",
                "5: `a::list[1]` is null (~)",
                "6: `a::empty` is null (~)",
            ]
        );
        assert!(c.not_converted[0].advice.contains("stops the search"));
    }

    #[test]
    fn eyaml_values_leave_their_key_out_with_how_to_reencrypt() {
        let (out, c) = convert_yaml(
            "db::user: nova\ndb::password: >\n    ENC[PKCS7,MIIBeQYJKoZIhvcNAQcDoIIBajCCAWYCAQAx\n    AAAA]\n\
             db::users:\n  admin:\n    password: ENC[GPG,hQEMA]\n",
        );
        let t = table(&out);
        assert_eq!(t.keys().collect::<Vec<_>>(), ["db::user"]);
        assert_eq!(
            problems(&c),
            vec![
                "2: `db::password` is eyaml-encrypted (ENC[PKCS7,...])",
                "7: `db::users.admin.password` is eyaml-encrypted (ENC[GPG,...])",
            ]
        );
        let advice = &c.not_converted[0].advice;
        assert!(advice.contains("| stackdeploy secret encrypt 'db::password'` and paste the printed `\"db::password\" = \"ENC[AGE,...]\"` line"), "{advice}");
        assert!(advice.contains("hieradata/common.toml"), "{advice}");
        assert!(c.not_converted[1].advice.contains("as the value at `db::users.admin.password`"));
        assert!(!out.contains("ENC["));
    }

    #[test]
    fn lookup_options_forms() {
        let (out, c) = convert_yaml(
            "lookup_options:\n  ntp::servers:\n    merge: unique\n  \"^profile::.*::users$\":\n    merge:\n      \
             strategy: deep\n      knockout_prefix: \"--\"\n      merge_hash_arrays: true\n  \
             app::cfg:\n    merge:\n      strategy: hash\n  app::secret:\n    convert_to: Sensitive\n  \
             \"^bad(?=x)\":\n    merge: deep\n  app::x:\n    merge: deepest\nntp::servers: [a]\n",
        );
        let t = table(&out);
        let lo = t["lookup_options"].as_table().unwrap();
        assert_eq!(
            lo.keys().collect::<Vec<_>>(),
            ["ntp::servers", "^profile::.*::users$", "app::cfg"]
        );
        assert_eq!(lo["ntp::servers"]["merge"].as_str(), Some("unique"));
        assert_eq!(lo["^profile::.*::users$"]["merge"]["strategy"].as_str(), Some("deep"));
        assert_eq!(lo["^profile::.*::users$"]["merge"]["knockout_prefix"].as_str(), Some("--"));
        assert_eq!(lo["app::cfg"]["merge"].as_str(), Some("hash"));
        assert!(
            out.contains("[lookup_options]\n\"ntp::servers\" = { merge = \"unique\" }\n"),
            "{out}"
        );
        assert_eq!(
            problems(&c),
            vec![
                "8: lookup_options `^profile::.*::users$`: merge option `merge_hash_arrays` is not converted",
                "13: lookup_options `app::secret`: convert_to is not converted",
                "14: lookup_options `^bad(?=x)`: the regex does not compile here (look-around, including look-ahead and look-behind, is not supported)",
                "17: lookup_options `app::x`: merge strategy `deepest` is not converted",
            ]
        );
        assert!(c.not_converted[1].advice.contains("secret = true"));
    }

    #[test]
    fn unsupported_interpolations_types_and_keys() {
        let (out, c) = convert_yaml(
            "a::role: \"%{trusted.extensions.pp_role}\"\na::obj: !ruby/object:Foo {}\n\
             a::mode: 0644\na::time: 12:30\na::day: 2024-01-31\na::big: 123456789012345678901\n\
             a::keys:\n  \"%{server_facts.servername}\": 1\na::bin: !!binary aGVsbG8=\n1: one\n",
        );
        let t = table(&out);
        assert_eq!(t.keys().collect::<Vec<_>>(), ["a::mode", "a::day", "a::bin", "1"]);
        assert_eq!(t["a::mode"].as_integer(), Some(420));
        assert_eq!(t["a::day"].as_str(), Some("2024-01-31"));
        assert_eq!(t["a::bin"].as_str(), Some("hello"));
        assert_eq!(
            problems(&c),
            vec![
                "1: `a::role`: %{trusted.extensions.pp_role} has no stackdeploy equivalent",
                "2: `a::obj` is tagged !ruby/object:Foo",
                "4: `a::time` is 12:30, a base-60 number in YAML 1.1 (Puppet reads an integer, not the text)",
                "6: `a::big` is 123456789012345678901, too large for TOML's 64-bit integers",
                "8: a hash key of `a::keys`: %{server_facts.servername} has no stackdeploy equivalent",
            ]
        );
        assert!(
            c.notes
                .iter()
                .any(|n| n.starts_with("data/common.yaml:3: `a::mode`: 0644 is the integer 420"))
        );
        assert!(c.notes.iter().any(|n| n.contains("2024-01-31 is a YAML timestamp")));
    }

    #[test]
    fn syntax_errors_and_non_hashes_name_the_line() {
        let mut c = Collector::default();
        let e = convert("data/x.yaml", "hieradata/x.toml", "a: 1\nb: [1,\n", Schema::Psych, &mut c)
            .unwrap_err();
        assert!(e.to_string().starts_with("data/x.yaml:"), "{e}");
        assert!(e.to_string().contains("nothing of this file was converted"), "{e}");
        let e = convert("data/x.yaml", "hieradata/x.toml", "- a\n- b\n", Schema::Psych, &mut c)
            .unwrap_err();
        assert!(e.to_string().starts_with("data/x.yaml:1: the file does not hold a hash"), "{e}");
        // A file holding only `---` (puppetlabs/control-repo's example node) is empty, not wrong.
        for empty in ["---\n", "--- ~\n", "# nothing yet\n", ""] {
            let toml = convert("data/x.yaml", "hieradata/x.toml", empty, Schema::Psych, &mut c)
                .unwrap_or_else(|e| panic!("{empty:?}: {e}"));
            assert!(toml::from_str::<toml::Table>(&toml).unwrap().is_empty(), "{toml}");
        }
        let out = convert("data/x.yaml", "hieradata/x.toml", "", Schema::Psych, &mut c).unwrap();
        assert!(table(&out).is_empty());
    }

    #[test]
    fn json_is_read_as_json() {
        let mut c = Collector::default();
        let out = convert(
            "data/common.json",
            "hieradata/common.toml",
            "{\"a::b\": \"yes\", \"a::n\": 1e3, \"a::on\": true, \"a::x\": null}",
            Schema::Json,
            &mut c,
        )
        .unwrap();
        let t = table(&out);
        assert_eq!(t["a::b"].as_str(), Some("yes"));
        assert_eq!(t["a::n"].as_float(), Some(1000.0));
        assert_eq!(t["a::on"].as_bool(), Some(true));
        assert_eq!(problems(&c), vec!["1: `a::x` is null (~)"]);
    }
}
