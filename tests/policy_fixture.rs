//! `policy explain` on every flow of a fixture capture gives the expected rules, under both
//! ends' policies (`fixtures/policy/abczz.expected.json`).

use std::path::Path;

use ipsecmon::capture::{open_file, FrameSource};
use ipsecmon::policy::{explain::explain, Flow, Policy};
use pnet_packet::ethernet::{EtherTypes, EthernetPacket};
use pnet_packet::ip::IpNextHeaderProtocols;
use pnet_packet::ipv4::Ipv4Packet;
use pnet_packet::tcp::TcpPacket;
use pnet_packet::udp::UdpPacket;
use pnet_packet::Packet;
use serde_json::{json, Value};

fn root() -> &'static Path {
    Path::new(env!("CARGO_MANIFEST_DIR"))
}

/// The flow of an Ethernet/IPv4 frame (the fixture holds nothing else).
fn flow_of(frame: &[u8]) -> Flow {
    let eth = EthernetPacket::new(frame).expect("ethernet");
    assert_eq!(eth.get_ethertype(), EtherTypes::Ipv4);
    let ip = Ipv4Packet::new(eth.payload()).expect("ipv4");
    let proto = ip.get_next_level_protocol();
    let ports = match proto {
        IpNextHeaderProtocols::Tcp => {
            let t = TcpPacket::new(ip.payload()).expect("tcp");
            Some((t.get_source(), t.get_destination()))
        }
        IpNextHeaderProtocols::Udp => {
            let u = UdpPacket::new(ip.payload()).expect("udp");
            Some((u.get_source(), u.get_destination()))
        }
        _ => None,
    };
    Flow {
        protocol: proto.0,
        src: ip.get_source().into(),
        src_port: ports.map(|p| p.0),
        dst: ip.get_destination().into(),
        dst_port: ports.map(|p| p.1),
    }
}

fn flows() -> Vec<(u64, Flow)> {
    let mut src = open_file(&root().join("fixtures/policy/abczz.pcap")).expect("open fixture");
    let mut out = Vec::new();
    while let Some(frame) = src.next_frame().expect("read fixture") {
        out.push((frame.number, flow_of(frame.data)));
    }
    out
}

fn explain_all(policy: &Policy, flows: &[(u64, Flow)]) -> Value {
    let rows: Vec<Value> = flows
        .iter()
        .map(|(n, flow)| {
            let e = explain(policy, flow);
            let r = e.result.as_ref();
            json!({
                "frame": n,
                "flow": e.flow,
                "rule": r.map(|w| w.rule.clone()),
                "mirrored": r.map(|w| w.mirrored),
                "cleartext": r.map(|w| w.cleartext.clone()),
            })
        })
        .collect();
    Value::Array(rows)
}

#[test]
fn explain_gives_the_expected_rule_for_every_frame() {
    let expected: Value = serde_json::from_str(
        &std::fs::read_to_string(root().join("fixtures/policy/abczz.expected.json")).unwrap(),
    )
    .unwrap();
    let flows = flows();
    assert_eq!(flows.len(), 9);
    for name in ["alice.toml", "bob.toml"] {
        let path = root().join("examples").join(name);
        let policy = Policy::load(path.to_str().unwrap()).unwrap();
        let got = explain_all(&policy, &flows);
        assert_eq!(
            got,
            expected[name],
            "{name}:\n{}",
            serde_json::to_string_pretty(&got).unwrap()
        );
    }
}
