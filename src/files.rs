//! The ground floor: file primitives every layer uses — an atomic write that never shows a
//! half-written file or a briefly world-readable secret, and the sha1 digest that names file
//! contents on the controller and on the nodes alike. It imports nothing of the crate.

use std::fs;
use std::io::Write;
use std::os::unix::fs::PermissionsExt;
use std::path::Path;

/// Temp file in the same directory with the final mode from creation, fsync, rename: readers
/// see the old file or the new one, and a secret is never briefly world-readable.
pub fn write_atomic(path: &Path, content: &[u8], mode: u32) -> std::io::Result<()> {
    let dir = path.parent().unwrap_or(Path::new("."));
    fs::create_dir_all(dir)?;
    let mut tmp = tempfile::Builder::new()
        .prefix(".hadeploy-")
        .permissions(fs::Permissions::from_mode(mode))
        .tempfile_in(dir)?;
    tmp.write_all(content)?;
    tmp.as_file().sync_all()?;
    // The umask may have narrowed the mode at creation; set it exactly.
    fs::set_permissions(tmp.path(), fs::Permissions::from_mode(mode))?;
    tmp.persist(path).map_err(|e| e.error)?;
    Ok(())
}

/// Lower-case hex sha1 of `data`, as `sha1sum` prints it.
pub fn sha1_hex(data: &[u8]) -> String {
    use sha1::{Digest, Sha1};
    Sha1::digest(data)
        .iter()
        .map(|b| format!("{b:02x}"))
        .collect()
}

/// One digest over named parts, each possibly absent: the name, a marker for absence or the
/// length, then the bytes, so no two different sets of parts share a digest. The agent names
/// the configuration it loaded with it, and the controller computes the same over the files
/// it reads from the node, to tell a changed file the agent has not loaded yet.
pub fn parts_digest<'a>(parts: impl IntoIterator<Item = (&'a str, Option<&'a [u8]>)>) -> String {
    use sha1::{Digest, Sha1};
    let mut hasher = Sha1::new();
    for (name, content) in parts {
        hasher.update(name.as_bytes());
        hasher.update([0]);
        match content {
            None => hasher.update(b"absent\0"),
            Some(bytes) => {
                hasher.update(format!("{}\0", bytes.len()).as_bytes());
                hasher.update(bytes);
            }
        }
    }
    hasher
        .finalize()
        .iter()
        .map(|b| format!("{b:02x}"))
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parts_digest_tells_absent_from_empty_and_moved_bytes() {
        let d = |parts: &[(&str, Option<&[u8]>)]| parts_digest(parts.iter().copied());
        let base = d(&[("a", Some(b"xy")), ("b", Some(b"z"))]);
        assert_eq!(base, d(&[("a", Some(b"xy")), ("b", Some(b"z"))]));
        assert_ne!(base, d(&[("a", Some(b"x")), ("b", Some(b"yz"))]));
        assert_ne!(d(&[("a", None)]), d(&[("a", Some(b""))]));
        assert_eq!(base.len(), 40);
    }

    #[test]
    fn sha1_matches_coreutils() {
        assert_eq!(sha1_hex(b"abc"), "a9993e364706816aba3e25717850c26c9cd0d89d");
    }
}
