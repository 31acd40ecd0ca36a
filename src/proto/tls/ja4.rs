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
fn alpn_code(first: Option<&[u8]>) -> String {
    let Some(v) = first.filter(|v| !v.is_empty()) else {
        return "00".into();
    };
    let (Some(&a), Some(&b)) = (v.first(), v.last()) else {
        return "00".into();
    };
    if a.is_ascii_alphanumeric() && b.is_ascii_alphanumeric() {
        let mut s = String::with_capacity(2);
        s.push(a as char);
        s.push(b as char);
        s
    } else {
        let h = hex::encode(v);
        let mut s = String::with_capacity(2);
        s.extend(h.chars().next());
        s.extend(h.chars().last());
        s
    }
}

fn hash12(s: &str) -> String {
    if s.is_empty() {
        // An empty list is shown as zeros rather than the hash of nothing.
        return "000000000000".into();
    }
    let mut h = hex::encode(Sha256::digest(s.as_bytes()));
    h.truncate(12);
    h
}

/// `0a0b,1301,...`: four lowercase hex digits per value (digits by table: `write!` with a
/// format spec per value was a visible share of every TLS connection's cost).
fn hex_list(values: impl Iterator<Item = u16>) -> String {
    const HEX: &[u8; 16] = b"0123456789abcdef";
    let mut s = String::with_capacity(values.size_hint().0 * 5);
    for (i, v) in values.enumerate() {
        if i > 0 {
            s.push(',');
        }
        for shift in [12u16, 8, 4, 0] {
            s.push(char::from(HEX[usize::from((v >> shift) & 0xf)]));
        }
    }
    s
}

/// The JA4 fingerprint and its raw (unhashed, sorted) form `ja4_r`.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Ja4 {
    pub hash: String,
    pub raw: String,
}

pub fn ja4(ch: &ClientHello) -> Ja4 {
    // SSLv2 specs wider than 16 bits have no 4-hex form; they are kept as their low 16
    // bits would collide with real suites, so they are left out.
    let mut ciphers: Vec<u16> = ch
        .ciphers
        .iter()
        .filter_map(|&c| u16::try_from(c).ok())
        .filter(|&c| !is_grease(c))
        .collect();
    let exts: Vec<u16> = ch
        .extensions
        .iter()
        .copied()
        .filter(|&e| !is_grease(e))
        .collect();
    let sni = if ch.extensions.contains(&ext::SERVER_NAME) {
        'd'
    } else {
        'i'
    };
    let prefix = format!(
        "t{}{}{:02}{:02}{}",
        version_code(ch),
        sni,
        ciphers.len().min(99),
        exts.len().min(99),
        alpn_code(ch.alpn_first.as_deref()),
    );
    ciphers.sort_unstable();
    let cipher_list = hex_list(ciphers.iter().copied());
    let mut sorted_exts: Vec<u16> = exts
        .into_iter()
        .filter(|&e| e != ext::SERVER_NAME && e != ext::ALPN)
        .collect();
    sorted_exts.sort_unstable();
    let mut ext_list = hex_list(sorted_exts.iter().copied());
    let sigs: Vec<u16> = ch
        .signature_algorithms
        .iter()
        .copied()
        .filter(|&s| !is_grease(s))
        .collect();
    let ext_hash = if ext_list.is_empty() {
        hash12("")
    } else {
        if !sigs.is_empty() {
            ext_list.push('_');
            ext_list.push_str(&hex_list(sigs.iter().copied()));
        }
        hash12(&ext_list)
    };
    Ja4 {
        hash: format!("{prefix}_{}_{ext_hash}", hash12(&cipher_list)),
        raw: format!("{prefix}_{cipher_list}_{ext_list}"),
    }
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
