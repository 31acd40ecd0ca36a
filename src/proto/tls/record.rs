//! Record framing (RFC 8446 section 5.1, RFC 5246 section 6.2) and the SSLv2 record header
//! (draft-hickman-netscape-ssl-00 "SSL Record Header"). Pure functions: they look at a header,
//! never at a body, so a record's length is validated before anything is buffered for it.

use super::names::{ContentType, Version};

/// TLS record header length: type(1) version(2) length(2).
pub const HEADER_LEN: usize = 5;

/// Largest record length any version allows: TLSCompressed/TLSCiphertext may carry
/// 2^14 + 2048 bytes (RFC 5246 section 6.2.3); TLS 1.3 is stricter (2^14 + 256, RFC 8446
/// section 5.2). Anything longer is not TLS, or an attack on the parser.
pub const MAX_RECORD_LEN: u16 = (1 << 14) + 2048;

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct RecordHeader {
    pub content_type: ContentType,
    pub version: Version,
    pub len: u16,
}

/// Why bytes cannot be a TLS record header.
#[derive(Clone, Copy, Debug, PartialEq, Eq, thiserror::Error)]
pub enum RecordError {
    #[error("unknown record content type {0}")]
    ContentType(u8),
    #[error("record version 0x{0:04x} is not SSLv3/TLS")]
    Version(u16),
    #[error("record length {0} exceeds the maximum of {max}", max = MAX_RECORD_LEN)]
    TooLong(u16),
}

impl RecordError {
    pub fn as_str(self) -> &'static str {
        match self {
            RecordError::ContentType(_) => "invalid_record_type",
            RecordError::Version(_) => "invalid_record_version",
            RecordError::TooLong(_) => "record_too_long",
        }
    }
}

/// Parses and validates a record header from exactly five bytes.
pub fn parse_header(h: [u8; HEADER_LEN]) -> Result<RecordHeader, RecordError> {
    let [t, vmaj, vmin, lhi, llo] = h;
    let content_type = ContentType(t);
    if !content_type.is_known() {
        return Err(RecordError::ContentType(t));
    }
    let version = u16::from_be_bytes([vmaj, vmin]);
    // Every record layer since SSLv3 carries major version 3; TLS 1.3 freezes it at 0x0303
    // (RFC 8446 section 5.1) and early ClientHellos use 0x0300/0x0301.
    if vmaj != 3 {
        return Err(RecordError::Version(version));
    }
    let len = u16::from_be_bytes([lhi, llo]);
    if len > MAX_RECORD_LEN {
        return Err(RecordError::TooLong(len));
    }
    Ok(RecordHeader {
        content_type,
        version: Version(version),
        len,
    })
}

/// True when `h` would pass [`parse_header`]: used to find the next record after a gap.
pub fn plausible_header(h: &[u8]) -> bool {
    match h {
        [t, 3, vmin, lhi, llo, ..] => {
            ContentType(*t).is_known()
                && *vmin <= 4
                && u16::from_be_bytes([*lhi, *llo]) <= MAX_RECORD_LEN
        }
        _ => false,
    }
}

/// True when `h` (shorter than a header) could still become a plausible header once more
/// bytes arrive: completed with the most permissive bytes (major version 3, zeros), it
/// passes [`plausible_header`]. Used to hold a header split across chunks after a gap.
pub fn plausible_header_prefix(h: &[u8]) -> bool {
    if h.is_empty() || h.len() >= HEADER_LEN {
        return false;
    }
    let mut probe = [0, 3, 0, 0, 0];
    if let Some(dst) = probe.get_mut(..h.len()) {
        dst.copy_from_slice(h);
    }
    plausible_header(&probe)
}

/// SSLv2 record header: two bytes with the high bit set (no padding), or three bytes
/// (with a padding-length byte). Returns (header length, body length).
pub fn parse_sslv2_header(data: &[u8]) -> Option<(usize, usize)> {
    let b0 = *data.first()?;
    let b1 = *data.get(1)?;
    if b0 & 0x80 != 0 {
        Some((2, (((b0 & 0x7f) as usize) << 8) | b1 as usize))
    } else {
        // Three-byte form: 14-bit length, then the padding byte.
        data.get(2)?;
        Some((3, (((b0 & 0x3f) as usize) << 8) | b1 as usize))
    }
}

/// True when `data` starts like a TLS record (handshake, alert, ...) or an SSLv2-compatible
/// ClientHello; `None` when more bytes are needed to tell.
pub fn looks_like_tls(data: &[u8]) -> Option<bool> {
    let first = *data.first()?;
    if ContentType(first).is_known() {
        let major = *data.get(1)?;
        if major != 3 {
            return Some(false);
        }
        let minor = *data.get(2)?;
        if minor > 4 {
            return Some(false);
        }
        let len = u16::from_be_bytes([*data.get(3)?, *data.get(4)?]);
        return Some(len <= MAX_RECORD_LEN);
    }
    if first & 0x80 != 0 {
        // SSLv2 CLIENT-HELLO: 2-byte header with the high bit set, msg type 1, then a version
        // of 0x0002 or SSLv3/TLS (the "compatible" hello of RFC 5246 appendix E.2).
        let msg = *data.get(2)?;
        if msg != 1 {
            return Some(false);
        }
        let major = *data.get(3)?;
        return Some(major == 0 || major == 3);
    }
    Some(false)
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;

    #[test]
    fn header_prefixes() {
        assert!(plausible_header_prefix(&[0x17]));
        assert!(plausible_header_prefix(&[0x17, 0x03, 0x03]));
        // 0x48 << 8 is the largest high byte below MAX_RECORD_LEN; 0x49 cannot become one.
        assert!(plausible_header_prefix(&[0x17, 0x03, 0x03, 0x48]));
        assert!(!plausible_header_prefix(&[0x17, 0x03, 0x03, 0x49]));
        assert!(!plausible_header_prefix(&[0x17, 0x02]));
        assert!(!plausible_header_prefix(&[0x30]));
        assert!(!plausible_header_prefix(&[]));
        assert!(!plausible_header_prefix(&[0x17, 0x03, 0x03, 0x00, 0x10]));
    }

    #[test]
    fn header_parses_and_validates() {
        let h = parse_header([0x16, 0x03, 0x01, 0x02, 0x00]).unwrap();
        assert_eq!(h.content_type, ContentType::HANDSHAKE);
        assert_eq!(h.version, Version::TLS10);
        assert_eq!(h.len, 512);
        assert_eq!(
            parse_header([0x19, 0x03, 0x03, 0, 1]),
            Err(RecordError::ContentType(0x19))
        );
        assert_eq!(
            parse_header([0x14, 0xff, 0xff, 0xff, 0x01]),
            Err(RecordError::Version(0xffff))
        );
        assert_eq!(
            parse_header([0x17, 0x03, 0x03, 0xff, 0xff]),
            Err(RecordError::TooLong(0xffff))
        );
        // Exactly the maximum is still a record.
        assert!(parse_header([0x17, 0x03, 0x03, 0x48, 0x00]).is_ok());
        assert!(parse_header([0x17, 0x03, 0x03, 0x48, 0x01]).is_err());
    }

    #[test]
    fn sslv2_headers() {
        assert_eq!(parse_sslv2_header(&[0x80, 0x2e, 0x01]), Some((2, 0x2e)));
        assert_eq!(parse_sslv2_header(&[0x01, 0x00, 0x05]), Some((3, 0x100)));
        assert_eq!(parse_sslv2_header(&[0x80]), None);
    }

    #[test]
    fn tls_detection() {
        assert_eq!(looks_like_tls(&[]), None);
        assert_eq!(looks_like_tls(&[0x16]), None);
        assert_eq!(looks_like_tls(&[0x16, 0x03, 0x01, 0x00, 0xa5]), Some(true));
        assert_eq!(looks_like_tls(&[0x16, 0x03, 0x01, 0xff, 0xff]), Some(false));
        assert_eq!(looks_like_tls(b"220 mx.example.org ESMTP\r\n"), Some(false));
        assert_eq!(looks_like_tls(b"EHLO x\r\n"), Some(false));
        assert_eq!(looks_like_tls(&[0x80, 0x2e, 0x01, 0x03, 0x01]), Some(true));
        assert_eq!(looks_like_tls(&[0x80, 0x2e, 0x02, 0x03, 0x01]), Some(false));
        assert!(plausible_header(&[0x17, 0x03, 0x03, 0x00, 0x20]));
        assert!(!plausible_header(&[0x17, 0x03, 0x03]));
    }
}
