//! Rewriting Hiera's `%{...}` interpolations into the variables stackdeploy knows
//! (`hiera::Vars::get`: `host.*`, `environment`, `facts.*`; functions `lookup`, `alias`,
//! `literal`), with Puppet's reading of the syntax (`lib/puppet/pops/lookup/interpolation.rb`):
//! the expression is everything up to the next `}`, trimmed; `%{}`, `%{::}`, `%{''}` are
//! empty; a `%{` with no `}` after it is plain text.

/// Where the string is: what may be interpolated there.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Place {
    /// A data value: variables and functions.
    Value,
    /// A key of a hash inside a value: variables, `lookup` and `literal`.
    Key,
    /// A hierarchy path of hiera.yaml: variables only.
    Path,
}

/// What a rewritten string uses, for the report's notes.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum Used {
    /// `%{environment}`: now stackdeploy's environment name.
    Environment,
    /// `%{facts.NAME...}`: a fact the hosts must have.
    Fact(String),
    /// `%{clientcert}`: the host's name.
    Clientcert,
}

/// An interpolation with no stackdeploy equivalent.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct Unsupported {
    /// The interpolation as written, `%{...}`.
    pub token: String,
    /// Why and what to do instead.
    pub advice: String,
}

/// The string with its interpolations rewritten, and what it uses.
pub(crate) fn rewrite(s: &str, place: Place) -> Result<(String, Vec<Used>), Unsupported> {
    let mut out = String::with_capacity(s.len());
    let mut used = Vec::new();
    let mut rest = s;
    while let Some(start) = rest.find("%{") {
        out.push_str(&rest[..start]);
        let after = &rest[start + 2..];
        let Some(end) = after.find('}') else {
            // Puppet leaves it as text; stackdeploy reads `%{` as the start of an interpolation.
            out.push_str(&after_unterminated(&rest[start..]));
            return Ok((out, used));
        };
        let token = &rest[start..start + 2 + end + 1];
        let expr = after[..end].trim();
        out.push_str(&expression(expr, token, s, place, &mut used)?);
        rest = &after[end + 1..];
    }
    out.push_str(rest);
    Ok((out, used))
}

/// Text from an unterminated `%{` on: every `%{` in it written as stackdeploy's literal.
fn after_unterminated(text: &str) -> String {
    text.replace("%{", "%{literal('%')}{")
}

fn expression(
    expr: &str,
    token: &str,
    whole: &str,
    place: Place,
    used: &mut Vec<Used>,
) -> Result<String, Unsupported> {
    let unsupported = |advice: String| Unsupported { token: token.to_string(), advice };
    if matches!(expr, "" | "::" | "\"\"" | "''" | "\"::\"" | "'::'") {
        return Ok("%{}".to_string());
    }
    if let Some((func, arg, quote)) = method(expr) {
        return match (func, place) {
            ("scope", _) => variable(arg, token, used),
            ("literal", _) => Ok(format!("%{{literal({quote}{arg}{quote})}}")),
            ("lookup" | "hiera", Place::Value | Place::Key) => {
                Ok(format!("%{{lookup({quote}{arg}{quote})}}"))
            }
            ("alias", Place::Value) => {
                if whole != token {
                    return Err(unsupported(
                        "alias() must be the whole string (Puppet refuses it too); use \
                         %{lookup('...')} to embed the value as text"
                            .into(),
                    ));
                }
                Ok(format!("%{{alias({quote}{arg}{quote})}}"))
            }
            ("lookup" | "hiera" | "alias", Place::Path) => Err(unsupported(
                "a hierarchy level may only use variables (host.name, host.role, environment, \
                 facts.*), not lookups"
                    .into(),
            )),
            ("alias", Place::Key) => {
                Err(unsupported("alias() cannot be a hash key; use %{lookup('...')}".into()))
            }
            (other, _) => Err(unsupported(format!(
                "'{other}' is no interpolation function of Hiera or stackdeploy (lookup, alias, \
                 literal; scope and hiera are rewritten); write the value out"
            ))),
        };
    }
    if expr.contains('(') {
        return Err(unsupported(
            "malformed function call (Hiera expects name('key') with the key quoted)".into(),
        ));
    }
    variable(expr, token, used)
}

/// `name('arg')` or `name("arg")`, as Puppet's `get_method_and_data` matches it.
fn method(expr: &str) -> Option<(&str, &str, char)> {
    let open = expr.find('(')?;
    let name = &expr[..open];
    if name.is_empty() || !name.chars().all(|c| c.is_alphanumeric() || c == '_') {
        return None;
    }
    let inner = expr[open + 1..].strip_suffix(')')?;
    let quote = inner.chars().next().filter(|c| *c == '\'' || *c == '"')?;
    let arg = inner.strip_prefix(quote)?.strip_suffix(quote)?;
    (!arg.is_empty() && !arg.contains(quote)).then_some((name, arg, quote))
}

/// A variable of Puppet's scope (`%{x}`, `%{::x}`, `%{scope('x')}`) as stackdeploy's.
fn variable(name: &str, token: &str, used: &mut Vec<Used>) -> Result<String, Unsupported> {
    let unsupported =
        |advice: &str| Unsupported { token: token.to_string(), advice: advice.into() };
    let name = name.strip_prefix("::").unwrap_or(name);
    if name.contains(['"', '\'']) {
        return Err(unsupported(
            "quoted key segments cannot be written in stackdeploy's interpolation; rename the \
             fact or key to plain letters, digits and _",
        ));
    }
    let valid = |s: &str| {
        !s.is_empty()
            && s.split('.').all(|p| {
                !p.is_empty()
                    && p.chars().all(|c| c.is_ascii_alphanumeric() || c == '_' || c == '-')
            })
    };
    let (root, rest) = match name.split_once('.') {
        Some((r, rest)) => (r, Some(rest)),
        None => (name, None),
    };
    if root.contains("::") {
        return Err(unsupported(
            "a Puppet class variable has no equivalent; if its value comes from hiera, use \
             %{lookup('that::key')}",
        ));
    }
    match (root, rest) {
        ("trusted", Some("certname")) => Ok("%{host.name}".into()),
        ("trusted", Some(r)) if r.starts_with("extensions") => Err(unsupported(
            "certificate extensions do not exist here: set the value as a fact of the host in \
             pipeline.toml (facts = { pp_role = \"...\" }) and use %{facts.NAME}, or use \
             %{host.role} for a role",
        )),
        ("trusted", _) => Err(unsupported(
            "trusted facts come from Puppet's certificates: use %{host.name} for the certname, \
             or a fact set in pipeline.toml",
        )),
        ("server_facts", _) => Err(unsupported(
            "server facts describe the Puppet server, which stackdeploy does not have: set the \
             value as a fact in pipeline.toml and use %{facts.NAME}",
        )),
        ("facts", None) => Err(unsupported("the whole facts hash cannot be interpolated")),
        ("facts", Some(path)) if valid(path) => {
            used.push(Used::Fact(path.to_string()));
            Ok(format!("%{{facts.{path}}}"))
        }
        ("environment", None) => {
            used.push(Used::Environment);
            Ok("%{environment}".into())
        }
        ("clientcert", None) => {
            used.push(Used::Clientcert);
            Ok("%{host.name}".into())
        }
        ("calling_module" | "calling_class" | "calling_class_path" | "module_name", _) => {
            Err(unsupported(
                "there are no classes here: a profile's parameters are looked up as \
                 `<profile>::<param>`, so put such data under those keys",
            ))
        }
        _ if valid(name) => {
            // Top-scope variables are facts in a `puppet lookup` (and in agent runs, mostly).
            used.push(Used::Fact(name.to_string()));
            Ok(format!("%{{facts.{name}}}"))
        }
        _ => Err(unsupported(
            "not a variable name stackdeploy can interpolate (letters, digits, _ and - between dots)",
        )),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn value(s: &str) -> String {
        rewrite(s, Place::Value).unwrap_or_else(|e| panic!("{s}: {e:?}")).0
    }

    #[test]
    fn variables_become_stackdeploy_variables() {
        assert_eq!(value("%{trusted.certname}"), "%{host.name}");
        assert_eq!(value("%{::trusted.certname}.example.com"), "%{host.name}.example.com");
        assert_eq!(value("%{::osfamily}"), "%{facts.osfamily}");
        assert_eq!(value("%{hostname}"), "%{facts.hostname}");
        assert_eq!(value("%{ os.family }"), "%{facts.os.family}");
        assert_eq!(value("%{scope('x')}-%{scope(\"::y\")}"), "%{facts.x}-%{facts.y}");
        assert_eq!(value("%{facts.os.release.major}"), "%{facts.os.release.major}");
        assert_eq!(value("%{::facts.networking.ip}"), "%{facts.networking.ip}");
        assert_eq!(value("/srv/%{environment}"), "/srv/%{environment}");
        assert_eq!(value("%{::environment}"), "%{environment}");
        assert_eq!(value("%{clientcert}"), "%{host.name}");
    }

    #[test]
    fn functions_are_kept_or_renamed() {
        assert_eq!(value("%{hiera('a::b')}"), "%{lookup('a::b')}");
        assert_eq!(value("%{lookup(\"a::b\")}/x"), "%{lookup(\"a::b\")}/x");
        assert_eq!(value("%{alias('list')}"), "%{alias('list')}");
        assert_eq!(value("100%{literal('%')}"), "100%{literal('%')}");
        assert_eq!(value("a%{}b%{::}c%{''}"), "a%{}b%{}c%{}");
        assert_eq!(value("no interpolation: 50% {x}"), "no interpolation: 50% {x}");
    }

    #[test]
    fn an_unterminated_interpolation_stays_text() {
        assert_eq!(value("50%{ off %{x"), "50%{literal('%')}{ off %{literal('%')}{x");
    }

    #[test]
    fn what_has_no_equivalent_is_refused_with_advice() {
        let refused = |s: &str, place| rewrite(s, place).unwrap_err();
        let e = refused("%{trusted.extensions.pp_role}", Place::Value);
        assert_eq!(e.token, "%{trusted.extensions.pp_role}");
        assert!(e.advice.contains("facts"), "{e:?}");
        assert!(refused("x %{server_facts.servername}", Place::Value).advice.contains("server"));
        assert!(refused("%{trusted.domain}", Place::Value).advice.contains("host.name"));
        assert!(refused("%{ntp::servers}", Place::Value).advice.contains("lookup"));
        assert!(refused("%{calling_module}", Place::Value).advice.contains("profile"));
        assert!(refused("%{shell('x')}", Place::Value).advice.contains("'shell'"));
        assert!(refused("%{facts.\"a.b\"}", Place::Value).advice.contains("quoted"));
        assert!(refused("a %{alias('x')}", Place::Value).advice.contains("whole string"));
        assert!(refused("%{lookup('x')}", Place::Path).advice.contains("only use variables"));
        assert!(refused("%{alias('x')}", Place::Key).advice.contains("key"));
        assert!(refused("%{facts}", Place::Value).advice.contains("whole facts"));
    }

    #[test]
    fn what_is_used_is_recorded() {
        let (_, used) =
            rewrite("%{environment}/%{::os.family}/%{facts.kernel}", Place::Path).unwrap();
        assert_eq!(
            used,
            vec![Used::Environment, Used::Fact("os.family".into()), Used::Fact("kernel".into())]
        );
    }
}
