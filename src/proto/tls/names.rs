//! Protocol numbers as newtypes with named constants, so a value we do not know still reaches
//! the report (as hex) instead of being dropped, plus the weakness classification of versions
//! and cipher suites.

use std::fmt;

use tls_parser::{TlsCipherAu, TlsCipherEnc, TlsCipherKx, TlsCipherMac, TlsCipherSuite};

/// True for the GREASE values of RFC 8701 section 2 (`0x?a?a` with both bytes equal).
pub fn is_grease(v: u16) -> bool {
    v & 0x0f0f == 0x0a0a && (v >> 8) == (v & 0xff)
}

/// A protocol version as carried in hellos, records and `supported_versions`.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct Version(pub u16);

impl Version {
    /// SSL 2.0 has no two-byte version in a TLS record; JA4 and the SSLv2 CLIENT-HELLO
    /// (draft-hickman-netscape-ssl-00) use 0x0002.
    pub const SSL2: Version = Version(0x0002);
    pub const SSL3: Version = Version(0x0300);
    pub const TLS10: Version = Version(0x0301);
    pub const TLS11: Version = Version(0x0302);
    pub const TLS12: Version = Version(0x0303);
    pub const TLS13: Version = Version(0x0304);

    /// TLS 1.3 drafts announced themselves as 0x7f00 + draft number
    /// (draft-ietf-tls-tls13-28 section 4.2.1).
    pub fn tls13_draft(self) -> Option<u8> {
        if self.0 >> 8 == 0x7f {
            Some((self.0 & 0xff) as u8)
        } else {
            None
        }
    }

    /// TLS 1.3 or one of its drafts: everything after the ServerHello is encrypted.
    pub fn is_tls13_family(self) -> bool {
        self == Version::TLS13 || self.tls13_draft().is_some()
    }

    /// The version's place in the ordering of real protocol versions (drafts of 1.3 rank
    /// just under 1.3), used to pick the highest of `supported_versions`.
    pub fn rank(self) -> u32 {
        match self.tls13_draft() {
            Some(d) => 0x0003_0300 + d as u32,
            None if self == Version::SSL2 => 0x0002_0000,
            None => (self.0 as u32) << 8,
        }
    }

    pub fn name(self) -> String {
        match self {
            Version::SSL2 => "SSLv2".into(),
            Version::SSL3 => "SSLv3".into(),
            Version::TLS10 => "TLSv1.0".into(),
            Version::TLS11 => "TLSv1.1".into(),
            Version::TLS12 => "TLSv1.2".into(),
            Version::TLS13 => "TLSv1.3".into(),
            v => match v.tls13_draft() {
                Some(d) => format!("TLSv1.3-draft{d}"),
                None => format!("0x{:04x}", v.0),
            },
        }
    }
}

impl fmt::Display for Version {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.name())
    }
}

/// Record content types (RFC 8446 section 5.1; heartbeat RFC 6520).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub struct ContentType(pub u8);

impl ContentType {
    pub const CHANGE_CIPHER_SPEC: ContentType = ContentType(20);
    pub const ALERT: ContentType = ContentType(21);
    pub const HANDSHAKE: ContentType = ContentType(22);
    pub const APPLICATION_DATA: ContentType = ContentType(23);
    pub const HEARTBEAT: ContentType = ContentType(24);

    pub fn is_known(self) -> bool {
        (20..=24).contains(&self.0)
    }

    pub fn name(self) -> String {
        match self {
            ContentType::CHANGE_CIPHER_SPEC => "change_cipher_spec".into(),
            ContentType::ALERT => "alert".into(),
            ContentType::HANDSHAKE => "handshake".into(),
            ContentType::APPLICATION_DATA => "application_data".into(),
            ContentType::HEARTBEAT => "heartbeat".into(),
            ContentType(v) => format!("0x{v:02x}"),
        }
    }
}

/// Handshake message types (RFC 8446 section 4; RFC 5246 section 7.4).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub struct HandshakeType(pub u8);

impl HandshakeType {
    pub const CLIENT_HELLO: HandshakeType = HandshakeType(1);
    pub const SERVER_HELLO: HandshakeType = HandshakeType(2);
    pub const CERTIFICATE: HandshakeType = HandshakeType(11);
    pub const SERVER_HELLO_DONE: HandshakeType = HandshakeType(14);
    pub const FINISHED: HandshakeType = HandshakeType(20);
}

/// Alert levels (RFC 5246 section 7.2).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub struct AlertLevel(pub u8);

impl AlertLevel {
    pub const WARNING: AlertLevel = AlertLevel(1);
    pub const FATAL: AlertLevel = AlertLevel(2);
}

/// Alert descriptions: RFC 8446 section 6 plus the codes older versions defined
/// (RFC 5246 section 7.2, RFC 6066 section 9, RFC 8446 appendix B.2).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub struct AlertDescription(pub u8);

impl AlertDescription {
    pub const CLOSE_NOTIFY: AlertDescription = AlertDescription(0);
    pub const UNEXPECTED_MESSAGE: AlertDescription = AlertDescription(10);
    pub const HANDSHAKE_FAILURE: AlertDescription = AlertDescription(40);
    pub const PROTOCOL_VERSION: AlertDescription = AlertDescription(70);
    pub const USER_CANCELED: AlertDescription = AlertDescription(90);
    pub const UNRECOGNIZED_NAME: AlertDescription = AlertDescription(112);

    pub fn known_name(self) -> Option<&'static str> {
        Some(match self.0 {
            0 => "close_notify",
            10 => "unexpected_message",
            20 => "bad_record_mac",
            21 => "decryption_failed",
            22 => "record_overflow",
            30 => "decompression_failure",
            40 => "handshake_failure",
            41 => "no_certificate",
            42 => "bad_certificate",
            43 => "unsupported_certificate",
            44 => "certificate_revoked",
            45 => "certificate_expired",
            46 => "certificate_unknown",
            47 => "illegal_parameter",
            48 => "unknown_ca",
            49 => "access_denied",
            50 => "decode_error",
            51 => "decrypt_error",
            60 => "export_restriction",
            70 => "protocol_version",
            71 => "insufficient_security",
            80 => "internal_error",
            86 => "inappropriate_fallback",
            90 => "user_canceled",
            100 => "no_renegotiation",
            109 => "missing_extension",
            110 => "unsupported_extension",
            111 => "certificate_unobtainable",
            112 => "unrecognized_name",
            113 => "bad_certificate_status_response",
            114 => "bad_certificate_hash_value",
            115 => "unknown_psk_identity",
            116 => "certificate_required",
            120 => "no_application_protocol",
            121 => "ech_required",
            _ => return None,
        })
    }

    /// RFC 8446 name, or `unknown_0xNN`.
    pub fn name(self) -> String {
        match self.known_name() {
            Some(n) => n.to_string(),
            None => format!("unknown_0x{:02x}", self.0),
        }
    }
}

/// IANA name of a cipher suite, `0xNNNN` when unknown (GREASE and SCSVs included).
pub fn cipher_name(id: u16) -> String {
    match TlsCipherSuite::from_id(id) {
        Some(cs) => cs.name.to_string(),
        None => format!("0x{id:04x}"),
    }
}

/// Why a negotiated cipher suite is weak, with the severity class the contract gives it.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum CipherWeakness {
    /// No encryption at all (RFC 5246 appendix A.5 `*_WITH_NULL_*`).
    Null,
    /// Export-grade key sizes (RFC 2246 appendix A.5).
    Export,
    /// No server authentication (`DH_anon`, `ECDH_anon`): trivially man-in-the-middled.
    Anonymous,
    /// RC4 is prohibited by RFC 7465.
    Rc4,
    /// Single DES (RFC 5469 deprecates it).
    Des,
    /// 64-bit block ciphers (3DES, IDEA, RC2) are open to Sweet32 (CVE-2016-2183).
    TripleDes,
    /// HMAC-MD5 record MAC.
    Md5Mac,
}

impl CipherWeakness {
    pub fn as_str(self) -> &'static str {
        match self {
            CipherWeakness::Null => "null_encryption",
            CipherWeakness::Export => "export_grade",
            CipherWeakness::Anonymous => "anonymous_key_exchange",
            CipherWeakness::Rc4 => "rc4",
            CipherWeakness::Des => "des",
            CipherWeakness::TripleDes => "3des",
            CipherWeakness::Md5Mac => "md5_mac",
        }
    }

    /// NULL, EXPORT and anonymous suites give no real protection at all.
    pub fn is_high(self) -> bool {
        matches!(
            self,
            CipherWeakness::Null | CipherWeakness::Export | CipherWeakness::Anonymous
        )
    }
}

/// Every weakness of a suite, most serious first; empty for unknown or sound suites.
pub fn cipher_weaknesses(id: u16) -> Vec<CipherWeakness> {
    let mut out = Vec::new();
    let Some(cs) = TlsCipherSuite::from_id(id) else {
        return out;
    };
    // TLS_NULL_WITH_NULL_NULL and the *_WITH_NULL_* suites.
    if cs.enc == TlsCipherEnc::Null {
        out.push(CipherWeakness::Null);
    }
    if cs.name.contains("_EXPORT") {
        out.push(CipherWeakness::Export);
    }
    // `*_anon_*` suites authenticate nobody; PSK and SRP suites authenticate otherwise.
    let unauthenticated_kx = matches!(
        cs.kx,
        TlsCipherKx::Dh | TlsCipherKx::Dhe | TlsCipherKx::Ecdh | TlsCipherKx::Aecdh
    );
    if cs.name.contains("_anon_") || (cs.au == TlsCipherAu::Null && unauthenticated_kx) {
        out.push(CipherWeakness::Anonymous);
    }
    match cs.enc {
        TlsCipherEnc::Rc4 => out.push(CipherWeakness::Rc4),
        TlsCipherEnc::Des => out.push(CipherWeakness::Des),
        TlsCipherEnc::TripleDes | TlsCipherEnc::Idea | TlsCipherEnc::Rc2 => {
            out.push(CipherWeakness::TripleDes)
        }
        _ => {}
    }
    if cs.mac == TlsCipherMac::HmacMd5 {
        out.push(CipherWeakness::Md5Mac);
    }
    out
}

/// SSLv2 CIPHER-KIND values (draft-hickman-netscape-ssl-00 appendix C).
const SSLV2_CIPHERS: [(u32, &str); 7] = [
    (0x010080, "SSL_CK_RC4_128_WITH_MD5"),
    (0x020080, "SSL_CK_RC4_128_EXPORT40_WITH_MD5"),
    (0x030080, "SSL_CK_RC2_128_CBC_WITH_MD5"),
    (0x040080, "SSL_CK_RC2_128_CBC_EXPORT40_WITH_MD5"),
    (0x050080, "SSL_CK_IDEA_128_CBC_WITH_MD5"),
    (0x060040, "SSL_CK_DES_64_CBC_WITH_MD5"),
    (0x0700c0, "SSL_CK_DES_192_EDE3_CBC_WITH_MD5"),
];

/// Name of an SSLv2 cipher spec; 3-byte specs whose first byte is zero are TLS suites
/// offered through an SSLv2-compatible hello (RFC 5246 appendix E.2).
pub fn sslv2_cipher_name(spec: u32) -> String {
    if spec <= 0xffff {
        return cipher_name(spec as u16);
    }
    match SSLV2_CIPHERS.iter().find(|(v, _)| *v == spec) {
        Some((_, n)) => n.to_string(),
        None => format!("0x{spec:06x}"),
    }
}

/// Every SSLv2 cipher is RC4, RC2, IDEA or DES with an MD5 MAC.
pub fn sslv2_cipher_weaknesses(spec: u32) -> Vec<CipherWeakness> {
    if spec <= 0xffff {
        return cipher_weaknesses(spec as u16);
    }
    let mut out = Vec::new();
    let name = sslv2_cipher_name(spec);
    if name.contains("EXPORT") {
        out.push(CipherWeakness::Export);
    }
    match spec >> 16 {
        1 | 2 => out.push(CipherWeakness::Rc4),
        6 => out.push(CipherWeakness::Des),
        3 | 4 | 5 | 7 => out.push(CipherWeakness::TripleDes),
        _ => {}
    }
    out.push(CipherWeakness::Md5Mac);
    out
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;

    #[test]
    fn version_names_match_the_report_contract() {
        assert_eq!(Version(0x0301).name(), "TLSv1.0");
        assert_eq!(Version(0x0303).name(), "TLSv1.2");
        assert_eq!(Version(0x0304).name(), "TLSv1.3");
        assert_eq!(Version(0x0300).name(), "SSLv3");
        assert_eq!(Version(0x0002).name(), "SSLv2");
        assert_eq!(Version(0x7f10).name(), "TLSv1.3-draft16");
        assert_eq!(Version(0x1a2b).name(), "0x1a2b");
        assert!(Version(0x7f12).rank() < Version::TLS13.rank());
        assert!(Version(0x7f12).rank() > Version::TLS12.rank());
    }

    #[test]
    fn grease_values() {
        assert!(is_grease(0x0a0a));
        assert!(is_grease(0xfafa));
        assert!(!is_grease(0x0a1a));
        assert!(!is_grease(0x1a0a));
        assert!(!is_grease(0x0017));
    }

    #[test]
    fn alert_names_keep_unknown_codes() {
        assert_eq!(AlertDescription(40).name(), "handshake_failure");
        assert_eq!(AlertDescription(70).name(), "protocol_version");
        assert_eq!(AlertDescription(116).name(), "certificate_required");
        assert_eq!(AlertDescription(0xfe).name(), "unknown_0xfe");
    }

    #[test]
    fn cipher_names_and_weaknesses() {
        assert_eq!(cipher_name(0x1302), "TLS_AES_256_GCM_SHA384");
        assert_eq!(cipher_name(0xc02f), "TLS_ECDHE_RSA_WITH_AES_128_GCM_SHA256");
        assert_eq!(cipher_name(0x1a2b), "0x1a2b");
        assert_eq!(
            cipher_weaknesses(0x0004),
            vec![CipherWeakness::Rc4, CipherWeakness::Md5Mac]
        );
        assert_eq!(cipher_weaknesses(0x0005), vec![CipherWeakness::Rc4]);
        assert_eq!(cipher_weaknesses(0x000a), vec![CipherWeakness::TripleDes]);
        assert_eq!(cipher_weaknesses(0x0002), vec![CipherWeakness::Null]);
        // TLS_RSA_EXPORT_WITH_RC4_40_MD5
        assert!(cipher_weaknesses(0x0003).contains(&CipherWeakness::Export));
        // TLS_DH_anon_WITH_AES_128_CBC_SHA
        assert!(cipher_weaknesses(0x0034).contains(&CipherWeakness::Anonymous));
        assert!(cipher_weaknesses(0xc02f).is_empty());
        assert!(cipher_weaknesses(0x1301).is_empty());
    }
}
