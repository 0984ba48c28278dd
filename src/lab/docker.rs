//! A thin wrapper around the `docker` command line: run it, and turn its failures into one
//! clear line saying what to do (no engine, no permission, an address already taken).

use std::process::{Command, Stdio};

#[derive(Debug, thiserror::Error)]
pub enum DockerError {
    #[error(
        "the docker command is not installed; install Docker Engine (apt-get install docker.io)"
    )]
    NotInstalled,
    #[error(
        "cannot reach the Docker engine; start it (systemctl start docker) or check DOCKER_HOST"
    )]
    NoEngine,
    #[error("permission denied talking to the Docker engine; run as root or join the docker group")]
    Permission,
    #[error("docker {args}: {message}")]
    Failed { args: String, message: String },
}

/// Runs `docker ARGS`, returning stdout.
pub fn docker(args: &[&str]) -> Result<String, DockerError> {
    docker_stdin(args, None)
}

/// Runs `docker ARGS` with `stdin` from a file, returning stdout.
pub fn docker_stdin(args: &[&str], stdin: Option<std::fs::File>) -> Result<String, DockerError> {
    let mut command = Command::new("docker");
    command
        .args(args)
        .stdout(Stdio::piped())
        .stderr(Stdio::piped());
    command.stdin(match stdin {
        Some(f) => Stdio::from(f),
        None => Stdio::null(),
    });
    let out = command.output().map_err(|e| {
        if e.kind() == std::io::ErrorKind::NotFound {
            DockerError::NotInstalled
        } else {
            DockerError::Failed {
                args: args.join(" "),
                message: e.to_string(),
            }
        }
    })?;
    if out.status.success() {
        return Ok(String::from_utf8_lossy(&out.stdout).into_owned());
    }
    let message = String::from_utf8_lossy(&out.stderr).trim().to_string();
    Err(classify(args, message))
}

fn classify(args: &[&str], message: String) -> DockerError {
    if message.contains("Cannot connect to the Docker daemon")
        || message.contains("Is the docker daemon running")
    {
        DockerError::NoEngine
    } else if message.contains("permission denied") && message.contains("docker.sock") {
        DockerError::Permission
    } else {
        DockerError::Failed {
            args: args.join(" "),
            message,
        }
    }
}

/// `docker exec CONTAINER sh -c SCRIPT`, returning (exit status, stdout+stderr).
pub fn exec(container: &str, script: &str) -> Result<(i32, String), DockerError> {
    let out = Command::new("docker")
        .args(["exec", container, "sh", "-c", script])
        .stdin(Stdio::null())
        .output()
        .map_err(|e| DockerError::Failed {
            args: format!("exec {container}"),
            message: e.to_string(),
        })?;
    let text = format!(
        "{}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    Ok((out.status.code().unwrap_or(-1), text))
}

/// Whether a container runs and is not paused: `exec` into a stopped one fails and into a
/// paused one hangs.
pub fn is_live(container: &str) -> bool {
    docker(&[
        "inspect",
        "--format",
        "{{.State.Running}} {{.State.Paused}}",
        container,
    ])
    .is_ok_and(|out| out.trim() == "true false")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn engine_errors_become_one_line_advice() {
        let e = classify(&["ps"], "Cannot connect to the Docker daemon at unix:///var/run/docker.sock. Is the docker daemon running?".into());
        assert_eq!(
            e.to_string(),
            "cannot reach the Docker engine; start it (systemctl start docker) or check DOCKER_HOST"
        );
        let e = classify(&["ps"], "Got permission denied while trying to connect to the Docker daemon socket at unix:///var/run/docker.sock".into());
        assert!(matches!(e, DockerError::Permission));
        let e = classify(
            &["network", "create"],
            "Pool overlaps with other one on this address space".into(),
        );
        assert_eq!(
            e.to_string(),
            "docker network create: Pool overlaps with other one on this address space"
        );
    }
}
