//! pcapng: several sections (interface ids restart in each), several interfaces with their own
//! link type, snap length and timestamp resolution; enhanced, simple and obsolete packet blocks;
//! every other block skipped.
//!
//! Block layouts are from draft-ietf-opsawg-pcapng (section 3.1 general block structure, 4.1
//! SHB, 4.2 IDB with if_tsresol/if_tsoffset, 4.3 EPB, 4.4 SPB, appendix A obsolete Packet Block).

use std::sync::Arc;

use crate::proto::tls::keylog::KeyStore;
use pcap_parser::pcapng::{Block, OptionCode};
use pcap_parser::traits::PcapReaderIterator;
use pcap_parser::{PcapBlockOwned, PcapNGReader};

use super::LinkType;
use super::reader::{BlockSource, FrameAt, HeaderError, MAX_BLOCK_LEN, Step, parser_error_step};
use super::source::Stream;
use crate::time::Timestamp;

/// Block types this reader acts on (section 10.1 of the draft).
const SHB: u32 = 0x0A0D_0D0A;
const IDB: u32 = 0x0000_0001;
const OBSOLETE_PB: u32 = 0x0000_0002;
const SPB: u32 = 0x0000_0003;
const EPB: u32 = 0x0000_0006;
/// Section header byte-order magic.
const BOM: u32 = 0x1A2B_3C4D;

/// Interfaces remembered per section. Each costs a few bytes, but a hostile file could declare
/// millions; the ones past the cap are ignored with a warning.
const MAX_INTERFACES: usize = 65_536;

/// Distinct link types remembered for the report; a file declaring more is hostile or broken,
/// and the list only names them.
const MAX_LINK_TYPES: usize = 64;

/// The packet data of an EPB and an obsolete PB starts this many bytes into the block;
/// an SPB's after 12.
const EPB_DATA_OFFSET: usize = 28;
const SPB_DATA_OFFSET: usize = 12;

/// How an interface counts time: units per second as a power of 10 or of 2 (if_tsresol, MSB
/// clear or set), with the conversion to nanoseconds precomputed.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Resolution {
    Decimal {
        per_sec: u64,
        /// frac * mul / div = nanoseconds.
        mul: u64,
        div: u64,
    },
    Binary {
        shift: u32,
    },
}

impl Resolution {
    const MICROS: Resolution = Resolution::Decimal {
        per_sec: 1_000_000,
        mul: 1_000,
        div: 1,
    };

    /// `None` for values that do not fit 64-bit arithmetic (10^20 and up, 2^64 and up).
    fn from_tsresol(v: u8) -> Option<Resolution> {
        if v & 0x80 == 0 {
            let e = u32::from(v);
            let per_sec = 10u64.checked_pow(e)?;
            let (mul, div) = if e <= 9 {
                (10u64.pow(9 - e), 1)
            } else {
                (1, 10u64.pow(e - 9))
            };
            Some(Resolution::Decimal { per_sec, mul, div })
        } else {
            let shift = u32::from(v & 0x7f);
            (shift < 64).then_some(Resolution::Binary { shift })
        }
    }

    fn timestamp(self, units: u64, offset_secs: i64) -> Timestamp {
        let (secs, nanos) = match self {
            Resolution::Decimal { per_sec, mul, div } => {
                (units / per_sec, (units % per_sec) * mul / div)
            }
            Resolution::Binary { shift } => {
                let frac = units & ((1u64 << shift) - 1);
                (
                    units >> shift,
                    ((u128::from(frac) * 1_000_000_000) >> shift) as u64,
                )
            }
        };
        let secs = i64::try_from(secs)
            .unwrap_or(i64::MAX)
            .saturating_add(offset_secs);
        Timestamp::new(secs, nanos as u32)
    }
}

#[derive(Clone, Copy, Debug)]
struct Interface {
    link: LinkType,
    snaplen: u32,
    resolution: Resolution,
    offset_secs: i64,
}

/// An interface from its IDB fields; the flag says if_tsresol was present but unusable.
fn interface_from_idb(
    link: u16,
    snaplen: u32,
    options: &[pcap_parser::PcapNGOption<'_>],
    big_endian: bool,
) -> (Interface, bool) {
    let mut resolution = Resolution::MICROS;
    let mut offset_secs = 0i64;
    let mut bad_tsresol = false;
    for opt in options {
        let Ok(value) = opt.as_bytes() else { continue };
        if opt.code == OptionCode::IfTsresol {
            match value.first().copied().and_then(Resolution::from_tsresol) {
                Some(r) => resolution = r,
                None => bad_tsresol = true,
            }
        } else if opt.code == OptionCode::IfTsoffset {
            // pcap-parser reads this option little-endian whatever the section says.
            if let Ok(b) = <[u8; 8]>::try_from(value) {
                offset_secs = if big_endian {
                    i64::from_be_bytes(b)
                } else {
                    i64::from_le_bytes(b)
                };
            }
        }
    }
    let iface = Interface {
        link: LinkType(u32::from(link)),
        snaplen,
        resolution,
        offset_secs,
    };
    (iface, bad_tsresol)
}

/// The block header at the start of the buffer, read before pcap-parser so that a damaged
/// length is reported as such instead of making the buffer grow.
#[derive(Clone, Copy)]
struct Peek {
    btype: u32,
    len: usize,
    big_endian: bool,
    /// The whole block is in the buffer.
    complete: bool,
}

fn u32_at(data: &[u8], at: usize, big_endian: bool) -> Option<u32> {
    let b: [u8; 4] = data.get(at..at + 4)?.try_into().ok()?;
    Some(if big_endian {
        u32::from_be_bytes(b)
    } else {
        u32::from_le_bytes(b)
    })
}

fn u16_at(data: &[u8], at: usize, big_endian: bool) -> Option<u16> {
    let b: [u8; 2] = data.get(at..at + 2)?.try_into().ok()?;
    Some(if big_endian {
        u16::from_be_bytes(b)
    } else {
        u16::from_le_bytes(b)
    })
}

/// The message for a section header block whose byte-order magic is neither order.
pub(super) fn bad_bom(bom: [u8; 4]) -> String {
    format!(
        "corrupt section header block (byte-order magic {})",
        hex::encode(bom)
    )
}

/// The message for a section header block length that makes no sense. It names the byte order
/// the magic gave: a damaged magic that happens to read as the other order shows up here.
pub(super) fn bad_shb_len(len: usize, big_endian: bool) -> String {
    let order = if big_endian {
        "big-endian"
    } else {
        "little-endian"
    };
    format!(
        "corrupt block length {len} (section header block, read {order} as its byte-order \
         magic says)"
    )
}

/// `Ok(None)`: not enough bytes yet to know. `Err`: the framing is damaged.
fn peek(data: &[u8], section_big_endian: bool) -> Result<Option<Peek>, String> {
    let Some(raw_type) = u32_at(data, 0, false) else {
        return Ok(None);
    };
    // The SHB type reads the same in both byte orders; its own BOM says how to read the rest.
    let big_endian = if raw_type == SHB {
        match u32_at(data, 8, false) {
            None => return Ok(None),
            Some(BOM) => false,
            Some(b) if b == BOM.swap_bytes() => true,
            Some(b) => return Err(bad_bom(b.to_le_bytes())),
        }
    } else {
        section_big_endian
    };
    let (Some(btype), Some(len)) = (u32_at(data, 0, big_endian), u32_at(data, 4, big_endian))
    else {
        return Ok(None);
    };
    let len = len as usize;
    // Section 3.1: the total length is a multiple of 4 and covers type, both lengths.
    if len < 12 || len % 4 != 0 || len > MAX_BLOCK_LEN {
        if btype == SHB {
            return Err(bad_shb_len(len, big_endian));
        }
        return Err(format!(
            "corrupt block length {len} ({})",
            block_name(btype)
        ));
    }
    let complete = data.len() >= len;
    // The trailing copy of the length must match: the cheapest check that a block is whole.
    if complete {
        let trailer = u32_at(data, len - 4, big_endian).unwrap_or_default();
        if trailer != len as u32 {
            return Err(format!(
                "corrupt block length {len} ({}; the copy at its end says {trailer})",
                block_name(btype)
            ));
        }
    }
    Ok(Some(Peek {
        btype,
        len,
        big_endian,
        complete,
    }))
}

fn block_name(btype: u32) -> String {
    match btype {
        SHB => "section header block".into(),
        IDB => "interface description block".into(),
        OBSOLETE_PB => "packet block".into(),
        SPB => "simple packet block".into(),
        EPB => "enhanced packet block".into(),
        other => format!("block type {other:#x}"),
    }
}

/// Whether `area` (what follows an EPB's padded packet data, up to the trailing length) is a
/// well-formed option list (section 3.5: code, length, value padded to 32 bits; it ends with
/// opt_endofopt or at the end of the block). A captured length damaged downwards leaves
/// packet bytes here, which rarely parse as options; pcap-parser ignores what does not parse.
fn options_well_formed(mut area: &[u8], big_endian: bool) -> bool {
    while !area.is_empty() {
        let (Some(code), Some(len)) = (u16_at(area, 0, big_endian), u16_at(area, 2, big_endian))
        else {
            return false;
        };
        if code == 0 {
            // opt_endofopt; anything after it is not read.
            return true;
        }
        let padded = (usize::from(len) + 3) & !3;
        match area.get(4 + padded..) {
            Some(rest) => area = rest,
            None => return false,
        }
    }
    true
}

/// Warnings emitted at most once per reader.
#[derive(Default)]
struct Warned {
    bad_tsresol: bool,
    too_many_interfaces: bool,
    malformed_block: bool,
}

/// Interprets the blocks that pcap-parser's streaming reader cuts out.
pub(super) struct PcapngInput {
    reader: PcapNGReader<Stream>,
    capacity: usize,
    big_endian: bool,
    section: u32,
    interfaces: Vec<Interface>,
    /// Every link type declared by an interface in any section, in first-seen order.
    link_types: Vec<LinkType>,
    /// SPBs carry no timestamp; they get the last one seen so capture time never runs back.
    last_ts: Timestamp,
    skipped_missing_interface: u64,
    /// Where the first packet of an undescribed interface was: stream offset, interface id,
    /// section number.
    first_missing_interface: Option<(u64, u32, u32)>,
    warned: Warned,
    /// Where the TLS key log of a Decryption Secrets Block goes, when the run keeps keys.
    pub(super) keys: Option<Arc<KeyStore>>,
}

/// Decryption Secrets Block secrets type of a TLS key log ('TLSK', pcapng draft 4.7).
const SECRETS_TLS_KEY_LOG: u32 = 0x544c_534b;

/// The streaming reader over `stream`, which must start with a complete section header block
/// (the caller sniffed it).
pub(super) fn stream_reader(
    stream: Stream,
    capacity: usize,
) -> Result<PcapNGReader<Stream>, HeaderError> {
    PcapNGReader::new(capacity, stream).map_err(|e| HeaderError::from(&e))
}

impl PcapngInput {
    /// `reader` hands out the first section header block first; `capacity` is its buffer size.
    pub fn new(reader: PcapNGReader<Stream>, capacity: usize) -> PcapngInput {
        PcapngInput {
            reader,
            capacity,
            big_endian: false,
            section: 0,
            interfaces: Vec::new(),
            link_types: Vec::new(),
            last_ts: Timestamp::default(),
            skipped_missing_interface: 0,
            first_missing_interface: None,
            warned: Warned::default(),
            keys: None,
        }
    }

    /// Link types declared by the interfaces of all sections so far, in first-seen order.
    pub fn link_types(&self) -> &[LinkType] {
        &self.link_types
    }

    fn push_interface(&mut self, iface: Interface, bad_tsresol: bool, warnings: &mut Vec<String>) {
        if bad_tsresol && !self.warned.bad_tsresol {
            self.warned.bad_tsresol = true;
            warnings.push(format!(
                "pcapng interface {} of section {} has an unusable if_tsresol; \
                 its timestamps are read as microseconds",
                self.interfaces.len(),
                self.section
            ));
        }
        if self.interfaces.len() >= MAX_INTERFACES {
            if !self.warned.too_many_interfaces {
                self.warned.too_many_interfaces = true;
                warnings.push(format!(
                    "pcapng section {} describes more than {MAX_INTERFACES} interfaces; \
                     the rest are ignored",
                    self.section
                ));
            }
            return;
        }
        if !self.link_types.contains(&iface.link) && self.link_types.len() < MAX_LINK_TYPES {
            self.link_types.push(iface.link);
        }
        self.interfaces.push(iface);
    }

    fn interface(&mut self, if_id: u32) -> Option<Interface> {
        let found = self.interfaces.get(if_id as usize).copied();
        if found.is_none() {
            self.skipped_missing_interface += 1;
            let at = self.reader.consumed() as u64;
            self.first_missing_interface
                .get_or_insert((at, if_id, self.section));
        }
        found
    }

    /// One warning for all packets skipped because their interface was never described (an
    /// interface description block missing or damaged), given when the reading ends.
    pub fn missing_interface_warning(&self) -> Option<String> {
        let (at, if_id, section) = self.first_missing_interface?;
        let n = self.skipped_missing_interface;
        Some(if n == 1 {
            format!(
                "1 pcapng packet skipped (at byte {at}): it refers to interface {if_id}, \
                 which section {section} does not describe"
            )
        } else {
            format!(
                "{n} pcapng packets skipped (the first at byte {at}): they refer to interface \
                 {if_id}, which section {section} does not describe"
            )
        })
    }

    /// A block pcap-parser refused although its framing is intact: packets and interfaces are
    /// corruption (what follows depends on them), anything else is skipped.
    fn refused(&mut self, p: Peek, warnings: &mut Vec<String>) -> Step {
        match p.btype {
            EPB => match u32_at(self.reader.data(), 20, p.big_endian) {
                Some(caplen) if caplen as usize > p.len.saturating_sub(EPB_DATA_OFFSET + 4) => {
                    Step::Corrupt(format!(
                        "corrupt enhanced packet block (captured length {caplen} exceeds \
                         the block length {})",
                        p.len
                    ))
                }
                _ => Step::Corrupt("corrupt enhanced packet block".into()),
            },
            SHB | IDB | SPB | OBSOLETE_PB => {
                Step::Corrupt(format!("corrupt {}", block_name(p.btype)))
            }
            other => {
                if !self.warned.malformed_block {
                    self.warned.malformed_block = true;
                    warnings.push(format!(
                        "skipped a malformed pcapng block of type {other:#x}"
                    ));
                }
                Step::Skip(p.len)
            }
        }
    }
}

impl BlockSource for PcapngInput {
    const TRUNCATED: &'static str = "truncated pcapng block";

    fn step(&mut self, warnings: &mut Vec<String>) -> Step {
        let peeked = match peek(self.reader.data(), self.big_endian) {
            Ok(p) => p,
            Err(what) => return Step::Corrupt(what),
        };
        let result = match self.reader.next() {
            Ok((len, PcapBlockOwned::NG(block))) => Ok((len, block)),
            Ok((len, _)) => return Step::Skip(len),
            Err(e) => Err(parser_error_step(&e, peeked.map(|p| p.len))),
        };
        let (len, block) = match result {
            Ok(found) => found,
            Err(step) => {
                return match (step, peeked) {
                    // The parser wants bytes beyond a block that is all there: the block
                    // contradicts itself (say, a captured length past its end).
                    (Step::NeedMore { .. } | Step::Corrupt(_), Some(p)) if p.complete => {
                        self.refused(p, warnings)
                    }
                    (step, _) => step,
                };
            }
        };
        let be = peeked.map_or(self.big_endian, |p| p.big_endian);
        match block {
            Block::SectionHeader(_) => {
                // Interface ids restart with every section (draft section 4.1).
                self.big_endian = be;
                self.section += 1;
                self.interfaces.clear();
                Step::Skip(len)
            }
            Block::InterfaceDescription(idb) => {
                let (iface, bad_tsresol) = interface_from_idb(
                    idb.linktype.0 as u16,
                    idb.snaplen,
                    &idb.options,
                    self.big_endian,
                );
                self.push_interface(iface, bad_tsresol, warnings);
                Step::Skip(len)
            }
            Block::EnhancedPacket(epb) => {
                let units = (u64::from(epb.ts_high) << 32) | u64::from(epb.ts_low);
                let (caplen, orig_len) = ((epb.caplen as usize).min(epb.data.len()), epb.origlen);
                let if_id = epb.if_id;
                let padded_end = EPB_DATA_OFFSET + ((caplen + 3) & !3);
                let options = self.reader.data().get(padded_end..len.saturating_sub(4));
                if !options.is_some_and(|o| options_well_formed(o, be)) {
                    return Step::Corrupt(format!(
                        "corrupt enhanced packet block (captured length {caplen} leaves \
                         {} bytes that are not options)",
                        len.saturating_sub(4 + padded_end)
                    ));
                }
                let Some(iface) = self.interface(if_id) else {
                    return Step::Skip(len);
                };
                let ts = iface.resolution.timestamp(units, iface.offset_secs);
                self.last_ts = ts;
                Step::Frame(FrameAt {
                    block_len: len,
                    start: EPB_DATA_OFFSET,
                    caplen,
                    orig_len,
                    ts,
                    link: iface.link,
                })
            }
            Block::SimplePacket(spb) => {
                let (orig_len, data_len) = (spb.origlen, spb.data.len());
                let Some(iface) = self.interface(0) else {
                    return Step::Skip(len);
                };
                // Section 4.4: captured length = min(original length, snap length); the data
                // field is padded, so its size only bounds it.
                let mut caplen = (orig_len as usize).min(data_len);
                if iface.snaplen != 0 {
                    caplen = caplen.min(iface.snaplen as usize);
                }
                Step::Frame(FrameAt {
                    block_len: len,
                    start: SPB_DATA_OFFSET,
                    caplen,
                    orig_len,
                    ts: self.last_ts,
                    link: iface.link,
                })
            }
            Block::Unknown(u) if peeked.is_some_and(|p| p.btype == OBSOLETE_PB) => {
                // Appendix A: interface id (u16), drops (u16), timestamp high/low, captured
                // length, packet length, data.
                let c = u.data;
                let fields = (
                    u16_at(c, 0, be),
                    u32_at(c, 4, be),
                    u32_at(c, 8, be),
                    u32_at(c, 12, be),
                    u32_at(c, 16, be),
                );
                let (Some(if_id), Some(hi), Some(lo), Some(caplen), Some(orig_len)) = fields else {
                    return Step::Corrupt("corrupt packet block".into());
                };
                if caplen as usize > c.len().saturating_sub(20) {
                    return Step::Corrupt(format!(
                        "corrupt packet block (captured length {caplen} exceeds the block \
                         length {len})"
                    ));
                }
                let Some(iface) = self.interface(u32::from(if_id)) else {
                    return Step::Skip(len);
                };
                let units = (u64::from(hi) << 32) | u64::from(lo);
                let ts = iface.resolution.timestamp(units, iface.offset_secs);
                self.last_ts = ts;
                Step::Frame(FrameAt {
                    block_len: len,
                    start: EPB_DATA_OFFSET,
                    caplen: caplen as usize,
                    orig_len,
                    ts,
                    link: iface.link,
                })
            }
            Block::DecryptionSecrets(dsb) if dsb.secrets_type.0 == SECRETS_TLS_KEY_LOG => {
                if let Some(keys) = &self.keys {
                    let text = dsb.data.get(..dsb.secrets_len as usize).unwrap_or(dsb.data);
                    let malformed = keys.add_embedded(text);
                    if malformed > 0 {
                        warnings.push(format!(
                            "{malformed} malformed lines in a decryption secrets block skipped"
                        ));
                    }
                }
                Step::Skip(len)
            }
            _ => Step::Skip(len),
        }
    }

    buffer_methods!();
}

#[cfg(test)]
#[allow(clippy::unwrap_used, clippy::expect_used)]
mod tests {
    use super::*;

    #[test]
    fn tsresol_power_of_ten_and_two() {
        // 10^-9: nanoseconds.
        let ns = Resolution::from_tsresol(9).unwrap_or(Resolution::MICROS);
        assert_eq!(
            ns.timestamp(1_500_000_000_123, 0),
            Timestamp::new(1500, 123)
        );
        // 10^-3 with an offset of 100 s.
        let ms = Resolution::from_tsresol(3).unwrap_or(Resolution::MICROS);
        assert_eq!(ms.timestamp(2_250, 100), Timestamp::new(102, 250_000_000));
        // 2^-10: 1024 units per second; 1536 units = 1.5 s.
        let bin = Resolution::from_tsresol(0x80 | 10).unwrap_or(Resolution::MICROS);
        assert_eq!(bin.timestamp(1536, 0), Timestamp::new(1, 500_000_000));
        // 10^-12: picoseconds are cut to nanoseconds.
        let ps = Resolution::from_tsresol(12).unwrap_or(Resolution::MICROS);
        assert_eq!(ps.timestamp(2_000_000_001_999, 0), Timestamp::new(2, 1));
        assert_eq!(Resolution::from_tsresol(20), None);
        assert_eq!(Resolution::from_tsresol(0x80 | 64), None);
        assert!(Resolution::from_tsresol(0x80 | 63).is_some());
    }

    #[test]
    fn epb_options_are_walked_to_the_end_or_opt_endofopt() {
        // if_comment "ab" (padded), then opt_endofopt.
        let good = [1, 0, 2, 0, b'a', b'b', 0, 0, 0, 0, 0, 0];
        assert!(options_well_formed(&good, false));
        assert!(options_well_formed(&good[..8], false));
        assert!(options_well_formed(&[], false));
        // Big-endian: the same option reads as code 0x0100, length 0x0200 and runs past.
        assert!(!options_well_formed(&good, true));
        // A value past the area; half an option header.
        assert!(!options_well_formed(&good[..6], false));
        assert!(!options_well_formed(&[1, 0], false));
    }

    #[test]
    fn peek_rejects_bad_lengths() {
        // EPB type with a length that is not a multiple of 4.
        let mut b = vec![6, 0, 0, 0, 33, 0, 0, 0];
        b.resize(40, 0);
        assert!(peek(&b, false).is_err());
        // Trailer disagreeing with the header.
        let mut b = vec![6, 0, 0, 0, 32, 0, 0, 0];
        b.resize(32, 0);
        assert!(peek(&b, false).is_err());
        b[28] = 32;
        assert!(matches!(peek(&b, false), Ok(Some(p)) if p.complete && p.len == 32));
        // Big-endian section.
        let mut b = vec![0, 0, 0, 6, 0, 0, 0, 32];
        b.resize(32, 0);
        b[31] = 32;
        assert!(matches!(peek(&b, true), Ok(Some(p)) if p.btype == EPB));
        // Too short to tell.
        assert!(matches!(peek(&[6, 0, 0], false), Ok(None)));
    }
}
