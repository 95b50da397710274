//! The lab's state file: a record of every namespace, process and directory `lab up`
//! made, written before and after each step, so `lab down` can remove exactly those even
//! after a crash, and never anything else.

use std::net::IpAddr;
use std::path::{Path, PathBuf};

use serde::{Deserialize, Serialize};

use super::LabError;

/// The state file's name inside the lab directory.
pub const STATE_FILE: &str = "state.json";

/// A process the lab started.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Proc {
    /// What it is (`charon alice`, `tcpdump link`).
    pub what: String,
    /// Its pid.
    pub pid: u32,
    /// Its start time in clock ticks since boot: pid and start time name one process.
    pub start_time: u64,
}

/// One lab host as `lab up` made it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct HostState {
    /// `alice` or `bob`.
    pub name: String,
    /// Its network namespace.
    pub netns: String,
    /// Its address on its own link.
    pub address: IpAddr,
    /// The address the other host reaches it at (different behind a NAT).
    pub reachable_at: IpAddr,
    /// Its directory (configuration, charon's `/run`, log).
    pub dir: PathBuf,
    /// charon's VICI socket URI; `None` when the scenario runs no daemon on it.
    pub vici: Option<String>,
    /// The policy file applied.
    pub policy: PathBuf,
}

/// A capture on one interface.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct CaptureState {
    /// `link`, or `inside` and `outside` of the NAT.
    pub name: String,
    /// The namespace it runs in.
    pub netns: String,
    /// The interface.
    pub iface: String,
    /// The pcap file being written.
    pub file: PathBuf,
}

/// Everything `lab up` made.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct State {
    /// Namespace prefix.
    pub prefix: String,
    /// The lab directory (holds this file).
    pub dir: PathBuf,
    /// The scenario, when one was asked for.
    pub scenario: Option<String>,
    /// Whether a NAT namespace sits between the hosts.
    pub nat: bool,
    /// Namespaces, recorded before each is created.
    pub namespaces: Vec<String>,
    /// Processes, recorded as soon as each has started.
    pub processes: Vec<Proc>,
    /// The hosts.
    pub hosts: Vec<HostState>,
    /// The captures.
    pub captures: Vec<CaptureState>,
    /// Whether `up` is complete (false while building, or after a crash).
    pub complete: bool,
}

impl State {
    /// An empty record for a lab in `dir`.
    pub fn new(prefix: &str, dir: &Path) -> State {
        State {
            prefix: prefix.to_string(),
            dir: dir.to_path_buf(),
            scenario: None,
            nat: false,
            namespaces: Vec::new(),
            processes: Vec::new(),
            hosts: Vec::new(),
            captures: Vec::new(),
            complete: false,
        }
    }

    /// The state file of the lab in `dir`.
    pub fn path(dir: &Path) -> PathBuf {
        dir.join(STATE_FILE)
    }

    /// Reads the state of the lab in `dir`; `None` when there is none.
    pub fn load(dir: &Path) -> Result<Option<State>, LabError> {
        let path = State::path(dir);
        let text = match std::fs::read_to_string(&path) {
            Ok(t) => t,
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(None),
            Err(source) => return Err(LabError::Io { path, source }),
        };
        serde_json::from_str(&text)
            .map(Some)
            .map_err(|e| LabError::State {
                path,
                reason: e.to_string(),
            })
    }

    /// Writes the record (to a temporary file, then renamed, so a crash never leaves half
    /// a file).
    pub fn save(&self) -> Result<(), LabError> {
        let path = State::path(&self.dir);
        let tmp = path.with_extension("json.tmp");
        let text = serde_json::to_string_pretty(self).map_err(|e| LabError::State {
            path: path.clone(),
            reason: e.to_string(),
        })?;
        std::fs::write(&tmp, text).map_err(|source| LabError::Io {
            path: tmp.clone(),
            source,
        })?;
        std::fs::rename(&tmp, &path).map_err(|source| LabError::Io { path, source })
    }

    /// The host named `name`.
    pub fn host(&self, name: &str) -> Option<&HostState> {
        self.hosts.iter().find(|h| h.name == name)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_saved_state_loads_back_and_a_missing_one_is_none() {
        let dir = tempfile::tempdir().unwrap();
        assert_eq!(State::load(dir.path()).unwrap(), None);
        let mut s = State::new("t1", dir.path());
        s.namespaces.push("t1-alice".into());
        s.processes.push(Proc {
            what: "charon alice".into(),
            pid: 42,
            start_time: 7,
        });
        s.save().unwrap();
        assert_eq!(State::load(dir.path()).unwrap(), Some(s));
        assert!(!dir.path().join("state.json.tmp").exists());
    }

    #[test]
    fn a_damaged_state_file_names_itself() {
        let dir = tempfile::tempdir().unwrap();
        std::fs::write(dir.path().join(STATE_FILE), "{").unwrap();
        let err = State::load(dir.path()).unwrap_err().to_string();
        assert!(
            err.starts_with(&format!("{}: ", dir.path().join(STATE_FILE).display())),
            "{err}"
        );
    }
}
