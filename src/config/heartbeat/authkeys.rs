//! /etc/ha.d/authkeys: which key signs outgoing messages (`auth N`) and the keys a receiver
//! accepts (`N crc` / `N md5 SECRET` / `N sha1 SECRET`, N in 0..=15). Secrets are never shown by
//! `Debug`, so a model logged by accident does not leak them.

use std::collections::BTreeMap;
use std::fmt;

/// Digest used by one authkeys entry (a Heartbeat "HBauth" plugin).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum AuthMethod {
    /// Unkeyed CRC-32; only for physically private links.
    Crc,
    /// HMAC-MD5.
    Md5,
    /// HMAC-SHA1.
    Sha1,
}

impl AuthMethod {
    pub fn name(self) -> &'static str {
        match self {
            AuthMethod::Crc => "crc",
            AuthMethod::Md5 => "md5",
            AuthMethod::Sha1 => "sha1",
        }
    }
}

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
