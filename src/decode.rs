//! Frame -> TCP segment view. Tolerant: checksums are never verified (offload makes them
//! wrong in most captures), a packet cut by the snap length is decoded as far as it goes, and
//! everything that is not TCP over IP is only counted.

use std::net::IpAddr;

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
    /// IPv4 fragments (counted, not reassembled).
    pub ip_fragments: u64,
    /// Frames cut by the snap length.
    pub truncated: u64,
    /// Frames whose headers could not be decoded.
    pub malformed: u64,
    /// Frames of a link type smtpaudit does not decode.
    pub unsupported_link: u64,
}

/// Decodes frames into TCP segments, counting everything else.
#[derive(Debug, Default)]
pub struct Decoder {
    stats: DecodeStats,
    warnings: Vec<String>,
}

impl Decoder {
    pub fn new() -> Self {
        Self::default()
    }

    /// Decodes one frame. `orig_len` is the on-wire length (to detect snap-length cuts).
    /// Returns `None` for anything that is not a decodable TCP segment (and counts it).
    pub fn decode<'a>(
        &mut self,
        _link: LinkType,
        _data: &'a [u8],
        _orig_len: u32,
    ) -> Option<TcpSegment<'a>> {
        None
    }

    pub fn stats(&self) -> &DecodeStats {
        &self.stats
    }

    /// Oddities to list in the capture's `warnings`, each named once (e.g. an unsupported
    /// link type).
    pub fn take_warnings(&mut self) -> Vec<String> {
        std::mem::take(&mut self.warnings)
    }
}
