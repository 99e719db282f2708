//! The one error type of the updater: every failure carries the exit code it ends the run with.

use std::fmt;

/// Exit codes (SPEC §6, documented in updater/README.md).
pub mod code {
    /// Done, or nothing to do.
    pub const OK: i32 = 0;
    /// A local problem: disk, state file, lock held by another run, nothing to roll back to.
    pub const LOCAL: i32 = 1;
    /// Bad command line or configuration.
    pub const USAGE: i32 = 2;
    /// Network or server error (unreachable, timeout, 5xx, the server refused the request).
    pub const NETWORK: i32 = 3;
    /// Verification refused: signature, TYPE, version rule, file name, size, md5 or sha256.
    pub const REFUSED: i32 = 4;
    /// Newer releases exist, but the license may not download them (unknown key, revoked, no
    /// feature, subscription ended): the server's reason is in the message.
    pub const NOT_ENTITLED: i32 = 5;
    /// Newer releases exist, but none fits this configuration (or the asked version is not
    /// offered for it): the message names the newest one and what it requires.
    pub const INCOMPATIBLE: i32 = 6;
    /// `install --exec`: the post-install command failed; `current` was switched back.
    pub const HOOK_FAILED: i32 = 7;
    /// `check --exit-code` found an update.
    pub const UPDATE_AVAILABLE: i32 = 10;
}

#[derive(Debug)]
pub struct Failure {
    pub code: i32,
    pub message: String,
}

impl Failure {
    pub fn usage(message: impl Into<String>) -> Failure {
        Failure {
            code: code::USAGE,
            message: message.into(),
        }
    }
    pub fn network(message: impl Into<String>) -> Failure {
        Failure {
            code: code::NETWORK,
            message: message.into(),
        }
    }
    pub fn refused(message: impl Into<String>) -> Failure {
        Failure {
            code: code::REFUSED,
            message: message.into(),
        }
    }
    pub fn not_entitled(message: impl Into<String>) -> Failure {
        Failure {
            code: code::NOT_ENTITLED,
            message: message.into(),
        }
    }
    pub fn incompatible(message: impl Into<String>) -> Failure {
        Failure {
            code: code::INCOMPATIBLE,
            message: message.into(),
        }
    }
    pub fn local(message: impl Into<String>) -> Failure {
        Failure {
            code: code::LOCAL,
            message: message.into(),
        }
    }
}

impl fmt::Display for Failure {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.message)
    }
}

/// Turns an I/O error on `path` into a local failure naming what was being done.
pub trait IoContext<T> {
    fn ctx(self, what: impl FnOnce() -> String) -> Result<T, Failure>;
}

impl<T> IoContext<T> for std::io::Result<T> {
    fn ctx(self, what: impl FnOnce() -> String) -> Result<T, Failure> {
        self.map_err(|e| Failure::local(format!("{}: {e}", what())))
    }
}
