//! Frame -> TCP segment view. Tolerant: checksums are never verified (offload makes them
//! wrong in most captures), a packet cut by the snap length is decoded as far as it goes, and
//! everything that is not TCP over IP is only counted.

use std::net::IpAddr;

use etherparse::err::Layer;
use etherparse::err::ip::LaxHeaderSliceError;
use etherparse::err::packet::SliceError;
use etherparse::{EtherType, LaxIpPayloadSlice, LaxNetSlice, LaxSlicedPacket, TransportSlice};

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

/// Decodes frames into TCP segments, counting everything else.
#[derive(Debug, Default)]
pub struct Decoder {
    stats: DecodeStats,
    warnings: Vec<String>,
    /// Frames skipped per unsupported link type, and whether the warning was given. A capture
    /// has at most a handful of link types, so a list beats a map.
    unsupported: Vec<(LinkType, u64, bool)>,
}

/// Where the IP layer starts, once the link layer is peeled.
enum Network<'a> {
    /// Bytes starting with an IP header (raw IP, BSD loopback).
    Ip(&'a [u8]),
    /// An Ethernet II frame (with or without VLAN tags).
    Ethernet(&'a [u8]),
    /// A packet of this EtherType (Linux cooked capture).
    Ether(EtherType, &'a [u8]),
}

impl Decoder {
    pub fn new() -> Self {
        Self::default()
    }

    /// Decodes one frame. `orig_len` is the on-wire length (to detect snap-length cuts).
    /// Returns `None` for anything that is not a decodable TCP segment (and counts it).
    pub fn decode<'a>(
        &mut self,
        link: LinkType,
        data: &'a [u8],
        orig_len: u32,
    ) -> Option<TcpSegment<'a>> {
        let cut = (data.len() as u64) < u64::from(orig_len);
        let network = match link {
            LinkType::ETHERNET => Network::Ethernet(data),
            LinkType::LINUX_SLL => self.cooked(data, SLL_PROTOCOL_AT, SLL_HEADER_LEN, cut)?,
            LinkType::LINUX_SLL2 => self.cooked(data, SLL2_PROTOCOL_AT, SLL2_HEADER_LEN, cut)?,
            // The version nibble tells IPv4 from IPv6.
            LinkType::RAW | LinkType::RAW_BSD | LinkType::RAW_BSD2 => Network::Ip(data),
            LinkType::IPV4 | LinkType::IPV6 => {
                let want = if link == LinkType::IPV4 { 4 } else { 6 };
                match data.first() {
                    Some(b) if b >> 4 == want => Network::Ip(data),
                    Some(_) => return self.malformed(),
                    None => return self.short(cut),
                }
            }
            LinkType::NULL | LinkType::LOOP => {
                let family: Option<[u8; 4]> = data.get(..4).and_then(|b| b.try_into().ok());
                let (Some(mut family), Some(rest)) = (family, data.get(4..)) else {
                    return self.short(cut);
                };
                if link == LinkType::NULL {
                    // DLT_NULL stores the family in the byte order of the capturing host,
                    // which the file does not record; families are small, so a value with
                    // its upper half set was written in the other order.
                    if u32::from_le_bytes(family) & 0xffff_0000 != 0 {
                        family.reverse();
                    }
                    family = u32::from_le_bytes(family).to_be_bytes();
                }
                // DLT_LOOP: always network byte order.
                match u32::from_be_bytes(family) {
                    AF_INET => Network::Ip(rest),
                    f if AF_INET6_BSD.contains(&f) => Network::Ip(rest),
                    _ => {
                        self.stats.non_ip += 1;
                        return None;
                    }
                }
            }
            other => {
                self.stats.unsupported_link += 1;
                match self.unsupported.iter_mut().find(|(l, _, _)| *l == other) {
                    Some(entry) => entry.1 += 1,
                    None => self.unsupported.push((other, 1, false)),
                }
                return None;
            }
        };
        let packet = match network {
            Network::Ethernet(frame) => match LaxSlicedPacket::from_ethernet(frame) {
                Ok(p) => p,
                Err(_) => return self.short(cut),
            },
            Network::Ether(ether_type, payload) => {
                LaxSlicedPacket::from_ether_type(ether_type, payload)
            }
            Network::Ip(ip) => match LaxSlicedPacket::from_ip(ip) {
                Ok(p) => p,
                Err(LaxHeaderSliceError::Len(_)) => return self.short(cut),
                Err(LaxHeaderSliceError::Content(_)) => return self.malformed(),
            },
        };
        self.transport(&packet, cut)
    }

    /// Linux cooked capture: the protocol field is an EtherType (for IP), then the packet.
    fn cooked<'a>(
        &mut self,
        data: &'a [u8],
        protocol_at: usize,
        header_len: usize,
        cut: bool,
    ) -> Option<Network<'a>> {
        let (Some(protocol), Some(rest)) = (be16_at(data, protocol_at), data.get(header_len..))
        else {
            return self.short(cut);
        };
        Some(Network::Ether(EtherType(protocol), rest))
    }

    fn transport<'a>(&mut self, p: &LaxSlicedPacket<'a>, cut: bool) -> Option<TcpSegment<'a>> {
        let (src, dst, ip_payload, declared) = match &p.net {
            Some(LaxNetSlice::Ipv4(v4)) => {
                self.stats.ipv4 += 1;
                let h = v4.header();
                let auth_len = v4.extensions().auth.map_or(0, |a| a.slice().len());
                // RFC 791 section 3.1: Total Length counts header and data; it is what bounds
                // the payload (Ethernet pads short frames to 60 bytes).
                let declared = usize::from(h.total_len()).checked_sub(h.slice().len() + auth_len);
                (
                    IpAddr::V4(h.source_addr()),
                    IpAddr::V4(h.destination_addr()),
                    v4.payload(),
                    declared,
                )
            }
            Some(LaxNetSlice::Ipv6(v6)) => {
                self.stats.ipv6 += 1;
                let h = v6.header();
                // RFC 8200 section 3: Payload Length includes the extension headers.
                let declared =
                    usize::from(h.payload_length()).checked_sub(v6.extensions().slice().len());
                (
                    IpAddr::V6(h.source_addr()),
                    IpAddr::V6(h.destination_addr()),
                    v6.payload(),
                    declared,
                )
            }
            Some(LaxNetSlice::Arp(_)) => {
                self.stats.non_ip += 1;
                return None;
            }
            None => {
                // An EtherType that is not IP, or headers cut or damaged before IP.
                return match p.stop_err {
                    Some(_) => self.short(cut),
                    None => {
                        self.stats.non_ip += 1;
                        None
                    }
                };
            }
        };
        if ip_payload.fragmented {
            self.stats.ip_fragments += 1;
            return None;
        }
        let tcp = match &p.transport {
            Some(TransportSlice::Tcp(tcp)) => tcp,
            Some(TransportSlice::Udp(_)) => {
                self.stats.udp += 1;
                return None;
            }
            _ if matches!(p.stop_err, Some((SliceError::Len(_), Layer::TcpHeader))) => {
                return self.cut_tcp_header(src, dst, ip_payload, declared, cut);
            }
            _ if p.stop_err.is_some() => return self.short(cut),
            _ => {
                self.stats.other_ip += 1;
                return None;
            }
        };
        self.stats.tcp += 1;
        let header = tcp.header_slice();
        let payload = tcp.payload();
        let missing_payload = if ip_payload.incomplete {
            let expected = declared.map_or(0, |d| d.saturating_sub(header.len()));
            u32::try_from(expected.saturating_sub(payload.len())).unwrap_or(u32::MAX)
        } else {
            0
        };
        if missing_payload > 0 {
            self.stats.truncated += 1;
        }
        Some(TcpSegment {
            src,
            dst,
            src_port: tcp.source_port(),
            dst_port: tcp.destination_port(),
            seq: tcp.sequence_number(),
            ack: tcp.acknowledgment_number(),
            // RFC 9293 section 3.1: the flags are byte 13 (CWR..FIN).
            flags: TcpFlags(header.get(13).copied().unwrap_or(0)),
            payload,
            missing_payload,
        })
    }

    /// A TCP header whose options were cut (a SYN captured with a 68-byte snap length, say):
    /// the fixed 20 bytes still give ports, numbers and flags, which flow tracking needs.
    fn cut_tcp_header<'a>(
        &mut self,
        src: IpAddr,
        dst: IpAddr,
        ip_payload: &LaxIpPayloadSlice<'a>,
        declared: Option<usize>,
        cut: bool,
    ) -> Option<TcpSegment<'a>> {
        let b = ip_payload.payload;
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
        std::mem::take(&mut self.warnings)
    }
}
