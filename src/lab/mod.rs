//! A pair of lab hosts in network namespaces running real IKE daemons: `ipsecmon lab`.
//!
//! [`up`] builds Alice and Bob as network namespaces joined by a veth pair (or with a NAT
//! namespace between them, [`topology`]), starts a tcpdump on the link (on both sides of
//! the NAT), starts one charon per host with its own strongswan.conf, `/run`, VICI socket
//! and log ([`charon`]), renders each host's policy with [`crate::enforce::render`] for
//! strongSwan's userspace data plane (kernel-libipsec: this kernel has XFRM but no ESP) and
//! applies it with [`crate::enforce::apply()`], Bob first. [`traffic`] runs the seed's
//! workload from inside the namespaces; [`status`] puts what the wire shows next to what
//! charon says; [`down`] removes every namespace, process and file `up` made, from the
//! record in the lab's state file ([`state`]), even after a crash. The presets of
//! [`scenario`] reproduce the seed and its failure modes. [`keylog`] and [`keytable`] turn
//! charon's logs into Wireshark key tables so the lab's captures decrypt.
//!
//! Limitation: strongSwan 5.9's kernel-libipsec raises no acquire for a trap policy. So by
//! default Alice's policy is rendered to start negotiating as soon as it is loaded. With
//! [`UpOptions::on_demand`], the first packet starts the negotiation through
//! [`crate::enforce::acquire`], not through charon's own trap handling.

pub mod charon;
pub mod keylog;
pub mod keytable;
pub mod scenario;
pub mod state;
pub mod status;
pub mod sys;
pub mod topology;
pub mod traffic;
mod up;

use std::path::{Path, PathBuf};

pub use up::{default_dir, down, up, DownReport, UpOptions};

/// Why a lab command failed. Each says what to do.
#[derive(Debug, thiserror::Error)]
pub enum LabError {
    /// Not running as root.
    #[error("the lab needs root: network namespaces, mounts and nftables; run it with sudo")]
    NotRoot,
    /// Programs are missing.
    #[error("missing programs; install the Debian packages: {packages} (the lab installs nothing itself)")]
    Missing {
        /// The Debian packages to install, space-separated.
        packages: String,
    },
    /// A lab is already up in this directory.
    #[error("a lab is already up in {dir} (state file {dir}/state.json); run `ipsecmon lab down{flags}` first")]
    AlreadyUp {
        /// The lab directory.
        dir: PathBuf,
        /// The flags that name it (` --prefix P`), for the message.
        flags: String,
    },
    /// A namespace of that name exists and the lab did not make it.
    #[error("network namespace {name} exists and this lab did not create it; choose another --prefix (the lab never touches namespaces it did not make)")]
    NamespaceExists {
        /// The namespace.
        name: String,
    },
    /// No lab is up.
    #[error("no lab is up in {dir}; run `ipsecmon lab up` first")]
    NotUp {
        /// The lab directory looked at.
        dir: PathBuf,
    },
    /// A bad option value.
    #[error("{0}")]
    Usage(String),
    /// A program failed.
    #[error("{command} failed: {output}")]
    Command {
        /// The command line.
        command: String,
        /// Its standard error.
        output: String,
    },
    /// A file could not be read or written.
    #[error("{path}: {source}")]
    Io {
        /// The file.
        path: PathBuf,
        /// The reason.
        source: std::io::Error,
    },
    /// The state file is damaged.
    #[error("{path}: not a lab state file ({reason}); remove the lab's namespaces by hand (`ip netns list`) and delete the directory")]
    State {
        /// The file.
        path: PathBuf,
        /// What was wrong.
        reason: String,
    },
    /// charon did not start.
    #[error("charon on {host} did not start: {reason}")]
    Charon {
        /// The host.
        host: String,
        /// What was seen.
        reason: String,
    },
    /// A policy file could not be loaded.
    #[error("{0}")]
    Policy(String),
    /// Rendering or applying a policy failed.
    #[error(transparent)]
    Enforce(#[from] crate::enforce::EnforceError),
    /// Reading a capture failed.
    #[error(transparent)]
    Capture(#[from] crate::capture::CaptureError),
}

/// Maps an I/O error on `path` to [`LabError::Io`] (for `map_err`).
fn io(path: &Path) -> impl FnOnce(std::io::Error) -> LabError + '_ {
    move |source| LabError::Io {
        path: path.to_path_buf(),
        source,
    }
}
