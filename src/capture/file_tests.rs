//! Tests of the file reader over files built byte by byte with [`super::writer`].

use std::io::Write;
use std::path::{Path, PathBuf};

use flate2::write::GzEncoder;

use super::writer::{PcapOptions, PcapWriter, PcapngWriter};
use super::{open_file, CaptureError, FrameSource};
use crate::wire::{LinkType, Timestamp};

/// An owned copy of what a frame carried, for comparisons after the borrow ends.
#[derive(Debug, Clone, PartialEq, Eq)]
struct Got {
    number: u64,
    ts: Timestamp,
    link: LinkType,
    data: Vec<u8>,
    orig_len: u32,
}

/// Reads every frame; returns them and the error that ended the read, if any.
fn read_all(path: &Path) -> (Vec<Got>, Option<CaptureError>) {
    let mut src = open_file(path).expect("open");
    let mut out = Vec::new();
    loop {
        match src.next_frame() {
            Ok(Some(f)) => out.push(Got {
                number: f.number,
                ts: f.ts,
                link: f.link,
                data: f.data.to_vec(),
                orig_len: f.orig_len,
            }),
            Ok(None) => return (out, None),
            Err(e) => return (out, Some(e)),
        }
    }
}

fn packet(i: usize, len: usize) -> Vec<u8> {
    (0..len).map(|k| (i * 31 + k) as u8).collect()
}

/// Sample times with sub-microsecond parts, to tell resolutions apart.
fn times() -> [Timestamp; 3] {
    [
        Timestamp::from_parts(1_700_000_000, 123_456_789),
        Timestamp::from_parts(1_700_000_001, 5),
        Timestamp::from_parts(1_700_000_002, 999_999_999),
    ]
}

fn write_pcap(path: &Path, opts: PcapOptions) -> Vec<u8> {
    let mut w = PcapWriter::new(Vec::new(), opts).unwrap();
    for (i, ts) in times().into_iter().enumerate() {
        w.write_packet(ts, &packet(i, 60 + i * 100), 1500).unwrap();
    }
    let bytes = w.into_inner().unwrap();
    std::fs::write(path, &bytes).unwrap();
    bytes
}

fn truncate_to_micros(ts: Timestamp) -> Timestamp {
    Timestamp(ts.0 - ts.0 % 1000)
}

fn check_pcap(big_endian: bool, nanos: bool) {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("t.pcap");
    write_pcap(
        &path,
        PcapOptions {
            big_endian,
            nanos,
            linktype: 101,
            snaplen: 65535,
        },
    );
    let (frames, err) = read_all(&path);
    assert!(err.is_none(), "{err:?}");
    assert_eq!(frames.len(), 3);
    for (i, (f, ts)) in frames.iter().zip(times()).enumerate() {
        assert_eq!(f.number, i as u64 + 1);
        assert_eq!(f.link, LinkType::Raw);
        assert_eq!(f.data, packet(i, 60 + i * 100));
        assert_eq!(f.orig_len, 1500);
        assert_eq!(f.ts, if nanos { ts } else { truncate_to_micros(ts) });
    }
}

#[test]
fn pcap_all_byte_orders_and_resolutions() {
    for big_endian in [false, true] {
        for nanos in [false, true] {
            check_pcap(big_endian, nanos);
        }
    }
}

#[test]
fn pcap_magic_is_in_file_byte_order() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("be.pcap");
    let opts = PcapOptions {
        big_endian: true,
        nanos: true,
        ..PcapOptions::default()
    };
    let bytes = write_pcap(&path, opts);
    assert_eq!(&bytes[..4], &[0xa1, 0xb2, 0x3c, 0x4d]);
}

/// A pcapng file with three interfaces of different link types and resolutions, every
/// packet block kind, an unknown block, and (optionally) a second section in the other
/// byte order.
fn write_pcapng(big_endian: bool, second_section: bool) -> Vec<u8> {
    let [t0, t1, t2] = times();
    let mut w = PcapngWriter::new(Vec::new(), big_endian).unwrap();
    w.add_interface(1, 0, None).unwrap();
    w.add_interface(101, 0, Some(9)).unwrap();
    w.add_interface(113, 0, Some(0x80 | 30)).unwrap();
    w.write_packet(0, t0, &packet(0, 60), 60).unwrap();
    w.block(0x0BAD_0001, &[1, 2, 3, 4, 5]).unwrap();
    w.write_packet(1, t1, &packet(1, 61), 200).unwrap();
    w.write_packet(2, t2, &packet(2, 62), 62).unwrap();
    w.write_simple(&packet(3, 63)).unwrap();
    w.block(2, &obsolete_packet_block(big_endian, 1, t2, &packet(4, 64)))
        .unwrap();
    let mut bytes = w.into_inner().unwrap();
    if second_section {
        let mut w = PcapngWriter::new(Vec::new(), !big_endian).unwrap();
        w.add_interface(228, 0, None).unwrap();
        w.write_packet(0, t0, &packet(5, 65), 65).unwrap();
        bytes.extend(w.into_inner().unwrap());
    }
    bytes
}

/// Body of an obsolete Packet Block (type 2): a 16-bit interface id and a drop count.
fn obsolete_packet_block(be: bool, iface: u16, ts: Timestamp, data: &[u8]) -> Vec<u8> {
    let units = ts.0 as u64; // interface 1 has nanosecond resolution
    let u16b = |v: u16| if be { v.to_be_bytes() } else { v.to_le_bytes() };
    let u32b = |v: u32| if be { v.to_be_bytes() } else { v.to_le_bytes() };
    let mut body = Vec::new();
    body.extend_from_slice(&u16b(iface));
    body.extend_from_slice(&u16b(0));
    body.extend_from_slice(&u32b((units >> 32) as u32));
    body.extend_from_slice(&u32b(units as u32));
    body.extend_from_slice(&u32b(data.len() as u32));
    body.extend_from_slice(&u32b(data.len() as u32));
    body.extend_from_slice(data);
    body
}

fn check_pcapng(frames: &[Got]) {
    let [t0, t1, t2] = times();
    let want = [
        (LinkType::Ethernet, truncate_to_micros(t0), 60),
        (LinkType::Raw, t1, 200),
        (LinkType::LinuxSll, t2, 62),
        (LinkType::Ethernet, t2, 63),
        (LinkType::Raw, t2, 64),
    ];
    for (i, (link, ts, orig)) in want.into_iter().enumerate() {
        let f = &frames[i];
        assert_eq!(
            (f.number, f.link, f.orig_len),
            (i as u64 + 1, link, orig),
            "frame {}",
            i + 1
        );
        assert_eq!(f.data, packet(i, 60 + i), "frame {}", i + 1);
        assert!(
            (f.ts.0 - ts.0).abs() <= 1,
            "frame {}: {:?} vs {:?}",
            i + 1,
            f.ts,
            ts
        );
    }
}

#[test]
fn pcapng_both_byte_orders_every_block_kind() {
    let dir = tempfile::tempdir().unwrap();
    for big_endian in [false, true] {
        let path = dir.path().join(format!("t-{big_endian}.pcapng"));
        std::fs::write(&path, write_pcapng(big_endian, true)).unwrap();
        let (frames, err) = read_all(&path);
        assert!(err.is_none(), "{err:?}");
        assert_eq!(frames.len(), 6);
        check_pcapng(&frames);
        let last = &frames[5];
        assert_eq!(
            (last.number, last.link, last.data.clone()),
            (6, LinkType::Ipv4, packet(5, 65))
        );
    }
}

fn gzip(bytes: &[u8]) -> Vec<u8> {
    let mut enc = GzEncoder::new(Vec::new(), flate2::Compression::fast());
    enc.write_all(bytes).unwrap();
    enc.finish().unwrap()
}

#[test]
fn gzip_is_detected_by_magic_not_name() {
    let dir = tempfile::tempdir().unwrap();
    let ng = dir.path().join("looks-plain.pcapng");
    std::fs::write(&ng, gzip(&write_pcapng(false, false))).unwrap();
    let (frames, err) = read_all(&ng);
    assert!(err.is_none(), "{err:?}");
    check_pcapng(&frames);

    let plain = dir.path().join("plain.pcap");
    let bytes = write_pcap(&plain, PcapOptions::default());
    let gz = dir.path().join("t.pcap.gz");
    let compressed = gzip(&bytes);
    std::fs::write(&gz, &compressed).unwrap();
    let mut src = open_file(&gz).unwrap();
    let mut n = 0;
    while src.next_frame().unwrap().is_some() {
        n += 1;
    }
    assert_eq!(n, 3);
    assert_eq!(
        src.progress(),
        Some((compressed.len() as u64, compressed.len() as u64))
    );
}

#[test]
fn truncated_last_record_reports_its_frame_after_the_others() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("cut.pcap");
    let bytes = write_pcap(&path, PcapOptions::default());
    for cut in [5, 170, 120, 270] {
        std::fs::write(&path, &bytes[..bytes.len() - cut]).unwrap();
        let (frames, err) = read_all(&path);
        assert_eq!(frames.len(), 2, "cut {cut}");
        match err {
            Some(CaptureError::Record {
                frame: 3,
                ref path,
                ref detail,
            }) => {
                assert!(path.ends_with("cut.pcap"));
                assert!(detail.contains("ends inside"), "{detail}");
            }
            other => panic!("cut {cut}: {other:?}"),
        }
    }
    let ng = dir.path().join("cut.pcapng");
    let bytes = write_pcapng(true, false);
    std::fs::write(&ng, &bytes[..bytes.len() - 8]).unwrap();
    let (frames, err) = read_all(&ng);
    assert_eq!(frames.len(), 4);
    assert!(
        matches!(err, Some(CaptureError::Record { frame: 5, .. })),
        "{err:?}"
    );
}

#[test]
fn absurd_record_length_is_an_error_naming_file_and_frame() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("huge.pcap");
    let mut bytes = write_pcap(&path, PcapOptions::default());
    // The second record's header starts after the file header and the first record.
    let second = 24 + 16 + 60;
    bytes[second + 8..second + 12].copy_from_slice(&0x4000_0000u32.to_le_bytes());
    std::fs::write(&path, &bytes).unwrap();
    let (frames, err) = read_all(&path);
    assert_eq!(frames.len(), 1);
    let err = err.expect("an error");
    assert!(
        matches!(err, CaptureError::Record { frame: 2, .. }),
        "{err:?}"
    );
    let text = err.to_string();
    assert!(
        text.contains("huge.pcap") && text.contains("frame 2") && text.contains("1073741824"),
        "{text}"
    );
}

#[test]
fn pcapng_absurd_block_and_bad_trailer() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("bad.pcapng");
    let good = write_pcapng(false, false);
    // SHB is 28 bytes, then three IDBs (20, 32, 32); the first EPB follows.
    let epb = 28 + 20 + 32 + 32;
    let mut huge = good.clone();
    huge[epb + 4..epb + 8].copy_from_slice(&(64u32 << 20).to_le_bytes());
    std::fs::write(&path, &huge).unwrap();
    let (frames, err) = read_all(&path);
    assert!(frames.is_empty());
    assert!(
        matches!(err, Some(CaptureError::Record { frame: 1, .. })),
        "{err:?}"
    );

    let mut trailer = good;
    let epb_len = u32::from_le_bytes(trailer[epb + 4..epb + 8].try_into().unwrap()) as usize;
    trailer[epb + epb_len - 4] ^= 0x40;
    std::fs::write(&path, &trailer).unwrap();
    let (_, err) = read_all(&path);
    assert!(err.unwrap().to_string().contains("trailing length"));
}

fn open_err(path: &Path) -> String {
    match open_file(path) {
        Ok(_) => panic!("{} opened", path.display()),
        Err(e) => e.to_string(),
    }
}

#[test]
fn unreadable_inputs_give_one_clear_error() {
    let dir = tempfile::tempdir().unwrap();
    let p = |name: &str| -> PathBuf { dir.path().join(name) };
    std::fs::write(p("empty.pcap"), b"").unwrap();
    std::fs::write(p("text.pcap"), b"hello world, not a capture at all").unwrap();
    std::fs::write(p("short.pcap"), [0xd4, 0xc3, 0xb2]).unwrap();
    std::fs::write(p("header.pcap"), [0xd4, 0xc3, 0xb2, 0xa1, 2, 0, 4, 0]).unwrap();
    std::fs::write(p("empty.gz"), gzip(b"")).unwrap();
    let cases = [
        ("empty.pcap", "is empty"),
        ("text.pcap", "unknown magic number 6c6c6568"),
        ("short.pcap", "only 3 bytes"),
        ("header.pcap", "cut short"),
        ("empty.gz", "decompressed data is empty"),
        ("missing.pcap", "No such file"),
    ];
    for (name, want) in cases {
        let err = open_err(&p(name));
        assert!(err.contains(name) && err.contains(want), "{name}: {err}");
    }
    let err = open_err(dir.path());
    assert!(err.contains("directory"), "{err}");
}

#[test]
fn records_cross_buffer_refills() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("big.pcap");
    let file = std::io::BufWriter::new(std::fs::File::create(&path).unwrap());
    let mut w = PcapWriter::new(file, PcapOptions::default()).unwrap();
    let n = 3000;
    for i in 0..n {
        w.write_packet(Timestamp(i as i64 * 1000), &packet(i, 100 + i % 1400), 0)
            .unwrap();
    }
    w.into_inner().unwrap();
    let mut src = open_file(&path).unwrap();
    let mut count = 0;
    while let Some(f) = src.next_frame().unwrap() {
        assert_eq!(
            f.data,
            &packet(count, 100 + count % 1400)[..],
            "frame {}",
            f.number
        );
        count += 1;
    }
    assert_eq!(count, n);
    let size = std::fs::metadata(&path).unwrap().len();
    assert_eq!(src.progress(), Some((size, size)));
    assert_eq!(src.stats().received, n as u64);
}

#[test]
fn peek_shows_the_buffered_frames_ahead_without_consuming_them() {
    for big_endian in [false, true] {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("t.pcap");
        let opts = PcapOptions {
            big_endian,
            nanos: false,
            linktype: 101,
            snaplen: 65535,
        };
        write_pcap(&path, opts);
        let mut src = open_file(&path).expect("open");
        let first = src.next_frame().unwrap().unwrap().data.to_vec();
        assert_eq!(first, packet(0, 60));
        assert_eq!(src.peek(0), Some((LinkType::Raw, &packet(1, 160)[..])));
        assert_eq!(src.peek(1), Some((LinkType::Raw, &packet(2, 260)[..])));
        assert_eq!(src.peek(2), None, "past the last frame");
        let second = src.next_frame().unwrap().unwrap().data.to_vec();
        assert_eq!(second, packet(1, 160), "peeking consumed nothing");
    }
}
