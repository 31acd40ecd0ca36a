//! First-bytes probes: what a direction's opening bytes say it speaks. Ports only hint; these
//! prove. Pure functions over byte slices.

use crate::proto::tls::looks_like_tls;

/// What the start of a direction (or of one of its lines) looks like.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Opening {
    /// A TLS record or SSLv2-compatible hello; `hello` is the handshake message type when the
    /// record is a handshake (1 ClientHello, 2 ServerHello).
    Tls { hello: Option<u8> },
    /// An SMTP reply line (`220 mx ESMTP`), so this side is the server.
    SmtpReply,
    /// An SMTP command line (`EHLO client`), so this side is the client.
    SmtpCommand,
    /// Not mail, or not yet: see [`probe_tls`] / [`find_smtp_line`].
    Other,
}

/// Does `data`, the very first bytes of a direction, open a TLS stream? `None` while fewer
/// bytes than needed to tell have been seen.
pub fn probe_tls(data: &[u8]) -> Option<Opening> {
    match looks_like_tls(data)? {
        true => {
            let hello = match data.first() {
                // Record header (5 bytes) then the handshake type.
                Some(22) => data.get(5).copied(),
                // SSLv2 CLIENT-HELLO.
                Some(b) if b & 0x80 != 0 => Some(1),
                _ => None,
            };
            Some(Opening::Tls { hello })
        }
        false => Some(Opening::Other),
    }
}

/// SMTP commands that identify a client (RFC 5321 section 4.1 plus RFC 3207, 4954, 3030).
const COMMANDS: [&[u8]; 15] = [
    b"EHLO",
    b"HELO",
    b"LHLO",
    b"MAIL",
    b"RCPT",
    b"DATA",
    b"QUIT",
    b"RSET",
    b"NOOP",
    b"AUTH",
    b"STARTTLS",
    b"BDAT",
    b"VRFY",
    b"EXPN",
    b"HELP",
];

/// Longest line the probe waits for before calling a line "not SMTP" (RFC 5321 4.5.3.1.4
/// and 4.5.3.1.5 put command and reply lines at 512 octets).
pub const MAX_PROBE_LINE: usize = 1024;

/// Bytes of an unfinished line enough to judge it by its start.
const PREFIX_JUDGED: usize = 64;

/// Classifies one complete line (without its line ending).
pub fn classify_line(line: &[u8]) -> Opening {
    if !line
        .iter()
        .all(|&b| b == b'\t' || (0x20..0x7f).contains(&b) || b >= 0x80)
    {
        return Opening::Other;
    }
    if is_reply_line(line) {
        return Opening::SmtpReply;
    }
    if is_command_line(line) {
        return Opening::SmtpCommand;
    }
    Opening::Other
}

fn is_reply_line(line: &[u8]) -> bool {
    match line {
        [a, b, c, rest @ ..] => {
            (b'2'..=b'5').contains(a)
                && (b'0'..=b'5').contains(b)
                && c.is_ascii_digit()
                && matches!(rest.first(), None | Some(b' ') | Some(b'-'))
        }
        _ => false,
    }
}

fn is_command_line(line: &[u8]) -> bool {
    let verb_len = line.iter().position(|&b| b == b' ').unwrap_or(line.len());
    let (verb, rest) = line.split_at(verb_len);
    let known = COMMANDS.iter().any(|c| c.eq_ignore_ascii_case(verb));
    if !known {
        return false;
    }
    // MAIL and RCPT must carry their FROM:/TO: argument, which rules out prose such as
    // "Mail me tomorrow".
    if verb.eq_ignore_ascii_case(b"MAIL") {
        return starts_with_ci(rest.trim_ascii_start(), b"FROM:");
    }
    if verb.eq_ignore_ascii_case(b"RCPT") {
        return starts_with_ci(rest.trim_ascii_start(), b"TO:");
    }
    true
}

fn starts_with_ci(s: &[u8], prefix: &[u8]) -> bool {
    s.len() >= prefix.len() && s[..prefix.len()].eq_ignore_ascii_case(prefix)
}

/// Finds the first SMTP line in `data` that starts at offset 0 or right after a line feed.
/// Returns the offset of that line and what it is. A trailing line without its end is not
/// judged (`None` with `pending` set to its offset) so that the caller can wait for more.
pub fn find_smtp_line(data: &[u8]) -> LineScan {
    let mut start = 0;
    while start < data.len() {
        let Some(rel) = data[start..].iter().position(|&b| b == b'\n') else {
            // A long unfinished line is judged by its start (an EHLO with a 4 KB argument is
            // still an EHLO); a short one waits for its end.
            let tail = &data[start..];
            if tail.len() >= PREFIX_JUDGED {
                if let found @ (Opening::SmtpReply | Opening::SmtpCommand) =
                    classify_line(&tail[..PREFIX_JUDGED])
                {
                    return LineScan::Found {
                        offset: start,
                        what: found,
                    };
                }
            }
            return LineScan::Pending { offset: start };
        };
        let end = start + rel;
        let line = data[start..end]
            .strip_suffix(b"\r")
            .unwrap_or(&data[start..end]);
        match classify_line(line) {
            Opening::Other => {}
            found => {
                return LineScan::Found {
                    offset: start,
                    what: found,
                };
            }
        }
        start = end + 1;
    }
    LineScan::Pending { offset: data.len() }
}

/// Result of [`find_smtp_line`].
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum LineScan {
    /// An SMTP line starts at `offset`.
    Found { offset: usize, what: Opening },
    /// No SMTP line among the complete lines; bytes from `offset` are an unfinished line.
    Pending { offset: usize },
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn recognises_tls_openings() {
        let ch = [0x16, 0x03, 0x01, 0x00, 0xf1, 0x01, 0x00];
        assert_eq!(probe_tls(&ch), Some(Opening::Tls { hello: Some(1) }));
        let sh = [0x16, 0x03, 0x03, 0x00, 0x5a, 0x02];
        assert_eq!(probe_tls(&sh), Some(Opening::Tls { hello: Some(2) }));
        // SSLv2-compatible ClientHello: 2-byte header with the high bit, type 1.
        assert_eq!(
            probe_tls(&[0x80, 0x2e, 0x01, 0x03, 0x01]),
            Some(Opening::Tls { hello: Some(1) })
        );
        assert_eq!(probe_tls(b"220 mx"), Some(Opening::Other));
        assert_eq!(probe_tls(&[0x16]), None);
    }

    #[test]
    fn classifies_smtp_lines() {
        assert_eq!(
            classify_line(b"220 mx.example.org ESMTP"),
            Opening::SmtpReply
        );
        assert_eq!(classify_line(b"250-PIPELINING"), Opening::SmtpReply);
        assert_eq!(classify_line(b"354"), Opening::SmtpReply);
        assert_eq!(classify_line(b"EHLO client"), Opening::SmtpCommand);
        assert_eq!(classify_line(b"ehlo client"), Opening::SmtpCommand);
        assert_eq!(classify_line(b"MAIL FROM:<a@b>"), Opening::SmtpCommand);
        assert_eq!(classify_line(b"Mail me later"), Opening::Other);
        assert_eq!(classify_line(b"STARTTLS"), Opening::SmtpCommand);
        assert_eq!(classify_line(b"GET / HTTP/1.1"), Opening::Other);
        assert_eq!(classify_line(b"HTTP/1.0 200 OK"), Opening::Other);
        assert_eq!(classify_line(b"600 nope"), Opening::Other);
        assert_eq!(classify_line(b"220\x00\x01"), Opening::Other);
    }

    #[test]
    fn finds_smtp_after_a_tunnel_preamble() {
        let data = b"HTTP/1.0 200 Connection established\r\n\r\n220 mx ESMTP\r\n";
        assert_eq!(
            find_smtp_line(data),
            LineScan::Found {
                offset: 39,
                what: Opening::SmtpReply
            }
        );
        assert_eq!(find_smtp_line(b"EHL"), LineScan::Pending { offset: 0 });
        let mut long = b"EHLO ".to_vec();
        long.extend(std::iter::repeat_n(b'A', 4000));
        assert_eq!(
            find_smtp_line(&long),
            LineScan::Found {
                offset: 0,
                what: Opening::SmtpCommand
            }
        );
        assert_eq!(
            find_smtp_line(&[b'x'; 4000]),
            LineScan::Pending { offset: 0 }
        );
        assert_eq!(
            find_smtp_line(b"junk\r\nEHL"),
            LineScan::Pending { offset: 6 }
        );
    }
}
