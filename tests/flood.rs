//! Hostile state: floods of IKE_SA_INIT with random SPIs, of ESP with random SPIs, of IP
//! fragments that never complete, and of retransmissions. Each is held by a cap, counted,
//! and visible as a finding and in the metrics; the tables never grow past their caps.

use std::net::Ipv4Addr;

use ipsecmon::capture::{CaptureStats, Frame};
use ipsecmon::diagnose::Code;
use ipsecmon::engine::{Engine, EngineConfig};
use ipsecmon::export::{Metrics, MetricsConfig};
use ipsecmon::snapshot::Snapshot;
use ipsecmon::wire::{LinkType, Timestamp};

const CAP: usize = 1000;

/// SplitMix64, so that every run floods with the same "random" values.
struct Rng(u64);

impl Rng {
    fn next(&mut self) -> u64 {
        self.0 = self.0.wrapping_add(0x9E37_79B9_7F4A_7C15);
        let mut z = self.0;
        z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
        z ^ (z >> 31)
    }
}

/// An IPv4 header (no options) for `payload_len` bytes of `proto`; `frag` is the
/// flags/fragment-offset field.
fn ipv4(
    src: Ipv4Addr,
    dst: Ipv4Addr,
    proto: u8,
    id: u16,
    frag: u16,
    payload_len: usize,
) -> Vec<u8> {
    let total = (20 + payload_len) as u16;
    let mut h = vec![0x45, 0];
    h.extend_from_slice(&total.to_be_bytes());
    h.extend_from_slice(&id.to_be_bytes());
    h.extend_from_slice(&frag.to_be_bytes());
    h.extend_from_slice(&[64, proto, 0, 0]);
    h.extend_from_slice(&src.octets());
    h.extend_from_slice(&dst.octets());
    h
}

/// A UDP datagram on port 500 carrying `payload`.
fn udp500(src: Ipv4Addr, dst: Ipv4Addr, payload: &[u8]) -> Vec<u8> {
    let len = 8 + payload.len();
    let mut p = ipv4(src, dst, 17, 1, 0x4000, len);
    p.extend_from_slice(&500u16.to_be_bytes());
    p.extend_from_slice(&500u16.to_be_bytes());
    p.extend_from_slice(&(len as u16).to_be_bytes());
    p.extend_from_slice(&[0, 0]);
    p.extend_from_slice(payload);
    p
}

/// An IKEv2 IKE_SA_INIT request header (RFC 7296 §3.1) with no payloads.
fn sa_init(spi_i: u64) -> Vec<u8> {
    let mut m = spi_i.to_be_bytes().to_vec();
    m.extend_from_slice(&[0; 8]);
    m.extend_from_slice(&[0, 0x20, 34, 0x08, 0, 0, 0, 0, 0, 0, 0, 28]);
    m
}

/// An ESP packet (RFC 4303 §2) with 64 bytes of ciphertext.
fn esp(src: Ipv4Addr, dst: Ipv4Addr, spi: u32, seq: u32) -> Vec<u8> {
    let mut p = ipv4(src, dst, 50, 1, 0x4000, 72);
    p.extend_from_slice(&spi.to_be_bytes());
    p.extend_from_slice(&seq.to_be_bytes());
    p.extend_from_slice(&[0xab; 64]);
    p
}

fn engine() -> Engine {
    let mut config = EngineConfig::default();
    config.tracker.max_ike_sas = CAP;
    config.tracker.max_esp_sas = CAP;
    Engine::new(config)
}

/// Feeds `frames` as raw IPv4, one every millisecond of packet time.
fn feed(engine: &mut Engine, frames: impl Iterator<Item = Vec<u8>>) -> u64 {
    let mut n = 0;
    for data in frames {
        n += 1;
        engine.process(&Frame {
            number: n,
            ts: Timestamp(1_700_000_000_000_000_000 + n as i64 * 1_000_000),
            link: LinkType::Raw,
            data: &data,
            orig_len: data.len() as u32,
        });
    }
    n
}

fn metrics_of(snap: &Snapshot) -> String {
    let mut m = Metrics::new(MetricsConfig::default());
    m.update(snap);
    m.render()
}

fn has_line(text: &str, line: &str) -> bool {
    text.lines().any(|l| l == line)
}

fn host(n: u64) -> Ipv4Addr {
    Ipv4Addr::new(198, 51, 100, 1 + (n % 3) as u8)
}

const TARGET: Ipv4Addr = Ipv4Addr::new(192, 0, 2, 2);

#[test]
fn an_ike_sa_init_flood_is_capped_counted_and_reported() {
    let mut e = engine();
    let mut rng = Rng(1);
    let flood = (0..50_000u64).map(|i| udp500(host(i), TARGET, &sa_init(rng.next())));
    feed(&mut e, flood);
    assert_eq!(e.tracker().table_sizes().0, CAP);
    e.finish();
    let snap = e.snapshot("flood", CaptureStats::default());
    let r = &snap.report;
    assert_eq!(r.ike_sas.len(), CAP);
    assert_eq!(r.evictions.ike_sas, 49_000);
    assert_eq!(r.stats.main_modes, 50_000);
    let flood = snap
        .findings
        .iter()
        .find(|f| f.code == Code::HalfOpenFlood)
        .expect("a half-open-flood finding");
    assert_eq!(
        flood.summary,
        "1000 negotiations from 3 source(s) were never answered or completed; 49000 more IKE SAs were evicted from the full table (--max-ike-sas)"
    );
    let m = metrics_of(&snap);
    assert!(
        has_line(
            &m,
            "ipsecmon_table_evictions_total{table=\"ike_sas\"} 49000"
        ),
        "{m}"
    );
    assert!(
        has_line(
            &m,
            "ipsecmon_findings{code=\"half-open-flood\",severity=\"warning\"} 1"
        ),
        "{m}"
    );
}

#[test]
fn an_esp_flood_of_random_spis_is_capped_and_counted_as_bad_spi_packets() {
    let mut e = engine();
    let mut rng = Rng(2);
    let flood = (0..20_000u64).map(|i| esp(host(i), TARGET, rng.next() as u32, 1));
    feed(&mut e, flood);
    assert_eq!(e.tracker().table_sizes().1, CAP);
    let snap = e.snapshot("flood", CaptureStats::default());
    let r = &snap.report;
    assert_eq!(r.esp_sas.len(), CAP);
    assert_eq!(r.evictions.esp_sas, 19_000);
    assert_eq!(r.stats.bad_spi_packets, 19_000);
    // Bytes of evicted SAs stay in the statistics block: 20,000 packets of 64 bytes.
    let s = r.stats;
    assert_eq!(
        s.authenticated_bytes_sent + s.authenticated_bytes_received,
        20_000 * 64
    );
    assert!(snap.findings.iter().any(|f| f.code == Code::InvalidSpi));
    let m = metrics_of(&snap);
    assert!(
        has_line(
            &m,
            "ipsecmon_table_evictions_total{table=\"esp_sas\"} 19000"
        ),
        "{m}"
    );
    assert!(
        has_line(
            &m,
            "ipsecmon_ipsec_events_total{event=\"bad_spi_packets\"} 19000"
        ),
        "{m}"
    );
}

#[test]
fn a_flood_of_fragments_that_never_complete_is_capped_and_counted() {
    let mut e = engine();
    let cap = e.decoder().config().max_reassemblies;
    // First fragments (offset 0, more fragments) of 1 KiB UDP/500 datagrams, each with
    // its own identification.
    let flood = (0..10_000u64).map(|i| {
        let mut p = ipv4(host(i), TARGET, 17, i as u16, 0x2000, 1024);
        p.extend_from_slice(&[0x01, 0xf4, 0x01, 0xf4, 0x08, 0x08, 0, 0]);
        p.extend_from_slice(&[0u8; 1016]);
        p
    });
    feed(&mut e, flood);
    assert_eq!(e.decoder().reassembly_stats().evicted, 10_000 - cap as u64);
    let pending = e.decoder().pending_ike_fragments().len();
    assert_eq!(pending, cap);
    let snap = e.snapshot("flood", CaptureStats::default());
    assert_eq!(snap.report.evictions.fragments, 10_000 - cap as u64);
    let m = metrics_of(&snap);
    let line = format!(
        "ipsecmon_table_evictions_total{{table=\"fragments\"}} {}",
        10_000 - cap
    );
    assert!(has_line(&m, &line), "{m}");
}

#[test]
fn a_retransmission_flood_stays_one_sa_with_bounded_history() {
    let mut e = engine();
    let msg = sa_init(0x1122_3344_5566_7788);
    let flood = (0..100_000u64).map(|_| udp500(host(0), TARGET, &msg));
    feed(&mut e, flood);
    e.finish();
    let snap = e.snapshot("flood", CaptureStats::default());
    let r = &snap.report;
    assert_eq!(r.ike_sas.len(), 1);
    let sa = &r.ike_sas[0];
    assert_eq!(sa.retransmissions, 99_999);
    assert_eq!(sa.exchanges.len(), 1);
    assert_eq!(sa.exchanges[0].retransmissions, 99_999);
    assert_eq!(sa.exchanges[0].transmissions.len(), 16);
    assert!(snap
        .findings
        .iter()
        .any(|f| f.code == Code::PeerUnreachable));
    let m = metrics_of(&snap);
    assert!(
        has_line(&m, "ipsecmon_ike_retransmissions_total 99999"),
        "{m}"
    );
}

#[test]
fn a_live_tracker_forgets_ended_sas_but_keeps_their_counts() {
    let mut config = EngineConfig::default();
    config.tracker.forget_after_ns = Some(15 * 60 * 1_000_000_000);
    let mut e = Engine::new(config);
    let init = sa_init(0x0102_0304_0506_0708);
    let frames = [
        udp500(host(0), TARGET, &init),
        udp500(host(0), TARGET, &init),
        esp(host(0), TARGET, 0xdead_beef, 1),
    ];
    let n = feed(&mut e, frames.into_iter());
    assert_eq!(n, 3);
    assert_eq!(e.tracker().table_sizes(), (1, 1));
    let start = 1_700_000_000_000_000_000i64;
    // The negotiation fails and is forgotten 15 minutes after its last packet; the ESP SA
    // is still current (idle for less than the hour after which it expires).
    for minutes in [1, 30] {
        e.tick(Timestamp(start + minutes * 60_000_000_000));
    }
    assert_eq!(e.tracker().table_sizes(), (0, 1));
    // Past the hour it has expired, long enough ago to be forgotten; its bytes stay.
    e.tick(Timestamp(start + 61 * 60_000_000_000));
    assert_eq!(e.tracker().table_sizes(), (0, 0));
    let r = e.report();
    assert_eq!(r.stats.main_modes, 1);
    assert_eq!(r.stats.authenticated_bytes_sent, 64);
    assert!(r.ike_sas.is_empty() && r.esp_sas.is_empty());
}
