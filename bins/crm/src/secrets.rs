//! Reading secrets from where the operator put them, and refusing them as
//! argument values.
//!
//! Arguments show up in process lists and shell history, so a literal secret
//! flag (`--admin-key sk-...`) is refused before anything runs, with a message
//! that names the safe alternatives and never repeats the value.

use crm_app::credentials;
use crm_app::hosts::AdminKeySource;
use crm_domain::SecretString;
use std::path::Path;

use crate::cli::{
    AdminKeyArgs, Command, HostCommand, ProviderCommand, UpstreamKeyArgs, UserLoginArgs,
};

/// A literal secret flag was given.
#[derive(Debug, thiserror::Error)]
#[error(
    "refusing --{flag}: secrets are never accepted as argument values (they show up in process \
     lists and shell history); use {alternatives}"
)]
pub struct LiteralSecret {
    flag: &'static str,
    alternatives: &'static str,
}

fn refuse(
    given: bool,
    flag: &'static str,
    alternatives: &'static str,
) -> Result<(), LiteralSecret> {
    if given {
        Err(LiteralSecret { flag, alternatives })
    } else {
        Ok(())
    }
}

const UPSTREAM_ALTERNATIVES: &str = "--upstream-keys-file PATH (one key per line, `-` reads standard input) or --upstream-key-env VAR";

/// Fails when any secret was passed as a literal argument value.
pub fn refuse_literals(command: &Command) -> Result<(), LiteralSecret> {
    let upstream = |k: &UpstreamKeyArgs| {
        refuse(
            !k.upstream_key.is_empty(),
            "upstream-key",
            UPSTREAM_ALTERNATIVES,
        )
    };
    let user = |u: &UserLoginArgs| {
        refuse(
            u.user_password.is_some(),
            "user-password",
            "--user-password-env VAR or --user-password-file PATH (`-` reads standard input)",
        )
    };
    match command {
        Command::Host(HostCommand::Add { admin_key, .. }) => refuse(
            admin_key.admin_key.is_some(),
            "admin-key",
            "--admin-key-env VAR or --admin-key-file PATH (`-` reads standard input)",
        ),
        Command::Provider(ProviderCommand::Preview { keys, .. }) => upstream(keys),
        Command::Provider(ProviderCommand::Import { keys, user: u, .. }) => {
            upstream(keys)?;
            user(u)
        }
        Command::Provider(ProviderCommand::RotateKey { new_key, .. }) => refuse(
            new_key.is_some(),
            "new-key",
            "--new-key-env VAR or --new-key-file PATH (`-` reads standard input)",
        ),
        Command::Provider(ProviderCommand::Reconcile { keys, .. }) => upstream(keys),
        Command::Provider(ProviderCommand::Access { keys, .. }) => upstream(keys),
        Command::Reconcile(a) => upstream(&a.keys),
        Command::Batch(crate::cli::BatchCommand::Resume { keys, user: u, .. }) => {
            upstream(keys)?;
            user(u)
        }
        _ => Ok(()),
    }
}

/// Where a new host's admin key comes from. A file reference is stored as an
/// absolute path so it still resolves when crm runs from another directory.
pub fn admin_key_source(args: &AdminKeyArgs) -> crm_app::Result<AdminKeySource> {
    if let Some(var) = &args.admin_key_env {
        return Ok(AdminKeySource::Env(var.clone()));
    }
    match args.admin_key_file.as_deref() {
        Some("-") => Ok(AdminKeySource::Value(credentials::from_file(
            "-",
            "admin key",
        )?)),
        Some(path) => {
            let abs = std::path::absolute(Path::new(path)).map_err(|e| {
                crm_app::AppError::Credential {
                    what: "admin key".into(),
                    detail: format!("{path}: {e}"),
                }
            })?;
            Ok(AdminKeySource::File(abs.display().to_string()))
        }
        None => Err(crm_app::AppError::invalid(
            "no admin key given; use --admin-key-env VAR or --admin-key-file PATH",
        )),
    }
}

/// The upstream keys of a file and/or environment variables.
pub fn upstream_keys(args: &UpstreamKeyArgs) -> crm_app::Result<Vec<SecretString>> {
    let mut keys = Vec::new();
    if let Some(path) = &args.upstream_keys_file {
        keys.extend(credentials::lines_from_file(path, "upstream keys")?);
    }
    for var in &args.upstream_key_env {
        keys.push(credentials::from_env(var, "upstream key")?);
    }
    Ok(keys)
}

/// An existing host user's login, when one was named.
pub fn user_login(args: &UserLoginArgs) -> crm_app::Result<Option<(String, SecretString)>> {
    let Some(email) = &args.user_email else {
        return Ok(None);
    };
    let password = match (&args.user_password_env, &args.user_password_file) {
        (Some(var), _) => credentials::from_env(var, "user password")?,
        (None, Some(path)) => credentials::from_file(path, "user password")?,
        (None, None) => {
            return Err(crm_app::AppError::invalid(format!(
                "--user-email {email} needs the user's password: --user-password-env VAR or \
                 --user-password-file PATH"
            )));
        }
    };
    Ok(Some((email.clone(), password)))
}

/// The replacement key of `provider rotate-key`.
pub fn new_key(env: Option<&str>, file: Option<&str>) -> crm_app::Result<SecretString> {
    match (env, file) {
        (Some(var), _) => credentials::from_env(var, "new upstream key"),
        (None, Some(path)) => credentials::from_file(path, "new upstream key"),
        (None, None) => Err(crm_app::AppError::invalid(
            "no new key given; use --new-key-env VAR or --new-key-file PATH",
        )),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::cli::Cli;
    use clap::Parser;

    #[test]
    fn literal_secrets_are_refused_without_echoing_them() {
        for argv in [
            &[
                "crm",
                "host",
                "add",
                "h",
                "--url",
                "http://x",
                "--admin-key",
                "CANARY-1",
            ][..],
            &[
                "crm",
                "provider",
                "import",
                "a/b",
                "--host",
                "h",
                "--mode",
                "self_service",
                "--upstream-key",
                "CANARY-1",
            ],
            &[
                "crm",
                "batch",
                "resume",
                "b-1",
                "--upstream-key",
                "CANARY-1",
            ],
            &[
                "crm",
                "provider",
                "rotate-key",
                "a/b",
                "--host",
                "h",
                "--mode",
                "subscription",
                "--old",
                "abcd",
                "--new-key",
                "CANARY-1",
            ],
            &[
                "crm",
                "provider",
                "import",
                "a/b",
                "--host",
                "h",
                "--mode",
                "self_service",
                "--user-email",
                "u@x",
                "--user-password",
                "CANARY-1",
            ],
        ] {
            let cli = Cli::try_parse_from(argv).unwrap();
            let err = refuse_literals(&cli.command).unwrap_err().to_string();
            assert!(err.contains("refusing --"), "{err}");
            assert!(err.contains("-env VAR"), "{err}");
            assert!(!err.contains("CANARY-1"), "{err}");
        }
        let cli =
            Cli::try_parse_from(["crm", "batch", "resume", "b-1", "--upstream-keys-file", "k"])
                .unwrap();
        assert!(refuse_literals(&cli.command).is_ok());
    }
}
