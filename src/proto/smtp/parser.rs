//! Pure SMTP parsers over one line (without its line ending): reply lines, commands, EHLO
//! capability lines, AUTH and BDAT arguments. Nothing here knows about flows or state.

use nom::IResult;
use nom::bytes::complete::take_while_m_n;
use nom::combinator::{opt, rest};
use nom::sequence::tuple;

/// A three-digit reply code. Unknown codes are kept as they are: only the classes matter for
/// most decisions (RFC 5321 §4.2.1).
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct ReplyCode(pub u16);

impl ReplyCode {
    pub const SERVICE_READY: ReplyCode = ReplyCode(220);
    pub const AUTH_SUCCEEDED: ReplyCode = ReplyCode(235);
    pub const AUTH_CONTINUE: ReplyCode = ReplyCode(334);
    pub const START_MAIL_INPUT: ReplyCode = ReplyCode(354);
    pub const SYNTAX_ERROR: ReplyCode = ReplyCode(500);
    pub const NOT_IMPLEMENTED: ReplyCode = ReplyCode(502);
    pub const AUTH_FAILED: ReplyCode = ReplyCode(535);
    pub const TRANSACTION_FAILED: ReplyCode = ReplyCode(554);

    /// First digit: 2 positive completion, 3 intermediate, 4 transient, 5 permanent.
    pub fn class(self) -> u16 {
        self.0 / 100
    }

    pub fn is_positive(self) -> bool {
        self.class() == 2
    }

    pub fn is_intermediate(self) -> bool {
        self.class() == 3
    }

    pub fn is_negative(self) -> bool {
        matches!(self.class(), 4 | 5)
    }
}

/// One reply line: `NNN-text` (more lines follow), `NNN text` or a bare `NNN` (last line).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct ReplyLine<'a> {
    pub code: ReplyCode,
    /// False for a `NNN-` continuation line (RFC 5321 §4.2.1).
    pub last: bool,
    pub text: &'a [u8],
}

/// Code digits, optional separator, rest of the line.
type ReplyParts<'a> = (&'a [u8], Option<&'a [u8]>, &'a [u8]);

fn reply_parts(input: &[u8]) -> IResult<&[u8], ReplyParts<'_>> {
    tuple((
        take_while_m_n(3, 3, |b: u8| b.is_ascii_digit()),
        opt(take_while_m_n(1, 1, |b: u8| b == b' ' || b == b'-')),
        rest,
    ))(input)
}

/// Parses a reply line. RFC 5321 §4.2 restricts the first digit to 2..5 and the second to
/// 0..5; `1yz` is accepted too since RFC 5321 §4.2.1 still defines the class.
pub fn reply_line(line: &[u8]) -> Option<ReplyLine<'_>> {
    let (_, (digits, sep, text)) = reply_parts(line).ok()?;
    let d = |i: usize| digits.get(i).map(|b| u16::from(b - b'0'));
    let (a, b, c) = (d(0)?, d(1)?, d(2)?);
    if !(1..=5).contains(&a) || b > 5 {
        return None;
    }
    // Without a separator the line must end right after the code (a bare "250").
    if sep.is_none() && !text.is_empty() {
        return None;
    }
    Some(ReplyLine {
        code: ReplyCode(a * 100 + b * 10 + c),
        last: sep != Some(b"-"),
        text,
    })
}

/// Command verbs smtpaudit tracks; anything else that looks like a verb is `Other`.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Verb {
    Helo,
    Ehlo,
    /// LMTP's EHLO (RFC 2033), seen on LMTP hops.
    Lhlo,
    Mail,
    Rcpt,
    Data,
    Bdat,
    Rset,
    Quit,
    Noop,
    Vrfy,
    Expn,
    Help,
    StartTls,
    Auth,
    Etrn,
    Turn,
    Other,
}

impl Verb {
    fn from_keyword(k: &[u8]) -> Verb {
        const TABLE: [(&[u8], Verb); 17] = [
            (b"HELO", Verb::Helo),
            (b"EHLO", Verb::Ehlo),
            (b"LHLO", Verb::Lhlo),
            (b"MAIL", Verb::Mail),
            (b"RCPT", Verb::Rcpt),
            (b"DATA", Verb::Data),
            (b"BDAT", Verb::Bdat),
            (b"RSET", Verb::Rset),
            (b"QUIT", Verb::Quit),
            (b"NOOP", Verb::Noop),
            (b"VRFY", Verb::Vrfy),
            (b"EXPN", Verb::Expn),
            (b"HELP", Verb::Help),
            (b"STARTTLS", Verb::StartTls),
            (b"AUTH", Verb::Auth),
            (b"ETRN", Verb::Etrn),
            (b"TURN", Verb::Turn),
        ];
        TABLE
            .iter()
            .find(|(name, _)| name.eq_ignore_ascii_case(k))
            .map_or(Verb::Other, |(_, v)| *v)
    }

    /// A verb of RFC 5321 or its extensions (not `Other`).
    pub fn is_known(self) -> bool {
        self != Verb::Other
    }
}

/// A command line split into its verb and arguments.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Command<'a> {
    pub verb: Verb,
    /// The verb as sent.
    pub keyword: &'a [u8],
    /// Arguments with surrounding blanks removed.
    pub args: &'a [u8],
}

/// Longest keyword taken for a verb; real ones are at most 8 (STARTTLS), extensions a bit more.
const MAX_VERB: usize = 20;

/// Parses a command: a keyword of letters and digits starting with a letter, then end of line
/// or a blank and arguments (RFC 5321 §4.1.1). Verbs are case-insensitive.
pub fn command(line: &[u8]) -> Option<Command<'_>> {
    let first = *line.first()?;
    if !first.is_ascii_alphabetic() {
        return None;
    }
    let end = line
        .iter()
        .position(|b| !b.is_ascii_alphanumeric())
        .unwrap_or(line.len());
    if end > MAX_VERB {
        return None;
    }
    let (keyword, after) = line.split_at(end);
    match after.first() {
        None => {}
        Some(b' ' | b'\t') => {}
        Some(_) => return None,
    }
    Some(Command {
        verb: Verb::from_keyword(keyword),
        keyword,
        args: after.trim_ascii(),
    })
}

/// One EHLO keyword line (RFC 5321 §4.1.1.1: `ehlo-line = ehlo-keyword *( SP ehlo-param )`).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Capability<'a> {
    pub keyword: &'a [u8],
    pub params: &'a [u8],
}

/// Splits a capability line. The pre-RFC 2554 form `AUTH=LOGIN PLAIN` (still sent for old
/// Outlook clients) is read as keyword `AUTH` with its parameters.
pub fn capability(text: &[u8]) -> Option<Capability<'_>> {
    let text = text.trim_ascii();
    if text.is_empty() {
        return None;
    }
    let end = text
        .iter()
        .position(|b| *b == b' ' || *b == b'=' || *b == b'\t')
        .unwrap_or(text.len());
    let (keyword, after) = text.split_at(end);
    let params = after.get(1..).unwrap_or_default().trim_ascii();
    Some(Capability { keyword, params })
}

/// The STARTTLS keyword as RFC 3207 §4 spells it.
pub const STARTTLS: &[u8] = b"STARTTLS";

/// An EHLO keyword that looks like STARTTLS overwritten by a middlebox: the same length and
/// mostly `X` (Cisco's `XXXXXXXA`), or at most two characters away from STARTTLS
/// (`STARTTLX`). Real 8-character keywords (CHUNKING, 8BITMIME, SMTPUTF8) differ in 6 or more.
pub fn looks_mangled_starttls(keyword: &[u8]) -> bool {
    if keyword.len() != STARTTLS.len() || keyword.eq_ignore_ascii_case(STARTTLS) {
        return false;
    }
    let xs = keyword
        .iter()
        .filter(|b| b.eq_ignore_ascii_case(&b'X'))
        .count();
    let distance = keyword
        .iter()
        .zip(STARTTLS)
        .filter(|(a, b)| !a.eq_ignore_ascii_case(b))
        .count();
    xs >= 6 || distance <= 2
}

/// Mechanism names of an `AUTH` capability's parameters.
pub fn auth_mechanisms(params: &[u8]) -> impl Iterator<Item = &[u8]> {
    params
        .split(|b| *b == b' ' || *b == b'\t')
        .filter(|m| !m.is_empty())
}

/// `AUTH mechanism [initial-response]` (RFC 4954 §4).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct AuthCommand<'a> {
    pub mechanism: &'a [u8],
    /// The initial response as sent; `=` stands for an empty one (RFC 4954 §4).
    pub initial: Option<&'a [u8]>,
}

pub fn auth_command(args: &[u8]) -> Option<AuthCommand<'_>> {
    let mut parts = args
        .split(|b| *b == b' ' || *b == b'\t')
        .filter(|p| !p.is_empty());
    let mechanism = parts.next()?;
    Some(AuthCommand {
        mechanism,
        initial: parts.next(),
    })
}

/// `BDAT chunk-size [LAST]` (RFC 3030 §2): the size and whether this chunk is the last.
pub fn bdat_args(args: &[u8]) -> Option<(u64, bool)> {
    let mut parts = args
        .split(|b| *b == b' ' || *b == b'\t')
        .filter(|p| !p.is_empty());
    let size = parts.next()?;
    if size.is_empty() || size.len() > 19 || !size.iter().all(u8::is_ascii_digit) {
        return None;
    }
    let size = size
        .iter()
        .fold(0u64, |acc, d| acc * 10 + u64::from(d - b'0'));
    let last = match parts.next() {
        None => false,
        Some(p) if p.eq_ignore_ascii_case(b"LAST") => true,
        Some(_) => return None,
    };
    if parts.next().is_some() {
        return None;
    }
    Some((size, last))
}

/// The host name a greeting announces: its first word when that is a plausible domain
/// (RFC 5321 §4.3.1: `220 domain ...`). Address literals and garbage give `None`.
pub fn greeting_host(text: &[u8]) -> Option<&str> {
    let word = text
        .split(|b| *b == b' ' || *b == b'\t')
        .find(|w| !w.is_empty())?;
    let ok = word.len() <= 253
        && word.contains(&b'.')
        && word
            .iter()
            .all(|b| b.is_ascii_alphanumeric() || *b == b'.' || *b == b'-' || *b == b'_')
        && word.iter().any(u8::is_ascii_alphabetic);
    if !ok {
        return None;
    }
    std::str::from_utf8(word.strip_suffix(b".").unwrap_or(word)).ok()
}

/// How far into a line binary junk is looked past (a SOCKS or proxy header glued to the
/// first SMTP line is a few dozen bytes).
const MAX_JUNK: usize = 64;

fn is_binary(b: u8) -> bool {
    (b < 0x20 && b != b'\t') || b >= 0x7f
}

/// Where SMTP resumes in a line that starts with binary bytes (a tunnel header without a
/// line ending, as SOCKS sends): the first position right after a binary byte, within the
/// first bytes, from which `parses` accepts the rest.
pub fn resync_offset(line: &[u8], parses: impl Fn(&[u8]) -> bool) -> Option<usize> {
    let window = line.len().min(MAX_JUNK + 1);
    (1..window).find(|&i| {
        line.get(i - 1).copied().is_some_and(is_binary) && line.get(i..).is_some_and(&parses)
    })
}

/// Lossy text of at most `max` bytes, for names and reply texts in the report.
pub fn lossy(bytes: &[u8], max: usize) -> String {
    let cut = bytes.get(..max).unwrap_or(bytes);
    String::from_utf8_lossy(cut).into_owned()
}

#[cfg(test)]
#[allow(clippy::unwrap_used, clippy::expect_used)]
mod tests {
    use super::*;

    #[test]
    fn reply_lines() {
        let r = reply_line(b"250-mx.example.org Hello").unwrap();
        assert_eq!(
            (r.code, r.last, r.text),
            (ReplyCode(250), false, &b"mx.example.org Hello"[..])
        );
        let r = reply_line(b"220 ready").unwrap();
        assert_eq!(
            (r.code, r.last, r.text),
            (ReplyCode(220), true, &b"ready"[..])
        );
        let r = reply_line(b"250").unwrap();
        assert_eq!((r.code, r.last, r.text), (ReplyCode(250), true, &b""[..]));
        let r = reply_line(b"334 ").unwrap();
        assert_eq!((r.code, r.last, r.text), (ReplyCode(334), true, &b""[..]));
        assert_eq!(reply_line(b"250x"), None);
        assert_eq!(reply_line(b"25 ok"), None);
        assert_eq!(reply_line(b"650 no"), None);
        assert_eq!(reply_line(b"290 no"), None);
        assert_eq!(reply_line(b"EHLO x"), None);
        assert_eq!(reply_line(b""), None);
    }

    #[test]
    fn reply_classes() {
        assert!(ReplyCode(220).is_positive());
        assert!(ReplyCode(354).is_intermediate());
        assert!(ReplyCode(454).is_negative());
        assert!(ReplyCode(535).is_negative());
        assert!(!ReplyCode(334).is_negative());
    }

    #[test]
    fn commands() {
        let c = command(b"MAIL FROM:<a@b.c> SIZE=10").unwrap();
        assert_eq!((c.verb, c.args), (Verb::Mail, &b"FROM:<a@b.c> SIZE=10"[..]));
        let c = command(b"staRttLs").unwrap();
        assert_eq!((c.verb, c.args), (Verb::StartTls, &b""[..]));
        let c = command(b"ehlo  client.example.org  ").unwrap();
        assert_eq!((c.verb, c.args), (Verb::Ehlo, &b"client.example.org"[..]));
        let c = command(b"XCLIENT NAME=x").unwrap();
        assert_eq!((c.verb, c.keyword), (Verb::Other, &b"XCLIENT"[..]));
        assert_eq!(command(b"Subject: hi"), None);
        assert_eq!(command(b"HTTP/1.1 101"), None);
        assert_eq!(command(b"dXNlcg=="), None);
        assert_eq!(command(b"\x16\x03\x01"), None);
        assert_eq!(command(b""), None);
        assert_eq!(command(b"ABCDEFGHIJKLMNOPQRSTUVWXYZ"), None);
    }

    #[test]
    fn capabilities() {
        let c = capability(b"AUTH PLAIN LOGIN").unwrap();
        assert_eq!((c.keyword, c.params), (&b"AUTH"[..], &b"PLAIN LOGIN"[..]));
        let c = capability(b"AUTH=LOGIN PLAIN").unwrap();
        assert_eq!((c.keyword, c.params), (&b"AUTH"[..], &b"LOGIN PLAIN"[..]));
        let c = capability(b"STARTTLS").unwrap();
        assert_eq!((c.keyword, c.params), (&b"STARTTLS"[..], &b""[..]));
        assert_eq!(capability(b"  "), None);
        let mechs: Vec<&[u8]> = auth_mechanisms(b"PLAIN  LOGIN CRAM-MD5").collect();
        assert_eq!(mechs, vec![&b"PLAIN"[..], b"LOGIN", b"CRAM-MD5"]);
    }

    #[test]
    fn mangled_starttls() {
        assert!(looks_mangled_starttls(b"XXXXXXXA"));
        assert!(looks_mangled_starttls(b"XXXXXXXX"));
        assert!(looks_mangled_starttls(b"STARTTLX"));
        assert!(looks_mangled_starttls(b"XTARTTLS"));
        assert!(!looks_mangled_starttls(b"STARTTLS"));
        assert!(!looks_mangled_starttls(b"starttls"));
        assert!(!looks_mangled_starttls(b"CHUNKING"));
        assert!(!looks_mangled_starttls(b"8BITMIME"));
        assert!(!looks_mangled_starttls(b"SMTPUTF8"));
        assert!(!looks_mangled_starttls(b"XXXXXXX"));
    }

    #[test]
    fn auth_args() {
        let a = auth_command(b"PLAIN AGFsaWNlAHNlY3JldA==").unwrap();
        assert_eq!(
            (a.mechanism, a.initial),
            (&b"PLAIN"[..], Some(&b"AGFsaWNlAHNlY3JldA=="[..]))
        );
        let a = auth_command(b"LOGIN").unwrap();
        assert_eq!((a.mechanism, a.initial), (&b"LOGIN"[..], None));
        let a = auth_command(b"EXTERNAL =").unwrap();
        assert_eq!(a.initial, Some(&b"="[..]));
        assert_eq!(auth_command(b""), None);
    }

    #[test]
    fn bdat() {
        assert_eq!(bdat_args(b"86 LAST"), Some((86, true)));
        assert_eq!(bdat_args(b"1000"), Some((1000, false)));
        assert_eq!(bdat_args(b"0 last"), Some((0, true)));
        assert_eq!(bdat_args(b"x"), None);
        assert_eq!(bdat_args(b"10 FIRST"), None);
        assert_eq!(bdat_args(b"99999999999999999999"), None);
        assert_eq!(bdat_args(b""), None);
    }

    #[test]
    fn resync_after_binary_prefix() {
        let is_reply = |l: &[u8]| reply_line(l).is_some();
        assert_eq!(
            resync_offset(b"\x00\x00\x01\xd1\xcd220 mx ESMTP", is_reply),
            Some(5)
        );
        let is_cmd = |l: &[u8]| command(l).is_some_and(|c| c.verb.is_known());
        assert_eq!(resync_offset(b"\x05\x01\x00\x19EHLO User", is_cmd), Some(4));
        assert_eq!(resync_offset(b"xx220 ok", is_reply), None);
        assert_eq!(resync_offset(b"\x00garbage", is_reply), None);
        let mut far = vec![0u8; 100];
        far.extend_from_slice(b"220 ok");
        assert_eq!(resync_offset(&far, is_reply), None);
    }

    #[test]
    fn greeting_hosts() {
        assert_eq!(
            greeting_host(b"mx.example.org ESMTP Postfix"),
            Some("mx.example.org")
        );
        assert_eq!(
            greeting_host(b"mail.example.com."),
            Some("mail.example.com")
        );
        assert_eq!(greeting_host(b"[192.0.2.1] ready"), None);
        assert_eq!(greeting_host(b"f"), None);
        assert_eq!(greeting_host(b""), None);
        assert_eq!(greeting_host(b"192.0.2.1 ready"), None);
    }
}
