//! /etc/ha.d/authkeys: which key signs outgoing messages (`auth N`) and the keys a receiver
//! accepts (`N crc` / `N md5 SECRET` / `N sha1 SECRET`, N in 0..=15). Secrets are never shown by
//! `Debug`, so a model logged by accident does not leak them.

use std::collections::BTreeMap;
use std::fmt;
use std::path::Path;

use super::{ConfigError, Location};
use crate::config::ha::AuthMethod;

/// One `N method [secret]` line. `secret` is empty for crc.
#[derive(Clone, PartialEq, Eq)]
pub struct AuthKey {
    pub index: u8,
    pub method: AuthMethod,
    pub secret: String,
}

impl fmt::Debug for AuthKey {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("AuthKey")
            .field("index", &self.index)
            .field("method", &self.method)
            .field("secret", &"<redacted>")
            .finish()
    }
}

/// The whole file: the active (sending) index and every configured key by index.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct AuthKeys {
    pub active: u8,
    pub keys: BTreeMap<u8, AuthKey>,
}

impl AuthKeys {
    /// The key outgoing messages are signed with.
    pub fn active_key(&self) -> &AuthKey {
        // Construction guarantees the active index is configured.
        &self.keys[&self.active]
    }

    /// The key configured under `index`, if any (receivers accept any configured index).
    pub fn get(&self, index: u8) -> Option<&AuthKey> {
        self.keys.get(&index)
    }
}

/// Parses authkeys text with 3.0.6's rules (auth.c parse_authfile): `auth N` selects the
/// sending key and must come before that key's line (the active key is latched only when its
/// line is read with `auth` already known); `N method [key]` with N in 0..=15; crc takes no
/// key, md5 and sha1 need one, and the key is the first blank-delimited token.
pub fn parse(text: &str, file: &Path) -> Result<AuthKeys, ConfigError> {
    let at = |line: usize| Location {
        file: file.to_path_buf(),
        line,
    };
    let mut wanted: Option<u8> = None;
    let mut active: Option<u8> = None;
    let mut keys = BTreeMap::new();
    for (index, raw) in text.lines().enumerate() {
        let line = index + 1;
        let err = |message: String| ConfigError {
            at: at(line),
            message,
        };
        let content = raw.trim_start();
        if content.is_empty() || content.starts_with('#') {
            continue;
        }
        let words: Vec<&str> = content.split_whitespace().collect();
        let index_of = |word: &str| -> Result<u8, ConfigError> {
            word.parse::<u8>()
                .ok()
                .filter(|n| *n <= 15)
                .ok_or_else(|| err(format!("invalid authnum `{word}`: key numbers are 0 to 15")))
        };
        if words[0] == "auth" {
            let [_, n] = words.as_slice() else {
                return Err(err("`auth` takes the number of the key to send with".into()));
            };
            wanted = Some(index_of(n)?);
            continue;
        }
        let n = index_of(words[0])?;
        let method = match words.get(1).copied() {
            Some("crc") => AuthMethod::Crc,
            Some("md5") => AuthMethod::Md5,
            Some("sha1") => AuthMethod::Sha1,
            Some(other) => {
                return Err(err(format!(
                    "unknown auth method `{other}`: use sha1, md5 or crc"
                )));
            }
            None => return Err(err(format!("key {n} needs a method: `{n} sha1 SECRET`"))),
        };
        // Only the first token counts: `1 sha1 two words` uses the key `two`, as 3.0.6 does.
        let secret = words.get(2).copied().unwrap_or("");
        match (method, secret.is_empty()) {
            (AuthMethod::Crc, false) => {
                return Err(err("auth method crc does not use a key; remove it".into()));
            }
            (AuthMethod::Md5 | AuthMethod::Sha1, true) => {
                return Err(err(format!(
                    "auth method {} requires a key: `{n} {} SECRET`",
                    method.name(),
                    method.name()
                )));
            }
            _ => {}
        }
        keys.insert(
            n,
            AuthKey {
                index: n,
                method,
                secret: secret.to_string(),
            },
        );
        if wanted == Some(n) {
            active = Some(n);
        }
    }
    let Some(wanted) = wanted else {
        return Err(ConfigError {
            at: at(0),
            message: "no `auth N` line: say which key signs outgoing messages".into(),
        });
    };
    let Some(active) = active else {
        let message = if keys.contains_key(&wanted) {
            format!(
                "auth key [{wanted}] not found in keyfile: `auth {wanted}` must come before the line defining key {wanted}"
            )
        } else {
            format!("auth key [{wanted}] not found in keyfile: add `{wanted} sha1 SECRET`")
        };
        return Err(ConfigError { at: at(0), message });
    };
    Ok(AuthKeys { active, keys })
}

/// Reads authkeys, refusing it when group or others can read it.
pub fn load(path: &Path) -> Result<AuthKeys, ConfigError> {
    check_permissions(path)?;
    parse(&super::read(path)?, path)
}

/// Refuses an authkeys that group or others can read (3.0.6 checks exactly the read bits:
/// 0600, 0400 and 0620 pass, 0640 and 0644 do not).
pub fn check_permissions(path: &Path) -> Result<(), ConfigError> {
    use std::os::unix::fs::PermissionsExt;
    let meta = std::fs::metadata(path).map_err(|e| ConfigError {
        at: Location {
            file: path.to_path_buf(),
            line: 0,
        },
        message: format!("cannot read: {e}"),
    })?;
    let mode = meta.permissions().mode() & 0o7777;
    if mode & 0o044 != 0 {
        return Err(ConfigError {
            at: Location {
                file: path.to_path_buf(),
                line: 0,
            },
            message: format!(
                "bad permissions {mode:04o}: group or others can read the keys; run `chmod 600 {}`",
                path.display()
            ),
        });
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn parse_text(text: &str) -> Result<AuthKeys, ConfigError> {
        parse(text, Path::new("authkeys"))
    }

    #[test]
    fn the_vectors_rules() {
        let keys = parse_text("# keys\nauth 2\n1 sha1 keyone\n  2 md5 keytwo\n").unwrap();
        assert_eq!(keys.active, 2);
        assert_eq!(keys.active_key().method, AuthMethod::Md5);
        assert_eq!(keys.get(1).unwrap().secret, "keyone");
        // T6c: only the first token of the key counts.
        let keys = parse_text("auth 1\n1 sha1 test key with spaces\n").unwrap();
        assert_eq!(keys.active_key().secret, "test");
        // T5: 0 and 15 are fine, 16 is not.
        parse_text("auth 0\n0 crc\n15 sha1 x\n").unwrap();
        let err = parse_text("auth 1\n16 sha1 x\n").unwrap_err();
        assert!(err.message.contains("invalid authnum `16`"), "{err}");
        assert_eq!(err.at.line, 2);
    }

    #[test]
    fn auth_must_precede_its_key_and_methods_take_keys_or_not() {
        // T4.
        let err = parse_text("1 sha1 secret\nauth 1\n").unwrap_err();
        assert!(err.message.contains("must come before"), "{err}");
        // T6.
        let err = parse_text("auth 1\n1 crc secret\n").unwrap_err();
        assert!(err.message.contains("does not use a key"));
        let err = parse_text("auth 1\n1 md5\n").unwrap_err();
        assert!(err.message.contains("requires a key"));
        let err = parse_text("auth 1\n1 rot13 x\n").unwrap_err();
        assert!(err.message.contains("unknown auth method"));
        assert!(parse_text("").unwrap_err().message.contains("no `auth N`"));
    }

    #[test]
    fn only_group_or_other_read_bits_are_refused() {
        use std::os::unix::fs::PermissionsExt;
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("authkeys");
        std::fs::write(&path, "auth 1\n1 sha1 secret\n").unwrap();
        for (mode, ok) in [
            (0o600, true),
            (0o400, true),
            (0o620, true),
            (0o640, false),
            (0o644, false),
        ] {
            std::fs::set_permissions(&path, std::fs::Permissions::from_mode(mode)).unwrap();
            let result = load(&path);
            assert_eq!(result.is_ok(), ok, "{mode:o}: {result:?}");
            if let Err(e) = result {
                assert!(e.message.contains("chmod 600"), "{e}");
            }
        }
    }

    #[test]
    fn secrets_never_show_in_debug() {
        let keys = parse_text("auth 1\n1 sha1 hunter2\n").unwrap();
        assert!(!format!("{keys:?}").contains("hunter2"));
    }
}
