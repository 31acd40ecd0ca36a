//! The server's leaf certificate, when it crossed the wire in clear (TLS 1.2 and older):
//! identity, validity at capture time, self-signature, name match (RFC 6125) and key size.

use std::net::IpAddr;

use sha2::{Digest, Sha256};
use x509_parser::extensions::{GeneralName, ParsedExtension};
use x509_parser::oid_registry::{
    OID_KEY_TYPE_EC_PUBLIC_KEY, OID_PKCS1_RSAENCRYPTION, OID_SIG_ED448, OID_SIG_ED25519,
};
use x509_parser::public_key::PublicKey;
use x509_parser::x509::X509Name;

use crate::proto::hexfmt::to_hex;
use crate::report::model::CertRecord;
use crate::time::Timestamp;

/// RSA moduli under this many bits are below every current recommendation (NIST SP 800-57
/// part 1 rev. 5 table 2: 2048 bits for 112-bit security).
pub const MIN_RSA_BITS: u32 = 2048;

/// One thing wrong with a certificate.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord)]
pub enum CertProblem {
    Expired,
    NotYetValid,
    WeakKey,
    SelfSigned,
    NameMismatch,
}

impl CertProblem {
    pub fn as_str(self) -> &'static str {
        match self {
            CertProblem::Expired => "expired",
            CertProblem::NotYetValid => "not_yet_valid",
            CertProblem::WeakKey => "weak_key",
            CertProblem::SelfSigned => "self_signed",
            CertProblem::NameMismatch => "name_mismatch",
        }
    }

    /// Expiry and weak keys break the security guarantees; self-signed and mismatched names
    /// are common on MX hosts (RFC 7672 section 1.3: opportunistic SMTP rarely authenticates).
    pub fn is_medium(self) -> bool {
        matches!(
            self,
            CertProblem::Expired | CertProblem::NotYetValid | CertProblem::WeakKey
        )
    }
}

/// What we learned from a leaf certificate.
#[derive(Clone, Debug, PartialEq)]
pub struct CertInfo {
    pub record: CertRecord,
    pub problems: Vec<CertProblem>,
}

fn name_string(n: &X509Name<'_>) -> String {
    n.to_string()
}

/// RFC 6125 section 6.4: case-insensitive; a wildcard only as the whole left-most label,
/// matching exactly one label, and never directly under a public suffix-like single label.
pub fn dns_name_matches(pattern: &str, host: &str) -> bool {
    let p = pattern.trim_end_matches('.').to_ascii_lowercase();
    let h = host.trim_end_matches('.').to_ascii_lowercase();
    if p.is_empty() || h.is_empty() {
        return false;
    }
    match p.strip_prefix("*.") {
        Some(rest) => {
            // `*.com` would match every .com host; require two labels after the wildcard.
            if !rest.contains('.') || rest.contains('*') {
                return false;
            }
            match h.split_once('.') {
                Some((first, h_rest)) => !first.is_empty() && h_rest == rest,
                None => false,
            }
        }
        // Partial wildcards (`w*.example.com`) are not honoured (RFC 9525 section 6.3).
        None => !p.contains('*') && p == h,
    }
}

fn ip_matches(san: &[u8], ip: IpAddr) -> bool {
    match ip {
        IpAddr::V4(v4) => san == v4.octets(),
        IpAddr::V6(v6) => san == v6.octets(),
    }
}

/// Parses the DER leaf and judges it against `host` (SNI, else the SMTP banner name) at
/// capture time `now`. `None` when the DER does not parse.
pub fn inspect(
    der: &[u8],
    chain_length: usize,
    host: Option<&str>,
    now: Timestamp,
) -> Option<CertInfo> {
    Parsed::new(der).map(|p| p.judge(chain_length, host, now))
}

/// What a certificate says by itself, the same in every connection that shows it; the
/// connection adds the chain length, the name to check and the time to check validity at.
#[derive(Clone, Debug)]
struct Parsed {
    subject: String,
    issuer: String,
    san: Vec<String>,
    not_before: i64,
    not_after: i64,
    not_before_text: String,
    not_after_text: String,
    key_type: &'static str,
    key_bits: Option<u32>,
    sha256: String,
    self_signed: bool,
    dns_sans: Vec<String>,
    ip_sans: Vec<Vec<u8>>,
    /// The subject's common names that are strings, for a certificate without dNSName SANs.
    common_names: Vec<String>,
}

impl Parsed {
    fn new(der: &[u8]) -> Option<Parsed> {
        let (_, cert) = x509_parser::parse_x509_certificate(der).ok()?;
        let nb = cert.validity().not_before.timestamp();
        let na = cert.validity().not_after.timestamp();

        let spki = cert.public_key();
        let alg = &spki.algorithm.algorithm;
        let parsed = spki.parsed().ok();
        let (key_type, key_bits) = if *alg == OID_PKCS1_RSAENCRYPTION {
            ("RSA", parsed.as_ref().map(|k| k.key_size() as u32))
        } else if *alg == OID_KEY_TYPE_EC_PUBLIC_KEY {
            ("EC", parsed.as_ref().map(|k| k.key_size() as u32))
        } else if *alg == OID_SIG_ED25519 {
            ("Ed25519", Some(256))
        } else if *alg == OID_SIG_ED448 {
            ("Ed448", Some(456))
        } else {
            match parsed {
                Some(PublicKey::DSA(_)) => ("DSA", parsed.as_ref().map(|k| k.key_size() as u32)),
                _ => ("unknown", None),
            }
        };

        let mut ski: Option<&[u8]> = None;
        let mut aki: Option<&[u8]> = None;
        let mut dns_sans: Vec<String> = Vec::new();
        let mut ip_sans: Vec<Vec<u8>> = Vec::new();
        let mut san = Vec::new();
        for e in cert.extensions() {
            match e.parsed_extension() {
                ParsedExtension::SubjectKeyIdentifier(k) => ski = Some(k.0),
                ParsedExtension::AuthorityKeyIdentifier(a) => {
                    aki = a.key_identifier.as_ref().map(|k| k.0)
                }
                ParsedExtension::SubjectAlternativeName(names) => {
                    for n in &names.general_names {
                        match n {
                            GeneralName::DNSName(d) => {
                                dns_sans.push(d.to_string());
                                san.push(d.to_string());
                            }
                            GeneralName::IPAddress(b) => {
                                ip_sans.push(b.to_vec());
                                san.push(match b.len() {
                                    4 | 16 => ip_from_bytes(b)
                                        .map_or_else(|| to_hex(b), |i| i.to_string()),
                                    _ => to_hex(b),
                                });
                            }
                            _ => {}
                        }
                    }
                }
                _ => {}
            }
        }

        // Self-issued (RFC 5280 section 3.2: same subject and issuer) and, when both key ids
        // are present, the issuer key is the subject key: a self-signed certificate.
        let self_issued = cert.subject().as_raw() == cert.issuer().as_raw();
        let self_signed = self_issued && aki.is_none_or(|a| ski.is_none_or(|s| s == a));
        let common_names = cert
            .subject()
            .iter_common_name()
            .filter_map(|cn| cn.as_str().ok())
            .map(str::to_string)
            .collect();

        Some(Parsed {
            subject: name_string(cert.subject()),
            issuer: name_string(cert.issuer()),
            san,
            not_before: nb,
            not_after: na,
            not_before_text: Timestamp::new(nb, 0).to_string(),
            not_after_text: Timestamp::new(na, 0).to_string(),
            key_type,
            key_bits,
            sha256: to_hex(&Sha256::digest(der)),
            self_signed,
            dns_sans,
            ip_sans,
            common_names,
        })
    }

    /// The certificate as this connection shows it.
    fn judge(&self, chain_length: usize, host: Option<&str>, now: Timestamp) -> CertInfo {
        let mut problems = Vec::new();
        if now.secs > self.not_after {
            problems.push(CertProblem::Expired);
        }
        if now.secs < self.not_before {
            problems.push(CertProblem::NotYetValid);
        }
        if matches!(self.key_type, "RSA" | "DSA")
            && self.key_bits.is_some_and(|b| b > 0 && b < MIN_RSA_BITS)
        {
            problems.push(CertProblem::WeakKey);
        }
        if self.self_signed {
            problems.push(CertProblem::SelfSigned);
        }
        let mut checked = None;
        if let Some(host) = host.map(str::trim).filter(|h| !h.is_empty()) {
            checked = Some(host.to_string());
            let ok = match host.parse::<IpAddr>() {
                Ok(ip) => self.ip_sans.iter().any(|s| ip_matches(s, ip)),
                Err(_) if !self.dns_sans.is_empty() => {
                    self.dns_sans.iter().any(|p| dns_name_matches(p, host))
                }
                // Only without any dNSName SAN may the CN stand in (RFC 6125 section 6.4.4).
                Err(_) => self
                    .common_names
                    .iter()
                    .any(|cn| dns_name_matches(cn, host)),
            };
            if !ok {
                problems.push(CertProblem::NameMismatch);
            }
        }
        problems.sort();
        let record = CertRecord {
            subject: self.subject.clone(),
            issuer: self.issuer.clone(),
            san: self.san.clone(),
            not_before: self.not_before_text.clone(),
            not_after: self.not_after_text.clone(),
            key_type: self.key_type.to_string(),
            key_bits: self.key_bits,
            sha256: self.sha256.clone(),
            self_signed: self.self_signed,
            chain_length: chain_length as u32,
            name_checked: checked,
            problems: problems.iter().map(|p| p.as_str().to_string()).collect(),
        };
        CertInfo { record, problems }
    }
}

/// Certificates held by a [`CertMemo`]. A mail relay's day shows the same few server
/// certificates thousands of times; a cap keeps a capture of many distinct ones (a scan of
/// many servers) from growing the memo, which then only misses.
pub const MEMO_ENTRIES: usize = 64;
/// Certificates larger than this are inspected each time, never held: with the cap on
/// entries, the memo stays under `MEMO_ENTRIES * MEMO_MAX_DER` bytes of DER (leaf
/// certificates are 1 to 2 KiB; a chain's largest message may be 64 KiB).
pub const MEMO_MAX_DER: usize = 8 * 1024;

/// What [`inspect`] found for recently seen certificates, keyed by their whole DER (the
/// hash only narrows the search; the bytes are compared). Parsing is the costly part of a
/// TLS connection seen in clear; what depends on the connection is judged each time, so a
/// memoised answer is exactly what inspecting would return.
#[derive(Debug, Default)]
pub struct CertMemo {
    entries: Vec<MemoEntry>,
    /// The entry replaced next once the memo is full (oldest first).
    next: usize,
}

#[derive(Debug)]
struct MemoEntry {
    hash: u64,
    der: Box<[u8]>,
    parsed: Option<Parsed>,
}

impl CertMemo {
    /// [`inspect`], from the memo when this DER was seen before.
    pub fn inspect(
        &mut self,
        der: &[u8],
        chain_length: usize,
        host: Option<&str>,
        now: Timestamp,
    ) -> Option<CertInfo> {
        if der.len() > MEMO_MAX_DER {
            return inspect(der, chain_length, host, now);
        }
        let hash = {
            use std::hash::Hasher;
            let mut h = rustc_hash::FxHasher::default();
            h.write(der);
            h.finish()
        };
        if let Some(e) = self
            .entries
            .iter()
            .find(|e| e.hash == hash && *e.der == *der)
        {
            return e.parsed.as_ref().map(|p| p.judge(chain_length, host, now));
        }
        let parsed = Parsed::new(der);
        let info = parsed.as_ref().map(|p| p.judge(chain_length, host, now));
        let entry = MemoEntry {
            hash,
            der: der.into(),
            parsed,
        };
        if self.entries.len() < MEMO_ENTRIES {
            self.entries.push(entry);
        } else if let Some(slot) = self.entries.get_mut(self.next) {
            *slot = entry;
            self.next = (self.next + 1) % MEMO_ENTRIES;
        }
        info
    }

    pub fn len(&self) -> usize {
        self.entries.len()
    }

    pub fn is_empty(&self) -> bool {
        self.entries.is_empty()
    }
}

fn ip_from_bytes(b: &[u8]) -> Option<IpAddr> {
    if let Ok(a) = <[u8; 4]>::try_from(b) {
        return Some(IpAddr::from(a));
    }
    <[u8; 16]>::try_from(b).ok().map(IpAddr::from)
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;

    #[test]
    fn rfc6125_wildcards() {
        assert!(dns_name_matches("mx.example.org", "MX.Example.org."));
        assert!(dns_name_matches("*.example.org", "mx.example.org"));
        assert!(!dns_name_matches("*.example.org", "example.org"));
        assert!(!dns_name_matches("*.example.org", "a.mx.example.org"));
        assert!(!dns_name_matches("*.org", "example.org"));
        assert!(!dns_name_matches("m*.example.org", "mx.example.org"));
        assert!(!dns_name_matches("mx.example.org", "mx2.example.org"));
        assert!(!dns_name_matches("", "mx.example.org"));
    }

    #[test]
    fn garbage_der_is_none() {
        assert!(
            inspect(
                &[0x30, 0x03, 0x02, 0x01, 0x00],
                1,
                None,
                Timestamp::default()
            )
            .is_none()
        );
        assert!(inspect(&[], 1, None, Timestamp::default()).is_none());
    }

    fn der() -> Vec<u8> {
        // The self-signed 1024-bit certificate of the session tests (CN and SAN
        // mx.example.org, SAN *.mail.example.org).
        crate::proto::tls::session::test_cert_der()
    }

    #[test]
    fn memo_answers_as_inspect_does() {
        let der = der();
        let mut memo = CertMemo::default();
        let now = Timestamp::new(1_795_526_602 + 86_400, 0);
        let later = Timestamp::new(1_795_526_602 + 900 * 86_400, 0);
        for host in [
            None,
            Some("mx.example.org"),
            Some(" x.mail.example.org "),
            Some("10.0.0.1"),
        ] {
            for ts in [now, later] {
                for chain in [1, 3] {
                    assert_eq!(
                        memo.inspect(&der, chain, host, ts),
                        inspect(&der, chain, host, ts)
                    );
                }
            }
        }
        assert_eq!(memo.len(), 1);
        // Garbage is remembered as garbage.
        assert!(memo.inspect(&[0x30, 0x00], 1, None, now).is_none());
        assert!(memo.inspect(&[0x30, 0x00], 1, None, now).is_none());
        assert_eq!(memo.len(), 2);
    }

    #[test]
    fn memo_is_bounded_and_compares_whole_certificates() {
        let der = der();
        let mut memo = CertMemo::default();
        let now = Timestamp::new(1_795_526_602 + 86_400, 0);
        // Distinct unparseable DERs fill it past its cap; it keeps MEMO_ENTRIES.
        for i in 0..(MEMO_ENTRIES as u32 * 3) {
            let junk = [
                0x30,
                0x04,
                i.to_be_bytes()[0],
                i.to_be_bytes()[1],
                i.to_be_bytes()[2],
                i.to_be_bytes()[3],
            ];
            assert!(memo.inspect(&junk, 1, None, now).is_none());
        }
        assert_eq!(memo.len(), MEMO_ENTRIES);
        // A certificate that differs in its last byte only (the signature) is not the one
        // held: it is parsed anew and its fingerprint is its own.
        let want = memo.inspect(&der, 1, None, now).unwrap();
        let mut other = der.clone();
        if let Some(last) = other.last_mut() {
            *last ^= 1;
        }
        let got = memo.inspect(&other, 1, None, now).unwrap();
        assert_ne!(got.record.sha256, want.record.sha256);
        assert_eq!(Some(got), inspect(&other, 1, None, now));
        // Too large to hold: inspected, not kept.
        let big = vec![0u8; MEMO_MAX_DER + 1];
        let before = memo.len();
        assert!(memo.inspect(&big, 1, None, now).is_none());
        assert_eq!(memo.len(), before);
    }
}
