//! The one exit-code scheme every `hadeploy` command shares, and the error type that carries a
//! failure to the binary, which maps it to its code in exactly one place.
//!
//! The codes are bits, so one run can report several things at once (Puppet's
//! `--detailed-exitcodes` idea, compatible with Ansible's 2 and 4):
//!
//! | code | meaning |
//! |---|---|
//! | 0 | ok, in sync |
//! | 1 | usage or input error; nothing was done |
//! | 2 | not as desired: a host failed, drift found, `apply --check` would change something, a drill expectation failed, a cluster degraded |
//! | 4 | a host unreachable or not inspectable |
//! | 8 | a critical invariant broken: a VIP not on exactly one node |
//!
//! e.g. 6 = a host failed and another was unreachable. `hadeploy-agent` keeps Heartbeat's own
//! codes instead (6: configuration error), see `agent::cli`.

use std::fmt;
use std::ops::{BitOr, BitOrAssign};

/// What a command found, as exit-code bits. `Status::OK` is the empty set.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct Status(u8);

impl Status {
    pub const OK: Status = Status(0);
    /// Usage or input error, nothing done.
    pub const USAGE: Status = Status(1);
    /// Not as desired: failed host, drift, pending change, failed expectation, degraded cluster.
    pub const NOT_AS_DESIRED: Status = Status(2);
    /// A host could not be reached or inspected.
    pub const UNREACHABLE: Status = Status(4);
    /// A critical invariant is broken (a VIP not on exactly one node).
    pub const CRITICAL: Status = Status(8);

    /// The process exit code.
    pub fn code(self) -> u8 {
        self.0
    }

    pub fn is_ok(self) -> bool {
        self.0 == 0
    }

    /// `NOT_AS_DESIRED` when `condition` holds, else `OK`.
    pub fn not_as_desired_if(condition: bool) -> Status {
        if condition {
            Status::NOT_AS_DESIRED
        } else {
            Status::OK
        }
    }
}

impl BitOr for Status {
    type Output = Status;
    fn bitor(self, other: Status) -> Status {
        Status(self.0 | other.0)
    }
}

impl BitOrAssign for Status {
    fn bitor_assign(&mut self, other: Status) {
        self.0 |= other.0;
    }
}

/// A failure that ends a command: its message (already naming the file, host or step) and the
/// exit-code bits it stands for.
#[derive(Debug)]
pub struct Error {
    status: Status,
    message: String,
}

impl Error {
    /// A usage or input error: nothing was done (exit 1).
    pub fn input(message: impl fmt::Display) -> Error {
        Error::with(Status::USAGE, message)
    }

    /// The command ran but the outcome is not as desired (exit 2).
    pub fn not_as_desired(message: impl fmt::Display) -> Error {
        Error::with(Status::NOT_AS_DESIRED, message)
    }

    /// A host could not be reached (exit 4).
    pub fn unreachable(message: impl fmt::Display) -> Error {
        Error::with(Status::UNREACHABLE, message)
    }

    /// A critical invariant is broken (exit 8).
    pub fn critical(message: impl fmt::Display) -> Error {
        Error::with(Status::CRITICAL, message)
    }

    pub fn with(status: Status, message: impl fmt::Display) -> Error {
        Error {
            status,
            message: message.to_string(),
        }
    }

    /// The same error with `context: ` in front of its message (the command's name, a file).
    pub fn context(self, context: impl fmt::Display) -> Error {
        Error {
            status: self.status,
            message: format!("{context}: {}", self.message),
        }
    }

    pub fn status(&self) -> Status {
        self.status
    }

    /// The process exit code for this error.
    pub fn exit_code(&self) -> u8 {
        self.status.code()
    }
}

impl fmt::Display for Error {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.message)
    }
}

impl std::error::Error for Error {}

/// An error with its chain of causes, `outer: inner: innermost`, for errors whose `Display`
/// leaves the cause to `source()` (I/O errors wrapped with the file they were about).
pub fn describe(error: &dyn std::error::Error) -> String {
    let mut text = error.to_string();
    let mut source = error.source();
    while let Some(cause) = source {
        let cause_text = cause.to_string();
        if !text.contains(&cause_text) {
            text.push_str(": ");
            text.push_str(&cause_text);
        }
        source = cause.source();
    }
    text
}

/// Writing a report to a closed pipe (`hadeploy … | head`) is the reader being done, not a
/// failure; every other output error is.
pub fn output(result: std::io::Result<()>) -> Result<(), Error> {
    match result {
        Err(e) if e.kind() != std::io::ErrorKind::BrokenPipe => {
            Err(Error::not_as_desired(format!("writing the output: {e}")))
        }
        _ => Ok(()),
    }
}

pub type Result<T, E = Error> = std::result::Result<T, E>;

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn bits_combine_and_errors_keep_their_code() {
        assert_eq!((Status::NOT_AS_DESIRED | Status::UNREACHABLE).code(), 6);
        let mut s = Status::OK;
        assert!(s.is_ok());
        s |= Status::CRITICAL;
        s |= Status::not_as_desired_if(true);
        assert_eq!(s.code(), 10);
        assert_eq!(Status::not_as_desired_if(false), Status::OK);
        let e = Error::unreachable("node1: ssh: connection refused").context("hadeploy drill");
        assert_eq!(e.exit_code(), 4);
        assert_eq!(
            e.to_string(),
            "hadeploy drill: node1: ssh: connection refused"
        );
        assert_eq!(Error::input("x").exit_code(), 1);
        assert_eq!(Error::critical("x").exit_code(), 8);
    }

    #[test]
    fn a_closed_pipe_is_not_an_error() {
        let broken = std::io::Error::from(std::io::ErrorKind::BrokenPipe);
        assert!(output(Err(broken)).is_ok());
        let full = std::io::Error::from(std::io::ErrorKind::StorageFull);
        assert_eq!(output(Err(full)).unwrap_err().exit_code(), 2);
    }
}
