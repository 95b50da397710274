//! `lab status`: the SAs as ipsecmon sees them on the wire (its own engine over the
//! lab's captures, read while tcpdump writes them, decrypted with the session keys the
//! charons logged) next to what each charon reports (`swanctl --list-sas`).

use std::path::Path;
use std::sync::Arc;

use super::state::State;
use super::sys::output;
use super::LabError;
use crate::capture::{open_file, CaptureStats, FrameSource};
use crate::engine::{Engine, EngineConfig};
use crate::keys::KeyTable;
use crate::snapshot::Snapshot;
use crate::view::model::RowOptions;

/// Runs ipsecmon's engine over a capture file and returns its snapshot. A record cut
/// short at the end (tcpdump is still writing) ends the reading without an error.
pub fn wire_snapshot(file: &Path, config: EngineConfig) -> Result<Snapshot, LabError> {
    let mut source = open_file(file)?;
    let mut engine = Engine::new(config);
    let mut frames = 0;
    loop {
        match source.next_frame() {
            Ok(Some(frame)) => {
                engine.process(&frame);
                frames += 1;
            }
            Ok(None) => break,
            Err(crate::capture::CaptureError::Record { .. }) => break,
            Err(e) => return Err(e.into()),
        }
    }
    engine.finish();
    let stats = CaptureStats {
        received: frames,
        ..CaptureStats::default()
    };
    Ok(engine.snapshot(&file.display().to_string(), stats))
}

/// The key tables `lab keys` would write from the hosts' charon logs and the captures,
/// held in memory; `None` when no log holds a key yet or a capture cannot be read.
fn lab_keys(state: &State) -> Option<Arc<KeyTable>> {
    let logs: Vec<_> = state
        .hosts
        .iter()
        .filter_map(|h| {
            let text = std::fs::read_to_string(h.dir.join("charon.log")).ok()?;
            Some(super::keylog::parse(
                &format!("{}/charon.log", h.name),
                &text,
            ))
        })
        .collect();
    let captures: Vec<_> = state
        .captures
        .iter()
        .filter_map(|c| super::keytable::scan(&c.file).ok())
        .collect();
    let table = super::keytable::build(&logs, &captures).key_table()?;
    table
        .map_err(|e| tracing::warn!("the lab's key tables: {e}"))
        .ok()
        .map(Arc::new)
}

/// What `swanctl --list-sas` prints for a host (or why it could not); `conf` is the
/// host's strongswan.conf (its `swanctl` section keeps swanctl's plugin list short).
pub fn charon_sas(vici: &str, conf: &Path) -> String {
    let conf = format!("STRONGSWAN_CONF={}", conf.display());
    match output("env", &[&conf, "swanctl", "--list-sas", "--uri", vici]) {
        Ok((true, text)) if text.trim().is_empty() => "(no SAs)\n".into(),
        Ok((true, text)) => text,
        Ok((false, text)) => format!("swanctl failed: {}\n", text.trim()),
        Err(e) => format!("{e}\n"),
    }
}

/// The whole status text: every capture through ipsecmon, then every host's charon.
pub fn render(state: &State) -> Result<String, LabError> {
    let mut out = String::new();
    out.push_str(&format!(
        "lab {} ({}{})\n\n",
        state.dir.display(),
        state.scenario.as_deref().unwrap_or("custom policies"),
        if state.nat {
            ", NAT between the hosts"
        } else {
            ""
        }
    ));
    let keys = lab_keys(state);
    out.push_str(&match &keys {
        Some(k) => {
            let (ikev1, ikev2, esp) = k.counts();
            format!(
                "decrypting with the session keys the charons logged: {ikev2} IKEv2, {ikev1} \
                 IKEv1 and {esp} ESP SA keys\n\n"
            )
        }
        None => "no session keys in the charon logs yet: the wire is read without them\n\n".into(),
    });
    for c in &state.captures {
        out.push_str(&format!(
            "== the wire: {} ({} in {}), as ipsecmon sees it\n",
            c.name, c.iface, c.netns
        ));
        let config = EngineConfig {
            keys: keys.clone(),
            ..EngineConfig::default()
        };
        let snap = wire_snapshot(&c.file, config)?;
        let local = state.host("alice").map(|h| h.address);
        out.push_str(&crate::view::text::render(
            &snap,
            RowOptions { local, all: true },
        ));
        out.push('\n');
    }
    for h in &state.hosts {
        out.push_str(&format!(
            "== charon on {} ({}), swanctl --list-sas\n",
            h.name, h.address
        ));
        match &h.vici {
            Some(vici) => out.push_str(&charon_sas(vici, &h.dir.join("strongswan.conf"))),
            None => out.push_str("(no IKE daemon on this host in this scenario)\n"),
        }
        out.push('\n');
    }
    Ok(out)
}
