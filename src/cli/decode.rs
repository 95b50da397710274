//! `ipsecmon decode FILE [--json]`: every IPsec-related frame of a capture, as JSON Lines
//! (DESIGN.md's `decode --json` contract) or as one readable line per frame.

use std::io::{self, BufWriter, IsTerminal, Write};
use std::path::PathBuf;

use anyhow::Context;
use clap::Args;
use indicatif::{ProgressBar, ProgressStyle};

use std::sync::Arc;

use crate::capture::{self, Frame, FrameSource};
use crate::cli::EXIT_OK;
use crate::decrypt::Decryptor;
use crate::keys::KeyTable;
use crate::wire::ike::{self, vendor::DraftNatdMemory};
use crate::wire::json::{self, Decoded};
use crate::wire::{summary, Decoder, Packet};

/// Files smaller than this get no progress bar: they are read before one would show.
const PROGRESS_MIN_BYTES: u64 = 16 << 20;
/// Frames between two progress bar updates.
const PROGRESS_EVERY: u64 = 4096;

/// Arguments of `ipsecmon decode`.
#[derive(Debug, Args)]
pub struct DecodeArgs {
    /// Capture file: pcap, pcapng, or a gzip of either.
    pub file: PathBuf,

    /// Write one JSON object per IPsec-related frame (JSON Lines) instead of text.
    #[arg(long)]
    pub json: bool,

    /// Key tables (a file or a directory) in Wireshark's or tcpdump's formats: encrypted
    /// IKE payloads and ESP packets they fit are shown decrypted.
    #[arg(long, env = "IPSECMON_KEYS")]
    pub keys: Option<PathBuf>,
}

/// Runs the command; returns the exit code. Unreadable input is an error naming the file
/// (and the frame, when reading stopped part-way); frames read before it are written.
pub fn run(args: DecodeArgs) -> anyhow::Result<u8> {
    let mut source = capture::open_file(&args.file)
        .with_context(|| "cannot decode: give a readable pcap or pcapng file".to_string())?;
    let stdout = io::stdout();
    let mut out = BufWriter::new(stdout.lock());
    let progress = progress_bar(&source);
    let keys = crate::cli::EngineArgs {
        keys: args.keys.clone(),
        ..Default::default()
    }
    .load_keys()?;
    let mut frames = FrameDecoder::with_keys(keys);
    let mut t0 = None;
    while let Some(frame) = source.next_frame()? {
        let number = frame.number;
        let start = *t0.get_or_insert(frame.ts.as_secs_f64());
        if let Some(value) = frames.decode(&frame) {
            if args.json {
                serde_json::to_writer(&mut out, &value).map_err(io::Error::from)?;
                out.write_all(b"\n")?;
            } else {
                writeln!(out, "{}", summary::line(&value, start))?;
            }
        }
        if let Some(bar) = progress.as_ref().filter(|_| number % PROGRESS_EVERY == 0) {
            bar.set_position(source.progress().map_or(0, |p| p.0));
        }
    }
    if let Some(bar) = progress {
        bar.finish_and_clear();
    }
    out.flush()?;
    Ok(EXIT_OK)
}

/// A byte-progress bar on stderr, only for large files and only when stderr is a terminal.
fn progress_bar(source: &impl FrameSource) -> Option<ProgressBar> {
    let (_, total) = source.progress()?;
    if total < PROGRESS_MIN_BYTES || !io::stderr().is_terminal() {
        return None;
    }
    let bar = ProgressBar::new(total);
    let style = ProgressStyle::with_template("{bar:40} {bytes}/{total_bytes} {eta}")
        .unwrap_or_else(|_| ProgressStyle::default_bar());
    bar.set_style(style);
    Some(bar)
}

/// The per-capture state of decoding: IP reassembly (inside the [`Decoder`]), which
/// IKEv1 SAs use the NAT-T drafts' payload numbering, and decryption when keys are given.
#[derive(Debug, Default)]
pub struct FrameDecoder {
    decoder: Decoder,
    natd: DraftNatdMemory,
    decrypt: Option<Decryptor>,
}

impl FrameDecoder {
    /// A decoder that decrypts with `keys`, when given.
    pub fn with_keys(keys: Option<Arc<KeyTable>>) -> Self {
        FrameDecoder {
            decrypt: keys.map(Decryptor::new),
            ..FrameDecoder::default()
        }
    }

    /// Decodes one frame into its JSON object; `None` when it is not IPsec-related.
    pub fn decode(&mut self, frame: &Frame<'_>) -> Option<serde_json::Value> {
        let packet = self
            .decoder
            .decode_numbered(frame.number, frame.link, frame.ts, frame.data);
        let decoded = match packet {
            Ok(Packet::Ike(datagram)) => {
                let ctx = self.natd.context(datagram.message);
                let mut message = ike::parse_message(datagram.message, ctx);
                let decrypt = match (&mut self.decrypt, &mut message) {
                    (Some(d), Ok(msg)) => d.ike(&datagram.addrs, datagram.message, msg, ctx),
                    _ => None,
                };
                if let Ok(msg) = &message {
                    self.natd.observe(msg);
                }
                Decoded::Ike {
                    datagram,
                    message,
                    ctx,
                    decrypt,
                }
            }
            Ok(Packet::Esp(packet)) => match self.decrypt.as_mut().and_then(|d| d.esp(&packet)) {
                Some(r) => Decoded::Esp {
                    packet,
                    result: r.map(|p| (p.summary(), p.verified)),
                },
                None => Decoded::Packet(Packet::Esp(packet)),
            },
            Ok(packet) => Decoded::Packet(packet),
            Err(e) => Decoded::Error(e),
        };
        json::render(frame.number, frame.ts, &decoded)
    }
}
