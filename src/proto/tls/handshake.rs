//! Handshake message summaries: what the ClientHello offered and the ServerHello chose.
//! Pure functions from a complete handshake message body to an owned summary; the hellos
//! are parsed with tls-parser, the few shapes it does not know (SSLv2 CLIENT-HELLO, TLS 1.3
//! draft ServerHellos) by hand through a checked cursor.

use tls_parser::{
    SNIType, TlsExtension, TlsMessageHandshake, parse_tls_client_hello_extension,
    parse_tls_handshake_client_hello, parse_tls_handshake_msg_certificate,
    parse_tls_handshake_server_hello, parse_tls_server_hello_extension,
};

use super::names::Version;

/// Extension code points we read (IANA TLS ExtensionType registry).
pub mod ext {
    pub const SERVER_NAME: u16 = 0;
    pub const SUPPORTED_GROUPS: u16 = 10;
    pub const EC_POINT_FORMATS: u16 = 11;
    pub const SIGNATURE_ALGORITHMS: u16 = 13;
    pub const ALPN: u16 = 16;
    pub const SESSION_TICKET: u16 = 35;
    pub const PRE_SHARED_KEY: u16 = 41;
    pub const EARLY_DATA: u16 = 42;
    pub const SUPPORTED_VERSIONS: u16 = 43;
}

/// SHA-256("HelloRetryRequest"): the ServerHello.random that marks a HelloRetryRequest
/// (RFC 8446 section 4.1.3).
pub const HRR_RANDOM: [u8; 32] = [
    0xcf, 0x21, 0xad, 0x74, 0xe5, 0x9a, 0x61, 0x11, 0xbe, 0x1d, 0x8c, 0x02, 0x1e, 0x65, 0xb8, 0x91,
    0xc2, 0xa2, 0x11, 0x16, 0x7a, 0xbb, 0x8c, 0x5e, 0x07, 0x9e, 0x09, 0xe2, 0xc8, 0xa8, 0x33, 0x9c,
];

/// Why a handshake message could not be summarised.
#[derive(Clone, Copy, Debug, PartialEq, Eq, thiserror::Error)]
pub enum HelloError {
    #[error("malformed ClientHello")]
    ClientHello,
    #[error("malformed ServerHello")]
    ServerHello,
    #[error("malformed SSLv2 CLIENT-HELLO")]
    Sslv2ClientHello,
    #[error("malformed Certificate")]
    Certificate,
}

/// What a ClientHello offered, in wire order.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct ClientHello {
    /// The 32-byte random (zero for SSLv2): what a key log is indexed by.
    pub random: [u8; 32],
    /// `legacy_version` (RFC 8446 section 4.1.2), or the SSLv2 CLIENT-HELLO version.
    pub version: Version,
    /// Sent in the SSLv2-compatible format (RFC 5246 appendix E.2).
    pub sslv2: bool,
    /// Cipher suites; SSLv2 cipher specs are three bytes wide, hence `u32`.
    pub ciphers: Vec<u32>,
    pub compression: Vec<u8>,
    /// Extension types in order, GREASE included (fingerprints drop it themselves).
    pub extensions: Vec<u16>,
    pub sni: Option<String>,
    /// ALPN protocol names, lossily decoded for the report.
    pub alpn: Vec<String>,
    /// First ALPN protocol name as sent, for JA4.
    pub alpn_first: Option<Vec<u8>>,
    pub supported_versions: Vec<Version>,
    pub groups: Vec<u16>,
    pub ec_point_formats: Vec<u8>,
    pub signature_algorithms: Vec<u16>,
    pub session_id_len: usize,
    /// SSLv2 challenge length (16..=32 bytes).
    pub challenge_len: usize,
    pub session_ticket: bool,
    pub session_ticket_nonempty: bool,
    pub pre_shared_key: bool,
    pub early_data: bool,
}

impl ClientHello {
    /// The highest non-GREASE version of `supported_versions`, else `legacy_version`.
    pub fn max_version(&self) -> Version {
        self.supported_versions
            .iter()
            .copied()
            .filter(|v| !super::names::is_grease(v.0))
            .max_by_key(|v| v.rank())
            .unwrap_or(self.version)
    }

    /// The client asked to resume (RFC 5077 ticket, RFC 5246 session id, RFC 8446 PSK).
    pub fn offers_resumption(&self) -> bool {
        self.session_id_len > 0 && !self.supported_versions.contains(&Version::TLS13)
            || self.session_ticket_nonempty
            || self.pre_shared_key
    }
}

/// What a ServerHello (or HelloRetryRequest) chose.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct ServerHello {
    /// The 32-byte random (zero for drafts before 22 and SSLv2).
    pub random: [u8; 32],
    /// `legacy_version` (what JA3S uses).
    pub version: Version,
    /// `supported_versions` when present (TLS 1.3, RFC 8446 section 4.2.1), else `version`.
    pub selected_version: Version,
    pub cipher: u16,
    pub compression: u8,
    pub extensions: Vec<u16>,
    pub session_id: Vec<u8>,
    pub alpn: Option<String>,
    pub pre_shared_key: bool,
    pub hello_retry_request: bool,
}

/// A bounds-checked reader over a message body.
struct Cursor<'a>(&'a [u8]);

impl<'a> Cursor<'a> {
    fn take(&mut self, n: usize) -> Option<&'a [u8]> {
        if n > self.0.len() {
            return None;
        }
        let (a, b) = self.0.split_at(n);
        self.0 = b;
        Some(a)
    }
    fn u8(&mut self) -> Option<u8> {
        self.take(1).and_then(|b| b.first().copied())
    }
    fn u16(&mut self) -> Option<u16> {
        let b = self.take(2)?;
        Some(u16::from_be_bytes([*b.first()?, *b.get(1)?]))
    }
    fn u24(&mut self) -> Option<usize> {
        let b = self.take(3)?;
        Some(u32::from_be_bytes([0, *b.first()?, *b.get(1)?, *b.get(2)?]) as usize)
    }
}

/// Splits an extensions block into (type, whole extension bytes incl. its header).
fn raw_extensions(block: &[u8]) -> impl Iterator<Item = (u16, &[u8])> {
    let mut rest = block;
    std::iter::from_fn(move || {
        let mut c = Cursor(rest);
        let ty = c.u16()?;
        let len = c.u16()? as usize;
        c.take(len)?;
        let (whole, tail) = rest.split_at_checked(4 + len)?;
        rest = tail;
        Some((ty, whole))
    })
}

/// The `signature_algorithms` list (RFC 8446 section 4.2.3) read as tls-parser reads it: a
/// two-byte length, the values within it (an odd last byte and bytes after the list are
/// ignored), `None` when the length runs past the data. Into a vector sized once.
fn signature_algorithms(data: &[u8]) -> Option<Vec<u16>> {
    let len = usize::from(u16::from_be_bytes([*data.first()?, *data.get(1)?]));
    let list = data.get(2..2 + len)?;
    Some(
        list.chunks_exact(2)
            .map(|c| u16::from_be_bytes([c[0], c[1]]))
            .collect(),
    )
}

/// Parses a ClientHello body (after the 4-byte handshake header).
pub fn parse_client_hello(body: &[u8]) -> Result<ClientHello, HelloError> {
    let (_, ch) = parse_tls_handshake_client_hello(body).map_err(|_| HelloError::ClientHello)?;
    let mut out = ClientHello {
        version: Version(ch.version.0),
        ciphers: ch.ciphers.iter().map(|c| c.0 as u32).collect(),
        compression: ch.comp.iter().map(|c| c.0).collect(),
        session_id_len: ch.session_id.map_or(0, <[u8]>::len),
        random: random_at(body),
        ..ClientHello::default()
    };
    let block = ch.ext.unwrap_or_default();
    out.extensions.reserve_exact(raw_extensions(block).count());
    for (ty, raw) in raw_extensions(block) {
        out.extensions.push(ty);
        // Only what is read below is parsed: key shares, padding and the like would be
        // parsed into values nobody reads, on every connection.
        match ty {
            ext::SIGNATURE_ALGORITHMS => {
                if let Some(list) = signature_algorithms(raw.get(4..).unwrap_or_default()) {
                    out.signature_algorithms = list;
                }
                continue;
            }
            ext::PRE_SHARED_KEY => {
                out.pre_shared_key = true;
                continue;
            }
            ext::EARLY_DATA => {
                out.early_data = true;
                continue;
            }
            ext::SERVER_NAME
            | ext::SUPPORTED_GROUPS
            | ext::EC_POINT_FORMATS
            | ext::ALPN
            | ext::SUPPORTED_VERSIONS
            | ext::SESSION_TICKET => {}
            _ => continue,
        }
        // Content we cannot parse leaves the field empty; the type is still listed.
        let parsed = parse_tls_client_hello_extension(raw).ok().map(|(_, e)| e);
        match (ty, parsed) {
            (ext::SERVER_NAME, Some(TlsExtension::SNI(names))) => {
                out.sni = names
                    .iter()
                    .find(|(t, _)| *t == SNIType::HostName)
                    .map(|(_, n)| String::from_utf8_lossy(n).into_owned());
            }
            (ext::SUPPORTED_GROUPS, Some(TlsExtension::EllipticCurves(g))) => {
                out.groups = g.iter().map(|g| g.0).collect();
            }
            (ext::EC_POINT_FORMATS, Some(TlsExtension::EcPointFormats(f))) => {
                out.ec_point_formats = f.to_vec();
            }
            (ext::ALPN, Some(TlsExtension::ALPN(protos))) => {
                out.alpn_first = protos.first().map(|p| p.to_vec());
                out.alpn = protos
                    .iter()
                    .map(|p| String::from_utf8_lossy(p).into_owned())
                    .collect();
            }
            (ext::SUPPORTED_VERSIONS, Some(TlsExtension::SupportedVersions(v))) => {
                out.supported_versions = v.iter().map(|v| Version(v.0)).collect();
            }
            (ext::SESSION_TICKET, parsed) => {
                out.session_ticket = true;
                out.session_ticket_nonempty =
                    matches!(parsed, Some(TlsExtension::SessionTicket(t)) if !t.is_empty());
            }
            _ => {}
        }
    }
    Ok(out)
}

/// Parses an SSLv2 CLIENT-HELLO message (starting at its msg-type byte 1), as in
/// draft-hickman-netscape-ssl-00 and RFC 5246 appendix E.2: version, three lengths, then
/// the 3-byte cipher specs, session id and challenge.
pub fn parse_sslv2_client_hello(msg: &[u8]) -> Result<ClientHello, HelloError> {
    let e = HelloError::Sslv2ClientHello;
    let mut c = Cursor(msg);
    if c.u8().ok_or(e)? != 1 {
        return Err(e);
    }
    let version = c.u16().ok_or(e)?;
    let specs_len = c.u16().ok_or(e)? as usize;
    let sid_len = c.u16().ok_or(e)? as usize;
    let challenge_len = c.u16().ok_or(e)? as usize;
    if specs_len % 3 != 0 {
        return Err(e);
    }
    let specs = c.take(specs_len).ok_or(e)?;
    c.take(sid_len).ok_or(e)?;
    c.take(challenge_len).ok_or(e)?;
    Ok(ClientHello {
        version: Version(version),
        sslv2: true,
        ciphers: specs
            .chunks_exact(3)
            .map(|s| s.iter().fold(0u32, |acc, b| (acc << 8) | *b as u32))
            .collect(),
        session_id_len: sid_len,
        challenge_len,
        ..ClientHello::default()
    })
}

fn read_server_extensions(out: &mut ServerHello, block: &[u8]) {
    for (ty, raw) in raw_extensions(block) {
        out.extensions.push(ty);
        let parsed = parse_tls_server_hello_extension(raw).ok().map(|(_, e)| e);
        match (ty, parsed) {
            (ext::SUPPORTED_VERSIONS, Some(TlsExtension::SupportedVersions(v))) => {
                if let Some(v) = v.first() {
                    out.selected_version = Version(v.0);
                }
            }
            (ext::ALPN, Some(TlsExtension::ALPN(p))) => {
                out.alpn = p.first().map(|p| String::from_utf8_lossy(p).into_owned());
            }
            (ext::PRE_SHARED_KEY, _) => out.pre_shared_key = true,
            _ => {}
        }
    }
}

/// Parses a ServerHello body. Recognises the RFC 8446 HelloRetryRequest by its random and
/// the pre-draft-22 TLS 1.3 layout (no session id, no compression).
pub fn parse_server_hello(body: &[u8]) -> Result<ServerHello, HelloError> {
    let e = HelloError::ServerHello;
    let mut c = Cursor(body);
    let version = Version(c.u16().ok_or(e)?);
    let mut out = ServerHello {
        version,
        selected_version: version,
        ..ServerHello::default()
    };
    // Drafts before 22 (draft-ietf-tls-tls13-21 section 4.1.3) carried the real version
    // and had neither session id nor compression method.
    if matches!(version.tls13_draft(), Some(d) if d < 22) {
        c.take(32).ok_or(e)?;
        out.cipher = c.u16().ok_or(e)?;
        if !c.0.is_empty() {
            let len = c.u16().ok_or(e)? as usize;
            let block = c.take(len).ok_or(e)?;
            read_server_extensions(&mut out, block);
        }
        return Ok(out);
    }
    let (_, sh) = parse_tls_handshake_server_hello(body).map_err(|_| e)?;
    out.hello_retry_request = sh.random == HRR_RANDOM;
    out.random = random_at(body);
    out.cipher = sh.cipher.0;
    out.compression = sh.compression.0;
    out.session_id = sh.session_id.map(<[u8]>::to_vec).unwrap_or_default();
    read_server_extensions(&mut out, sh.ext.unwrap_or_default());
    Ok(out)
}

/// Parses a draft-era HelloRetryRequest (handshake type 6, draft-ietf-tls-tls13-18 section
/// 4.1.4): version, cipher suite (from draft 19 on), extensions. Only the fact matters.
pub fn parse_draft_hello_retry_request(body: &[u8]) -> ServerHello {
    let mut c = Cursor(body);
    let version = Version(c.u16().unwrap_or_default());
    ServerHello {
        version,
        selected_version: version,
        hello_retry_request: true,
        ..ServerHello::default()
    }
}

/// The random after the 2-byte version of a hello body.
fn random_at(body: &[u8]) -> [u8; 32] {
    body.get(2..34)
        .and_then(|r| <[u8; 32]>::try_from(r).ok())
        .unwrap_or_default()
}

/// DER certificates of a TLS 1.3 Certificate message (RFC 8446 section 4.4.2), leaf first:
/// a request context, then entries of certificate and extensions.
pub fn parse_tls13_certificate_chain(body: &[u8]) -> Result<Vec<&[u8]>, HelloError> {
    let e = HelloError::Certificate;
    let mut c = Cursor(body);
    let ctx_len = c.u8().ok_or(e)? as usize;
    c.take(ctx_len).ok_or(e)?;
    let list_len = c.u24().ok_or(e)?;
    let mut list = Cursor(c.take(list_len).ok_or(e)?);
    let mut out = Vec::new();
    while !list.0.is_empty() {
        let len = list.u24().ok_or(e)?;
        out.push(list.take(len).ok_or(e)?);
        let ext = list.u16().ok_or(e)? as usize;
        list.take(ext).ok_or(e)?;
    }
    Ok(out)
}

/// DER certificates of a TLS 1.2-and-older Certificate message, leaf first.
pub fn parse_certificate_chain(body: &[u8]) -> Result<Vec<&[u8]>, HelloError> {
    match parse_tls_handshake_msg_certificate(body) {
        Ok((_, TlsMessageHandshake::Certificate(c))) => {
            Ok(c.cert_chain.iter().map(|c| c.data).collect())
        }
        _ => Err(HelloError::Certificate),
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
pub(crate) mod tests {
    use super::*;

    #[test]
    fn signature_algorithms_read_as_tls_parser_reads_them() {
        use tls_parser::parse_tls_extension_signature_algorithms_content as theirs;
        let cases: &[&[u8]] = &[
            &[],
            &[0],
            &[0, 0],
            &[0, 2, 4, 3],
            &[0, 3, 4, 3, 8],
            &[0, 4, 4, 3, 8, 4, 0xff, 0xff],
            &[0, 6, 4, 3],
            &[0, 1, 9],
        ];
        for data in cases {
            let want = match theirs(data) {
                Ok((_, TlsExtension::SignatureAlgorithms(v))) => Some(v),
                _ => None,
            };
            assert_eq!(signature_algorithms(data), want, "{data:?}");
        }
    }

    /// Builds a ClientHello body (no handshake header) from parts; used across the module's
    /// tests so each reads as the fields it cares about.
    pub fn client_hello_body(
        version: u16,
        session_id: &[u8],
        ciphers: &[u16],
        extensions: &[(u16, Vec<u8>)],
    ) -> Vec<u8> {
        let mut b = Vec::new();
        b.extend_from_slice(&version.to_be_bytes());
        b.extend_from_slice(&[0x11; 32]);
        b.push(session_id.len() as u8);
        b.extend_from_slice(session_id);
        b.extend_from_slice(&((ciphers.len() * 2) as u16).to_be_bytes());
        for c in ciphers {
            b.extend_from_slice(&c.to_be_bytes());
        }
        b.extend_from_slice(&[1, 0]);
        let mut exts = Vec::new();
        for (t, data) in extensions {
            exts.extend_from_slice(&t.to_be_bytes());
            exts.extend_from_slice(&(data.len() as u16).to_be_bytes());
            exts.extend_from_slice(data);
        }
        if !extensions.is_empty() {
            b.extend_from_slice(&(exts.len() as u16).to_be_bytes());
            b.extend_from_slice(&exts);
        }
        b
    }

    pub fn sni_ext(name: &str) -> (u16, Vec<u8>) {
        let mut d = Vec::new();
        d.extend_from_slice(&((name.len() + 3) as u16).to_be_bytes());
        d.push(0);
        d.extend_from_slice(&(name.len() as u16).to_be_bytes());
        d.extend_from_slice(name.as_bytes());
        (ext::SERVER_NAME, d)
    }

    pub fn u16_list_ext(ty: u16, values: &[u16]) -> (u16, Vec<u8>) {
        let mut d = Vec::new();
        d.extend_from_slice(&((values.len() * 2) as u16).to_be_bytes());
        for v in values {
            d.extend_from_slice(&v.to_be_bytes());
        }
        (ty, d)
    }

    pub fn versions_ext(values: &[u16]) -> (u16, Vec<u8>) {
        let mut d = vec![(values.len() * 2) as u8];
        for v in values {
            d.extend_from_slice(&v.to_be_bytes());
        }
        (ext::SUPPORTED_VERSIONS, d)
    }

    pub fn alpn_ext(protos: &[&[u8]]) -> (u16, Vec<u8>) {
        let mut list = Vec::new();
        for p in protos {
            list.push(p.len() as u8);
            list.extend_from_slice(p);
        }
        let mut d = (list.len() as u16).to_be_bytes().to_vec();
        d.extend_from_slice(&list);
        (ext::ALPN, d)
    }

    pub fn server_hello_body(
        version: u16,
        random: [u8; 32],
        cipher: u16,
        extensions: &[(u16, Vec<u8>)],
    ) -> Vec<u8> {
        let mut b = Vec::new();
        b.extend_from_slice(&version.to_be_bytes());
        b.extend_from_slice(&random);
        b.push(0);
        b.extend_from_slice(&cipher.to_be_bytes());
        b.push(0);
        let mut exts = Vec::new();
        for (t, data) in extensions {
            exts.extend_from_slice(&t.to_be_bytes());
            exts.extend_from_slice(&(data.len() as u16).to_be_bytes());
            exts.extend_from_slice(data);
        }
        b.extend_from_slice(&(exts.len() as u16).to_be_bytes());
        b.extend_from_slice(&exts);
        b
    }

    #[test]
    fn client_hello_fields() {
        let body = client_hello_body(
            0x0303,
            &[7; 32],
            &[0x0a0a, 0x1301, 0xc02f, 0x00ff],
            &[
                (0x1a1a, vec![]),
                sni_ext("mx.example.org"),
                u16_list_ext(ext::SUPPORTED_GROUPS, &[0x2a2a, 29, 23]),
                (ext::EC_POINT_FORMATS, vec![1, 0]),
                u16_list_ext(ext::SIGNATURE_ALGORITHMS, &[0x0403, 0x0804]),
                alpn_ext(&[b"smtp", b"h2"]),
                versions_ext(&[0x3a3a, 0x0304, 0x0303]),
                (ext::SESSION_TICKET, vec![]),
                (ext::EARLY_DATA, vec![]),
                (0xfe0d, vec![1, 2, 3]),
            ],
        );
        let ch = parse_client_hello(&body).unwrap();
        assert_eq!(ch.version, Version::TLS12);
        assert_eq!(ch.ciphers, vec![0x0a0a, 0x1301, 0xc02f, 0x00ff]);
        assert_eq!(
            ch.extensions,
            vec![0x1a1a, 0, 10, 11, 13, 16, 43, 35, 42, 0xfe0d]
        );
        assert_eq!(ch.sni.as_deref(), Some("mx.example.org"));
        assert_eq!(ch.groups, vec![0x2a2a, 29, 23]);
        assert_eq!(ch.ec_point_formats, vec![0]);
        assert_eq!(ch.signature_algorithms, vec![0x0403, 0x0804]);
        assert_eq!(ch.alpn, vec!["smtp", "h2"]);
        assert_eq!(ch.alpn_first.as_deref(), Some(&b"smtp"[..]));
        assert_eq!(ch.max_version(), Version::TLS13);
        assert_eq!(ch.session_id_len, 32);
        assert!(ch.session_ticket && !ch.session_ticket_nonempty);
        assert!(ch.early_data && !ch.pre_shared_key);
        // A TLS 1.3 client's session id is the middlebox-compatibility one, not resumption.
        assert!(!ch.offers_resumption());
    }

    #[test]
    fn client_hello_without_extensions() {
        let body = client_hello_body(0x0301, &[], &[0x0004, 0x0005], &[]);
        let ch = parse_client_hello(&body).unwrap();
        assert_eq!(ch.version, Version::TLS10);
        assert!(ch.extensions.is_empty());
        assert_eq!(ch.max_version(), Version::TLS10);
    }

    #[test]
    fn truncated_client_hello_is_an_error() {
        let body = client_hello_body(0x0303, &[], &[0x1301], &[]);
        assert!(parse_client_hello(&body[..20]).is_err());
    }

    #[test]
    fn sslv2_client_hello() {
        // msg 1, version 3.1, 6 bytes of specs, no session id, 16-byte challenge.
        let mut m = vec![0x01, 0x03, 0x01, 0x00, 0x06, 0x00, 0x00, 0x00, 0x10];
        m.extend_from_slice(&[0x01, 0x00, 0x80, 0x00, 0x00, 0x2f]);
        m.extend_from_slice(&[0xab; 16]);
        let ch = parse_sslv2_client_hello(&m).unwrap();
        assert!(ch.sslv2);
        assert_eq!(ch.version, Version::TLS10);
        assert_eq!(ch.ciphers, vec![0x010080, 0x00002f]);
        assert_eq!(ch.challenge_len, 16);
        assert!(parse_sslv2_client_hello(&m[..m.len() - 1]).is_err());
        m[4] = 5; // spec length not a multiple of three
        assert!(parse_sslv2_client_hello(&m).is_err());
    }

    #[test]
    fn server_hello_tls13_and_hrr() {
        let body = server_hello_body(
            0x0303,
            [3; 32],
            0x1302,
            &[
                (ext::SUPPORTED_VERSIONS, vec![0x03, 0x04]),
                (51, vec![0; 4]),
            ],
        );
        let sh = parse_server_hello(&body).unwrap();
        assert_eq!(sh.version, Version::TLS12);
        assert_eq!(sh.selected_version, Version::TLS13);
        assert_eq!(sh.cipher, 0x1302);
        assert_eq!(sh.extensions, vec![43, 51]);
        assert!(!sh.hello_retry_request);

        let hrr = server_hello_body(
            0x0303,
            HRR_RANDOM,
            0x1301,
            &[(ext::SUPPORTED_VERSIONS, vec![0x03, 0x04])],
        );
        assert!(parse_server_hello(&hrr).unwrap().hello_retry_request);
    }

    #[test]
    fn server_hello_tls13_draft_layout() {
        // draft 18: version, random, cipher, extensions; no session id or compression.
        let mut b = vec![0x7f, 0x12];
        b.extend_from_slice(&[9; 32]);
        b.extend_from_slice(&[0x13, 0x01, 0x00, 0x00]);
        let sh = parse_server_hello(&b).unwrap();
        assert_eq!(sh.selected_version.name(), "TLSv1.3-draft18");
        assert_eq!(sh.cipher, 0x1301);
    }

    #[test]
    fn server_hello_rejects_garbage() {
        assert!(parse_server_hello(&[0x03]).is_err());
        assert!(parse_server_hello(&[0x12, 0x34, 0, 0]).is_err());
    }
}
