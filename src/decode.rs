//! Frame -> TCP segment view. Tolerant: checksums are never verified (offload makes them
//! wrong in most captures), a packet cut by the snap length is decoded as far as it goes, and
//! everything that is not TCP over IP is only counted.

use std::net::IpAddr;

use etherparse::err::ip::LaxHeaderSliceError;
use etherparse::err::{ipv6_exts, tcp};
use etherparse::{IpNumber, LaxIpSlice, TcpSlice};

use crate::capture::LinkType;

/// TCP header flags.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct TcpFlags(pub u8);

impl TcpFlags {
    pub const FIN: u8 = 0x01;
    pub const SYN: u8 = 0x02;
    pub const RST: u8 = 0x04;
    pub const PSH: u8 = 0x08;
    pub const ACK: u8 = 0x10;

    pub fn fin(self) -> bool {
        self.0 & Self::FIN != 0
    }
    pub fn syn(self) -> bool {
        self.0 & Self::SYN != 0
    }
    pub fn rst(self) -> bool {
        self.0 & Self::RST != 0
    }
    pub fn ack(self) -> bool {
        self.0 & Self::ACK != 0
    }
}

/// A TCP segment borrowed from its frame.
#[derive(Clone, Copy, Debug)]
pub struct TcpSegment<'a> {
    pub src: IpAddr,
    pub dst: IpAddr,
    pub src_port: u16,
    pub dst_port: u16,
    pub seq: u32,
    pub ack: u32,
    pub flags: TcpFlags,
    /// Payload bytes present in the capture (Ethernet padding excluded).
    pub payload: &'a [u8],
    /// Payload bytes that were on the wire but not captured (snap length): reassembly must
    /// treat them as a hole of this size right after `payload`.
    pub missing_payload: u32,
}

/// An ICMP destination-unreachable error (IPv4 type 3, ICMPv6 type 1) that quotes the start of
/// a TCP segment: enough to name the connection it answers (RFC 792 and RFC 4443 quote the
/// IP header and at least the first 8 bytes of its payload: ports and sequence number).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct IcmpError {
    pub icmp_type: u8,
    pub icmp_code: u8,
    /// The sender of the ICMP packet (the server itself, a router or a firewall).
    pub reporter: IpAddr,
    /// The quoted segment's sender: the client, when it quotes a connection attempt.
    pub src: IpAddr,
    pub dst: IpAddr,
    pub src_port: u16,
    pub dst_port: u16,
    /// Sequence number of the quoted segment (a SYN's is the client's initial one).
    pub seq: u32,
}

/// What a frame held that the flow table acts on.
#[derive(Clone, Copy, Debug)]
pub enum Decoded<'a> {
    Tcp(TcpSegment<'a>),
    IcmpError(IcmpError),
}

impl<'a> Decoded<'a> {
    pub fn tcp(self) -> Option<TcpSegment<'a>> {
        match self {
            Decoded::Tcp(seg) => Some(seg),
            Decoded::IcmpError(_) => None,
        }
    }
}

/// ICMP types of destination unreachable (RFC 792; RFC 4443 section 3.1).
const ICMPV4_DEST_UNREACHABLE: u8 = 3;
const ICMPV6_DEST_UNREACHABLE: u8 = 1;
/// IPv4 "fragmentation needed and DF set" (RFC 1191): path MTU discovery on a working
/// connection, not a refusal.
const ICMPV4_FRAG_NEEDED: u8 = 4;
/// ICMP header before the quoted packet: type, code, checksum, 4 unused (or MTU) bytes.
const ICMP_HEADER_LEN: usize = 8;

/// Per-capture decode counters, reported under `captures[].decode`.
#[derive(Clone, Debug, Default, PartialEq, Eq, serde::Serialize)]
pub struct DecodeStats {
    pub ipv4: u64,
    pub ipv6: u64,
    pub tcp: u64,
    pub udp: u64,
    /// IP packets carrying neither TCP nor UDP (ICMP, ...).
    pub other_ip: u64,
    /// Frames that carry no IP (ARP, LLDP, ...).
    pub non_ip: u64,
    /// IP fragments (IPv4, and IPv6 with a fragment header): counted, not reassembled, and
    /// never decoded as TCP (a first fragment's TCP payload is incomplete by definition).
    pub ip_fragments: u64,
    /// Frames cut by the snap length (headers cut, or TCP payload missing).
    pub truncated: u64,
    /// Frames whose headers could not be decoded.
    pub malformed: u64,
    /// Frames of a link type smtpaudit does not decode.
    pub unsupported_link: u64,
    /// ICMP destination-unreachable errors (also counted in `other_ip`) that quote a TCP
    /// header; the flow table says how many it could tie to a connection attempt.
    pub icmp_unreachable: u64,
}

/// Address families in the 4-byte header of DLT_NULL / DLT_LOOP (BSD loopback).
const AF_INET: u32 = 2;
/// AF_INET6 differs per BSD: NetBSD/OpenBSD 24, FreeBSD/DragonFly 28, macOS 30.
const AF_INET6_BSD: [u32; 3] = [24, 28, 30];

/// Linux cooked headers (https://www.tcpdump.org/linktypes/LINKTYPE_LINUX_SLL.html and
/// LINKTYPE_LINUX_SLL2.html): the protocol type is an EtherType for IP.
const SLL_HEADER_LEN: usize = 16;
const SLL_PROTOCOL_AT: usize = 14;
const SLL2_HEADER_LEN: usize = 20;
const SLL2_PROTOCOL_AT: usize = 0;

fn be16_at(data: &[u8], at: usize) -> Option<u16> {
    Some(u16::from_be_bytes(data.get(at..at + 2)?.try_into().ok()?))
}

/// The connection an ICMP destination-unreachable error answers, from the packet it quotes.
/// `None` for other ICMP messages, a fragmentation-needed notice, or a quote that does not
/// reach the TCP sequence number (a quote is only ever read as far as it goes).
fn icmp_error(reporter: IpAddr, v6: bool, icmp: &[u8]) -> Option<IcmpError> {
    let (&icmp_type, &icmp_code) = (icmp.first()?, icmp.get(1)?);
    let wanted = if v6 {
        ICMPV6_DEST_UNREACHABLE
    } else {
        ICMPV4_DEST_UNREACHABLE
    };
    if icmp_type != wanted || (!v6 && icmp_code == ICMPV4_FRAG_NEEDED) {
        return None;
    }
    let quoted = icmp.get(ICMP_HEADER_LEN..)?;
    // Lax: the quote is cut short by design (the 8 bytes of RFC 792 at least, whatever fits
    // in 576 or 1280 bytes at most), so the lengths it declares are not there.
    let (ip, stop) = LaxIpSlice::from_slice(quoted).ok()?;
    if stop.is_some() {
        return None;
    }
    let (src, dst) = match &ip {
        LaxIpSlice::Ipv4(q) if !v6 => (
            IpAddr::V4(q.header().source_addr()),
            IpAddr::V4(q.header().destination_addr()),
        ),
        LaxIpSlice::Ipv6(q) if v6 => (
            IpAddr::V6(q.header().source_addr()),
            IpAddr::V6(q.header().destination_addr()),
        ),
        // An IPv6 packet quoted by ICMPv4 (or the reverse) answers nothing we saw.
        _ => return None,
    };
    let payload = ip.payload();
    if payload.ip_number != IpNumber::TCP || payload.fragmented {
        return None;
    }
    let tcp = payload.payload;
    let seq = tcp.get(4..8)?;
    Some(IcmpError {
        icmp_type,
        icmp_code,
        reporter,
        src,
        dst,
        src_port: be16_at(tcp, 0)?,
        dst_port: be16_at(tcp, 2)?,
        seq: u32::from_be_bytes(seq.try_into().ok()?),
    })
}

/// Decodes frames into TCP segments, counting everything else.
#[derive(Debug, Default)]
pub struct Decoder {
    stats: DecodeStats,
    warnings: Vec<String>,
    /// Frames skipped per unsupported link type, and whether the warning was given. A capture
    /// has at most a handful of link types, so a list beats a map.
    unsupported: Vec<(LinkType, u64, bool)>,
    /// TCP segments whose payload the snap length cut, since the last warning.
    snap_cut: SnapCut,
}

/// Payloads cut by the capture's snap length, for the capture's warning: reassembly turns
/// each cut into a gap, and a reader of the report must know why the gaps are there.
#[derive(Clone, Copy, Debug, Default)]
struct SnapCut {
    packets: u64,
    missing_bytes: u64,
    /// Longest and shortest captured frame among the cut ones: with a snap length both are
    /// it (every cut frame was cut there).
    snap_len: usize,
    shortest: usize,
    /// Longest frame captured whole: a snap length is above it, never below.
    longest_whole: usize,
}

impl SnapCut {
    /// The cuts are a snap length's, not one damaged record's length field.
    fn is_snap_length(&self) -> bool {
        self.packets > 0 && self.shortest == self.snap_len && self.longest_whole <= self.snap_len
    }
}

/// EtherTypes this decoder acts on (IEEE registry).
const ETHERTYPE_IPV4: u16 = 0x0800;
const ETHERTYPE_IPV6: u16 = 0x86dd;
/// 802.1Q customer tag, 802.1ad service tag, and the pre-standard QinQ tag (a match rather
/// than a `contains` on a list, which costs a call per frame).
#[inline]
fn is_vlan_tpid(ether_type: u16) -> bool {
    matches!(ether_type, 0x8100 | 0x88a8 | 0x9100)
}

/// Tags peeled before giving up on a frame (QinQ has two; more is unusual but legal).
const MAX_VLAN_TAGS: usize = 4;
const ETHERNET_HEADER_LEN: usize = 14;
const VLAN_TAG_LEN: usize = 4;

/// What the link layer held.
enum Link<'a> {
    /// Bytes starting with an IP header.
    Ip(&'a [u8]),
    /// Something else (ARP, LLDP, an unknown address family ...).
    NotIp,
    /// The frame ended inside the link header.
    Short,
}

/// Ethernet II, with any number (up to [`MAX_VLAN_TAGS`]) of 802.1Q/802.1ad tags.
///
/// Hand-written rather than etherparse's `LaxSlicedPacket`: that type is a few hundred bytes
/// moved by value through every layer, which measurably dominated decoding time.
fn ethernet(frame: &[u8]) -> Link<'_> {
    let (Some(mut ether_type), Some(mut rest)) =
        (be16_at(frame, 12), frame.get(ETHERNET_HEADER_LEN..))
    else {
        return Link::Short;
    };
    let mut tags = 0;
    while is_vlan_tpid(ether_type) {
        tags += 1;
        // Tag: TCI (2 bytes), then the next EtherType.
        let (Some(next), Some(after)) = (be16_at(rest, 2), rest.get(VLAN_TAG_LEN..)) else {
            return Link::Short;
        };
        if tags > MAX_VLAN_TAGS {
            return Link::NotIp;
        }
        ether_type = next;
        rest = after;
    }
    by_ether_type(ether_type, rest)
}

fn by_ether_type(ether_type: u16, payload: &[u8]) -> Link<'_> {
    match ether_type {
        ETHERTYPE_IPV4 | ETHERTYPE_IPV6 => Link::Ip(payload),
        _ => Link::NotIp,
    }
}

/// Linux cooked capture: the protocol field is an EtherType (for IP), then the packet.
fn cooked(frame: &[u8], protocol_at: usize, header_len: usize) -> Link<'_> {
    match (be16_at(frame, protocol_at), frame.get(header_len..)) {
        (Some(protocol), Some(rest)) => by_ether_type(protocol, rest),
        _ => Link::Short,
    }
}

/// BSD loopback: a 4-byte address family, then the packet.
fn loopback(frame: &[u8], host_order: bool) -> Link<'_> {
    let family: Option<[u8; 4]> = frame.get(..4).and_then(|b| b.try_into().ok());
    let (Some(family), Some(rest)) = (family, frame.get(4..)) else {
        return Link::Short;
    };
    let family = if host_order {
        // DLT_NULL stores the family in the byte order of the capturing host, which the
        // file does not record; families are small, so a value with its upper half set was
        // written in the other order.
        let le = u32::from_le_bytes(family);
        if le & 0xffff_0000 != 0 {
            le.swap_bytes()
        } else {
            le
        }
    } else {
        // DLT_LOOP: always network byte order.
        u32::from_be_bytes(family)
    };
    if family == AF_INET || AF_INET6_BSD.contains(&family) {
        Link::Ip(rest)
    } else {
        Link::NotIp
    }
}

impl Decoder {
    pub fn new() -> Self {
        Self::default()
    }

    /// Decodes one frame into a TCP segment, or `None` (counted) for anything else.
    pub fn decode<'a>(
        &mut self,
        link: LinkType,
        data: &'a [u8],
        orig_len: u32,
    ) -> Option<TcpSegment<'a>> {
        self.decode_packet(link, data, orig_len)
            .and_then(Decoded::tcp)
    }

    /// Decodes one frame. `orig_len` is the on-wire length (to detect snap-length cuts).
    /// Returns `None` for anything that is neither a decodable TCP segment nor an ICMP error
    /// quoting one (and counts it).
    pub fn decode_packet<'a>(
        &mut self,
        link: LinkType,
        data: &'a [u8],
        orig_len: u32,
    ) -> Option<Decoded<'a>> {
        let cut = (data.len() as u64) < u64::from(orig_len);
        if !cut {
            self.snap_cut.longest_whole = self.snap_cut.longest_whole.max(data.len());
        }
        let peeled = match link {
            LinkType::ETHERNET => ethernet(data),
            LinkType::LINUX_SLL => cooked(data, SLL_PROTOCOL_AT, SLL_HEADER_LEN),
            LinkType::LINUX_SLL2 => cooked(data, SLL2_PROTOCOL_AT, SLL2_HEADER_LEN),
            // The version nibble tells IPv4 from IPv6.
            LinkType::RAW | LinkType::RAW_BSD | LinkType::RAW_BSD2 => Link::Ip(data),
            LinkType::IPV4 | LinkType::IPV6 => {
                let want = if link == LinkType::IPV4 { 4 } else { 6 };
                match data.first() {
                    Some(b) if b >> 4 == want => Link::Ip(data),
                    Some(_) => return self.malformed(),
                    None => Link::Short,
                }
            }
            LinkType::NULL => loopback(data, true),
            LinkType::LOOP => loopback(data, false),
            other => {
                self.stats.unsupported_link += 1;
                match self.unsupported.iter_mut().find(|(l, _, _)| *l == other) {
                    Some(entry) => entry.1 += 1,
                    None => self.unsupported.push((other, 1, false)),
                }
                return None;
            }
        };
        match peeled {
            Link::Ip(ip) => {
                let seg = self.ip(ip, cut)?;
                if let Decoded::Tcp(seg) = &seg
                    && seg.missing_payload > 0
                {
                    let c = &mut self.snap_cut;
                    c.packets += 1;
                    c.missing_bytes += u64::from(seg.missing_payload);
                    c.shortest = if c.packets == 1 {
                        data.len()
                    } else {
                        c.shortest.min(data.len())
                    };
                    c.snap_len = c.snap_len.max(data.len());
                }
                Some(seg)
            }
            Link::NotIp => {
                self.stats.non_ip += 1;
                None
            }
            Link::Short => self.short(cut),
        }
    }

    fn ip<'a>(&mut self, bytes: &'a [u8], cut: bool) -> Option<Decoded<'a>> {
        let (ip, stop) = match LaxIpSlice::from_slice(bytes) {
            Ok(found) => found,
            Err(LaxHeaderSliceError::Len(_)) => return self.short(cut),
            Err(LaxHeaderSliceError::Content(_)) => return self.malformed(),
        };
        let (src, dst, declared) = match &ip {
            LaxIpSlice::Ipv4(v4) => {
                self.stats.ipv4 += 1;
                let h = v4.header();
                let auth_len = v4.extensions().auth.map_or(0, |a| a.slice().len());
                // RFC 791 section 3.1: Total Length counts header and data; it is what bounds
                // the payload (Ethernet pads short frames to 60 bytes).
                let declared = usize::from(h.total_len()).checked_sub(h.slice().len() + auth_len);
                (
                    IpAddr::V4(h.source_addr()),
                    IpAddr::V4(h.destination_addr()),
                    declared,
                )
            }
            LaxIpSlice::Ipv6(v6) => {
                self.stats.ipv6 += 1;
                let h = v6.header();
                // RFC 8200 section 3: Payload Length includes the extension headers.
                let declared =
                    usize::from(h.payload_length()).checked_sub(v6.extensions().slice().len());
                (
                    IpAddr::V6(h.source_addr()),
                    IpAddr::V6(h.destination_addr()),
                    declared,
                )
            }
        };
        // An extension header (IPv6 chain, IPv4 AH) that could not be read.
        match stop {
            Some((ipv6_exts::HeaderSliceError::Len(_), _)) => return self.short(cut),
            Some((ipv6_exts::HeaderSliceError::Content(_), _)) => return self.malformed(),
            None => {}
        }
        let payload = ip.payload();
        if payload.fragmented {
            self.stats.ip_fragments += 1;
            return None;
        }
        match payload.ip_number {
            IpNumber::TCP => {}
            IpNumber::UDP => {
                self.stats.udp += 1;
                return None;
            }
            number => {
                self.stats.other_ip += 1;
                let v6 = matches!(ip, LaxIpSlice::Ipv6(_));
                let err = match (number, v6) {
                    (IpNumber::ICMP, false) | (IpNumber::IPV6_ICMP, true) => {
                        icmp_error(src, v6, payload.payload)
                    }
                    _ => None,
                };
                if err.is_some() {
                    self.stats.icmp_unreachable += 1;
                }
                return err.map(Decoded::IcmpError);
            }
        }
        let tcp = match TcpSlice::from_slice(payload.payload) {
            Ok(tcp) => tcp,
            // The IP layer says bytes are missing: a header cut by the snap length.
            Err(tcp::HeaderSliceError::Len(_)) if payload.incomplete => {
                return self
                    .cut_tcp_header(src, dst, payload.payload, declared, cut)
                    .map(Decoded::Tcp);
            }
            Err(_) => return self.malformed(),
        };
        self.stats.tcp += 1;
        let header = tcp.header_slice();
        let data = tcp.payload();
        let missing_payload = if payload.incomplete {
            let expected = declared.map_or(0, |d| d.saturating_sub(header.len()));
            u32::try_from(expected.saturating_sub(data.len())).unwrap_or(u32::MAX)
        } else {
            0
        };
        if missing_payload > 0 {
            self.stats.truncated += 1;
        }
        Some(Decoded::Tcp(TcpSegment {
            src,
            dst,
            src_port: tcp.source_port(),
            dst_port: tcp.destination_port(),
            seq: tcp.sequence_number(),
            ack: tcp.acknowledgment_number(),
            // RFC 9293 section 3.1: the flags are byte 13 (CWR..FIN).
            flags: TcpFlags(header.get(13).copied().unwrap_or(0)),
            payload: data,
            missing_payload,
        }))
    }

    /// A TCP header whose options were cut (a SYN captured with a 68-byte snap length, say):
    /// the fixed 20 bytes still give ports, numbers and flags, which flow tracking needs.
    fn cut_tcp_header<'a>(
        &mut self,
        src: IpAddr,
        dst: IpAddr,
        b: &'a [u8],
        declared: Option<usize>,
        cut: bool,
    ) -> Option<TcpSegment<'a>> {
        let be32 = |at: usize| -> Option<u32> {
            Some(u32::from_be_bytes(b.get(at..at + 4)?.try_into().ok()?))
        };
        let (Some(src_port), Some(dst_port), Some(seq), Some(ack), Some(&off), Some(&flags)) = (
            be16_at(b, 0),
            be16_at(b, 2),
            be32(4),
            be32(8),
            b.get(12),
            b.get(13),
        ) else {
            return self.short(cut);
        };
        let header_len = usize::from(off >> 4) * 4;
        // RFC 9293 section 3.1: Data Offset is at least 5 words.
        if header_len < 20 {
            return self.malformed();
        }
        self.stats.tcp += 1;
        self.stats.truncated += 1;
        let expected = declared.map_or(0, |d| d.saturating_sub(header_len));
        Some(TcpSegment {
            src,
            dst,
            src_port,
            dst_port,
            seq,
            ack,
            flags: TcpFlags(flags),
            payload: &[],
            missing_payload: u32::try_from(expected).unwrap_or(u32::MAX),
        })
    }

    /// A frame that ended inside its headers: cut by the snap length, or simply too short.
    fn short<T>(&mut self, cut: bool) -> Option<T> {
        if cut {
            self.stats.truncated += 1;
        } else {
            self.stats.malformed += 1;
        }
        None
    }

    fn malformed<T>(&mut self) -> Option<T> {
        self.stats.malformed += 1;
        None
    }

    pub fn stats(&self) -> &DecodeStats {
        &self.stats
    }

    /// Oddities to list in the capture's `warnings`, each named once (e.g. an unsupported
    /// link type, with the frames skipped so far: call this when the capture is done).
    pub fn take_warnings(&mut self) -> Vec<String> {
        for (link, count, warned) in &mut self.unsupported {
            if !*warned {
                *warned = true;
                self.warnings.push(format!(
                    "unsupported link type {} ({}): {count} frames skipped",
                    link.0,
                    link.name()
                ));
            }
        }
        let cut = std::mem::take(&mut self.snap_cut);
        if cut.is_snap_length() {
            self.warnings.push(format!(
                "TCP payloads of {} packets cut by a snap length of {} bytes ({} bytes not captured): \
                 lines and TLS records cut there are read as far as they go, and outcomes they \
                 would decide are left undecided",
                cut.packets, cut.snap_len, cut.missing_bytes
            ));
        }
        std::mem::take(&mut self.warnings)
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used, clippy::expect_used)]
mod tests {
    use super::*;
    use etherparse::PacketBuilder;
    use std::net::{Ipv4Addr, Ipv6Addr};

    const PAYLOAD: &[u8] = b"EHLO client.example\r\n";
    const V6_SRC: [u8; 16] = [0x20, 0x01, 0x0d, 0xb8, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 1];
    const V6_DST: [u8; 16] = [0x20, 0x01, 0x0d, 0xb8, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 2];

    /// IPv4 + TCP (10.0.0.1:1025 -> 10.0.0.2:25, seq 1000, ack 77, PSH|ACK).
    fn ipv4_tcp(payload: &[u8]) -> Vec<u8> {
        let mut v = Vec::new();
        PacketBuilder::ipv4([10, 0, 0, 1], [10, 0, 0, 2], 64)
            .tcp(1025, 25, 1000, 512)
            .ack(77)
            .psh()
            .write(&mut v, payload)
            .unwrap();
        v
    }

    fn ipv6_tcp(payload: &[u8]) -> Vec<u8> {
        let mut v = Vec::new();
        PacketBuilder::ipv6(V6_SRC, V6_DST, 64)
            .tcp(1025, 25, 1000, 512)
            .ack(77)
            .write(&mut v, payload)
            .unwrap();
        v
    }

    fn ethernet(ether_type: u16, l3: &[u8]) -> Vec<u8> {
        let mut v = vec![2, 0, 0, 0, 0, 2, 2, 0, 0, 0, 0, 1];
        v.extend_from_slice(&ether_type.to_be_bytes());
        v.extend_from_slice(l3);
        v
    }

    fn decode_one(link: LinkType, frame: &[u8]) -> (Option<TcpSegment<'_>>, DecodeStats) {
        let mut d = Decoder::new();
        let seg = d.decode(link, frame, frame.len() as u32);
        (seg, d.stats().clone())
    }

    fn assert_v4_segment(seg: Option<TcpSegment<'_>>) {
        let seg = seg.expect("a TCP segment");
        assert_eq!(seg.src, IpAddr::V4(Ipv4Addr::new(10, 0, 0, 1)));
        assert_eq!(seg.dst, IpAddr::V4(Ipv4Addr::new(10, 0, 0, 2)));
        assert_eq!(
            (seg.src_port, seg.dst_port, seg.seq, seg.ack),
            (1025, 25, 1000, 77)
        );
        assert!(seg.flags.ack() && !seg.flags.syn() && !seg.flags.fin() && !seg.flags.rst());
        assert_eq!(seg.flags.0 & TcpFlags::PSH, TcpFlags::PSH);
        assert_eq!(seg.payload, PAYLOAD);
        assert_eq!(seg.missing_payload, 0);
    }

    #[test]
    fn ethernet_ipv4_tcp() {
        let frame = ethernet(0x0800, &ipv4_tcp(PAYLOAD));
        let (seg, stats) = decode_one(LinkType::ETHERNET, &frame);
        assert_v4_segment(seg);
        assert_eq!((stats.ipv4, stats.tcp), (1, 1));
    }

    #[test]
    fn ethernet_padding_is_not_payload() {
        // A bare ACK is 54 bytes; Ethernet pads it to 60 (IEEE 802.3 minimum frame).
        let mut frame = ethernet(0x0800, &ipv4_tcp(b""));
        assert_eq!(frame.len(), 54);
        frame.extend_from_slice(&[0u8; 6]);
        let (seg, _) = decode_one(LinkType::ETHERNET, &frame);
        let seg = seg.unwrap();
        assert!(seg.payload.is_empty());
        assert_eq!(seg.missing_payload, 0);

        // Same for IPv6 (payload length bounds it), with a 4-byte FCS-like trailer.
        let mut frame = ethernet(0x86dd, &ipv6_tcp(b"hi"));
        frame.extend_from_slice(&[0xde, 0xad, 0xbe, 0xef]);
        let (seg, _) = decode_one(LinkType::ETHERNET, &frame);
        assert_eq!(seg.unwrap().payload, b"hi");
    }

    #[test]
    fn vlan_and_qinq_tags() {
        let ip = ipv4_tcp(PAYLOAD);
        // 802.1Q: TPID 0x8100, TCI, then the EtherType.
        let mut single = vec![0x00, 0x64, 0x08, 0x00];
        single.extend_from_slice(&ip);
        let frame = ethernet(0x8100, &single);
        let (seg, _) = decode_one(LinkType::ETHERNET, &frame);
        assert_v4_segment(seg);

        // QinQ with both service-tag EtherTypes (802.1ad 0x88a8 and the older 0x9100).
        for outer in [0x88a8u16, 0x9100] {
            let mut double = vec![0x00, 0x0a, 0x81, 0x00, 0x00, 0x64, 0x08, 0x00];
            double.extend_from_slice(&ip);
            let frame = ethernet(outer, &double);
            let (seg, stats) = decode_one(LinkType::ETHERNET, &frame);
            assert_v4_segment(seg);
            assert_eq!(stats.tcp, 1);
        }
    }

    #[test]
    fn linux_cooked_sll_and_sll2() {
        let ip = ipv4_tcp(PAYLOAD);
        // SLL: packet type, ARPHRD_ETHER, address length 6, address (8), protocol.
        let mut sll = vec![0, 0, 0, 1, 0, 6, 2, 0, 0, 0, 0, 1, 0, 0, 0x08, 0x00];
        sll.extend_from_slice(&ip);
        assert_v4_segment(decode_one(LinkType::LINUX_SLL, &sll).0);

        // SLL2: protocol, reserved, interface index, ARPHRD, packet type, address length,
        // address (8).
        let v6 = ipv6_tcp(PAYLOAD);
        let mut sll2 = vec![
            0x86, 0xdd, 0, 0, 0, 0, 0, 1, 0, 1, 4, 6, 2, 0, 0, 0, 0, 1, 0, 0,
        ];
        sll2.extend_from_slice(&v6);
        let (seg, stats) = decode_one(LinkType::LINUX_SLL2, &sll2);
        let seg = seg.unwrap();
        assert_eq!(seg.src, IpAddr::V6(Ipv6Addr::from(V6_SRC)));
        assert_eq!(seg.payload, PAYLOAD);
        assert_eq!(stats.ipv6, 1);

        // An SLL2 header cut short is not a segment.
        let (seg, stats) = decode_one(LinkType::LINUX_SLL2, &sll2[..10]);
        assert!(seg.is_none());
        assert_eq!(stats.malformed, 1);
    }

    #[test]
    fn bsd_null_in_both_byte_orders_and_loop() {
        let ip = ipv4_tcp(PAYLOAD);
        for family in [[2u8, 0, 0, 0], [0, 0, 0, 2]] {
            let mut f = family.to_vec();
            f.extend_from_slice(&ip);
            assert_v4_segment(decode_one(LinkType::NULL, &f).0);
        }
        // AF_INET6 as the BSDs and macOS number it.
        for af in [24u32, 28, 30] {
            let mut f = af.to_le_bytes().to_vec();
            f.extend_from_slice(&ipv6_tcp(PAYLOAD));
            let (seg, stats) = decode_one(LinkType::NULL, &f);
            assert!(seg.is_some(), "AF {af}");
            assert_eq!(stats.ipv6, 1);
        }
        // LOOP: network byte order.
        let mut f = vec![0, 0, 0, 2];
        f.extend_from_slice(&ip);
        assert_v4_segment(decode_one(LinkType::LOOP, &f).0);
        // An unknown family is not IP.
        let mut f = vec![0, 0, 0, 7];
        f.extend_from_slice(&ip);
        let (seg, stats) = decode_one(LinkType::LOOP, &f);
        assert!(seg.is_none());
        assert_eq!(stats.non_ip, 1);
    }

    #[test]
    fn raw_ip_links() {
        let v4 = ipv4_tcp(PAYLOAD);
        let v6 = ipv6_tcp(PAYLOAD);
        for link in [LinkType::RAW, LinkType::RAW_BSD, LinkType::RAW_BSD2] {
            assert_v4_segment(decode_one(link, &v4).0);
            let (seg, stats) = decode_one(link, &v6);
            assert!(seg.is_some());
            assert_eq!(stats.ipv6, 1);
        }
        assert_v4_segment(decode_one(LinkType::IPV4, &v4).0);
        assert!(decode_one(LinkType::IPV6, &v6).0.is_some());
        // The link type says IPv6 but the packet is IPv4.
        let (seg, stats) = decode_one(LinkType::IPV6, &v4);
        assert!(seg.is_none());
        assert_eq!(stats.malformed, 1);
    }

    #[test]
    fn ipv6_hop_by_hop_extension_header() {
        let mut p = ipv6_tcp(PAYLOAD);
        // Next Header -> Hop-by-Hop (0); payload length + 8; then the 8-byte header (next
        // header TCP, length 0, one PadN option of 4 bytes), RFC 8200 section 4.3.
        p[6] = 0;
        let plen = u16::from_be_bytes([p[4], p[5]]) + 8;
        p[4..6].copy_from_slice(&plen.to_be_bytes());
        let hbh = [6u8, 0, 1, 4, 0, 0, 0, 0];
        p.splice(40..40, hbh);
        let (seg, stats) = decode_one(LinkType::RAW, &p);
        let seg = seg.expect("TCP behind the extension header");
        assert_eq!(seg.payload, PAYLOAD);
        assert_eq!((seg.src_port, seg.dst_port), (1025, 25));
        assert_eq!(seg.missing_payload, 0);
        assert_eq!(stats.ipv6, 1);
    }

    #[test]
    fn ipv4_fragments_are_counted_not_decoded() {
        // First fragment: MF set, offset 0. It carries a TCP header, but its payload is only
        // part of the segment.
        let mut first = ipv4_tcp(PAYLOAD);
        first[6] |= 0x20;
        let (seg, stats) = decode_one(LinkType::RAW, &first);
        assert!(seg.is_none());
        assert_eq!((stats.ip_fragments, stats.tcp, stats.ipv4), (1, 0, 1));
        // A later fragment (offset 8 units): no TCP header at all.
        let mut later = ipv4_tcp(PAYLOAD);
        later[7] = 8;
        let (seg, stats) = decode_one(LinkType::RAW, &later);
        assert!(seg.is_none());
        assert_eq!(stats.ip_fragments, 1);
    }

    #[test]
    fn snaplen_cut_payload_is_marked_missing() {
        let payload = [b'x'; 100];
        let frame = ethernet(0x0800, &ipv4_tcp(&payload));
        let orig_len = frame.len() as u32;
        let cut = &frame[..14 + 20 + 20 + 40];
        let mut d = Decoder::new();
        let seg = d.decode(LinkType::ETHERNET, cut, orig_len).unwrap();
        assert_eq!(seg.payload.len(), 40);
        assert_eq!(seg.missing_payload, 60);
        assert_eq!(d.stats().truncated, 1);
        assert_eq!(d.stats().tcp, 1);
    }

    /// A snap length cuts every long frame at one length, and no whole frame is longer; one
    /// record whose length field was damaged is not a snap length.
    #[test]
    fn snap_length_warning_only_for_a_snap_length() {
        let long = ethernet(0x0800, &ipv4_tcp(&[b'x'; 100]));
        let short = ethernet(0x0800, &ipv4_tcp(b"QUIT\r\n"));
        let mut d = Decoder::new();
        d.decode(LinkType::ETHERNET, &short, short.len() as u32);
        for _ in 0..3 {
            d.decode(LinkType::ETHERNET, &long[..96], long.len() as u32);
        }
        let w = d.take_warnings();
        assert_eq!(
            w,
            [
                "TCP payloads of 3 packets cut by a snap length of 96 bytes (174 bytes not \
              captured): lines and TLS records cut there are read as far as they go, and \
              outcomes they would decide are left undecided"
            ]
        );
        let mut d = Decoder::new();
        d.decode(LinkType::ETHERNET, &long, long.len() as u32);
        d.decode(LinkType::ETHERNET, &long[..96], long.len() as u32);
        assert!(d.take_warnings().is_empty());
    }

    #[test]
    fn cut_tcp_options_still_give_the_segment() {
        // A SYN with 20 bytes of options, captured with a 68-byte snap length.
        let mut v = Vec::new();
        PacketBuilder::ethernet2([2, 0, 0, 0, 0, 1], [2, 0, 0, 0, 0, 2])
            .ipv4([10, 0, 0, 1], [10, 0, 0, 2], 64)
            .tcp(1025, 25, 1000, 512)
            .syn()
            .options_raw(&[1u8; 20])
            .unwrap()
            .write(&mut v, b"")
            .unwrap();
        let mut d = Decoder::new();
        let seg = d
            .decode(LinkType::ETHERNET, &v[..68], v.len() as u32)
            .unwrap();
        assert!(seg.flags.syn());
        assert_eq!((seg.src_port, seg.seq), (1025, 1000));
        assert!(seg.payload.is_empty());
        assert_eq!(seg.missing_payload, 0);
        assert_eq!(d.stats().truncated, 1);

        // The same bytes with no snap-length cut: the packet itself is too short.
        let mut d = Decoder::new();
        assert!(d.decode(LinkType::ETHERNET, &v[..40], 40).is_none());
        assert_eq!(d.stats().malformed, 1);
    }

    #[test]
    fn other_traffic_is_counted() {
        let mut d = Decoder::new();
        let mut udp = Vec::new();
        PacketBuilder::ipv4([10, 0, 0, 1], [10, 0, 0, 2], 64)
            .udp(53, 53)
            .write(&mut udp, b"q")
            .unwrap();
        assert!(d.decode(LinkType::RAW, &udp, udp.len() as u32).is_none());
        let mut icmp = Vec::new();
        PacketBuilder::ipv4([10, 0, 0, 1], [10, 0, 0, 2], 64)
            .icmpv4_echo_request(1, 1)
            .write(&mut icmp, b"ping")
            .unwrap();
        assert!(d.decode(LinkType::RAW, &icmp, icmp.len() as u32).is_none());
        let arp = ethernet(0x0806, &[0u8; 28]);
        assert!(
            d.decode(LinkType::ETHERNET, &arp, arp.len() as u32)
                .is_none()
        );
        let lldp = ethernet(0x88cc, &[0u8; 30]);
        assert!(
            d.decode(LinkType::ETHERNET, &lldp, lldp.len() as u32)
                .is_none()
        );
        // IPv4 EtherType, but version 5 in the header.
        let mut bad = ipv4_tcp(PAYLOAD);
        bad[0] = 0x55;
        let bad = ethernet(0x0800, &bad);
        assert!(
            d.decode(LinkType::ETHERNET, &bad, bad.len() as u32)
                .is_none()
        );
        let s = d.stats();
        assert_eq!(
            (s.udp, s.other_ip, s.non_ip, s.malformed, s.tcp),
            (1, 1, 2, 1, 0)
        );
    }

    /// An ICMP error (`icmp_type`, code, 4 zero bytes) carrying `quoted` after its header,
    /// from `reporter` to the quoted packet's sender, in IPv4 or IPv6.
    fn icmp_packet(v6: bool, icmp_type: u8, code: u8, quoted: &[u8]) -> Vec<u8> {
        let mut icmp = vec![icmp_type, code, 0, 0, 0, 0, 0, 0];
        icmp.extend_from_slice(quoted);
        let mut v = Vec::new();
        if v6 {
            // IPv6 header: next header 58 (ICMPv6), hop limit 64.
            v.extend_from_slice(&[0x60, 0, 0, 0]);
            v.extend_from_slice(&(icmp.len() as u16).to_be_bytes());
            v.extend_from_slice(&[58, 64]);
            v.extend_from_slice(&V6_DST);
            v.extend_from_slice(&V6_SRC);
        } else {
            let total = (20 + icmp.len()) as u16;
            v.extend_from_slice(&[0x45, 0]);
            v.extend_from_slice(&total.to_be_bytes());
            v.extend_from_slice(&[0, 0, 0, 0, 64, 1, 0, 0, 10, 0, 0, 2, 10, 0, 0, 1]);
        }
        v.extend_from_slice(&icmp);
        v
    }

    /// A SYN as the client sent it (10.0.0.1:1025 -> 10.0.0.2:25, or the IPv6 pair).
    fn syn(v6: bool) -> Vec<u8> {
        let mut v = Vec::new();
        let b = if v6 {
            PacketBuilder::ipv6(V6_SRC, V6_DST, 64)
        } else {
            PacketBuilder::ipv4([10, 0, 0, 1], [10, 0, 0, 2], 64)
        };
        b.tcp(1025, 25, 0xdead_beef, 512)
            .syn()
            .write(&mut v, b"")
            .unwrap();
        v
    }

    fn decode_icmp(frame: &[u8]) -> (Option<IcmpError>, DecodeStats) {
        let mut d = Decoder::new();
        let got = d.decode_packet(LinkType::RAW, frame, frame.len() as u32);
        let err = match got {
            Some(Decoded::IcmpError(e)) => Some(e),
            Some(Decoded::Tcp(_)) => panic!("not TCP"),
            None => None,
        };
        (err, d.stats().clone())
    }

    #[test]
    fn icmp_unreachable_names_the_quoted_connection() {
        // IPv4 admin prohibited (type 3 code 13) quoting the whole SYN.
        let (err, stats) = decode_icmp(&icmp_packet(false, 3, 13, &syn(false)));
        let err = err.expect("an ICMP error");
        assert_eq!((err.icmp_type, err.icmp_code), (3, 13));
        assert_eq!(err.reporter, IpAddr::V4(Ipv4Addr::new(10, 0, 0, 2)));
        assert_eq!(err.src, IpAddr::V4(Ipv4Addr::new(10, 0, 0, 1)));
        assert_eq!(
            (err.src_port, err.dst_port, err.seq),
            (1025, 25, 0xdead_beef)
        );
        assert_eq!(
            (stats.other_ip, stats.icmp_unreachable, stats.tcp),
            (1, 1, 0)
        );

        // RFC 792's minimum: the IP header and 8 bytes of TCP, all that is needed.
        let (err, _) = decode_icmp(&icmp_packet(false, 3, 3, &syn(false)[..28]));
        assert_eq!(err.map(|e| (e.dst_port, e.seq)), Some((25, 0xdead_beef)));

        // ICMPv6 type 1 code 4 (port unreachable).
        let (err, stats) = decode_icmp(&icmp_packet(true, 1, 4, &syn(true)));
        let err = err.expect("an ICMPv6 error");
        assert_eq!(err.src, IpAddr::V6(Ipv6Addr::from(V6_SRC)));
        assert_eq!((err.icmp_type, err.icmp_code, err.seq), (1, 4, 0xdead_beef));
        assert_eq!((stats.ipv6, stats.icmp_unreachable), (1, 1));
    }

    #[test]
    fn icmp_that_names_no_connection_is_only_counted() {
        let cases: [(&str, Vec<u8>); 6] = [
            // The quote stops inside the sequence number.
            (
                "truncated quote",
                icmp_packet(false, 3, 3, &syn(false)[..27]),
            ),
            (
                "quoted header cut",
                icmp_packet(false, 3, 3, &syn(false)[..12]),
            ),
            // Path MTU discovery on a working connection.
            (
                "fragmentation needed",
                icmp_packet(false, 3, 4, &syn(false)),
            ),
            ("time exceeded", icmp_packet(false, 11, 0, &syn(false))),
            // An IPv6 packet quoted by ICMPv4.
            ("version mismatch", icmp_packet(false, 3, 3, &syn(true))),
            // ICMPv6 packet too big (type 2) is not unreachable.
            ("packet too big", icmp_packet(true, 2, 0, &syn(true))),
        ];
        for (what, frame) in cases {
            let (err, stats) = decode_icmp(&frame);
            assert!(err.is_none(), "{what}");
            assert_eq!((stats.other_ip, stats.icmp_unreachable), (1, 0), "{what}");
        }
        // Quoting UDP.
        let mut udp = Vec::new();
        PacketBuilder::ipv4([10, 0, 0, 1], [10, 0, 0, 2], 64)
            .udp(53, 53)
            .write(&mut udp, b"q")
            .unwrap();
        assert!(decode_icmp(&icmp_packet(false, 3, 3, &udp)).0.is_none());
        // `decode` keeps to TCP.
        let frame = icmp_packet(false, 3, 3, &syn(false));
        assert!(
            Decoder::new()
                .decode(LinkType::RAW, &frame, frame.len() as u32)
                .is_none()
        );
    }

    #[test]
    fn unsupported_link_is_named_once_with_its_count() {
        let mut d = Decoder::new();
        for _ in 0..3 {
            assert!(d.decode(LinkType(147), b"\x00\x01", 2).is_none());
        }
        assert!(d.decode(LinkType(105), b"\x00", 1).is_none());
        assert_eq!(d.stats().unsupported_link, 4);
        let w = d.take_warnings();
        assert_eq!(
            w,
            [
                "unsupported link type 147 (linktype_147): 3 frames skipped",
                "unsupported link type 105 (linktype_105): 1 frames skipped"
            ]
        );
        assert!(d.take_warnings().is_empty());
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used, clippy::expect_used)]
mod robustness {
    use super::*;
    use proptest::collection::vec;
    use proptest::prelude::*;

    proptest! {
        #![proptest_config(ProptestConfig { cases: 2000, ..ProptestConfig::default() })]

        /// Any bytes under any link type: counted somewhere, never a panic, and a segment's
        /// payload always lies inside the frame.
        #[test]
        fn arbitrary_frames(
            link in prop::sample::select(vec![0u32, 1, 12, 14, 101, 108, 113, 147, 228, 229, 276]),
            head in prop::sample::select(vec![
                vec![], vec![0x45], vec![0x60], vec![2, 0, 0, 0, 0x45],
                vec![0u8, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0x08, 0x00, 0x45],
                vec![0u8, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0x81, 0x00, 0, 1, 0x86, 0xdd, 0x60],
            ]),
            tail in vec(any::<u8>(), 0..120),
            extra in 0u32..3000,
        ) {
            let mut frame = head;
            frame.extend(tail);
            let mut d = Decoder::new();
            if let Some(seg) = d.decode(LinkType(link), &frame, frame.len() as u32 + extra) {
                let start = seg.payload.as_ptr() as usize;
                let base = frame.as_ptr() as usize;
                prop_assert!(seg.payload.is_empty() || (start >= base && start + seg.payload.len() <= base + frame.len()));
            }
            let s = d.stats();
            let counted = s.tcp + s.udp + s.other_ip + s.non_ip + s.ip_fragments + s.malformed
                + s.unsupported_link
                + (s.truncated - if s.tcp > 0 { s.truncated.min(s.tcp) } else { 0 });
            prop_assert_eq!(counted, 1, "{:?}", s);
        }
    }
}
