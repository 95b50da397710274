//! NAT detection for one IKE SA: recomputing NAT-D hashes (IKEv2 RFC 7296 §2.23, IKEv1
//! RFC 3947 and its drafts) against the addresses seen at the capture point, and weighing
//! them with port floats, UDP encapsulation, keepalives, NAT-OA and inner checksums.

use crate::wire::ike::IkeMessage;
use crate::wire::{Addrs, Encap};

use super::report::NatReport;

/// Everything one IKE SA has shown about NAT so far. The tracker feeds it every message
/// and keepalive of the SA; [`NatObservations::verdict`] weighs the evidence.
#[derive(Debug, Clone, Default)]
pub struct NatObservations {
    messages: u32,
}

impl NatObservations {
    /// An IKE message of this SA. `from_initiator` says which peer sent it (IKEv2: the I
    /// flag; IKEv1: the tracker's knowledge of who sent the first message).
    pub fn on_message(
        &mut self,
        frame: u64,
        addrs: &Addrs,
        encap: Encap,
        from_initiator: bool,
        msg: &IkeMessage,
    ) {
        let _ = (frame, addrs, encap, from_initiator, msg);
        self.messages += 1;
    }

    /// A NAT-T keepalive between the SA's peers; `from_initiator` says who sent it.
    pub fn on_keepalive(&mut self, frame: u64, from_initiator: bool) {
        let _ = (frame, from_initiator);
    }

    /// An ESP or AH packet of one of the SA's child SAs.
    pub fn on_child_packet(&mut self, frame: u64, encap: Encap, is_ah: bool) {
        let _ = (frame, encap, is_ah);
    }

    /// The verdict and the evidence it rests on.
    pub fn verdict(&self) -> NatReport {
        NatReport::default()
    }
}
