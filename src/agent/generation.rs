//! The node's generation (`hg` on the wire): read from the state directory, incremented and
//! written back durably at every start, so peers can tell a restarted node from a replay of the
//! old one. Same file format as Heartbeat's `/var/lib/heartbeat/hb_generation` (the number
//! right-aligned in 15 characters plus a newline), so an operator can carry it over. The node's
//! UUID (`hb_uuid`, 16 raw bytes) lives beside it.

use std::fs;
use std::io::Write;
use std::os::unix::fs::OpenOptionsExt;
use std::path::{Path, PathBuf};
use std::time::{SystemTime, UNIX_EPOCH};

use rand::TryRng;

pub const FILE_NAME: &str = "hb_generation";

#[derive(Debug, thiserror::Error)]
pub enum GenerationError {
    #[error("cannot write the generation file {path}: {source}")]
    Write {
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },
}

/// What `bump` found, for the start-up log line.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Previous {
    /// The file held this generation.
    Found(u64),
    /// No usable file: started from the clock, as Heartbeat does.
    Missing,
}

/// Where a real Heartbeat on this node keeps its generation.
pub const HEARTBEAT_FILE: &str = "/var/lib/heartbeat/hb_generation";

fn read(path: &Path) -> Option<u64> {
    fs::read_to_string(path)
        .ok()
        .and_then(|t| t.trim().parse::<u64>().ok())
}

/// Reads the previous generation, adds one, and persists it with fsync before returning — a
/// generation must never be handed out twice, even across a power cut. It also starts above
/// every generation in `also_above` (Heartbeat's own file): peers remember the highest
/// generation a node name ever sent, so after a real Heartbeat ran on this node a lower one
/// would be dropped as a replay for as long as they run.
pub fn bump(state_dir: &Path, also_above: &[&Path]) -> Result<(u64, Previous), GenerationError> {
    let path = state_dir.join(FILE_NAME);
    let previous = std::iter::once(path.as_path())
        .chain(also_above.iter().copied())
        .filter_map(read)
        .max();
    let now = SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map(|d| d.as_secs())
        .unwrap_or(0);
    let (next, found) = match previous {
        Some(g) => (g.saturating_add(1), Previous::Found(g)),
        None => (now.saturating_add(1), Previous::Missing),
    };
    write(&path, next).map_err(|source| GenerationError::Write {
        path: path.clone(),
        source,
    })?;
    Ok((next, found))
}

/// Heartbeat's `hb_uuid`: 16 raw bytes naming this node on the wire (`srcuuid`), generated
/// from the OS's CSPRNG on first start and kept in the state directory.
pub const UUID_FILE: &str = "hb_uuid";

/// Reads this node's UUID, creating it on first start.
pub fn node_uuid(state_dir: &Path) -> Result<[u8; 16], GenerationError> {
    let path = state_dir.join(UUID_FILE);
    if let Ok(bytes) = fs::read(&path)
        && let Ok(uuid) = <[u8; 16]>::try_from(bytes.as_slice())
    {
        return Ok(uuid);
    }
    let mut uuid = [0u8; 16];
    rand::rngs::SysRng
        .try_fill_bytes(&mut uuid)
        .map_err(|e| GenerationError::Write {
            path: path.clone(),
            source: std::io::Error::other(e.to_string()),
        })?;
    // RFC 4122 version 4, as libuuid's uuid_generate makes.
    uuid[6] = (uuid[6] & 0x0f) | 0x40;
    uuid[8] = (uuid[8] & 0x3f) | 0x80;
    write_durably(&path, &uuid).map_err(|source| GenerationError::Write {
        path: path.clone(),
        source,
    })?;
    Ok(uuid)
}

fn write(path: &Path, generation: u64) -> std::io::Result<()> {
    write_durably(path, format!("{generation:>15}\n").as_bytes())
}

/// Writes through a temporary file, fsyncs it and the directory: a power cut leaves the old
/// file or the new one, never a torn one.
fn write_durably(path: &Path, content: &[u8]) -> std::io::Result<()> {
    let dir = path.parent().unwrap_or(Path::new("."));
    fs::create_dir_all(dir)?;
    let name = path
        .file_name()
        .and_then(|n| n.to_str())
        .unwrap_or(FILE_NAME);
    let tmp = dir.join(format!(".{name}.tmp"));
    let mut file = fs::OpenOptions::new()
        .write(true)
        .create(true)
        .truncate(true)
        .mode(0o644)
        .open(&tmp)?;
    file.write_all(content)?;
    file.sync_all()?;
    fs::rename(&tmp, path)?;
    // The rename itself must survive a crash too.
    fs::File::open(dir)?.sync_all()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn increments_and_keeps_heartbeats_format() {
        let dir = tempfile::tempdir().unwrap();
        fs::write(dir.path().join(FILE_NAME), "      1795346704\n").unwrap();
        assert_eq!(
            bump(dir.path(), &[]).unwrap(),
            (1795346705, Previous::Found(1795346704))
        );
        assert_eq!(
            fs::read_to_string(dir.path().join(FILE_NAME)).unwrap(),
            "     1795346705\n"
        );
        assert_eq!(bump(dir.path(), &[]).unwrap().0, 1795346706);
    }

    #[test]
    fn a_generation_heartbeat_used_on_this_node_is_never_gone_below() {
        let dir = tempfile::tempdir().unwrap();
        let heartbeat = dir.path().join("heartbeat_generation");
        let missing = dir.path().join("no-such-file");
        fs::write(dir.path().join(FILE_NAME), "     100\n").unwrap();
        fs::write(&heartbeat, "      1796226545\n").unwrap();
        assert_eq!(
            bump(dir.path(), &[&heartbeat, &missing]).unwrap(),
            (1796226546, Previous::Found(1796226545))
        );
        // Heartbeat's file is read, never written.
        assert_eq!(
            fs::read_to_string(&heartbeat).unwrap(),
            "      1796226545\n"
        );
        // Our own higher one wins over an older Heartbeat's.
        fs::write(&heartbeat, "5\n").unwrap();
        assert_eq!(bump(dir.path(), &[&heartbeat]).unwrap().0, 1796226547);
    }

    #[test]
    fn the_uuid_is_made_once_and_kept() {
        let dir = tempfile::tempdir().unwrap();
        let first = node_uuid(dir.path()).unwrap();
        assert_eq!(first[6] >> 4, 4, "version 4");
        assert_eq!(node_uuid(dir.path()).unwrap(), first);
        assert_eq!(fs::read(dir.path().join(UUID_FILE)).unwrap(), first);
        let other = tempfile::tempdir().unwrap();
        assert_ne!(node_uuid(other.path()).unwrap(), first);
    }

    #[test]
    fn missing_or_garbage_starts_from_the_clock() {
        let dir = tempfile::tempdir().unwrap();
        let (g, prev) = bump(&dir.path().join("new"), &[]).unwrap();
        assert_eq!(prev, Previous::Missing);
        assert!(g > 1_700_000_000);
        fs::write(dir.path().join(FILE_NAME), "garbage").unwrap();
        assert_eq!(bump(dir.path(), &[]).unwrap().1, Previous::Missing);
    }
}
