//! Resolving secrets at the moment they are needed.
//!
//! Host admin keys are stored as a reference (environment variable or file)
//! or sealed; this module turns the reference into a [`SecretString`] without
//! the value ever passing through an error message.

use crate::error::{AppError, Result};
use crm_domain::SecretString;
use crm_domain::host::{CredentialRef, SealContext};
use crm_domain::ports::SecretSealer;

/// Reads a secret from an environment variable.
pub fn from_env(var: &str, what: &str) -> Result<SecretString> {
    match std::env::var(var) {
        Ok(v) if !v.trim().is_empty() => Ok(SecretString::from(v.trim().to_owned())),
        Ok(_) => Err(AppError::Credential {
            what: what.to_owned(),
            detail: format!("environment variable {var} is empty"),
        }),
        Err(_) => Err(AppError::Credential {
            what: what.to_owned(),
            detail: format!("environment variable {var} is not set"),
        }),
    }
}

/// Reads every non-empty, non-comment line of a secrets file (or stdin for `-`).
pub fn lines_from_file(path: &str, what: &str) -> Result<Vec<SecretString>> {
    let text = if path == "-" {
        let mut s = String::new();
        std::io::Read::read_to_string(&mut std::io::stdin(), &mut s).map_err(|e| {
            AppError::Credential {
                what: what.to_owned(),
                detail: format!("standard input: {e}"),
            }
        })?;
        s
    } else {
        std::fs::read_to_string(path).map_err(|e| AppError::Credential {
            what: what.to_owned(),
            detail: format!("{path}: {e}"),
        })?
    };
    Ok(text
        .lines()
        .map(str::trim)
        .filter(|l| !l.is_empty() && !l.starts_with('#'))
        .map(|l| SecretString::from(l.to_owned()))
        .collect())
}

/// Reads the first secret of a file (or stdin for `-`).
pub fn from_file(path: &str, what: &str) -> Result<SecretString> {
    lines_from_file(path, what)?
        .into_iter()
        .next()
        .ok_or_else(|| AppError::Credential {
            what: what.to_owned(),
            detail: format!("{path} holds no value"),
        })
}

/// Resolves a stored credential reference; a sealed value opens only in
/// the place `ctx` names (docs/design.md §5 "Secrets").
pub fn resolve(
    cred: &CredentialRef,
    ctx: &SealContext,
    sealer: &dyn SecretSealer,
    what: &str,
) -> Result<SecretString> {
    match cred {
        CredentialRef::Env { var } => from_env(var, what),
        CredentialRef::File { path } => from_file(path, what),
        CredentialRef::Sealed { sealed } => Ok(sealer.open(ctx, sealed)?),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use secrecy::ExposeSecret;

    #[test]
    fn file_lines_skip_blanks_and_comments_and_errors_never_echo_values() {
        let dir = tempfile::tempdir().unwrap();
        let p = dir.path().join("keys.txt");
        std::fs::write(&p, "# upstream keys\nsk-one\n\n  sk-two  \n").unwrap();
        let keys = lines_from_file(p.to_str().unwrap(), "upstream keys").unwrap();
        let raw: Vec<&str> = keys.iter().map(|k| k.expose_secret()).collect();
        assert_eq!(raw, ["sk-one", "sk-two"]);

        let err = from_env("CRM_TEST_SURELY_UNSET_VAR", "admin key").unwrap_err();
        assert_eq!(
            err.to_string(),
            "cannot read the admin key: environment variable CRM_TEST_SURELY_UNSET_VAR is not set"
        );
    }
}
