//! Small fixtures shared by the integration tests: running the built binaries and copying the
//! example inventories somewhere writable.

use std::path::{Path, PathBuf};
use std::process::{Command, Output};

pub fn repo() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
}

/// Runs `hadeploy` with `args`, returning its output.
pub fn hadeploy(args: &[&str]) -> Output {
    Command::new(env!("CARGO_BIN_EXE_hadeploy"))
        .args(args)
        .output()
        .expect("run hadeploy")
}

pub fn stdout(o: &Output) -> String {
    String::from_utf8_lossy(&o.stdout).into_owned()
}

pub fn stderr(o: &Output) -> String {
    String::from_utf8_lossy(&o.stderr).into_owned()
}

/// Copies a directory tree (the examples) into `to`, so rendering can create secrets there.
pub fn copy_tree(from: &Path, to: &Path) {
    std::fs::create_dir_all(to).unwrap();
    for entry in std::fs::read_dir(from).unwrap() {
        let entry = entry.unwrap();
        let target = to.join(entry.file_name());
        if entry.file_type().unwrap().is_dir() {
            copy_tree(&entry.path(), &target);
        } else {
            std::fs::copy(entry.path(), target).unwrap();
        }
    }
}

/// Every example inventory, as paths relative to `inventories/`.
pub fn examples() -> Vec<PathBuf> {
    let mut found = Vec::new();
    let root = repo().join("inventories");
    for entry in std::fs::read_dir(&root).unwrap() {
        let path = entry.unwrap().path();
        if path.is_dir() {
            found.push(
                path.join("inventory.yml")
                    .strip_prefix(&root)
                    .unwrap()
                    .to_path_buf(),
            );
        } else if path.extension().is_some_and(|e| e == "yml") {
            found.push(path.strip_prefix(&root).unwrap().to_path_buf());
        }
    }
    found.sort();
    found
}
