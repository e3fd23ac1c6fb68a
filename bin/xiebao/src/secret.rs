//! Passwords for keystores: from a file, the `XIEBAO_PASSWORD` environment variable, or a
//! prompt on a terminal — never echoed, printed or logged.

use std::io::IsTerminal;
use std::path::Path;

use anyhow::{Context, bail};

/// Reads the password for a keystore.
///
/// # Errors
/// When the file cannot be read, the prompt fails, confirmation differs, or there is no way
/// to get a password (no file, no variable, no terminal).
pub(crate) fn password(file: Option<&Path>, confirm: bool) -> anyhow::Result<String> {
    if let Some(file) = file {
        let text = std::fs::read_to_string(file)
            .with_context(|| format!("reading password file {}", file.display()))?;
        return Ok(text.trim_end_matches(['\n', '\r']).to_owned());
    }
    if let Ok(password) = std::env::var("XIEBAO_PASSWORD") {
        return Ok(password);
    }
    if !std::io::stdin().is_terminal() {
        bail!(
            "a keystore password is needed: give it with --password-file or the XIEBAO_PASSWORD environment variable"
        );
    }
    let password =
        rpassword::prompt_password("Keystore password: ").context("reading the password")?;
    if confirm {
        let again =
            rpassword::prompt_password("Repeat password: ").context("reading the password")?;
        if again != password {
            bail!("the two passwords differ; nothing was written");
        }
    }
    Ok(password)
}

/// Loads a signing key from a V3 keystore (asking for its password as [`password`] does) or a
/// hex key file.
///
/// # Errors
/// When the file is unreadable, the password is wrong or the key is invalid.
pub(crate) fn signing_key(
    key_file: &Path,
    password_file: Option<&Path>,
) -> anyhow::Result<xiebao_types::SecretKey> {
    let password = match xiebao_sdk::wallet::key_file_kind(key_file)? {
        xiebao_sdk::wallet::KeyFileKind::Keystore => Some(password(password_file, false)?),
        xiebao_sdk::wallet::KeyFileKind::HexKey => None,
    };
    Ok(xiebao_sdk::wallet::load_key(key_file, password.as_deref())?)
}
