//! ipsecmon-gen: writes a deterministic, seeded IPsec capture (classic pcap, Ethernet) for
//! benchmarks and load tests.
//!
//! Each tunnel negotiates with IKEv2 (IKE_SA_INIT with NAT detection, IKE_AUTH) or IKEv1
//! (Main Mode with NAT-D, Quick Mode), then carries ESP both ways (AH for some tunnels,
//! ESP in UDP 4500 for tunnels behind NAT), with sequence gaps, replayed packets and
//! rekeys to new SPIs (IKEv2 CREATE_CHILD_SA plus a Delete, IKEv1 a new Quick Mode). A few
//! tunnels never get an answer or are refused with NO_PROPOSAL_CHOSEN. About a tenth of
//! the packets are unrelated background traffic (TCP 443, DNS, ping).
//!
//! Encrypted IKE payloads (SK, IKEv1 after Main Mode 4) hold random bytes of realistic
//! length; the cleartext parts, NAT-D hashes (RFC 7296 section 2.23, RFC 3947 section 3.2)
//! included, are exact. The same flags and seed give the same file, byte for byte.

use std::fs::File;
use std::io::BufWriter;
use std::path::PathBuf;

use anyhow::Context;
use clap::Parser;
use ipsecmon::capture::writer::{PcapOptions, PcapWriter};
use ipsecmon::wire::Timestamp;
use sha1::{Digest, Sha1};

/// Write a deterministic IPsec capture for benchmarks.
#[derive(Debug, Parser)]
#[command(name = "ipsecmon-gen", version)]
struct Args {
    /// Packets to write.
    #[arg(long, default_value_t = 1_000_000)]
    packets: u64,
    /// Number of tunnels (IKE SAs), each with an ESP or AH SA in each direction.
    #[arg(long, default_value_t = 10)]
    tunnels: u32,
    /// Seed of the pseudo-random choices.
    #[arg(long, default_value_t = 1)]
    seed: u64,
    /// Output file (pcap).
    #[arg(long)]
    out: PathBuf,
    /// Percent of packets that are background traffic, not IPsec.
    #[arg(long, default_value_t = 10)]
    background: u32,
    /// Per mille of ESP/AH sequence numbers lost before the capture point.
    #[arg(long, default_value_t = 2)]
    loss_permille: u32,
    /// Per mille of ESP/AH packets that are replays of the previous one.
    #[arg(long, default_value_t = 1)]
    replay_permille: u32,
    /// ESP/AH packets of a tunnel between rekeys (0: a third of its share, at least 50).
    #[arg(long, default_value_t = 0)]
    rekey_every: u64,
    /// Start every tunnel established: no IKE, only ESP/AH (for memory-per-SA runs).
    #[arg(long)]
    esp_only: bool,
    /// Packets per second of capture time.
    #[arg(long, default_value_t = 100_000)]
    rate: u64,
}

/// SplitMix64: tiny, fast and good enough for choosing packet shapes.
struct Rng(u64);

impl Rng {
    fn next(&mut self) -> u64 {
        self.0 = self.0.wrapping_add(0x9E37_79B9_7F4A_7C15);
        let mut z = self.0;
        z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
        z ^ (z >> 31)
    }

    /// Uniform in `0..n` (n > 0).
    fn below(&mut self, n: u64) -> u64 {
        ((u128::from(self.next()) * u128::from(n)) >> 64) as u64
    }

    fn range(&mut self, lo: u64, hi: u64) -> u64 {
        lo + self.below(hi - lo + 1)
    }

    fn permille(&mut self, p: u32) -> bool {
        self.below(1000) < u64::from(p)
    }

    fn nonzero_u32(&mut self) -> u32 {
        (self.next() as u32).max(1)
    }
}

/// An address of either family.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Ip {
    V4([u8; 4]),
    V6([u8; 16]),
}

impl Ip {
    fn bytes(&self) -> &[u8] {
        match self {
            Ip::V4(a) => a,
            Ip::V6(a) => a,
        }
    }

    /// Address number `n` of a /8 (IPv4) or a /32 (IPv6) documentation-style block.
    fn nth(v6: bool, first: u8, n: u32) -> Ip {
        let b = n.to_be_bytes();
        if v6 {
            let mut a = [
                0x20, 0x01, 0x0d, 0xb8, first, 0, 0, 0, 0, 0, 0, 0, b[0], b[1], b[2], b[3],
            ];
            a[15] = a[15].max(1);
            Ip::V6(a)
        } else {
            Ip::V4([first, b[1], b[2], b[3].max(1)])
        }
    }
}

/// One IKE message of a scripted exchange.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Msg {
    /// IKEv2 IKE_SA_INIT request or response.
    Init(bool),
    /// IKEv2 IKE_SA_INIT response refusing every proposal.
    Refuse,
    /// IKEv2 IKE_AUTH.
    Auth(bool),
    /// IKEv2 CREATE_CHILD_SA (rekey of the child SA).
    Child(bool),
    /// IKEv2 INFORMATIONAL with a Delete of the old child SA.
    Delete(bool),
    /// IKEv1 Main Mode message 1..=6.
    Main(u8),
    /// IKEv1 Quick Mode message 1..=3.
    Quick(u8),
    /// IKEv1 Informational Delete (one way).
    V1Delete,
}

impl Msg {
    /// `true` when the responder sends it.
    fn sent_by_responder(self) -> bool {
        match self {
            Msg::Init(r) | Msg::Auth(r) | Msg::Child(r) | Msg::Delete(r) => r,
            Msg::Refuse => true,
            Msg::Main(n) => n % 2 == 0,
            Msg::Quick(n) => n == 2,
            Msg::V1Delete => false,
        }
    }

    /// `true` for messages that switch the tunnel to new child SPIs once sent.
    fn installs_sas(self) -> bool {
        matches!(self, Msg::Auth(true) | Msg::Child(true) | Msg::Quick(3))
    }
}

const V2_SETUP: &[Msg] = &[
    Msg::Init(false),
    Msg::Init(true),
    Msg::Auth(false),
    Msg::Auth(true),
];
const V2_REKEY: &[Msg] = &[
    Msg::Child(false),
    Msg::Child(true),
    Msg::Delete(false),
    Msg::Delete(true),
];
const V1_SETUP: &[Msg] = &[
    Msg::Main(1),
    Msg::Main(2),
    Msg::Main(3),
    Msg::Main(4),
    Msg::Main(5),
    Msg::Main(6),
    Msg::Quick(1),
    Msg::Quick(2),
    Msg::Quick(3),
];
const V1_REKEY: &[Msg] = &[Msg::Quick(1), Msg::Quick(2), Msg::Quick(3), Msg::V1Delete];
const UNANSWERED: &[Msg] = &[Msg::Init(false); 5];
const REFUSED: &[Msg] = &[Msg::Init(false), Msg::Refuse];

/// One tunnel between an initiator and a responder, as seen at the responder's side.
#[derive(Debug, Clone)]
struct Tunnel {
    init: Ip,
    /// The initiator's own address (differs from `init` behind NAT).
    private: Ip,
    resp: Ip,
    nat: bool,
    /// Public source ports the NAT gave the initiator's ports 500 and 4500.
    nat_ports: [u16; 2],
    v1: bool,
    ah: bool,
    spi_i: u64,
    spi_r: u64,
    script: &'static [Msg],
    pos: usize,
    /// Child SPIs (initiator to responder, back) and their next sequence numbers.
    spis: [u32; 2],
    seqs: [u32; 2],
    esp_since_rekey: u64,
    msg_id: u32,
    quick_id: u32,
    dead: bool,
}

impl Tunnel {
    fn new(i: u32, rng: &mut Rng, esp_only: bool) -> Tunnel {
        let v6 = rng.below(10) == 0;
        let nat = !v6 && rng.below(5) == 0;
        let resp = Ip::nth(v6, 198, i / 64);
        let init = Ip::nth(v6, 100, i);
        let private = if nat { Ip::nth(false, 192, i) } else { init };
        let script = match rng.below(100) {
            _ if esp_only => &[][..],
            0 => UNANSWERED,
            1 => REFUSED,
            n if n < 30 => V1_SETUP,
            _ => V2_SETUP,
        };
        let ports = [
            1024 + rng.below(30_000) as u16,
            31_000 + rng.below(30_000) as u16,
        ];
        let spis = [rng.nonzero_u32(), rng.nonzero_u32()];
        Tunnel {
            init,
            private,
            resp,
            nat,
            nat_ports: ports,
            v1: script.first().is_some_and(|m| matches!(m, Msg::Main(_))),
            ah: !nat && rng.below(20) == 0,
            spi_i: rng.next().max(1),
            spi_r: 0,
            script,
            pos: 0,
            spis,
            seqs: [1, 1],
            esp_since_rekey: 0,
            msg_id: 0,
            quick_id: 0,
            dead: false,
        }
    }

    fn established(&self) -> bool {
        self.pos >= self.script.len() && !self.dead
    }

    /// Source port of the initiator as seen here, for IKE on `port` (500 or 4500).
    fn init_port(&self, port: u16) -> u16 {
        match (self.nat, port) {
            (false, p) => p,
            (true, 500) => self.nat_ports[0],
            (true, _) => self.nat_ports[1],
        }
    }
}

/// Builds frames into one reused buffer.
struct Builder {
    buf: Vec<u8>,
    /// Random bytes that stand in for ciphertext, sliced at random offsets.
    pool: Vec<u8>,
}

const POOL: usize = 1 << 16;
const ETH_HEADER: [u8; 12] = [0x02, 0, 0, 0, 0, 0x01, 0x02, 0, 0, 0, 0, 0x02];

impl Builder {
    fn new(rng: &mut Rng) -> Builder {
        let pool = (0..POOL).map(|_| rng.next() as u8).collect();
        Builder {
            buf: Vec::with_capacity(2048),
            pool,
        }
    }

    fn random(&mut self, rng: &mut Rng, len: usize) {
        let at = rng.below((POOL - len) as u64) as usize;
        self.buf.extend_from_slice(&self.pool[at..at + len]);
    }

    /// Ethernet and IP headers; returns the offset of the IP header.
    fn ip(&mut self, src: Ip, dst: Ip, proto: u8) -> usize {
        self.buf.clear();
        self.buf.extend_from_slice(&ETH_HEADER);
        let l3 = self.buf.len() + 2;
        match (src, dst) {
            (Ip::V6(s), Ip::V6(d)) => {
                self.buf
                    .extend_from_slice(&[0x86, 0xdd, 0x60, 0, 0, 0, 0, 0, proto, 64]);
                self.buf.extend_from_slice(&s);
                self.buf.extend_from_slice(&d);
            }
            _ => {
                self.buf.extend_from_slice(&[
                    0x08, 0x00, 0x45, 0, 0, 0, 0x12, 0x34, 0x40, 0, 64, proto, 0, 0,
                ]);
                self.buf.extend_from_slice(src.bytes());
                self.buf.extend_from_slice(dst.bytes());
            }
        }
        l3
    }

    /// Fills in the IP lengths (and the IPv4 checksum) once the packet is complete.
    fn finish_ip(&mut self, l3: usize) {
        let total = self.buf.len() - l3;
        if self.buf[l3] >> 4 == 6 {
            self.buf[l3 + 4..l3 + 6].copy_from_slice(&((total - 40) as u16).to_be_bytes());
            return;
        }
        self.buf[l3 + 2..l3 + 4].copy_from_slice(&(total as u16).to_be_bytes());
        let sum = (0..10).fold(0u32, |s, k| {
            s + u32::from(u16::from_be_bytes([
                self.buf[l3 + 2 * k],
                self.buf[l3 + 2 * k + 1],
            ]))
        });
        let sum = (sum & 0xffff) + (sum >> 16);
        let sum = (sum & 0xffff) + (sum >> 16);
        self.buf[l3 + 10..l3 + 12].copy_from_slice(&(!(sum as u16)).to_be_bytes());
    }

    /// A UDP header with the length left to [`Builder::finish_udp`]; checksum 0.
    fn udp(&mut self, sport: u16, dport: u16) -> usize {
        let at = self.buf.len();
        self.buf.extend_from_slice(&sport.to_be_bytes());
        self.buf.extend_from_slice(&dport.to_be_bytes());
        self.buf.extend_from_slice(&[0, 0, 0, 0]);
        at
    }

    /// Sets the UDP length; over IPv6, where a checksum is mandatory (RFC 8200 section
    /// 8.1), also the checksum. `l3` is the IP header's offset.
    fn finish_udp(&mut self, at: usize, l3: usize) {
        let len = (self.buf.len() - at) as u16;
        self.buf[at + 4..at + 6].copy_from_slice(&len.to_be_bytes());
        if self.buf[l3] >> 4 != 6 {
            return;
        }
        let mut sum = u32::from(len) + 17;
        sum += ones_sum(&self.buf[l3 + 8..l3 + 40]);
        sum += ones_sum(&self.buf[at..]);
        while sum > 0xffff {
            sum = (sum & 0xffff) + (sum >> 16);
        }
        let check = match !(sum as u16) {
            0 => 0xffff,
            c => c,
        };
        self.buf[at + 6..at + 8].copy_from_slice(&check.to_be_bytes());
    }

    /// Starts an IKE payload; returns its offset for [`Builder::end_payload`].
    fn begin_payload(&mut self, next: u8) -> usize {
        let at = self.buf.len();
        self.buf.extend_from_slice(&[next, 0, 0, 0]);
        at
    }

    fn end_payload(&mut self, at: usize) {
        let len = (self.buf.len() - at) as u16;
        self.buf[at + 2..at + 4].copy_from_slice(&len.to_be_bytes());
    }

    /// A payload whose body is `len` random bytes.
    fn random_payload(&mut self, rng: &mut Rng, next: u8, len: usize) {
        let at = self.begin_payload(next);
        self.random(rng, len);
        self.end_payload(at);
    }

    fn bytes_payload(&mut self, next: u8, body: &[u8]) {
        let at = self.begin_payload(next);
        self.buf.extend_from_slice(body);
        self.end_payload(at);
    }
}

/// The 16-bit words of `data` summed (an odd last byte padded with zero), not yet folded.
fn ones_sum(data: &[u8]) -> u32 {
    let mut chunks = data.chunks_exact(2);
    let mut sum: u32 = chunks
        .by_ref()
        .map(|w| u32::from(u16::from_be_bytes([w[0], w[1]])))
        .sum();
    if let [last] = chunks.remainder() {
        sum += u32::from(*last) << 8;
    }
    sum
}

/// NAT-D hash: SHA-1 over both SPIs (IKEv2) or cookies (IKEv1), the address and the port.
fn nat_hash(spi_i: u64, spi_r: u64, ip: Ip, port: u16) -> [u8; 20] {
    let mut h = Sha1::new();
    h.update(spi_i.to_be_bytes());
    h.update(spi_r.to_be_bytes());
    h.update(ip.bytes());
    h.update(port.to_be_bytes());
    h.finalize().into()
}

// IKE payload type numbers (RFC 7296 section 3.2; RFC 2408 section 3.1; RFC 3947).
const V2_SA: u8 = 33;
const V2_KE: u8 = 34;
const V2_NOTIFY: u8 = 41;
const V2_NONCE: u8 = 40;
const V2_VENDOR: u8 = 43;
const V2_SK: u8 = 46;
const V1_SA: u8 = 1;
const V1_KE: u8 = 4;
const V1_ID: u8 = 5;
const V1_HASH: u8 = 8;
const V1_NONCE: u8 = 10;
const V1_VENDOR: u8 = 13;
const V1_NAT_D: u8 = 20;
const NAT_DETECTION_SOURCE_IP: u16 = 16388;
const NAT_DETECTION_DESTINATION_IP: u16 = 16389;
const NO_PROPOSAL_CHOSEN: u16 = 14;
const RFC3947_VENDOR_ID: [u8; 16] = [
    0x4a, 0x13, 0x1c, 0x81, 0x07, 0x03, 0x58, 0x45, 0x5c, 0x57, 0x28, 0xf2, 0x0e, 0x95, 0x45, 0x2f,
];
const STRONGSWAN_VENDOR_ID: [u8; 16] = [
    0x88, 0x2f, 0xe5, 0x6d, 0x6f, 0xd2, 0x0d, 0xbc, 0x22, 0x86, 0x61, 0x2e, 0x40, 0x30, 0x3f, 0xbe,
];

/// The whole generator state.
struct Gen {
    args: Args,
    rng: Rng,
    b: Builder,
    tunnels: Vec<Tunnel>,
    ts: i64,
    gap_ns: u64,
    rekey_every: u64,
    counts: [u64; 4],
}

impl Gen {
    fn new(args: Args) -> Gen {
        let mut rng = Rng(args.seed ^ 0x6970_7365_636d_6f6e);
        let b = Builder::new(&mut rng);
        let tunnels = (0..args.tunnels.max(1))
            .map(|i| Tunnel::new(i, &mut rng, args.esp_only))
            .collect();
        let share = args.packets / u64::from(args.tunnels.max(1));
        let rekey_every = if args.rekey_every > 0 {
            args.rekey_every
        } else {
            (share / 3).max(50)
        };
        Gen {
            gap_ns: 1_000_000_000 / args.rate.max(1),
            args,
            rng,
            b,
            tunnels,
            ts: 1_700_000_000_000_000_000,
            rekey_every,
            counts: [0; 4],
        }
    }

    /// Builds the next packet into `self.b.buf`.
    fn next_packet(&mut self) {
        self.ts += self.rng.below(2 * self.gap_ns + 1) as i64;
        let t = self.rng.below(self.tunnels.len() as u64) as usize;
        if self.rng.below(100) < u64::from(self.args.background) || self.tunnels[t].dead {
            self.counts[3] += 1;
            return self.background();
        }
        // Taken out for the duration of the step so that it and `self` can both be borrowed.
        let mut tunnels = std::mem::take(&mut self.tunnels);
        let tunnel = &mut tunnels[t];
        if tunnel.established() && tunnel.esp_since_rekey >= self.rekey_every {
            tunnel.script = if tunnel.v1 { V1_REKEY } else { V2_REKEY };
            tunnel.pos = 0;
            tunnel.esp_since_rekey = 0;
        }
        if tunnel.established() {
            self.counts[if tunnel.ah { 2 } else { 1 }] += 1;
            self.protected(tunnel);
        } else {
            self.counts[0] += 1;
            self.ike_step(tunnel);
        }
        self.tunnels = tunnels;
    }

    /// Sends the tunnel's next scripted IKE message.
    fn ike_step(&mut self, t: &mut Tunnel) {
        let msg = t.script[t.pos];
        t.pos += 1;
        if msg.installs_sas() {
            t.spis = [self.rng.nonzero_u32(), self.rng.nonzero_u32()];
            t.seqs = [1, 1];
        }
        if matches!(msg, Msg::Refuse)
            || (t.pos == t.script.len() && std::ptr::eq(t.script, UNANSWERED))
        {
            t.dead = true;
        }
        if t.spi_r == 0 && msg.sent_by_responder() {
            t.spi_r = self.rng.next().max(1);
        }
        let port = if t.nat && !matches!(msg, Msg::Init(_) | Msg::Refuse | Msg::Main(1..=4)) {
            4500
        } else {
            500
        };
        let (src, dst, sport, dport) = if msg.sent_by_responder() {
            (t.resp, t.init, port, t.init_port(port))
        } else {
            (t.init, t.resp, t.init_port(port), port)
        };
        let l3 = self.b.ip(src, dst, 17);
        let udp = self.b.udp(sport, dport);
        if port == 4500 {
            self.b.buf.extend_from_slice(&[0; 4]);
        }
        self.ike_message(t, msg);
        self.b.finish_udp(udp, l3);
        self.b.finish_ip(l3);
    }

    /// The ISAKMP header and payloads of one message.
    fn ike_message(&mut self, t: &mut Tunnel, msg: Msg) {
        let (exchange, first, flags, id) = self.header_fields(t, msg);
        let spi_r = if matches!(msg, Msg::Init(false) | Msg::Main(1)) {
            0
        } else {
            t.spi_r
        };
        let at = self.b.buf.len();
        self.b.buf.extend_from_slice(&t.spi_i.to_be_bytes());
        self.b.buf.extend_from_slice(&spi_r.to_be_bytes());
        let version = if t.v1 { 0x10 } else { 0x20 };
        self.b
            .buf
            .extend_from_slice(&[first, version, exchange, flags]);
        self.b.buf.extend_from_slice(&id.to_be_bytes());
        self.b.buf.extend_from_slice(&[0; 4]);
        match msg {
            Msg::Init(_) => self.v2_init(t, msg.sent_by_responder()),
            Msg::Refuse => self.v2_notify(NO_PROPOSAL_CHOSEN, 0, &[]),
            Msg::Main(n) => self.v1_main(t, n),
            _ => self.encrypted_body(msg),
        }
        let len = (self.b.buf.len() - at) as u32;
        self.b.buf[at + 24..at + 28].copy_from_slice(&len.to_be_bytes());
    }

    /// Exchange type, first payload, flags and message ID of a message.
    fn header_fields(&mut self, t: &mut Tunnel, msg: Msg) -> (u8, u8, u8, u32) {
        let v2_flags = |resp: bool| if resp { 0x20 } else { 0x08 };
        let v2_id = |t: &mut Tunnel, resp: bool| {
            if !resp {
                t.msg_id += 1;
            }
            t.msg_id
        };
        match msg {
            Msg::Init(r) => (34, V2_SA, v2_flags(r), 0),
            Msg::Refuse => (34, V2_NOTIFY, 0x20, 0),
            Msg::Auth(r) => (35, V2_SK, v2_flags(r), v2_id(t, r)),
            Msg::Child(r) => (36, V2_SK, v2_flags(r), v2_id(t, r)),
            Msg::Delete(r) => (37, V2_SK, v2_flags(r), v2_id(t, r)),
            Msg::Main(n) => (
                2,
                [V1_SA, V1_SA, V1_KE, V1_KE, V1_ID, V1_ID][usize::from(n - 1)],
                u8::from(n >= 5),
                0,
            ),
            Msg::Quick(n) => {
                if n == 1 {
                    t.quick_id = self.rng.nonzero_u32();
                }
                (32, V1_HASH, 1, t.quick_id)
            }
            Msg::V1Delete => (5, V1_HASH, 1, self.rng.nonzero_u32()),
        }
    }

    /// IKE_SA_INIT: SA, KE, Nonce, the two NAT detection notifies, a vendor ID.
    fn v2_init(&mut self, t: &Tunnel, resp: bool) {
        let sa = self.b.begin_payload(V2_KE);
        self.v2_proposal();
        self.b.end_payload(sa);
        let ke = self.b.begin_payload(V2_NONCE);
        self.b.buf.extend_from_slice(&[0, 19, 0, 0]);
        self.b.random(&mut self.rng, 64);
        self.b.end_payload(ke);
        self.b.random_payload(&mut self.rng, V2_NOTIFY, 32);
        let spi_r = if resp { t.spi_r } else { 0 };
        let (here, there) = if resp {
            ((t.resp, 500), (t.init, t.init_port(500)))
        } else {
            ((t.private, 500), (t.resp, 500))
        };
        let src = nat_hash(t.spi_i, spi_r, here.0, here.1);
        let dst = nat_hash(t.spi_i, spi_r, there.0, there.1);
        self.v2_notify(NAT_DETECTION_SOURCE_IP, V2_NOTIFY, &src);
        self.v2_notify(NAT_DETECTION_DESTINATION_IP, V2_VENDOR, &dst);
        self.b.bytes_payload(0, &STRONGSWAN_VENDOR_ID);
    }

    /// One IKE proposal: AES-CBC-128, HMAC-SHA2-256-128, PRF-HMAC-SHA2-256, group 19.
    fn v2_proposal(&mut self) {
        let transforms: [(u8, u16, bool); 4] =
            [(1, 12, true), (3, 12, false), (2, 5, false), (4, 19, false)];
        let at = self.b.buf.len();
        self.b
            .buf
            .extend_from_slice(&[0, 0, 0, 0, 1, 1, 0, transforms.len() as u8]);
        for (k, (ty, id, keylen)) in transforms.into_iter().enumerate() {
            let last = if k + 1 == transforms.len() { 0 } else { 3 };
            let len: u16 = if keylen { 12 } else { 8 };
            self.b.buf.extend_from_slice(&[last, 0]);
            self.b.buf.extend_from_slice(&len.to_be_bytes());
            self.b.buf.extend_from_slice(&[ty, 0]);
            self.b.buf.extend_from_slice(&id.to_be_bytes());
            if keylen {
                self.b.buf.extend_from_slice(&[0x80, 0x0e, 0, 128]);
            }
        }
        let len = (self.b.buf.len() - at) as u16;
        self.b.buf[at + 2..at + 4].copy_from_slice(&len.to_be_bytes());
    }

    /// An IKEv2 Notify payload with no SPI.
    fn v2_notify(&mut self, kind: u16, next: u8, data: &[u8]) {
        let at = self.b.begin_payload(next);
        self.b.buf.extend_from_slice(&[0, 0]);
        self.b.buf.extend_from_slice(&kind.to_be_bytes());
        self.b.buf.extend_from_slice(data);
        self.b.end_payload(at);
    }

    /// Main Mode: SA with vendor IDs (1, 2), KE, Nonce and NAT-D (3, 4), encrypted ID and
    /// HASH (5, 6).
    fn v1_main(&mut self, t: &Tunnel, n: u8) {
        match n {
            1 | 2 => {
                let sa = self.b.begin_payload(V1_VENDOR);
                self.v1_sa();
                self.b.end_payload(sa);
                self.b.bytes_payload(0, &RFC3947_VENDOR_ID);
            }
            3 | 4 => {
                self.b.random_payload(&mut self.rng, V1_NONCE, 256);
                self.b.random_payload(&mut self.rng, V1_NAT_D, 32);
                let resp = n == 4;
                let (here, there) = if resp {
                    ((t.resp, 500), (t.init, t.init_port(500)))
                } else {
                    ((t.private, 500), (t.resp, 500))
                };
                // RFC 3947 section 3.2: the remote end's hash first, then the local one.
                let remote = nat_hash(t.spi_i, t.spi_r, there.0, there.1);
                let local = nat_hash(t.spi_i, t.spi_r, here.0, here.1);
                self.b.bytes_payload(V1_NAT_D, &remote);
                self.b.bytes_payload(0, &local);
            }
            _ => self.b.random(&mut self.rng, 80),
        }
    }

    /// An ISAKMP SA payload body: DOI IPsec, one proposal, one Oakley transform
    /// (AES-128, SHA-1, pre-shared key, group 14, 8 hours).
    fn v1_sa(&mut self) {
        self.b.buf.extend_from_slice(&[0, 0, 0, 1, 0, 0, 0, 1]);
        let prop = self.b.begin_payload(0);
        self.b.buf.extend_from_slice(&[1, 1, 0, 1]);
        let tr = self.b.begin_payload(0);
        self.b.buf.extend_from_slice(&[1, 1, 0, 0]);
        for (attr, value) in [
            (1u16, 7u16),
            (14, 128),
            (2, 2),
            (3, 1),
            (4, 14),
            (11, 1),
            (12, 28_800),
        ] {
            self.b.buf.extend_from_slice(&(0x8000 | attr).to_be_bytes());
            self.b.buf.extend_from_slice(&value.to_be_bytes());
        }
        self.b.end_payload(tr);
        self.b.end_payload(prop);
    }

    /// The body of an encrypted message: an SK payload (IKEv2) or bare ciphertext (IKEv1).
    fn encrypted_body(&mut self, msg: Msg) {
        let (inner_first, len) = match msg {
            Msg::Auth(_) => (35, 400 + self.rng.below(800) as usize),
            Msg::Child(_) => (V2_SA, 300 + self.rng.below(100) as usize),
            Msg::Delete(_) => (42, 60),
            Msg::Quick(_) => {
                let len = 16 * (4 + self.rng.below(20) as usize);
                return self.b.random(&mut self.rng, len);
            }
            _ => return self.b.random(&mut self.rng, 80),
        };
        self.b.random_payload(&mut self.rng, inner_first, len);
    }

    /// An ESP or AH packet in one direction, with occasional loss and replay.
    fn protected(&mut self, t: &mut Tunnel) {
        t.esp_since_rekey += 1;
        let dir = self.rng.below(2) as usize;
        if self.rng.permille(self.args.loss_permille) {
            t.seqs[dir] += 1 + self.rng.below(3) as u32;
        }
        let replay = t.seqs[dir] > 1 && self.rng.permille(self.args.replay_permille);
        let seq = if replay { t.seqs[dir] - 1 } else { t.seqs[dir] };
        t.seqs[dir] += u32::from(!replay);
        let (src, dst) = if dir == 0 {
            (t.init, t.resp)
        } else {
            (t.resp, t.init)
        };
        let body = self.esp_body_len();
        let proto = if t.ah {
            51
        } else if t.nat {
            17
        } else {
            50
        };
        let l3 = self.b.ip(src, dst, proto);
        if t.ah {
            self.b.buf.extend_from_slice(&[6, 4, 0, 0]);
        }
        let udp = t.nat.then(|| {
            let (sport, dport) = if dir == 0 {
                (t.init_port(4500), 4500)
            } else {
                (4500, t.init_port(4500))
            };
            self.b.udp(sport, dport)
        });
        self.b.buf.extend_from_slice(&t.spis[dir].to_be_bytes());
        self.b.buf.extend_from_slice(&seq.to_be_bytes());
        self.b.random(&mut self.rng, body);
        if let Some(at) = udp {
            self.b.finish_udp(at, l3);
        }
        self.b.finish_ip(l3);
    }

    /// Realistic sizes: bulk near the MTU, small acknowledgements, some in between.
    fn esp_body_len(&mut self) -> usize {
        match self.rng.below(100) {
            0..=39 => self.rng.range(1360, 1420) as usize,
            40..=79 => self.rng.range(60, 140) as usize,
            _ => self.rng.range(140, 1200) as usize,
        }
    }

    /// TCP 443, DNS or ping between hosts of the tunnels' networks.
    fn background(&mut self) {
        let a = Ip::nth(false, 172, self.rng.below(65_536) as u32);
        let b = Ip::nth(false, 203, self.rng.below(4096) as u32);
        match self.rng.below(10) {
            0..=6 => {
                let l3 = self.b.ip(a, b, 6);
                let sport = 1024 + self.rng.below(60_000) as u16;
                self.b.buf.extend_from_slice(&sport.to_be_bytes());
                self.b.buf.extend_from_slice(&[
                    0x01, 0xbb, 0, 0, 0, 1, 0, 0, 0, 1, 0x50, 0x18, 0x01, 0xf6, 0, 0, 0, 0,
                ]);
                let len = self.esp_body_len();
                self.b.random(&mut self.rng, len);
                self.b.finish_ip(l3);
            }
            7 | 8 => {
                let l3 = self.b.ip(a, b, 17);
                let udp = self.b.udp(40_000 + self.rng.below(20_000) as u16, 53);
                self.b.random(&mut self.rng, 40);
                self.b.finish_udp(udp, l3);
                self.b.finish_ip(l3);
            }
            _ => {
                let l3 = self.b.ip(a, b, 1);
                self.b.buf.extend_from_slice(&[8, 0, 0, 0, 0, 1, 0, 1]);
                self.b.random(&mut self.rng, 56);
                self.b.finish_ip(l3);
            }
        }
    }
}

fn main() -> anyhow::Result<()> {
    let args = Args::parse();
    let out = args.out.clone();
    let file = File::create(&out).with_context(|| format!("creating {}", out.display()))?;
    let mut w = PcapWriter::new(
        BufWriter::with_capacity(4 << 20, file),
        PcapOptions::default(),
    )?;
    let packets = args.packets;
    let mut gen = Gen::new(args);
    let mut bytes = 0u64;
    for _ in 0..packets {
        gen.next_packet();
        bytes += gen.b.buf.len() as u64;
        w.write_packet(Timestamp(gen.ts), &gen.b.buf, 0)?;
    }
    w.into_inner()?;
    let [ike, esp, ah, bg] = gen.counts;
    eprintln!(
        "{}: {packets} packets ({ike} IKE, {esp} ESP, {ah} AH, {bg} background), {} tunnels, {:.0} B per frame",
        out.display(),
        gen.tunnels.len(),
        bytes as f64 / packets.max(1) as f64
    );
    Ok(())
}
