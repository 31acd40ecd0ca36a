//! Community ID v1 flow hashes (corelight/community-id-spec), written as
//! `network.community_id` so an smtpaudit flow can be joined with the same connection in Zeek,
//! Suricata or Elastic Agent data.
//!
//! The hashed tuple, all in network byte order and aligned on 32 bits:
//! seed (2 bytes), the smaller endpoint's address, the other address, IP protocol (1 byte),
//! one zero byte of padding, the smaller endpoint's port, the other port. "Smaller" compares
//! addresses first and ports on a tie, so both directions of a connection hash the same.
//! The result is `1:` followed by the standard base64 (with padding) of the SHA-1 digest.

use std::net::IpAddr;

use base64::Engine as _;
use sha1::{Digest, Sha1};

/// IANA protocol number of TCP, the only transport smtpaudit reports.
pub const PROTO_TCP: u8 = 6;

/// Community ID v1 of a TCP connection with the default seed 0.
pub fn tcp_v1(a: (IpAddr, u16), b: (IpAddr, u16)) -> String {
    v1(0, PROTO_TCP, a, b)
}

/// Community ID v1 for a port-carrying protocol (TCP, UDP, SCTP) with `seed`.
pub fn v1(seed: u16, proto: u8, a: (IpAddr, u16), b: (IpAddr, u16)) -> String {
    let (a, b) = same_family(a, b);
    let (lo, hi) = if (a.0, a.1) <= (b.0, b.1) {
        (a, b)
    } else {
        (b, a)
    };
    let mut h = Sha1::new();
    h.update(seed.to_be_bytes());
    h.update(addr_bytes(lo.0).as_slice());
    h.update(addr_bytes(hi.0).as_slice());
    h.update([proto, 0]);
    h.update(lo.1.to_be_bytes());
    h.update(hi.1.to_be_bytes());
    let digest = h.finalize();
    let mut out = String::with_capacity(30);
    out.push_str("1:");
    base64::engine::general_purpose::STANDARD.encode_string(digest.as_slice(), &mut out);
    out
}

/// A connection never mixes families, but if a caller hands us one IPv4 and one IPv6 end,
/// hash both as IPv6 (v4-mapped) rather than produce a tuple of odd length.
fn same_family(a: (IpAddr, u16), b: (IpAddr, u16)) -> ((IpAddr, u16), (IpAddr, u16)) {
    match (a.0, b.0) {
        (IpAddr::V4(x), IpAddr::V6(_)) => ((IpAddr::V6(x.to_ipv6_mapped()), a.1), b),
        (IpAddr::V6(_), IpAddr::V4(y)) => (a, (IpAddr::V6(y.to_ipv6_mapped()), b.1)),
        _ => (a, b),
    }
}

enum AddrBytes {
    V4([u8; 4]),
    V6([u8; 16]),
}

impl AddrBytes {
    fn as_slice(&self) -> &[u8] {
        match self {
            AddrBytes::V4(b) => b,
            AddrBytes::V6(b) => b,
        }
    }
}

fn addr_bytes(ip: IpAddr) -> AddrBytes {
    match ip {
        IpAddr::V4(v4) => AddrBytes::V4(v4.octets()),
        IpAddr::V6(v6) => AddrBytes::V6(v6.octets()),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ep(ip: &str, port: u16) -> (IpAddr, u16) {
        (ip.parse().unwrap_or(IpAddr::from([0, 0, 0, 0])), port)
    }

    // Expected values from the spec's published baseline (baseline/baseline_deflt.json and
    // baseline_seed1.json in corelight/community-id-spec).
    #[test]
    fn ipv4_tcp_baseline_both_directions() {
        let a = ep("128.232.110.120", 34855);
        let b = ep("66.35.250.204", 80);
        assert_eq!(tcp_v1(a, b), "1:LQU9qZlK+B5F3KDmev6m5PMibrg=");
        assert_eq!(tcp_v1(b, a), "1:LQU9qZlK+B5F3KDmev6m5PMibrg=");
        assert_eq!(v1(1, PROTO_TCP, a, b), "1:3V71V58M3Ksw/yuFALMcW0LAHvc=");
    }

    #[test]
    fn ipv6_smtp_baseline_both_directions() {
        let a = ep("2001:470:e5bf:dead:4957:2174:e82c:4887", 63943);
        let b = ep("2607:f8b0:400c:c03::1a", 25);
        assert_eq!(tcp_v1(a, b), "1:/qFaeAR+gFe1KYjMzVDsMv+wgU4=");
        assert_eq!(tcp_v1(b, a), "1:/qFaeAR+gFe1KYjMzVDsMv+wgU4=");
        assert_eq!(v1(1, PROTO_TCP, b, a), "1:eJYTW6AOzFLlSUoESovMjnu7rMw=");
    }

    #[test]
    fn udp_and_sctp_baseline() {
        let a = ep("192.168.1.52", 54585);
        let b = ep("8.8.8.8", 53);
        assert_eq!(v1(0, 17, a, b), "1:d/FP5EW3wiY1vCndhwleRRKHowQ=");
        // Equal ports: the address alone decides the order.
        let a = ep("192.168.170.56", 7);
        let b = ep("192.168.170.8", 7);
        assert_eq!(v1(0, 132, a, b), "1:MP2EtRCAUIZvTw6MxJHLV7N7JDs=");
    }
}
