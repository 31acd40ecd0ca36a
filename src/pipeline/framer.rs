//! The reading side of a capture spread over worker threads ([`super::sharded`]): one
//! thread reads and decodes every frame once and hands each worker, in rounds, the TCP
//! segments and ICMP errors of the flows it owns.
//!
//! Why one reader. When every worker read and decoded the whole file and kept its own shard,
//! framing and decoding every frame N times cost a two-thread run 60% more CPU than one
//! thread on a mail relay's traffic (small packets, many short connections), and two
//! threads were only 1.1x faster than one. Here a frame is framed and decoded once; a worker
//! receives only what it analyses: the decoded headers of its segments, their payloads, and
//! a clock tick when another shard's segment moves the capture clock into a new second,
//! which is all a worker needs of frames it does not own (see the clock in
//! [`super::sharded`]).
//!
//! A payload of a classic pcap file is not copied: the batch holds the reader's chunk it lies
//! in ([`crate::capture::Chunk`]), which the reader does not write into again while it is
//! held. Copying them was a tenth of a two-thread run's CPU on a mail relay's traffic (the
//! capture's bytes once more). Payloads of pcapng files, whose reader borrows pcap-parser's
//! buffer, are still copied into the batch's own buffer.
//!
//! A round ends after [`ROUND_FRAMES`] frames, [`ROUND_BYTES`] bytes of payload or
//! [`ROUND_OPENINGS`] connection openings, whichever comes first; every worker gets a batch
//! for every round (empty or not), so the rounds of the workers cover the same frames and
//! the merge can put their flows in report order. Where rounds end changes nothing in the
//! report, only how much waits between threads.

use std::net::IpAddr;
use std::ops::Range;
use std::sync::Arc;
use std::sync::atomic::Ordering;
use std::sync::mpsc::{Receiver, SyncSender};

use super::{InputFacts, PROGRESS_EVERY};
use crate::capture::{CaptureError, CaptureReader, Chunk, Frame, SharedFrame, Stop};
use crate::decode::{Decoded, IcmpError, TcpFlags, TcpSegment};
use crate::flow::{Endpoint, EventMeta, FlowKey};

/// Frames per round at most (1,024, 2,048 and 4,096 ran alike on the mail-relay corpus; the
/// last held 20 MiB more). Rounds are the unit of hand-over between threads: larger ones
/// cost fewer wake-ups and sorts in the merge, smaller ones less memory in flight and a
/// quicker start for the workers.
pub(super) const ROUND_FRAMES: u64 = 2048;

/// Payload bytes per round at most (the capture bytes in flight): a round of jumbo or
/// offloaded segments ends early rather than hold 2,048 of them.
pub(super) const ROUND_BYTES: usize = 1 << 20;

/// Connection openings (SYN without ACK) per round at most. Under a SYN flood or a scan every
/// frame opens a connection and, the table being full, finishes another one: a round of
/// 1,024 of them meant 1,024 records waiting in each queue between the threads. Mail traffic
/// opens about 15 connections per 1,024 frames.
pub(super) const ROUND_OPENINGS: u32 = 128;

/// Where a held segment's payload is.
#[derive(Clone, Debug)]
enum Held {
    /// In the capture chunk `chunk` of the batch, at `range` (a classic pcap file: no copy).
    Shared { chunk: u32, range: Range<usize> },
    /// Copied into the batch's own buffer, at this range (pcapng, an empty payload).
    Copied(Range<usize>),
}

/// A decoded TCP segment whose payload its batch holds.
#[derive(Clone, Debug)]
pub(super) struct HeldSegment {
    src: IpAddr,
    dst: IpAddr,
    src_port: u16,
    dst_port: u16,
    seq: u32,
    ack: u32,
    flags: TcpFlags,
    missing_payload: u32,
    payload: Held,
}

/// What a worker is handed of one frame.
#[derive(Clone, Debug)]
pub(super) enum Item {
    /// A segment of another shard moved the capture clock into a new second at this frame.
    Tick(EventMeta),
    /// A segment of this shard.
    Segment(HeldSegment, EventMeta),
    /// An ICMP error quoting a connection of this shard.
    Icmp(IcmpError, EventMeta),
}

/// One worker's part of one round, in frame order.
#[derive(Debug, Default)]
pub(super) struct Batch {
    pub items: Vec<Item>,
    payload: Vec<u8>,
    /// The capture chunks the round's payloads lie in, in frame order.
    chunks: Vec<Chunk>,
}

impl Batch {
    /// Holds `seg`, whose frame is `frame`: by reference to the frame's chunk when it has
    /// one and the payload lies in it, else by copy.
    fn push_segment(&mut self, seg: &TcpSegment<'_>, meta: EventMeta, frame: &Frame<'_>) {
        let payload = match frame
            .chunk
            .and_then(|c| in_chunk(c, frame.data, seg.payload))
        {
            Some((chunk, range)) if !range.is_empty() => Held::Shared {
                chunk: self.chunk_index(chunk),
                range,
            },
            _ => {
                let start = self.payload.len();
                self.payload.extend_from_slice(seg.payload);
                Held::Copied(start..self.payload.len())
            }
        };
        let held = HeldSegment {
            src: seg.src,
            dst: seg.dst,
            src_port: seg.src_port,
            dst_port: seg.dst_port,
            seq: seg.seq,
            ack: seg.ack,
            flags: seg.flags,
            missing_payload: seg.missing_payload,
            payload,
        };
        self.items.push(Item::Segment(held, meta));
    }

    /// Frames come in file order, so a chunk is new unless it is the last one held.
    fn chunk_index(&mut self, chunk: &Chunk) -> u32 {
        if !self
            .chunks
            .last()
            .is_some_and(|last| Arc::ptr_eq(last, chunk))
        {
            self.chunks.push(Arc::clone(chunk));
        }
        // A round holds at most ROUND_FRAMES frames, far below u32::MAX chunks.
        (self.chunks.len() - 1) as u32
    }

    /// The segment as the decoder gave it.
    pub fn segment(&self, held: &HeldSegment) -> TcpSegment<'_> {
        TcpSegment {
            src: held.src,
            dst: held.dst,
            src_port: held.src_port,
            dst_port: held.dst_port,
            seq: held.seq,
            ack: held.ack,
            flags: held.flags,
            payload: match &held.payload {
                Held::Shared { chunk, range } => self
                    .chunks
                    .get(*chunk as usize)
                    .and_then(|c| c.get(range.clone()))
                    .unwrap_or_default(),
                Held::Copied(range) => self.payload.get(range.clone()).unwrap_or_default(),
            },
            missing_payload: held.missing_payload,
        }
    }

    /// Emptied for the next round; a buffer a burst of large segments grew is given back.
    pub fn clear(&mut self) {
        self.items.clear();
        self.payload.clear();
        // The reading thread refills a chunk once no batch holds it.
        self.chunks.clear();
        if self.payload.capacity() > 4 * ROUND_BYTES {
            self.payload.shrink_to(ROUND_BYTES);
        }
    }
}

/// Where `payload`, a part of `data` (a frame's bytes, at `frame.offset` in its chunk), lies
/// in the chunk; None when it is not a part of `data` (a payload the decoder put together).
fn in_chunk<'a>(
    frame: SharedFrame<'a>,
    data: &[u8],
    payload: &[u8],
) -> Option<(&'a Chunk, Range<usize>)> {
    // Addresses only, never dereferenced: the payload is inside the frame's bytes or not.
    let at = (payload.as_ptr() as usize).checked_sub(data.as_ptr() as usize)?;
    if at.checked_add(payload.len())? > data.len() {
        return None;
    }
    let start = frame.offset.checked_add(at)?;
    let range = start..start.checked_add(payload.len())?;
    frame.chunk.get(range.clone())?;
    Some((frame.chunk, range))
}

/// The shard that owns a connection: a pure function of its 5-tuple, either direction.
///
/// A multiply-shift range reduction rather than `hash % shards`: the 64-bit division was a
/// fifth of the reading loop's own time. The hash is remixed first because the worker's
/// flow table hashes the same key with the same function (low bits pick the bucket, the top
/// seven the tag): a shard taken from either would leave every key of a shard alike there.
pub(super) fn owner(key: &FlowKey, shards: usize) -> usize {
    let h = key.shard_hash();
    let mixed = (h ^ (h >> 32)).wrapping_mul(0x9e37_79b9_7f4a_7c15);
    // The product's high word is below `shards`, a usize.
    ((u128::from(mixed) * shards as u128) >> 64) as usize
}

/// What the reading thread hands back when its input ends.
pub(super) struct ReadOutcome {
    pub reader: CaptureReader,
    pub facts: InputFacts,
    /// The error that ended the input early, if any.
    pub error: Option<CaptureError>,
}

/// Progress of the reading, shown by the calling thread (the observer stays there).
#[derive(Default)]
pub(super) struct Progress {
    pub input_bytes: std::sync::atomic::AtomicU64,
    pub packets: std::sync::atomic::AtomicU64,
}

/// The reading thread of one capture.
pub(super) struct Framer<'a> {
    pub stop: Stop,
    pub progress: &'a Progress,
    /// One sender per worker, in shard order.
    pub to: Vec<SyncSender<Batch>>,
    /// Batches the workers are done with, to be filled again.
    pub spare: Receiver<Batch>,
}

impl Framer<'_> {
    /// Reads the capture to its end (or a stop, or until the workers hang up), handing out
    /// rounds. Dropping the senders at the end tells the workers the input is over.
    pub fn run(self, mut reader: CaptureReader) -> ReadOutcome {
        let shards = self.to.len().max(1);
        let mut batches: Vec<Batch> = (0..shards).map(|_| self.fresh()).collect();
        let mut facts = InputFacts::new();
        let mut error = None;
        // The capture clock in whole seconds, as every flow table keeps it (TCP segments only).
        let mut clock = i64::MIN;
        let mut frames = 0u64;
        let mut bytes = 0usize;
        let mut openings = 0u32;
        loop {
            match reader.next_frame() {
                Ok(Some(frame)) => {
                    match facts.frame(&frame) {
                        Some((Decoded::Tcp(seg), meta)) => {
                            let own = owner(&FlowKey::of(&seg), shards);
                            if meta.ts.secs > clock {
                                clock = meta.ts.secs;
                                for (i, b) in batches.iter_mut().enumerate() {
                                    if i != own {
                                        b.items.push(Item::Tick(meta));
                                    }
                                }
                            }
                            bytes += seg.payload.len();
                            openings += u32::from(seg.flags.syn() && !seg.flags.ack());
                            if let Some(b) = batches.get_mut(own) {
                                b.push_segment(&seg, meta, &frame);
                            }
                        }
                        // The error goes to the shard that owns the connection it quotes. It
                        // moves no clock and closes nothing, in any shard.
                        Some((Decoded::IcmpError(err), meta)) => {
                            let key = FlowKey::new(
                                Endpoint {
                                    ip: err.src,
                                    port: err.src_port,
                                },
                                Endpoint {
                                    ip: err.dst,
                                    port: err.dst_port,
                                },
                            );
                            if let Some(b) = batches.get_mut(owner(&key, shards)) {
                                b.items.push(Item::Icmp(err, meta));
                            }
                        }
                        None => {}
                    }
                    if facts.packets % PROGRESS_EVERY == 0 {
                        self.progress
                            .input_bytes
                            .store(reader.input_position(), Ordering::Relaxed);
                        self.progress
                            .packets
                            .store(facts.packets, Ordering::Relaxed);
                    }
                    frames += 1;
                    if frames >= ROUND_FRAMES || bytes >= ROUND_BYTES || openings >= ROUND_OPENINGS
                    {
                        frames = 0;
                        bytes = 0;
                        openings = 0;
                        if !self.hand_out(&mut batches) {
                            break;
                        }
                        if self.stop.requested() {
                            facts.stopped(&reader);
                            break;
                        }
                    }
                }
                Ok(None) => break,
                Err(e) => {
                    error = Some(e);
                    break;
                }
            }
        }
        if frames > 0 {
            self.hand_out(&mut batches);
        }
        ReadOutcome {
            reader,
            facts,
            error,
        }
    }

    fn fresh(&self) -> Batch {
        self.spare.try_recv().unwrap_or_default()
    }

    /// Sends every worker its batch of the round; `false` once a worker has hung up (the
    /// merge stopped: its output failed).
    fn hand_out(&self, batches: &mut [Batch]) -> bool {
        for (to, batch) in self.to.iter().zip(batches.iter_mut()) {
            let full = std::mem::replace(batch, self.fresh());
            if to.send(full).is_err() {
                return false;
            }
        }
        true
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::net::Ipv4Addr;

    fn key(i: u32) -> FlowKey {
        let client = Endpoint {
            ip: IpAddr::V4(Ipv4Addr::from_bits(0x0a00_0000 | (i >> 8))),
            port: 1024 + (i & 0xff) as u16,
        };
        let server = Endpoint {
            ip: IpAddr::V4(Ipv4Addr::new(192, 0, 2, 25)),
            port: 25,
        };
        FlowKey::new(client, server)
    }

    /// Clients of one server on consecutive ports and addresses, as a relay sees them: every
    /// shard gets its share (a shard taking more than 10% over it would idle the others).
    #[test]
    fn owners_spread_evenly_over_the_shards() {
        for shards in 1..=8 {
            let mut counts = vec![0u32; shards];
            let n = 40_000u32;
            for i in 0..n {
                let own = owner(&key(i), shards);
                assert!(own < shards);
                if let Some(c) = counts.get_mut(own) {
                    *c += 1;
                }
            }
            let fair = n / shards as u32;
            for &c in &counts {
                assert!(c.abs_diff(fair) < fair / 10, "{shards} shards: {counts:?}");
            }
        }
    }
}
