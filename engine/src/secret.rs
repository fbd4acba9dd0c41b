//! The `secret` commands (keygen, encrypt, edit) and the keyring every command decrypts with,
//! read from the identity file named by `STACKDEPLOY_AGE_KEY_FILE`.

use std::io::Read;
use std::path::Path;
use std::sync::{Arc, LazyLock};

use regex::Regex;

use crate::app::{CmdResult, Context, out};
use crate::cli::{SecretAction, SecretArgs};
use crate::error::{self, Error};
use crate::hiera::Keyring;
use crate::hiera::crypt::{self, KEY_FILE_VAR};

/// The keyring from the identity file in `STACKDEPLOY_AGE_KEY_FILE`. Without one, commands
/// that only show or check catalogs (`show_only`) get placeholders; the others get an error
/// as soon as they meet an encrypted value.
pub(crate) fn keyring(show_only: bool) -> Result<Arc<Keyring>, Vec<Error>> {
    match std::env::var_os(KEY_FILE_VAR).filter(|v| !v.is_empty()) {
        Some(path) => {
            let path = Path::new(&path);
            let text = std::fs::read_to_string(path).map_err(|e| {
                vec![
                    error::usage(format!(
                        "{KEY_FILE_VAR} names {}, which cannot be read",
                        path.display()
                    ))
                    .with_source(e),
                ]
            })?;
            Keyring::parse(&path.display().to_string(), &text).map(Arc::new).map_err(|e| vec![e])
        }
        None if show_only => Ok(Arc::new(Keyring::Placeholders)),
        None => Ok(Arc::new(Keyring::Missing)),
    }
}

pub fn command(ctx: &Context, args: &SecretArgs) -> CmdResult {
    match &args.action {
        SecretAction::Keygen(a) => {
            let (text, public) = crypt::generate();
            write_private(&a.out, &text)?;
            eprintln!(
                "wrote the identity to {}; keep it out of git. Add its public key to \
                 pipeline.toml:\n  [secrets]\n  recipients = [\"{public}\"]\nand point \
                 {KEY_FILE_VAR} at the file where secrets must be decrypted (CI, operators).",
                a.out.display()
            );
            out(&format!("{public}\n"));
            Ok(0)
        }
        SecretAction::Encrypt(a) => {
            let recipients = recipients(ctx)?;
            let mut plain = String::new();
            std::io::stdin()
                .read_to_string(&mut plain)
                .map_err(|e| vec![error::io("cannot read the value from stdin").with_source(e)])?;
            // `echo pw | stackdeploy secret encrypt` must not make the newline part of it.
            let plain = plain.strip_suffix('\n').unwrap_or(&plain);
            let plain = plain.strip_suffix('\r').unwrap_or(plain);
            let enc = crypt::encrypt(&recipients, plain).map_err(|e| vec![e])?;
            out(&format!("{} = \"{enc}\"\n", toml_key(&a.key)));
            Ok(0)
        }
        SecretAction::Edit(a) => edit(ctx, &a.file),
    }
}

/// The recipients in pipeline.toml as it is on disk: the secret helpers edit files of the
/// working tree, so they use its recipients (a key just added need not be committed first).
fn recipients(ctx: &Context) -> Result<Vec<String>, Vec<Error>> {
    let snapshot = match &ctx.rev {
        Some(_) => ctx.snapshot()?.1,
        None => crate::source::Repo::discover(&ctx.dir)
            .and_then(|r| r.snapshot_worktree())
            .map_err(|e| vec![e])?,
    };
    let pipeline = crate::model::Pipeline::from_snapshot(&snapshot).map_err(|e| vec![e])?;
    Ok(pipeline.secret_recipients)
}

fn toml_key(key: &str) -> String {
    toml::Value::String(key.to_string()).to_string()
}

fn write_private(path: &Path, text: &str) -> Result<(), Vec<Error>> {
    use std::io::Write;
    use std::os::unix::fs::OpenOptionsExt;
    let mut file =
        std::fs::OpenOptions::new().write(true).create_new(true).mode(0o600).open(path).map_err(
            |e| {
                vec![
                    error::io(format!("cannot create {} (it must not exist yet)", path.display()))
                        .with_source(e),
                ]
            },
        )?;
    file.write_all(text.as_bytes())
        .map_err(|e| vec![error::io(format!("cannot write {}", path.display())).with_source(e)])
}

static ENC_STRING: LazyLock<Regex> =
    LazyLock::new(|| Regex::new(r#""(ENC\[AGE,[A-Za-z0-9+/=]+\])""#).expect("valid regex"));
static DEC_STRING: LazyLock<Regex> =
    LazyLock::new(|| Regex::new(r#""DEC\[((?:[^"\\]|\\.)*)\]""#).expect("valid regex"));

/// `secret edit FILE`: every `"ENC[AGE,…]"` string becomes `"DEC[plaintext]"` in a private
/// temporary copy opened in $VISUAL/$EDITOR; on exit, every `"DEC[…]"` is encrypted again
/// (an unchanged plaintext keeps its old ciphertext) and the file is replaced whole, only if
/// it is still valid TOML.
fn edit(ctx: &Context, file: &Path) -> CmdResult {
    let text = std::fs::read_to_string(file)
        .map_err(|e| vec![error::io(format!("cannot read {}", file.display())).with_source(e)])?;
    let keyring = keyring(false)?;
    if matches!(*keyring, Keyring::Missing) {
        return Err(vec![error::usage(format!(
            "secret edit decrypts the file's values: set {KEY_FILE_VAR} to your identity file"
        ))]);
    }
    let recipients = recipients(ctx)?;
    let label = file.display().to_string();
    let mut originals: Vec<(String, String)> = Vec::new();
    let mut failure = None;
    let decrypted = ENC_STRING.replace_all(&text, |c: &regex::Captures<'_>| {
        let revealed = std::sync::Mutex::default();
        match keyring.reveal(&label, toml::Value::String(c[1].to_string()), &revealed) {
            Ok(toml::Value::String(plain)) => {
                // A JSON string is a valid TOML basic string: quotes, backslashes and
                // newlines come out escaped, so any value survives the round trip.
                let quoted = serde_json::to_string(&plain).expect("json");
                originals.push((plain, c[1].to_string()));
                format!("\"DEC[{}]\"", &quoted[1..quoted.len() - 1])
            }
            Ok(_) => unreachable!("a string reveals to a string"),
            Err(e) => {
                failure.get_or_insert(e);
                c[0].to_string()
            }
        }
    });
    if let Some(e) = failure {
        return Err(vec![e]);
    }
    let scratch = scratch_path(file);
    write_private(&scratch, &decrypted)?;
    let edited = run_editor(&scratch).and_then(|()| {
        std::fs::read_to_string(&scratch)
            .map_err(|e| vec![error::io("cannot read the edited copy").with_source(e)])
    });
    let _ = std::fs::remove_file(&scratch);
    let edited = edited?;
    let mut failure = None;
    let encrypted = DEC_STRING.replace_all(&edited, |c: &regex::Captures<'_>| {
        let plain = match toml::from_str::<toml::Table>(&format!("v = \"{}\"", &c[1])) {
            Ok(t) => t["v"].as_str().unwrap_or_default().to_string(),
            // The error's own text would quote the line, plaintext included.
            Err(e) => {
                let line = edited[..c.get(0).expect("match").start()].lines().count().max(1);
                failure.get_or_insert(
                    error::syntax(format!("bad escape in a DEC[…] value: {}", e.message()))
                        .at_file(file, Some(line)),
                );
                return c[0].to_string();
            }
        };
        if let Some((_, enc)) = originals.iter().find(|(p, _)| *p == plain) {
            return format!("\"{enc}\"");
        }
        match crypt::encrypt(&recipients, &plain) {
            Ok(enc) => format!("\"{enc}\""),
            Err(e) => {
                failure.get_or_insert(e);
                c[0].to_string()
            }
        }
    });
    if let Some(e) = failure {
        return Err(vec![e.map_detail(|d| format!("{d}; {} was not changed", file.display()))]);
    }
    if let Err(e) = toml::from_str::<toml::Table>(&encrypted) {
        let line = e.span().map(|s| encrypted[..s.start].lines().count().max(1));
        return Err(vec![
            error::syntax(format!(
                "the edited file is not valid TOML ({}); {} was not changed",
                e.message(),
                file.display()
            ))
            .at_file(file, line),
        ]);
    }
    if encrypted == text {
        eprintln!("{}: no changes", file.display());
        return Ok(0);
    }
    crate::review::write_report(file, &encrypted).map_err(|e| vec![e])?;
    Ok(0)
}

/// A private place for the decrypted copy: RAM-backed when there is one.
fn scratch_path(file: &Path) -> std::path::PathBuf {
    let dir = Path::new("/dev/shm");
    let dir = if dir.is_dir() { dir.to_path_buf() } else { std::env::temp_dir() };
    let name = file.file_name().and_then(|n| n.to_str()).unwrap_or("hieradata.toml");
    dir.join(format!("stackdeploy-{}-{name}", std::process::id()))
}

fn run_editor(path: &Path) -> Result<(), Vec<Error>> {
    let editor = std::env::var("VISUAL")
        .or_else(|_| std::env::var("EDITOR"))
        .unwrap_or_else(|_| "vi".to_string());
    // Through the shell, as git does: EDITOR may carry arguments ("code --wait").
    let status = std::process::Command::new("sh")
        .arg("-c")
        .arg(format!("{editor} \"$1\""))
        .arg("sh")
        .arg(path)
        .status()
        .map_err(|e| vec![error::io(format!("cannot run the editor '{editor}'")).with_source(e)])?;
    if !status.success() {
        return Err(vec![error::usage(format!(
            "the editor '{editor}' exited with {status}; nothing was changed"
        ))]);
    }
    Ok(())
}
