//! JA4, the TLS client fingerprint of FoxIO's JA4 (BSD-3-Clause; `technical_details/JA4.md`),
//! for TLS over TCP only. JA4S and the other JA4+ methods are under a restrictive licence and
//! deliberately absent.
//!
//! `t` + version + `d`/`i` + cipher count + extension count + ALPN ends, `_`, 12 hex of
//! SHA-256 over the sorted ciphers, `_`, 12 hex of SHA-256 over the sorted extensions (no SNI,
//! no ALPN), `_`, then the signature algorithms in wire order. GREASE is ignored throughout.

use sha2::{Digest, Sha256};

use super::handshake::{ClientHello, ext};
use super::names::{Version, is_grease};
use crate::proto::hexfmt::{push_hex, push_hex_u16};

/// Version code: highest non-GREASE `supported_versions`, else the legacy version.
fn version_code(ch: &ClientHello) -> &'static str {
    if ch.sslv2 && ch.supported_versions.is_empty() && ch.version == Version::SSL2 {
        return "s2";
    }
    match ch.max_version() {
        Version::TLS13 => "13",
        Version::TLS12 => "12",
        Version::TLS11 => "11",
        Version::TLS10 => "10",
        Version::SSL3 => "s3",
        Version::SSL2 => "s2",
        _ => "00",
    }
}

/// First and last character of the first ALPN value; when either end byte is not ASCII
/// alphanumeric, the first and last hex digit of the whole value instead; `00` when absent.
fn push_alpn_code(out: &mut String, first: Option<&[u8]>) {
    const HEX: &[u8; 16] = b"0123456789abcdef";
    let (Some(&a), Some(&b)) = (first.and_then(|v| v.first()), first.and_then(|v| v.last())) else {
        out.push_str("00");
        return;
    };
    if a.is_ascii_alphanumeric() && b.is_ascii_alphanumeric() {
        out.push(char::from(a));
        out.push(char::from(b));
    } else {
        // The first digit of the hex form is the high nibble of the first byte, the last
        // digit the low nibble of the last byte.
        out.push(char::from(HEX[usize::from(a >> 4)]));
        out.push(char::from(HEX[usize::from(b & 0xf)]));
    }
}

#[cfg(test)]
fn alpn_code(first: Option<&[u8]>) -> String {
    let mut s = String::new();
    push_alpn_code(&mut s, first);
    s
}

/// 12 hex digits of the SHA-256 of `s`; an empty list is shown as zeros rather than the hash
/// of nothing.
fn push_hash12(out: &mut String, s: &str) {
    if s.is_empty() {
        out.push_str("000000000000");
        return;
    }
    let digest = Sha256::digest(s.as_bytes());
    push_hex(out, digest.get(..6).unwrap_or_default());
}

/// `0a0b,1301,...`: four lowercase hex digits per value.
fn push_list(out: &mut String, values: impl Iterator<Item = u16>) {
    for (i, v) in values.enumerate() {
        if i > 0 {
            out.push(',');
        }
        push_hex_u16(out, v);
    }
}

/// Two decimal digits of a count capped at 99.
fn push_count(out: &mut String, n: usize) {
    let n = n.min(99) as u8;
    out.push(char::from(b'0' + n / 10));
    out.push(char::from(b'0' + n % 10));
}

/// The JA4 fingerprint and its raw (unhashed, sorted) form `ja4_r`.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Ja4 {
    pub hash: String,
    pub raw: String,
}

/// Both forms are written once into strings sized for them: the raw form first, and the
/// hashes over its own cipher and extension parts (this runs for every TLS connection).
pub fn ja4(ch: &ClientHello) -> Ja4 {
    // SSLv2 specs wider than 16 bits have no 4-hex form; they are kept as their low 16
    // bits would collide with real suites, so they are left out.
    let mut ciphers: Vec<u16> = Vec::with_capacity(ch.ciphers.len());
    ciphers.extend(
        ch.ciphers
            .iter()
            .filter_map(|&c| u16::try_from(c).ok())
            .filter(|&c| !is_grease(c)),
    );
    let ext_count = ch.extensions.iter().filter(|&&e| !is_grease(e)).count();
    // SNI and ALPN count in the prefix but are not part of the hashed list.
    let mut exts: Vec<u16> = Vec::with_capacity(ext_count);
    exts.extend(
        ch.extensions
            .iter()
            .copied()
            .filter(|&e| !is_grease(e) && e != ext::SERVER_NAME && e != ext::ALPN),
    );
    let sigs = || {
        ch.signature_algorithms
            .iter()
            .copied()
            .filter(|&s| !is_grease(s))
    };
    let sig_count = sigs().count();
    let sni = if ch.extensions.contains(&ext::SERVER_NAME) {
        'd'
    } else {
        'i'
    };
    ciphers.sort_unstable();
    exts.sort_unstable();

    let mut raw = String::with_capacity(13 + 5 * (ciphers.len() + exts.len() + sig_count));
    raw.push('t');
    raw.push_str(version_code(ch));
    raw.push(sni);
    push_count(&mut raw, ciphers.len());
    push_count(&mut raw, ext_count);
    push_alpn_code(&mut raw, ch.alpn_first.as_deref());
    let prefix_end = raw.len();
    raw.push('_');
    let cipher_start = raw.len();
    push_list(&mut raw, ciphers.iter().copied());
    let cipher_end = raw.len();
    raw.push('_');
    let ext_start = raw.len();
    push_list(&mut raw, exts.iter().copied());
    if !exts.is_empty() && sig_count > 0 {
        raw.push('_');
        push_list(&mut raw, sigs());
    }
    let part = |from: usize, to: usize| raw.get(from..to).unwrap_or_default();

    let mut hash = String::with_capacity(prefix_end + 26);
    hash.push_str(part(0, prefix_end));
    hash.push('_');
    push_hash12(&mut hash, part(cipher_start, cipher_end));
    hash.push('_');
    // An empty extension list hashes as zeros even when signature algorithms were sent
    // (they are appended only to a non-empty list).
    push_hash12(&mut hash, part(ext_start, raw.len()));
    Ja4 { hash, raw }
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;

    /// The worked example of JA4.md: 15 ciphers, 16 extensions, ALPN h2, TLS 1.3.
    fn spec_example(with_sigs: bool) -> ClientHello {
        let mut extensions = vec![
            0x001b, 0x0000, 0x0033, 0x0010, 0x4469, 0x0017, 0x002d, 0x000d, 0x0005, 0x0023, 0x0012,
            0x002b, 0xff01, 0x000b, 0x000a, 0x0015,
        ];
        // GREASE at both ends, as Chrome sends it.
        extensions.insert(0, 0x0a0a);
        extensions.push(0x3a3a);
        ClientHello {
            version: Version::TLS12,
            ciphers: vec![
                0x2a2a, 0x1301, 0x1302, 0x1303, 0xc02b, 0xc02f, 0xc02c, 0xc030, 0xcca9, 0xcca8,
                0xc013, 0xc014, 0x009c, 0x009d, 0x002f, 0x0035,
            ],
            extensions,
            supported_versions: vec![Version(0x5a5a), Version::TLS13, Version::TLS12],
            alpn_first: Some(b"h2".to_vec()),
            signature_algorithms: if with_sigs {
                vec![
                    0x0403, 0x0804, 0x0401, 0x0503, 0x0805, 0x0501, 0x0806, 0x0601,
                ]
            } else {
                vec![]
            },
            ..ClientHello::default()
        }
    }

    #[test]
    fn foxio_spec_example() {
        let j = ja4(&spec_example(true));
        assert_eq!(j.hash, "t13d1516h2_8daaf6152771_e5627efa2ab1");
        assert_eq!(
            j.raw,
            "t13d1516h2_002f,0035,009c,009d,1301,1302,1303,c013,c014,c02b,c02c,c02f,c030,\
             cca8,cca9_0005,000a,000b,000d,0012,0015,0017,001b,0023,002b,002d,0033,4469,ff01_\
             0403,0804,0401,0503,0805,0501,0806,0601"
        );
    }

    #[test]
    fn foxio_spec_example_without_signature_algorithms() {
        // JA4.md: with no signature algorithms the list ends without '_' = 6d807ffa2a79.
        let j = ja4(&spec_example(false));
        assert_eq!(j.hash, "t13d1516h2_8daaf6152771_6d807ffa2a79");
    }

    #[test]
    fn no_sni_no_alpn_legacy_version() {
        let ch = ClientHello {
            version: Version::TLS10,
            ciphers: vec![0x0004],
            ..ClientHello::default()
        };
        let j = ja4(&ch);
        assert!(j.hash.starts_with("t10i010000_"), "{}", j.hash);
        assert!(j.hash.ends_with("_000000000000"));
    }

    #[test]
    fn empty_cipher_list_is_zeros() {
        let ch = ClientHello {
            version: Version::TLS12,
            extensions: vec![0x0017],
            ..ClientHello::default()
        };
        let j = ja4(&ch);
        assert!(j.hash.starts_with("t12i000100_000000000000_"), "{}", j.hash);
    }

    #[test]
    fn alpn_rules_from_the_spec() {
        assert_eq!(alpn_code(None), "00");
        assert_eq!(alpn_code(Some(b"")), "00");
        assert_eq!(alpn_code(Some(b"h2")), "h2");
        assert_eq!(alpn_code(Some(b"http/1.1")), "h1");
        assert_eq!(alpn_code(Some(b"x")), "xx");
        assert_eq!(alpn_code(Some(&[0xab])), "ab");
        assert_eq!(alpn_code(Some(&[0xab, 0xcd])), "ad");
        assert_eq!(alpn_code(Some(&[0x30, 0xab])), "3b");
        assert_eq!(alpn_code(Some(&[0x30, 0x31, 0xab, 0xcd])), "3d");
        assert_eq!(alpn_code(Some(&[0x30, 0xab, 0xcd, 0x31])), "01");
    }

    #[test]
    fn counts_cap_at_99() {
        let ch = ClientHello {
            version: Version::TLS12,
            ciphers: (1..=150).collect(),
            ..ClientHello::default()
        };
        assert!(ja4(&ch).hash.starts_with("t12i9900"));
    }

    #[test]
    fn draft_versions_map_to_unknown() {
        let ch = ClientHello {
            version: Version::TLS12,
            supported_versions: vec![Version(0x7f10)],
            ..ClientHello::default()
        };
        // A lone draft is neither 1.2 nor 1.3: JA4 has no code for it.
        assert!(ja4(&ch).hash.starts_with("t00"));
    }
}
