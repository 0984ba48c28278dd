//! The authkeys secret of each cluster: read from the environment variable or file the
//! inventory names, or generated from the operating system's CSPRNG on first use and stored
//! beside the inventory (0600 in a 0700 directory) so every later run renders the same
//! authkeys. A secret never appears in output, logs or `Debug`.

use std::fmt;
use std::fs;
use std::io::Write;
use std::os::unix::fs::{OpenOptionsExt, PermissionsExt};
use std::path::{Path, PathBuf};

use rand::TryRng;

use super::cluster::{Cluster, SecretSource};
use super::diag::{Diagnostic, Diagnostics, Origin};

/// A cluster's shared secret. `Debug` and `Display` redact it.
#[derive(Clone, PartialEq, Eq)]
pub struct Secret(String);

impl Secret {
    pub fn expose(&self) -> &str {
        &self.0
    }
}

impl fmt::Debug for Secret {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("Secret(<redacted>)")
    }
}

#[derive(Debug, thiserror::Error)]
pub enum SecretError {
    #[error(
        "cluster `{cluster}`: environment variable {var} is not set (named by ha_auth_secret_env)"
    )]
    EnvMissing { cluster: String, var: String },
    #[error("cluster `{cluster}`: {path}: {reason}")]
    File {
        cluster: String,
        path: PathBuf,
        reason: String,
    },
    #[error("cluster `{cluster}`: the operating system's random source failed: {reason}")]
    Random { cluster: String, reason: String },
}

/// 32 random bytes, hex encoded: 256 bits, and only characters authkeys' `%s` scan keeps whole.
pub fn generate() -> Result<String, String> {
    let mut bytes = [0u8; 32];
    rand::rngs::SysRng
        .try_fill_bytes(&mut bytes)
        .map_err(|e| e.to_string())?;
    Ok(bytes.iter().map(|b| format!("{b:02x}")).collect())
}

/// A usable secret is one token of printable ASCII: authkeys keeps only the first
/// whitespace-delimited word, so anything else would silently change the key.
fn validate(text: &str) -> Result<String, String> {
    let secret = text.trim_end_matches(['\n', '\r']);
    if secret.len() < 16 {
        return Err("the secret is shorter than 16 characters".into());
    }
    if !secret.chars().all(|c| c.is_ascii_graphic()) {
        return Err("the secret must be one word of printable ASCII (no spaces): authkeys would silently cut it at the first space".into());
    }
    Ok(secret.to_string())
}

/// Offline check used by `check`: the named source must be usable, without creating anything.
pub fn check_source(cluster: &Cluster, diags: &mut Diagnostics) {
    match &cluster.secret {
        SecretSource::None | SecretSource::Env(_) => {}
        SecretSource::File(path) => {
            if let Ok(meta) = fs::metadata(path)
                && meta.permissions().mode() & 0o077 != 0
            {
                diags.push(
                    Diagnostic::error(
                        Origin::file(path),
                        Some("ha_auth_secret_file"),
                        format!(
                            "the secret of cluster `{}` is readable by group or others",
                            cluster.name
                        ),
                    )
                    .hint(format!("chmod 600 {}", path.display())),
                );
            }
        }
    }
}

/// Resolves the secret, creating the file from the CSPRNG when it does not exist yet.
pub fn resolve(cluster: &Cluster) -> Result<Option<Secret>, SecretError> {
    let file_error = |path: &Path, reason: String| SecretError::File {
        cluster: cluster.name.clone(),
        path: path.to_path_buf(),
        reason,
    };
    match &cluster.secret {
        SecretSource::None => Ok(None),
        SecretSource::Env(var) => {
            let value = std::env::var(var).map_err(|_| SecretError::EnvMissing {
                cluster: cluster.name.clone(),
                var: var.clone(),
            })?;
            validate(&value)
                .map(|s| Some(Secret(s)))
                .map_err(|reason| SecretError::File {
                    cluster: cluster.name.clone(),
                    path: PathBuf::from(format!("${var}")),
                    reason,
                })
        }
        SecretSource::File(path) => match fs::read_to_string(path) {
            Ok(text) => {
                let mode = fs::metadata(path)
                    .map(|m| m.permissions().mode())
                    .unwrap_or(0);
                if mode & 0o077 != 0 {
                    return Err(file_error(
                        path,
                        format!(
                            "readable by group or others (mode {:o}); run chmod 600",
                            mode & 0o777
                        ),
                    ));
                }
                validate(&text)
                    .map(|s| Some(Secret(s)))
                    .map_err(|r| file_error(path, r))
            }
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => {
                let secret = generate().map_err(|reason| SecretError::Random {
                    cluster: cluster.name.clone(),
                    reason,
                })?;
                store(path, &secret).map_err(|e| file_error(path, e.to_string()))?;
                Ok(Some(Secret(secret)))
            }
            Err(e) => Err(file_error(path, e.to_string())),
        },
    }
}

/// Writes the new secret atomically with its final permissions from the first byte: a crash
/// leaves either no file or the whole file, never a world-readable or half-written one.
/// `rotate-key` keeps the next secret beside the current one the same way.
pub fn store(path: &Path, secret: &str) -> std::io::Result<()> {
    let dir = path.parent().unwrap_or(Path::new("."));
    fs::create_dir_all(dir)?;
    if dir.file_name().is_some_and(|n| n == ".hadeploy-secrets") {
        fs::set_permissions(dir, fs::Permissions::from_mode(0o700))?;
    }
    let tmp = dir.join(format!(
        ".{}.tmp{}",
        path.file_name()
            .and_then(|n| n.to_str())
            .unwrap_or("secret"),
        std::process::id()
    ));
    let mut file = fs::OpenOptions::new()
        .write(true)
        .create_new(true)
        .mode(0o600)
        .open(&tmp)?;
    let written = file
        .write_all(format!("{secret}\n").as_bytes())
        .and_then(|()| file.sync_all());
    if let Err(e) = written {
        let _ = fs::remove_file(&tmp);
        return Err(e);
    }
    fs::rename(&tmp, path)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn generated_secrets_are_long_random_and_distinct() {
        let a = generate().unwrap();
        let b = generate().unwrap();
        assert_eq!(a.len(), 64);
        assert_ne!(a, b);
        assert!(validate(&a).is_ok());
    }

    #[test]
    fn stored_secret_is_0600_and_reused() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join(".hadeploy-secrets/web.key");
        store(&path, "0123456789abcdef0123").unwrap();
        assert_eq!(
            fs::metadata(&path).unwrap().permissions().mode() & 0o777,
            0o600
        );
        assert_eq!(
            fs::metadata(path.parent().unwrap())
                .unwrap()
                .permissions()
                .mode()
                & 0o777,
            0o700
        );
        assert_eq!(fs::read_to_string(&path).unwrap(), "0123456789abcdef0123\n");
    }

    #[test]
    fn secrets_with_spaces_or_short_are_refused() {
        assert!(validate("short").is_err());
        assert!(validate("a long secret with spaces").is_err());
        assert_eq!(validate("0123456789abcdef\n").unwrap(), "0123456789abcdef");
    }

    #[test]
    fn debug_redacts() {
        assert_eq!(
            format!("{:?}", Secret("topsecretvalue12345".into())),
            "Secret(<redacted>)"
        );
    }
}
