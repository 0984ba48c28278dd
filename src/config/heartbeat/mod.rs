//! The three files in /etc/ha.d that Heartbeat 3.0.6 runs on — ha.cf, haresources, authkeys —
//! as typed models with parsers that follow the real daemon's rules (docs/protocol.md §6), so the
//! agent reads exactly what the real daemon would and the controller can prove that what it
//! renders parses back to what it meant. Errors and warnings name the file and line; nothing
//! is printed here.

pub mod authkeys;
pub mod hacf;
pub mod haresources;

use std::fmt;
use std::path::{Path, PathBuf};

pub use authkeys::AuthKeys;
pub use hacf::HaCf;
pub use haresources::Haresources;

/// Where a diagnostic points: a file and a 1-based line (0 for the file as a whole).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Location {
    pub file: PathBuf,
    pub line: usize,
}

impl fmt::Display for Location {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        if self.line == 0 {
            write!(f, "{}", self.file.display())
        } else {
            write!(f, "{}:{}", self.file.display(), self.line)
        }
    }
}

/// A file the daemon would refuse, and why, with the fix.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
#[error("{at}: {message}")]
pub struct ConfigError {
    pub at: Location,
    pub message: String,
}

/// Something accepted that the operator should know about (a directive ignored, an order
/// that does not do what it seems to).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Warning {
    pub at: Location,
    pub message: String,
}

impl fmt::Display for Warning {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}: {}", self.at, self.message)
    }
}

/// Files larger than this are not configuration; refusing them keeps a wrong path (a log, a
/// binary) from being read whole.
const MAX_FILE: u64 = 1024 * 1024;

/// Reads a configuration file as text.
pub fn read(path: &Path) -> Result<String, ConfigError> {
    let at = Location {
        file: path.to_path_buf(),
        line: 0,
    };
    let fail = |message: String| ConfigError {
        at: at.clone(),
        message,
    };
    let meta = std::fs::metadata(path).map_err(|e| fail(format!("cannot read: {e}")))?;
    if meta.len() > MAX_FILE {
        return Err(fail(format!(
            "{} bytes: too large for a configuration file",
            meta.len()
        )));
    }
    let bytes = std::fs::read(path).map_err(|e| fail(format!("cannot read: {e}")))?;
    String::from_utf8(bytes).map_err(|_| fail("not UTF-8 text".into()))
}

/// All three files of one node, checked against each other.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct HeartbeatConfig {
    pub hacf: HaCf,
    pub haresources: Haresources,
    pub authkeys: AuthKeys,
}

impl HeartbeatConfig {
    /// Reads `ha.cf`, `haresources` and `authkeys` from `dir` with the real daemon's rules
    /// (authkeys' permissions included).
    pub fn load(dir: &Path) -> Result<(Self, Vec<Warning>), ConfigError> {
        let hacf_path = dir.join("ha.cf");
        let hacf = read(&hacf_path)?;
        let haresources_path = dir.join("haresources");
        let haresources = read(&haresources_path)?;
        authkeys::check_permissions(&dir.join("authkeys"))?;
        let authkeys = read(&dir.join("authkeys"))?;
        Self::parse(dir, &hacf, &haresources, &authkeys)
    }

    /// The three files' texts as they would be in `dir` (which only names them in errors):
    /// the controller parses what its probe read from a node the way the agent reads its own.
    pub fn parse(
        dir: &Path,
        hacf: &str,
        haresources: &str,
        authkeys: &str,
    ) -> Result<(Self, Vec<Warning>), ConfigError> {
        let mut warnings = Vec::new();
        let hacf = HaCf::parse(hacf, &dir.join("ha.cf"), &mut warnings)?;
        let haresources_path = dir.join("haresources");
        let haresources = Haresources::parse(haresources, &haresources_path)?;
        let authkeys = authkeys::parse(authkeys, &dir.join("authkeys"))?;
        for group in &haresources.groups {
            if !hacf.nodes.contains(&group.node) {
                return Err(ConfigError {
                    at: Location {
                        file: haresources_path.clone(),
                        line: group.line,
                    },
                    message: format!(
                        "node `{}` is not a cluster node; ha.cf names {}",
                        group.node,
                        hacf.nodes.join(", ")
                    ),
                });
            }
        }
        Ok((
            Self {
                hacf,
                haresources,
                authkeys,
            },
            warnings,
        ))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use rand::{RngExt, SeedableRng};

    /// Random and mutated input through all three parsers: errors, never a panic.
    #[test]
    fn no_input_panics_a_parser() {
        let seeds = [
            "node a b\nucast eth1 10.0.0.2\nudpport 694\nkeepalive 200ms\ndeadtime 1\n",
            "a IPaddr2::10.0.0.1/24/eth0 nginx \\\n  haproxy::x\n",
            "auth 1\n1 sha1 key\n2 md5 other\n0 crc\n",
        ];
        let alphabet = b" \t\n#\\:/,.0123456789abcdefmsuIPadr=\x00\xff";
        let mut rng = rand::rngs::StdRng::seed_from_u64(7);
        let path = Path::new("fuzz");
        for round in 0..3000 {
            let mut bytes = seeds[round % seeds.len()].as_bytes().to_vec();
            for _ in 0..rng.random_range(1..8) {
                let at = rng.random_range(0..=bytes.len());
                match rng.random_range(0..3) {
                    0 => bytes.insert(at, alphabet[rng.random_range(0..alphabet.len())]),
                    1 if at < bytes.len() => {
                        bytes.remove(at);
                    }
                    _ => bytes.truncate(at),
                }
            }
            let text = String::from_utf8_lossy(&bytes);
            let _ = HaCf::parse(&text, path, &mut Vec::new());
            let _ = Haresources::parse(&text, path);
            let _ = authkeys::parse(&text, path);
        }
    }
}
