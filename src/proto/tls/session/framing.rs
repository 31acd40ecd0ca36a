//! Record framing: splits each direction's bytes into TLS (or SSLv2) records as they
//! arrive, across any chunking, and resynchronises after a gap.

use super::*;

/// A fixed-size buffer for the few record bodies read in clear (alerts, heartbeats).
#[derive(Clone, Copy, Debug, Default)]
pub(super) struct Small {
    pub(super) buf: [u8; SMALL_BODY],
    pub(super) len: usize,
}

impl Small {
    pub(super) fn push(&mut self, data: &[u8]) {
        let room = SMALL_BODY - self.len;
        let n = room.min(data.len());
        if let (Some(dst), Some(src)) = (self.buf.get_mut(self.len..self.len + n), data.get(..n)) {
            dst.copy_from_slice(src);
            self.len += n;
        }
    }
    pub(super) fn bytes(&self) -> &[u8] {
        self.buf.get(..self.len).unwrap_or_default()
    }
}

/// Where a direction's byte stream is between records.
#[derive(Clone, Copy, Debug)]
pub(super) enum Framing {
    /// Before a record: the first byte tells a TLS header from an SSLv2 one.
    Start,
    Header {
        buf: [u8; HEADER_LEN],
        have: usize,
    },
    Body {
        hdr: RecordHeader,
        remaining: u16,
        small: Small,
    },
    V2Header {
        buf: [u8; 3],
        have: usize,
    },
    V2Body {
        remaining: usize,
        keep: bool,
    },
    /// After a gap: looking for the next plausible record header. The last bytes of a chunk
    /// that may begin one are held (fewer than a header), so that a header split across
    /// chunks is found as it would be in one piece.
    Resync {
        held: [u8; HEADER_LEN],
        have: usize,
    },
    /// Not parsed any more (anomaly or not TLS).
    Stopped,
}

/// One resynchronisation step over `held` (bytes kept from earlier chunks, fewer than a
/// header) followed by `data`: the first position where a plausible record header starts.
/// Returns the bytes left to parse and the next framing state: a header (partly from `held`
/// when it straddles the chunks), or still resynchronising with the tail that may begin one.
fn resync<'a>(held: &[u8], data: &'a [u8]) -> (&'a [u8], Framing) {
    // Positions inside `held`: the header would continue into `data`.
    for i in 0..held.len() {
        let from_held = held.get(i..).unwrap_or_default();
        let want = HEADER_LEN - from_held.len();
        let mut window = [0u8; HEADER_LEN];
        let from_data = data.get(..want).unwrap_or(data);
        let len = from_held.len() + from_data.len();
        if let Some((a, b)) = window.split_at_mut_checked(from_held.len()) {
            a.copy_from_slice(from_held);
            if let Some(b) = b.get_mut(..from_data.len()) {
                b.copy_from_slice(from_data);
            }
        }
        let window = window.get(..len).unwrap_or_default();
        if len == HEADER_LEN && record::plausible_header(window) {
            let mut buf = [0; HEADER_LEN];
            if let Some(dst) = buf.get_mut(..from_held.len()) {
                dst.copy_from_slice(from_held);
            }
            // `data` is not consumed: the header state takes the rest of the header from it.
            let next = Framing::Header {
                buf,
                have: from_held.len(),
            };
            return (data, next);
        }
        if len < HEADER_LEN && record::plausible_header_prefix(window) {
            return (&[], resync_holding(window));
        }
    }
    for i in 0..data.len() {
        let rest = data.get(i..).unwrap_or_default();
        if rest.len() >= HEADER_LEN {
            if record::plausible_header(rest) {
                let next = Framing::Header {
                    buf: [0; HEADER_LEN],
                    have: 0,
                };
                return (rest, next);
            }
        } else if record::plausible_header_prefix(rest) {
            return (&[], resync_holding(rest));
        }
    }
    (&[], resync_holding(&[]))
}

/// Resynchronising, holding `tail` (shorter than a header).
fn resync_holding(tail: &[u8]) -> Framing {
    let mut held = [0; HEADER_LEN];
    let have = tail.len().min(HEADER_LEN - 1);
    if let (Some(dst), Some(src)) = (held.get_mut(..have), tail.get(..have)) {
        dst.copy_from_slice(src);
    }
    Framing::Resync { held, have }
}

impl TlsSession {
    /// Bytes of one direction, in order, from the first byte of TLS.
    pub fn feed(&mut self, dir: Direction, data: &[u8], meta: EventMeta) -> Interest {
        let d = dir.index();
        // An empty chunk is no event: the frame named for an undecided outcome must not
        // depend on how the bytes were cut.
        if !data.is_empty() {
            self.last_meta = meta;
        }
        let mut data = data;
        while !data.is_empty() {
            let framing = match self.dirs.get(d) {
                Some(s) => s.framing,
                None => break,
            };
            let next = match framing {
                Framing::Stopped => break,
                Framing::Resync { held, have } => {
                    let (rest, next) = resync(held.get(..have).unwrap_or_default(), data);
                    data = rest;
                    next
                }
                Framing::Start => {
                    let first = data.first().copied().unwrap_or_default();
                    if self.sslv2 || (first & 0x80 != 0 && !ContentType(first).is_known()) {
                        Framing::V2Header {
                            buf: [0; 3],
                            have: 0,
                        }
                    } else {
                        Framing::Header {
                            buf: [0; HEADER_LEN],
                            have: 0,
                        }
                    }
                }
                Framing::Header { mut buf, mut have } => {
                    let n = (HEADER_LEN - have).min(data.len());
                    if let (Some(dst), Some(src)) = (buf.get_mut(have..have + n), data.get(..n)) {
                        dst.copy_from_slice(src);
                    }
                    have += n;
                    data = data.get(n..).unwrap_or_default();
                    if have < HEADER_LEN {
                        Framing::Header { buf, have }
                    } else {
                        match record::parse_header(buf) {
                            Ok(hdr) => {
                                self.on_record_start(dir, hdr, meta);
                                let body = Framing::Body {
                                    hdr,
                                    remaining: hdr.len,
                                    small: Small::default(),
                                };
                                if hdr.len == 0 {
                                    self.on_record_end(dir, hdr, &Small::default(), meta);
                                    Framing::Start
                                } else {
                                    body
                                }
                            }
                            Err(e) => {
                                self.stop(dir, e.as_str(), meta);
                                Framing::Stopped
                            }
                        }
                    }
                }
                Framing::Body {
                    hdr,
                    remaining,
                    mut small,
                } => {
                    let n = (remaining as usize).min(data.len());
                    let (piece, rest) = data.split_at_checked(n).unwrap_or((data, &[]));
                    data = rest;
                    self.on_record_piece(dir, hdr, piece, &mut small, meta);
                    let remaining = remaining - n as u16;
                    if remaining == 0 {
                        self.on_record_end(dir, hdr, &small, meta);
                        Framing::Start
                    } else {
                        Framing::Body {
                            hdr,
                            remaining,
                            small,
                        }
                    }
                }
                Framing::V2Header { mut buf, mut have } => {
                    // Two bytes are enough unless the high bit is clear (three-byte form).
                    let want = match buf.first() {
                        Some(b0) if have > 0 && b0 & 0x80 == 0 => 3,
                        _ if have == 0 && data.first().is_some_and(|b| b & 0x80 == 0) => 3,
                        _ => 2,
                    };
                    let n = (want - have).min(data.len());
                    if let (Some(dst), Some(src)) = (buf.get_mut(have..have + n), data.get(..n)) {
                        dst.copy_from_slice(src);
                    }
                    have += n;
                    data = data.get(n..).unwrap_or_default();
                    if have < want {
                        Framing::V2Header { buf, have }
                    } else {
                        match record::parse_sslv2_header(buf.get(..have).unwrap_or_default()) {
                            Some((_, len)) => self.on_v2_record_start(dir, len, meta),
                            None => {
                                self.stop(dir, "invalid_sslv2_record", meta);
                                Framing::Stopped
                            }
                        }
                    }
                }
                Framing::V2Body { remaining, keep } => {
                    let n = remaining.min(data.len());
                    let (piece, rest) = data.split_at_checked(n).unwrap_or((data, &[]));
                    data = rest;
                    if keep && let Some(s) = self.dirs.get_mut(d) {
                        s.hs.buf.extend_from_slice(piece);
                    }
                    if remaining - n == 0 {
                        if keep {
                            self.on_v2_record_end(dir, meta);
                        }
                        Framing::Start
                    } else {
                        Framing::V2Body {
                            remaining: remaining - n,
                            keep,
                        }
                    }
                }
            };
            let Some(s) = self.dirs.get_mut(d) else { break };
            // A callback may have stopped the direction; that wins over the next state.
            if !matches!(s.framing, Framing::Stopped) {
                s.framing = next;
            }
        }
        self.interest(dir)
    }

    /// Bytes that will never arrive: drop partial state and look for the next record.
    pub fn gap(&mut self, dir: Direction, len: u64, meta: EventMeta) {
        let Some(s) = self.dirs.get_mut(dir.index()) else {
            return;
        };
        s.stats.gap_bytes = s.stats.gap_bytes.saturating_add(len);
        if matches!(s.framing, Framing::Stopped) {
            return;
        }
        s.framing = Framing::Resync {
            held: [0; HEADER_LEN],
            have: 0,
        };
        s.hs.buf.clear();
        s.hs.skip = 0;
        self.note(format!(
            "{}: gap of {len} bytes at frame {}",
            dir_str(dir),
            meta.frame
        ));
    }
}
