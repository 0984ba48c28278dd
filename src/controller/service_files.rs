//! The services' configuration files (`ha_files`) on their way onto the nodes, one node-side
//! step per function so that `apply` and a rolling `reload` can drive them in their own order:
//! `stage` saves the previous content under [`BACKUP_DIR`] and writes the new files in place
//! (atomically, verified, with their owner and mode) — in place because a config test must see
//! them at their real paths, as `nginx -t` reads the real nginx.conf; `config_test` runs the
//! role's test there; `restore` puts the saved content back (or removes a file that did not
//! exist) when any node refused; `reload` reloads a service only where it runs and checks that
//! it still runs afterwards. A committed file keeps its backup: the content before the last
//! change, for a later rollback. `reload_order` (pure) puts the VIP holder last.

use super::plan::DesiredFile;
use super::probe::InitSystem;
use crate::transport::{Transport, Upload, shell_quote};

/// Where the previous content of every `ha_files` file is kept, under its own path
/// (`/var/lib/hadeploy/backup/etc/nginx/sites-enabled/default`).
pub const BACKUP_DIR: &str = "/var/lib/hadeploy/backup";

/// Beside a backup: the file did not exist before, so a restore removes it.
const ABSENT_SUFFIX: &str = ".hadeploy-absent";

pub fn backup_path(dest: &str) -> String {
    format!("{BACKUP_DIR}{dest}")
}

/// Saves each file's current content (or that it has none) under [`BACKUP_DIR`].
pub fn backup_script(files: &[DesiredFile]) -> String {
    let mut script = String::from("set -eu\numask 077\n");
    for f in files {
        let (dest, b) = (shell_quote(&f.path), shell_quote(&backup_path(&f.path)));
        let absent = shell_quote(&format!("{}{ABSENT_SUFFIX}", backup_path(&f.path)));
        script.push_str(&format!(
            "mkdir -p \"$(dirname {b})\"\nif [ -e {dest} ]; then cp -p {dest} {b}.tmp && mv -f {b}.tmp {b}; rm -f {absent}; else rm -f {b}; : > {absent}; fi\n"
        ));
    }
    script
}

/// Puts each file's saved content back in place atomically, or removes a file that was new.
pub fn restore_script(files: &[DesiredFile]) -> String {
    let mut script = String::from("set -eu\n");
    for f in files {
        let (dest, b) = (shell_quote(&f.path), shell_quote(&backup_path(&f.path)));
        let absent = shell_quote(&format!("{}{ABSENT_SUFFIX}", backup_path(&f.path)));
        script.push_str(&format!(
            "if [ -e {absent} ]; then rm -f {dest}; elif [ -e {b} ]; then t=\"$(dirname {dest})/.hadeploy-restore.$$\"; cp -p {b} \"$t\" && mv -f \"$t\" {dest}; fi\n"
        ));
    }
    script
}

/// Backs the files up, then writes them in place in one all-or-nothing upload.
pub async fn stage<T: Transport>(transport: &T, files: &[DesiredFile]) -> Result<(), String> {
    run_ok(transport, &backup_script(files), "back up").await?;
    let owners: Vec<String> = files
        .iter()
        .map(|f| {
            f.service
                .as_ref()
                .map(|m| format!("{}:{}", m.owner, m.group))
                .unwrap_or_else(|| "0:0".into())
        })
        .collect();
    let uploads: Vec<Upload<'_>> = files
        .iter()
        .zip(&owners)
        .map(|(f, owner)| Upload {
            path: &f.path,
            content: &f.content,
            mode: f.mode,
            // The backup is `BACKUP_DIR`'s: one beside it would be read by `include *.conf`.
            keep_backup: false,
            owner: Some(owner),
        })
        .collect();
    transport.put_all(&uploads).await.map_err(|e| e.to_string())
}

/// Runs a role's config test; its output when it refuses.
pub async fn config_test<T: Transport>(transport: &T, test: &str) -> Result<(), String> {
    let out = transport
        .run(&format!("( {test} ) 2>&1"), None)
        .await
        .map_err(|e| e.to_string())?;
    if out.success() {
        Ok(())
    } else {
        Err(out.stdout_text().trim().to_string())
    }
}

pub async fn restore<T: Transport>(transport: &T, files: &[DesiredFile]) -> Result<(), String> {
    run_ok(transport, &restore_script(files), "restore").await
}

/// What a reload found.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Reloaded {
    Reloaded,
    /// Not running here (a passive node): it starts on failover with the new files.
    NotRunning,
}

/// The shell test for "`service` runs here", as the probe judges it.
pub fn running_check(service: &str, init: InitSystem) -> String {
    let s = shell_quote(service);
    match init {
        InitSystem::Systemd => format!("systemctl is-active --quiet {s}.service"),
        _ => format!("/etc/init.d/{s} status >/dev/null 2>&1 && pidof {s} >/dev/null 2>&1"),
    }
}

/// Reloads `service` with `reload` if it runs, then checks it still runs a moment later (a
/// reload that kills the service must not pass for a good one).
pub fn reload_script(service: &str, reload: &str, init: InitSystem) -> String {
    let running = running_check(service, init);
    format!(
        "if {running}; then\n  {reload} >&2\n  sleep 1\n  if {running}; then echo reloaded; else echo \"{service} stopped after \\`{reload}\\`\" >&2; exit 1; fi\nelse echo not-running; fi\n",
        service = service.replace(['"', '\\', '$', '`'], "_"),
        reload = reload.replace('`', "'"),
    )
}

pub async fn reload<T: Transport>(
    transport: &T,
    service: &str,
    reload: &str,
    init: InitSystem,
) -> Result<Reloaded, String> {
    let out = transport
        .run(&reload_script(service, reload, init), None)
        .await
        .map_err(|e| e.to_string())?;
    match (out.success(), out.stdout_text().trim()) {
        (true, "reloaded") => Ok(Reloaded::Reloaded),
        (true, "not-running") => Ok(Reloaded::NotRunning),
        _ => Err(format!("reload {service}: {}", out.stderr_text().trim())),
    }
}

/// The order to reload a cluster's nodes in: those not holding a VIP first, the holder(s) last,
/// so the node serving clients reloads only after the others proved the new files work.
pub fn reload_order(nodes: &[(usize, bool)]) -> Vec<usize> {
    let mut order: Vec<(bool, usize)> = nodes.iter().map(|&(i, holds)| (holds, i)).collect();
    order.sort();
    order.into_iter().map(|(_, i)| i).collect()
}

async fn run_ok<T: Transport>(transport: &T, script: &str, what: &str) -> Result<(), String> {
    let out = transport
        .run(script, None)
        .await
        .map_err(|e| e.to_string())?;
    if out.success() {
        Ok(())
    } else {
        Err(format!("{what}: {}", out.stderr_text().trim()))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::controller::plan::ServiceFileMeta;
    use crate::transport::local::LocalTransport;
    use std::sync::Arc;

    fn file(path: &std::path::Path, content: &str) -> DesiredFile {
        DesiredFile {
            path: path.to_str().unwrap().into(),
            content: Arc::new(content.as_bytes().to_vec()),
            mode: 0o640,
            secret: false,
            notifies_agent: false,
            service: Some(ServiceFileMeta {
                owner: "root".into(),
                group: "root".into(),
                role: None,
            }),
        }
    }

    /// The scripts with `BACKUP_DIR` moved into a scratch directory, run for real.
    fn local(script: String, root: &std::path::Path) -> String {
        script.replace(BACKUP_DIR, root.join("backup").to_str().unwrap())
    }

    #[tokio::test]
    async fn a_restore_puts_back_the_old_content_and_removes_new_files() {
        let dir = tempfile::tempdir().unwrap();
        let t = LocalTransport::new("here");
        let old = dir.path().join("site.conf");
        let new = dir.path().join("new.conf");
        std::fs::write(&old, "old\n").unwrap();
        let files = vec![file(&old, "changed\n"), file(&new, "fresh\n")];
        let out = t
            .run(&local(backup_script(&files), dir.path()), None)
            .await
            .unwrap();
        assert!(out.success(), "{}", out.stderr_text());
        // What `stage` uploads next, done by hand: the test needs no root for chown.
        std::fs::write(&old, "changed\n").unwrap();
        std::fs::write(&new, "fresh\n").unwrap();
        let out = t
            .run(&local(restore_script(&files), dir.path()), None)
            .await
            .unwrap();
        assert!(out.success(), "{}", out.stderr_text());
        assert_eq!(std::fs::read_to_string(&old).unwrap(), "old\n");
        assert!(!new.exists(), "a file that did not exist before is removed");
        let kept = dir
            .path()
            .join("backup")
            .join(old.strip_prefix("/").unwrap());
        assert_eq!(
            std::fs::read_to_string(kept).unwrap(),
            "old\n",
            "the backup stays"
        );
    }

    #[tokio::test]
    async fn a_config_test_returns_what_the_service_said() {
        let t = LocalTransport::new("here");
        assert_eq!(config_test(&t, "true").await, Ok(()));
        assert_eq!(
            config_test(&t, "echo 'emerg: unknown directive' >&2; false").await,
            Err("emerg: unknown directive".into())
        );
    }

    #[test]
    fn the_vip_holder_reloads_last() {
        assert_eq!(
            reload_order(&[(4, true), (1, false), (7, false)]),
            [1, 7, 4]
        );
    }

    #[test]
    fn a_reload_checks_the_service_still_runs() {
        let script = reload_script("nginx", "nginx -s reload", InitSystem::Systemd);
        assert_eq!(
            script
                .matches("systemctl is-active --quiet nginx.service")
                .count(),
            2
        );
        assert!(script.contains("nginx -s reload >&2"));
    }
}
