//! JA3 and JA3S (salesforce/ja3, BSD-3-Clause): decimal fields joined by '-', fields by ',',
//! GREASE (RFC 8701) removed, SCSVs kept, MD5 of the string.
//!
//! JA3:  `SSLVersion,Ciphers,Extensions,EllipticCurves,EllipticCurvePointFormats`
//! JA3S: `SSLVersion,Cipher,Extensions`
//!
//! The versions are the hellos' `legacy_version` fields, never `supported_versions`, as in
//! the reference implementations (a TLS 1.3 client hashes as 771). An SSLv2 CLIENT-HELLO
//! contributes its 3-byte cipher specs as listed, and no extension fields.

use md5::{Digest, Md5};

use super::handshake::{ClientHello, ServerHello};
use super::names::is_grease;
use crate::proto::hexfmt::to_hex;

/// A fingerprint string and its MD5.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Ja3 {
    pub full: String,
    pub hash: String,
}

fn join<T: Copy + Into<u32>>(out: &mut String, values: &[T]) {
    let mut first = true;
    for v in values {
        let v: u32 = (*v).into();
        // GREASE occupies only 16-bit code points; 3-byte SSLv2 specs can never match it.
        if v <= 0xffff && is_grease(v as u16) {
            continue;
        }
        if !first {
            out.push('-');
        }
        first = false;
        push_decimal(out, v);
    }
}

/// `v` in decimal, without the formatting machinery (JA3 strings are built per connection).
fn push_decimal(out: &mut String, mut v: u32) {
    let mut digits = [0u8; 10];
    let mut at = digits.len();
    loop {
        at -= 1;
        digits[at] = b'0' + (v % 10) as u8;
        v /= 10;
        if v == 0 {
            break;
        }
    }
    for &d in &digits[at..] {
        out.push(char::from(d));
    }
}

fn md5_hex(s: &str) -> String {
    to_hex(&Md5::digest(s.as_bytes()))
}

pub fn ja3(ch: &ClientHello) -> Ja3 {
    // Up to six characters a value ("65535-"); the string is sized once.
    let values = ch.ciphers.len() + ch.extensions.len() + ch.groups.len();
    let mut s = String::with_capacity(16 + 6 * values + 4 * ch.ec_point_formats.len());
    push_decimal(&mut s, u32::from(ch.version.0));
    s.push(',');
    join(&mut s, &ch.ciphers);
    s.push(',');
    join(&mut s, &ch.extensions);
    s.push(',');
    join(&mut s, &ch.groups);
    s.push(',');
    join(&mut s, &ch.ec_point_formats);
    Ja3 {
        hash: md5_hex(&s),
        full: s,
    }
}

pub fn ja3s(sh: &ServerHello) -> Ja3 {
    let mut s = String::with_capacity(16 + 6 * sh.extensions.len());
    push_decimal(&mut s, u32::from(sh.version.0));
    s.push(',');
    push_decimal(&mut s, u32::from(sh.cipher));
    s.push(',');
    join(&mut s, &sh.extensions);
    Ja3 {
        hash: md5_hex(&s),
        full: s,
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;
    use crate::proto::tls::names::Version;

    #[test]
    fn decimals_as_format_writes_them() {
        for v in [0, 7, 10, 771, 65_535, 0x00ff_ffff, u32::MAX] {
            let mut s = String::new();
            push_decimal(&mut s, v);
            assert_eq!(s, v.to_string());
        }
    }

    #[test]
    fn salesforce_readme_vectors() {
        // Both examples of the salesforce/ja3 README, rebuilt as hellos.
        let ch = ClientHello {
            version: Version(769),
            ciphers: vec![47, 53, 5, 10, 49161, 49162, 49171, 49172, 50, 56, 19, 4],
            extensions: vec![0, 10, 11],
            groups: vec![23, 24, 25],
            ec_point_formats: vec![0],
            ..ClientHello::default()
        };
        let j = ja3(&ch);
        assert_eq!(
            j.full,
            "769,47-53-5-10-49161-49162-49171-49172-50-56-19-4,0-10-11,23-24-25,0"
        );
        assert_eq!(j.hash, "ada70206e40642a3e4461f35503241d5");

        let ch = ClientHello {
            version: Version(769),
            ciphers: vec![4, 5, 10, 9, 100, 98, 3, 6, 19, 18, 99],
            ..ClientHello::default()
        };
        let j = ja3(&ch);
        assert_eq!(j.full, "769,4-5-10-9-100-98-3-6-19-18-99,,,");
        assert_eq!(j.hash, "de350869b8c85de67a350c8d186f11e6");
    }

    #[test]
    fn grease_is_dropped_everywhere_scsv_kept() {
        let ch = ClientHello {
            version: Version(771),
            ciphers: vec![0x0a0a, 4865, 255],
            extensions: vec![0x1a1a, 0, 0xfafa],
            groups: vec![0x2a2a, 29],
            ec_point_formats: vec![0],
            ..ClientHello::default()
        };
        assert_eq!(ja3(&ch).full, "771,4865-255,0,29,0");
    }

    #[test]
    fn sslv2_specs_are_three_bytes_wide() {
        let ch = ClientHello {
            version: Version(0x0301),
            sslv2: true,
            ciphers: vec![0x010080, 0x000004, 0x0a0a],
            ..ClientHello::default()
        };
        // 0x0a0a as a 3-byte SSLv2 spec (0x000a0a) is not GREASE in the 16-bit sense, but it
        // is numerically equal; it is still dropped, as the reference scripts do.
        assert_eq!(ja3(&ch).full, "769,65664-4,,,");
    }

    #[test]
    fn ja3s_from_tshark() {
        // zeek/tls-early-alert.pcap frame 6, as tshark 4.0 prints `tls.handshake.ja3s_full`.
        let sh = ServerHello {
            version: Version(771),
            cipher: 49199,
            extensions: vec![0, 65281, 11, 35],
            ..ServerHello::default()
        };
        let j = ja3s(&sh);
        assert_eq!(j.full, "771,49199,0-65281-11-35");
        assert_eq!(j.hash, "389ed42c02ebecc32e73aa31def07e14");
    }
}
