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
    let (_, cert) = x509_parser::parse_x509_certificate(der).ok()?;
    let mut problems = Vec::new();

    let nb = cert.validity().not_before.timestamp();
    let na = cert.validity().not_after.timestamp();
    if now.secs > na {
        problems.push(CertProblem::Expired);
    }
    if now.secs < nb {
        problems.push(CertProblem::NotYetValid);
    }

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
    if matches!(key_type, "RSA" | "DSA") && key_bits.is_some_and(|b| b > 0 && b < MIN_RSA_BITS) {
        problems.push(CertProblem::WeakKey);
    }

    let mut ski: Option<&[u8]> = None;
    let mut aki: Option<&[u8]> = None;
    let mut dns_sans: Vec<&str> = Vec::new();
    let mut ip_sans: Vec<&[u8]> = Vec::new();
    let mut san_strings = Vec::new();
    for e in cert.extensions() {
        match e.parsed_extension() {
            ParsedExtension::SubjectKeyIdentifier(k) => ski = Some(k.0),
            ParsedExtension::AuthorityKeyIdentifier(a) => {
                aki = a.key_identifier.as_ref().map(|k| k.0)
            }
            ParsedExtension::SubjectAlternativeName(san) => {
                for n in &san.general_names {
                    match n {
                        GeneralName::DNSName(d) => {
                            dns_sans.push(d);
                            san_strings.push(d.to_string());
                        }
                        GeneralName::IPAddress(b) => {
                            ip_sans.push(b);
                            san_strings.push(match b.len() {
                                4 | 16 => ip_from_bytes(b)
                                    .map_or_else(|| hex::encode(b), |i| i.to_string()),
                                _ => hex::encode(b),
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
    if self_signed {
        problems.push(CertProblem::SelfSigned);
    }

    let mut checked = None;
    if let Some(host) = host.map(str::trim).filter(|h| !h.is_empty()) {
        checked = Some(host.to_string());
        let ok = match host.parse::<IpAddr>() {
            Ok(ip) => ip_sans.iter().any(|s| ip_matches(s, ip)),
            Err(_) if !dns_sans.is_empty() => dns_sans.iter().any(|p| dns_name_matches(p, host)),
            // Only without any dNSName SAN may the CN stand in (RFC 6125 section 6.4.4).
            Err(_) => cert
                .subject()
                .iter_common_name()
                .filter_map(|cn| cn.as_str().ok())
                .any(|cn| dns_name_matches(cn, host)),
        };
        if !ok {
            problems.push(CertProblem::NameMismatch);
        }
    }

    problems.sort();
    let record = CertRecord {
        subject: name_string(cert.subject()),
        issuer: name_string(cert.issuer()),
        san: san_strings,
        not_before: Timestamp::new(nb, 0).to_string(),
        not_after: Timestamp::new(na, 0).to_string(),
        key_type: key_type.to_string(),
        key_bits,
        sha256: hex::encode(Sha256::digest(der)),
        self_signed,
        chain_length: chain_length as u32,
        name_checked: checked,
        problems: problems.iter().map(|p| p.as_str().to_string()).collect(),
    };
    Some(CertInfo { record, problems })
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
}
