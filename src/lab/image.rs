//! The lab node image, built without a registry: debootstrap a Debian bookworm root filesystem
//! from the mirror in this machine's apt sources (`recipe/build-rootfs.sh`), then
//! `docker import`. The tag carries a hash of the recipe, so the image is rebuilt exactly when
//! the recipe changes and reused otherwise.

use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};

use super::Flavor;
use super::LabError;
use super::apt_sources;
use super::docker::docker;

const RECIPE: &str = include_str!("recipe/build-rootfs.sh");
pub const REPOSITORY: &str = "hadeploy-lab";

pub fn flavor_name(flavor: Flavor) -> &'static str {
    match flavor {
        Flavor::Systemd => "systemd",
        Flavor::Sysvinit => "sysvinit",
    }
}

/// `hadeploy-lab:<flavor>-<first 12 hex of sha1(recipe + flavor)>`.
pub fn tag(flavor: Flavor) -> String {
    let digest = crate::files::sha1_hex(format!("{RECIPE}\0{}", flavor_name(flavor)).as_bytes());
    format!("{REPOSITORY}:{}-{}", flavor_name(flavor), &digest[..12])
}

pub fn exists(flavor: Flavor) -> Result<bool, LabError> {
    Ok(!docker(&["images", "-q", &tag(flavor)])?.trim().is_empty())
}

/// Builds the image unless it exists. `progress` receives one line per stage. Concurrent
/// callers (parallel tests, two terminals) wait for one build instead of racing.
pub fn ensure(flavor: Flavor, progress: &dyn Fn(&str)) -> Result<String, LabError> {
    let tag = tag(flavor);
    if exists(flavor)? {
        return Ok(tag);
    }
    let lock_path = build_dir().join(format!("hadeploy-lab-{}.lock", flavor_name(flavor)));
    let lock = std::fs::OpenOptions::new()
        .create(true)
        .truncate(false)
        .write(true)
        .open(&lock_path)
        .map_err(|e| LabError::Io {
            what: format!("opening {}", lock_path.display()),
            source: e,
        })?;
    progress("waiting for any other build of this image");
    // Held until this function returns: the lock is released when the guard drops.
    let _build_lock =
        nix::fcntl::Flock::lock(lock, nix::fcntl::FlockArg::LockExclusive).map_err(|(_, e)| {
            LabError::Io {
                what: "locking the image build".into(),
                source: e.into(),
            }
        })?;
    if exists(flavor)? {
        return Ok(tag);
    }
    if Command::new("debootstrap")
        .arg("--version")
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .status()
        .is_err()
    {
        return Err(LabError::NoDebootstrap);
    }
    let mirror =
        apt_sources::debian_mirror(&apt_sources::system_sources(Path::new("/")), "bookworm")
            .ok_or(LabError::NoMirror)?;
    let work = tempfile::Builder::new()
        .prefix("hadeploy-lab-rootfs-")
        .tempdir_in(build_dir())
        .map_err(|e| LabError::Io {
            what: "creating a build directory".into(),
            source: e,
        })?;
    let root = work.path().join("rootfs");
    let script = work.path().join("build-rootfs.sh");
    std::fs::write(&script, RECIPE).map_err(|e| LabError::Io {
        what: "writing the recipe".into(),
        source: e,
    })?;
    progress(&format!(
        "building lab image {tag} from {mirror} (takes a few minutes)"
    ));
    let mut child = Command::new("sh")
        .arg(&script)
        .args([flavor_name(flavor), &mirror])
        .arg(&root)
        .stdout(Stdio::null())
        .stderr(Stdio::piped())
        .spawn()
        .map_err(|e| LabError::Io {
            what: "running debootstrap".into(),
            source: e,
        })?;
    let mut tail: Vec<String> = Vec::new();
    if let Some(stderr) = child.stderr.take() {
        use std::io::BufRead;
        for line in std::io::BufReader::new(stderr)
            .lines()
            .map_while(Result::ok)
        {
            if let Some(stage) = line.strip_prefix("stage: ") {
                progress(stage);
            } else if line == "I: Base system installed successfully." {
                progress("base system installed");
            }
            tail.push(line);
            if tail.len() > 20 {
                tail.remove(0);
            }
        }
    }
    let status = child.wait().map_err(|e| LabError::Io {
        what: "waiting for debootstrap".into(),
        source: e,
    })?;
    if !status.success() {
        return Err(LabError::ImageBuild {
            tag,
            log: tail.join("\n"),
        });
    }
    progress("importing into docker");
    let tar = work.path().join("rootfs.tar");
    let packed = Command::new("tar")
        .args(["-C"])
        .arg(&root)
        .args(["--numeric-owner", "-cf"])
        .arg(&tar)
        .arg(".")
        .status()
        .map_err(|e| LabError::Io {
            what: "packing the rootfs".into(),
            source: e,
        })?;
    if !packed.success() {
        return Err(LabError::ImageBuild {
            tag,
            log: "tar failed".into(),
        });
    }
    let tar_path = tar.to_str().unwrap_or_default();
    let mut args = vec!["import", "--message", "hadeploy lab node"];
    match flavor {
        Flavor::Systemd => args.extend(["--change", "CMD [\"/lib/systemd/systemd\"]"]),
        Flavor::Sysvinit => args.extend(["--change", "CMD [\"/sbin/init\"]"]),
    }
    args.extend([tar_path, tag.as_str()]);
    docker(&args)?;
    progress(&format!("image {tag} ready"));
    Ok(tag)
}

/// Where root filesystems are assembled: big enough and not a tmpfs.
fn build_dir() -> PathBuf {
    let dir = PathBuf::from("/var/tmp");
    if dir.is_dir() {
        dir
    } else {
        std::env::temp_dir()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn tag_is_stable_and_differs_per_flavor() {
        assert_eq!(tag(Flavor::Systemd), tag(Flavor::Systemd));
        assert_ne!(tag(Flavor::Systemd), tag(Flavor::Sysvinit));
        assert!(tag(Flavor::Systemd).starts_with("hadeploy-lab:systemd-"));
        assert_eq!(
            tag(Flavor::Sysvinit).len(),
            "hadeploy-lab:sysvinit-".len() + 12
        );
    }
}
