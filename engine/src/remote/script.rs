//! Building shell text where quoting is decided by the type of each value, never by hand at
//! the call site (pyinfra's `StringCommand` idea).
//!
//! Fixed shell syntax goes in through [`Sh::code`], which takes only `&'static str`: text the
//! engine wrote. Everything else is a value: [`Sh::arg`] (a literal word), [`Sh::path`] (an
//! absolute path), [`Sh::command`] (a command the composition supplies, passed as one quoted
//! word to a prelude function that `eval`s it in a subshell), and numbers. A value from hiera,
//! facts or the inventory therefore cannot reach the shell unquoted: there is no method that
//! would put it there.

use std::fmt::Display;

use crate::catalog::Mode;
use crate::shell::quote;

/// Shell text under construction.
#[derive(Debug, Default, Clone)]
pub struct Sh {
    text: String,
}

impl Sh {
    pub fn new() -> Sh {
        Sh::default()
    }

    /// Fixed shell syntax written by the engine.
    pub fn code(&mut self, code: &'static str) -> &mut Sh {
        self.text.push_str(code);
        self
    }

    /// A fixed part of the script that is a whole file of its own (a prelude).
    pub fn prelude(&mut self, text: &'static str) -> &mut Sh {
        self.text.push_str(text);
        if !text.ends_with('\n') {
            self.text.push('\n');
        }
        self
    }

    /// One literal word.
    pub fn arg(&mut self, literal: &str) -> &mut Sh {
        self.space();
        self.text.push_str(&quote(literal));
        self
    }

    /// An absolute path, as one word. Paths come from the catalog, which only holds absolute,
    /// normalised paths without control characters.
    pub fn path(&mut self, path: &str) -> &mut Sh {
        debug_assert!(path.starts_with('/') && !path.contains('\0'), "not a path: {path:?}");
        self.arg(path)
    }

    /// A command supplied by the composition (a service's start, an exec, a validate), as one
    /// quoted word: it must be handed to a prelude function that `eval`s it, never inlined, so
    /// even a syntax error in it fails only that command.
    pub fn command(&mut self, command: &str) -> &mut Sh {
        self.arg(command)
    }

    /// A line calling a prelude function with one quoted word per value; nothing when there
    /// are no values.
    pub fn call(&mut self, function: &'static str, values: &[&str]) -> &mut Sh {
        if values.is_empty() {
            return self;
        }
        self.code(function);
        for v in values {
            self.arg(v);
        }
        self.nl()
    }

    /// `NAME=value`, the value quoted.
    pub fn assign(&mut self, name: &'static str, value: &str) -> &mut Sh {
        self.space();
        self.text.push_str(name);
        self.text.push('=');
        self.text.push_str(&quote(value));
        self
    }

    /// A number (a length, a count).
    pub fn int(&mut self, n: impl Display) -> &mut Sh {
        self.space();
        self.text.push_str(&n.to_string());
        self
    }

    /// A file mode, as four octal digits.
    pub fn mode(&mut self, mode: Mode) -> &mut Sh {
        self.int(mode)
    }

    /// Ends the line.
    pub fn nl(&mut self) -> &mut Sh {
        self.text.push('\n');
        self
    }

    pub fn finish(self) -> String {
        self.text
    }

    /// A separating space, unless at the start of a line or after one.
    fn space(&mut self) {
        if !matches!(self.text.chars().last(), None | Some(' ' | '\n' | '(')) {
            self.text.push(' ');
        }
    }
}

impl std::fmt::Display for Sh {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(&self.text)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn values_are_quoted_by_type_and_code_is_not() {
        let mut s = Sh::new();
        s.code("run_cmd").command("echo $(id) 'x'").code(" || fail").arg("file:/a b").nl();
        s.code("chmod").mode(Mode(0o640)).path("/etc/it's").nl();
        s.code("( head -c").int(12).code(" >").path("/tmp/x").code(" )").nl();
        s.assign("SD", "/var/lib/it is").code("; x").assign("Y", "1").nl();
        assert_eq!(
            s.finish(),
            "run_cmd 'echo $(id) '\"'\"'x'\"'\"'' || fail 'file:/a b'\n\
             chmod 0640 '/etc/it'\"'\"'s'\n\
             ( head -c 12 > /tmp/x )\n\
             SD='/var/lib/it is'; x Y=1\n"
        );
    }
}
