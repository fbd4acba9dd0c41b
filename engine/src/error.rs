//! The one error type of the engine: a kind, a detail message, an optional location (a file and
//! line in the composition, or a host) and an optional cause; and [`Errors`], several of them.
//!
//! Errors are about what went wrong, not about how the process exits: outcomes such as "plan
//! found changes" are an [`ExitStatus`](crate::exit::ExitStatus).
//!
//! The location is attached where it first becomes known and is never overwritten, so an error
//! raised deep inside hiera still names the data file, and the caller adds the host only when
//! nothing more precise is known.

use std::fmt;
use std::path::PathBuf;

/// What went wrong, coarsely; callers branch on it (exit codes, "is this the user's input?").
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[non_exhaustive]
pub enum ErrorKind {
    /// A file of the composition cannot be parsed (TOML syntax, template syntax).
    Syntax,
    /// The composition parses but is inconsistent: unknown role/profile, missing notify target,
    /// duplicate path, bad parameter type, role rules broken.
    Invalid,
    /// A hiera lookup failed: missing required key, unknown variable, interpolation cycle.
    Lookup,
    /// Rendering a template failed at run time (undefined variable, bad filter argument).
    Render,
    /// The git repository or a revision in it could not be read.
    Git,
    /// The command line or the environment names something that does not exist.
    Usage,
    /// Talking to a host failed, so what was asked of it could not be done: connect,
    /// authenticate, host key, a connection lost, a probe it did not finish, a host locked or
    /// changed by another run.
    Host,
    /// A host that was reached did what it was asked and the change failed: a resource's
    /// command, validation or restart exited non-zero, or a second apply still changed it. The
    /// commit is at fault, not the way to the host (that is [`Host`](Self::Host)).
    Apply,
    /// The local lab (sshd in namespaces) could not be managed.
    Lab,
    /// A local file or directory could not be read or written.
    Io,
}

/// Where an error happened.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Location {
    /// A file of the composition, relative to the repository root, with a 1-based line when known.
    File { path: PathBuf, line: Option<usize> },
    /// A host of an environment.
    Host { host: String },
}

#[derive(Debug)]
pub struct Error {
    kind: ErrorKind,
    detail: String,
    location: Option<Location>,
    source: Option<Box<dyn std::error::Error + Send + Sync + 'static>>,
}

pub type Result<T, E = Error> = std::result::Result<T, E>;

impl Error {
    pub fn new(kind: ErrorKind, detail: impl Into<String>) -> Error {
        Error { kind, detail: detail.into(), location: None, source: None }
    }

    pub fn kind(&self) -> ErrorKind {
        self.kind
    }

    pub fn detail(&self) -> &str {
        &self.detail
    }

    pub fn location(&self) -> Option<&Location> {
        self.location.as_ref()
    }

    /// Attaches a file location unless the error already has one.
    pub fn at_file(mut self, path: impl Into<PathBuf>, line: Option<usize>) -> Error {
        if self.location.is_none() {
            self.location = Some(Location::File { path: path.into(), line });
        }
        self
    }

    /// Attaches a host location unless the error already has one.
    pub fn at_host(mut self, host: impl Into<String>) -> Error {
        if self.location.is_none() {
            self.location = Some(Location::Host { host: host.into() });
        }
        self
    }

    /// Rewrites the detail message (to add context a caller knows, such as the commit).
    pub fn map_detail(mut self, f: impl FnOnce(&str) -> String) -> Error {
        self.detail = f(&self.detail);
        self
    }

    pub fn with_source(mut self, source: impl std::error::Error + Send + Sync + 'static) -> Error {
        self.source = Some(Box::new(source));
        self
    }
}

impl fmt::Display for Error {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match &self.location {
            Some(Location::File { path, line: Some(line) }) => {
                write!(f, "{}:{}: ", path.display(), line)?
            }
            Some(Location::File { path, line: None }) => write!(f, "{}: ", path.display())?,
            Some(Location::Host { host }) => write!(f, "{host}: ")?,
            None => {}
        }
        f.write_str(&self.detail)?;
        if let Some(source) = &self.source {
            write!(f, ": {source}")?;
        }
        Ok(())
    }
}

impl std::error::Error for Error {
    fn source(&self) -> Option<&(dyn std::error::Error + 'static)> {
        self.source.as_deref().map(|e| e as &(dyn std::error::Error + 'static))
    }
}

/// Several problems at once: loading and compiling report every problem they find, not just
/// the first. Built from one [`Error`] with `?` or `.into()`, so functions that collect can call
/// functions that stop at the first.
#[derive(Debug, Default)]
pub struct Errors(Vec<Error>);

impl Errors {
    pub fn new() -> Errors {
        Errors(Vec::new())
    }

    pub fn push(&mut self, e: Error) {
        self.0.push(e);
    }

    pub fn is_empty(&self) -> bool {
        self.0.is_empty()
    }

    pub fn len(&self) -> usize {
        self.0.len()
    }

    pub fn first(&self) -> Option<&Error> {
        self.0.first()
    }

    pub fn iter(&self) -> std::slice::Iter<'_, Error> {
        self.0.iter()
    }

    /// `Ok(())` when empty, so a collecting function can end with `errors.into_result()?`.
    pub fn into_result(self) -> Result<(), Errors> {
        if self.is_empty() { Ok(()) } else { Err(self) }
    }

    /// Applies `f` to every error (to add a location or context all of them share).
    pub fn map(self, f: impl FnMut(Error) -> Error) -> Errors {
        Errors(self.0.into_iter().map(f).collect())
    }
}

/// One problem per line.
impl fmt::Display for Errors {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        for (i, e) in self.0.iter().enumerate() {
            if i > 0 {
                f.write_str("\n")?;
            }
            write!(f, "{e}")?;
        }
        Ok(())
    }
}

impl std::error::Error for Errors {}

impl From<Error> for Errors {
    fn from(e: Error) -> Errors {
        Errors(vec![e])
    }
}

impl From<Vec<Error>> for Errors {
    fn from(v: Vec<Error>) -> Errors {
        Errors(v)
    }
}

impl FromIterator<Error> for Errors {
    fn from_iter<I: IntoIterator<Item = Error>>(iter: I) -> Errors {
        Errors(iter.into_iter().collect())
    }
}

impl Extend<Error> for Errors {
    fn extend<I: IntoIterator<Item = Error>>(&mut self, iter: I) {
        self.0.extend(iter);
    }
}

impl IntoIterator for Errors {
    type Item = Error;
    type IntoIter = std::vec::IntoIter<Error>;
    fn into_iter(self) -> Self::IntoIter {
        self.0.into_iter()
    }
}

impl<'a> IntoIterator for &'a Errors {
    type Item = &'a Error;
    type IntoIter = std::slice::Iter<'a, Error>;
    fn into_iter(self) -> Self::IntoIter {
        self.0.iter()
    }
}

/// Shorthand constructors, one per kind, so call sites read `err::invalid("...")`.
macro_rules! ctor {
    ($($name:ident => $kind:ident),* $(,)?) => {
        $(pub fn $name(detail: impl Into<String>) -> Error { Error::new(ErrorKind::$kind, detail) })*
    };
}
ctor!(syntax => Syntax, invalid => Invalid, lookup => Lookup, render => Render, git => Git,
      usage => Usage, host => Host, apply => Apply, lab => Lab, io => Io);
