//! `stackdeploy secret keygen|encrypt|edit`: age identities and encrypted hiera values. The
//! text work is `secrets::edit`'s; this is files, stdin and the editor.

use std::io::Read;
use std::path::Path;

use super::{CmdResult, Context, out, write_file};
use crate::cli::SecretAction;
use crate::error::{self, Errors};
use crate::exit::ExitStatus;
use crate::model::PIPELINE_FILE;
use crate::secrets::{KEY_FILE_VAR, Keys, crypt, edit};

pub(super) fn run(ctx: &Context, action: &SecretAction) -> CmdResult {
    match action {
        SecretAction::Keygen(a) => {
            let (text, public) = crypt::generate();
            write_private(&a.out, &text)?;
            super::note(format_args!(
                "wrote the identity to {}; keep it out of git. Add its public key to \
                 pipeline.toml:\n  [secrets]\n  recipients = [\"{public}\"]\nand point \
                 {KEY_FILE_VAR} at the file where secrets must be decrypted (CI, operators).",
                a.out.display()
            ));
            out(&format!("{public}\n"));
            Ok(ExitStatus::Ok)
        }
        SecretAction::Encrypt(a) => {
            let recipients = recipients(ctx)?;
            let mut plain = String::new();
            std::io::stdin()
                .read_to_string(&mut plain)
                .map_err(|e| error::io("cannot read the value from stdin").with_source(e))?;
            // `echo pw | stackdeploy secret encrypt` must not make the newline part of it.
            let plain = plain.strip_suffix('\n').unwrap_or(&plain);
            let plain = plain.strip_suffix('\r').unwrap_or(plain);
            let enc =
                crypt::encrypt(&recipients, plain).map_err(|e| e.at_file(PIPELINE_FILE, None))?;
            out(&format!("{} = \"{enc}\"\n", toml_key(&a.key)));
            Ok(ExitStatus::Ok)
        }
        SecretAction::Edit(a) => edit_file(ctx, &a.file),
    }
}

/// The recipients in pipeline.toml as it is on disk: the secret helpers edit files of the
/// working tree, so they use its recipients (a key just added need not be committed first).
fn recipients(ctx: &Context) -> Result<Vec<String>, Errors> {
    let snapshot = match &ctx.rev {
        Some(_) => ctx.snapshot()?.1,
        None => ctx.repo()?.snapshot_worktree()?,
    };
    Ok(crate::model::Pipeline::from_snapshot(&snapshot)?.secret_recipients)
}

fn toml_key(key: &str) -> String {
    toml::Value::String(key.to_string()).to_string()
}

fn write_private(path: &Path, text: &str) -> Result<(), Errors> {
    use std::io::Write;
    use std::os::unix::fs::OpenOptionsExt;
    let mut file =
        std::fs::OpenOptions::new().write(true).create_new(true).mode(0o600).open(path).map_err(
            |e| {
                error::io(format!("cannot create {} (it must not exist yet)", path.display()))
                    .with_source(e)
            },
        )?;
    file.write_all(text.as_bytes())
        .map_err(|e| error::io(format!("cannot write {}", path.display())).with_source(e))?;
    Ok(())
}

/// `secret edit FILE`: the file's encrypted values decrypted in a private temporary copy
/// opened in $VISUAL/$EDITOR, encrypted again on exit; the file is replaced whole, only if it
/// is still valid TOML.
fn edit_file(ctx: &Context, file: &Path) -> CmdResult {
    let text = std::fs::read_to_string(file)
        .map_err(|e| error::io(format!("cannot read {}", file.display())).with_source(e))?;
    let keys = Keys::from_environment()?;
    if !keys.has_identities() {
        return Err(error::usage(format!(
            "secret edit decrypts the file's values: set {KEY_FILE_VAR} to your identity file"
        ))
        .into());
    }
    let recipients = recipients(ctx)?;
    let opened = edit::open(&text, &file.display().to_string(), &keys.for_deploying())?;
    let scratch = scratch_path(file);
    write_private(&scratch, &opened.text)?;
    let edited = run_editor(&scratch).and_then(|()| {
        std::fs::read_to_string(&scratch)
            .map_err(|e| error::io("cannot read the edited copy").with_source(e).into())
    });
    let _ = std::fs::remove_file(&scratch);
    let sealed = opened.seal(&edited?, &recipients, file).map_err(|e| {
        if e.detail().contains("[secrets] recipients") { e.at_file(PIPELINE_FILE, None) } else { e }
    })?;
    if sealed == text {
        super::note(format_args!("{}: no changes", file.display()));
        return Ok(ExitStatus::Ok);
    }
    write_file(file, &sealed)?;
    Ok(ExitStatus::Ok)
}

/// A private place for the decrypted copy: RAM-backed when there is one.
fn scratch_path(file: &Path) -> std::path::PathBuf {
    let dir = Path::new("/dev/shm");
    let dir = if dir.is_dir() { dir.to_path_buf() } else { std::env::temp_dir() };
    let name = file.file_name().and_then(|n| n.to_str()).unwrap_or("hieradata.toml");
    dir.join(format!("stackdeploy-{}-{name}", std::process::id()))
}

fn run_editor(path: &Path) -> Result<(), Errors> {
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
        .map_err(|e| error::io(format!("cannot run the editor '{editor}'")).with_source(e))?;
    if !status.success() {
        return Err(error::usage(format!(
            "the editor '{editor}' exited with {status}; nothing was changed"
        ))
        .into());
    }
    Ok(())
}
