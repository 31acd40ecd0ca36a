//! SMTP AUTH (RFC 4954): one exchange per AUTH command, decoded per SASL mechanism, with the
//! secret kept in a type that never prints itself.

use base64::Engine;
use base64::engine::general_purpose::STANDARD_PAD_INDIFFERENT as B64;
use base64::engine::{DecodePaddingMode, GeneralPurpose, GeneralPurposeConfig};

/// For lines cut by the capture: the last character may be cut from the bits after it, so
/// its spare bits need not be zero.
const B64_CUT: GeneralPurpose = GeneralPurpose::new(
    &base64::alphabet::STANDARD,
    GeneralPurposeConfig::new()
        .with_decode_allow_trailing_bits(true)
        .with_decode_padding_mode(DecodePaddingMode::Indifferent),
);

use crate::flow::EventMeta;
use crate::report::model::{AuthOutcome, AuthRecord, SecretRecord};

use super::parser::{ReplyCode, lossy};

/// Longest name (user, domain, authzid) kept from an exchange.
const MAX_NAME: usize = 256;

/// Bytes that must not reach any output unless the user asked for secrets. `Debug` shows
/// only the length, so a stray `{:?}` cannot leak a password to stderr.
#[derive(Clone, PartialEq, Eq)]
pub struct Secret(Vec<u8>);

impl Secret {
    pub fn new(bytes: Vec<u8>) -> Self {
        Secret(bytes)
    }

    pub fn len(&self) -> usize {
        self.0.len()
    }

    pub fn is_empty(&self) -> bool {
        self.0.is_empty()
    }

    /// A tag that tells two secrets apart without keeping either: a hash under a key drawn
    /// at random once per process, so the tag cannot be looked up in a table of known
    /// passwords and never means anything outside this run. Never written out.
    pub fn tag(&self) -> u64 {
        static KEY: std::sync::OnceLock<std::hash::RandomState> = std::sync::OnceLock::new();
        use std::hash::BuildHasher;
        KEY.get_or_init(std::hash::RandomState::new)
            .hash_one(&self.0)
    }

    /// The secret as text: lossy UTF-8 (passwords and tokens are text in practice).
    pub fn expose(&self) -> String {
        String::from_utf8_lossy(&self.0).into_owned()
    }

    /// The contract form: redacted unless `reveal`.
    pub fn record(&self, reveal: bool) -> SecretRecord {
        if reveal {
            SecretRecord::Revealed {
                value: self.expose(),
            }
        } else {
            SecretRecord::Redacted {
                redacted: true,
                length: self.len(),
            }
        }
    }
}

impl std::fmt::Debug for Secret {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "Secret(redacted, {} bytes)", self.0.len())
    }
}

/// SASL mechanisms smtpaudit decodes; others are kept by name.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Mechanism {
    /// RFC 4616.
    Plain,
    /// draft-murchison-sasl-login: user name and password as two base64 lines.
    Login,
    /// RFC 2195.
    CramMd5,
    /// RFC 2831.
    DigestMd5,
    /// MS-NLMP carried as in MS-SMTPNTLM.
    Ntlm,
    /// Google's XOAUTH2.
    XOauth2,
    /// RFC 7628.
    OauthBearer,
    Other(String),
}

/// What a captured secret lets an observer do, which sets the finding's severity.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum SecretKind {
    /// A password or bearer token usable as it is.
    Reusable,
    /// A challenge response: the password falls to an offline dictionary attack.
    Crackable,
}

impl Mechanism {
    pub fn parse(name: &[u8]) -> Mechanism {
        let upper = lossy(name, 64).to_ascii_uppercase();
        match upper.as_str() {
            "PLAIN" => Mechanism::Plain,
            "LOGIN" => Mechanism::Login,
            "CRAM-MD5" => Mechanism::CramMd5,
            "DIGEST-MD5" => Mechanism::DigestMd5,
            "NTLM" => Mechanism::Ntlm,
            "XOAUTH2" => Mechanism::XOauth2,
            "OAUTHBEARER" => Mechanism::OauthBearer,
            _ => Mechanism::Other(upper),
        }
    }

    pub fn name(&self) -> &str {
        match self {
            Mechanism::Plain => "PLAIN",
            Mechanism::Login => "LOGIN",
            Mechanism::CramMd5 => "CRAM-MD5",
            Mechanism::DigestMd5 => "DIGEST-MD5",
            Mechanism::Ntlm => "NTLM",
            Mechanism::XOauth2 => "XOAUTH2",
            Mechanism::OauthBearer => "OAUTHBEARER",
            Mechanism::Other(name) => name,
        }
    }

    pub fn secret_kind(&self) -> Option<SecretKind> {
        match self {
            Mechanism::Plain | Mechanism::Login | Mechanism::XOauth2 | Mechanism::OauthBearer => {
                Some(SecretKind::Reusable)
            }
            Mechanism::CramMd5 | Mechanism::DigestMd5 | Mechanism::Ntlm => {
                Some(SecretKind::Crackable)
            }
            Mechanism::Other(_) => None,
        }
    }
}

/// One AUTH command and everything that followed it until the final reply.
#[derive(Clone, Debug)]
pub struct AuthExchange {
    pub mechanism: Mechanism,
    pub authzid: Option<String>,
    pub username: Option<String>,
    /// Password, bearer token or challenge response.
    pub secret: Option<Secret>,
    /// The crackable form for hashcat (CRAM-MD5: mode 10200, NTLM: 5500 or 5600).
    pub hashcat: Option<Secret>,
    pub outcome: AuthOutcome,
    pub reply: Option<ReplyCode>,
    /// The AUTH command.
    pub meta: EventMeta,
    /// The client line that carried the secret (or, for LOGIN without a password, the user).
    pub secret_meta: Option<EventMeta>,
    /// The client sent `*` (RFC 4954 §4).
    pub cancelled: bool,
    /// Client or server messages that were not valid base64 or not the expected structure.
    pub undecodable: u32,
    /// Client responses after the AUTH command (the initial response included).
    pub responses: u32,
    /// A client line of the exchange was cut by the capture (snap length, loss): the user
    /// name or secret it carried is partial or missing, not absent from the wire.
    pub cut: bool,
    /// The beginning of a user name whose end was not captured.
    pub username_partial: Option<String>,
    /// Known from the server's replies alone (a one-sided capture): no client line was seen.
    pub inferred: bool,
    /// Sent inside TLS and read from its decryption: no secret crossed in clear.
    pub inside_tls: bool,
    /// Last server challenge, base64 as sent (CRAM-MD5's hashcat form needs it verbatim).
    challenge_b64: Option<String>,
    /// NTLM server challenge from the Type 2 message.
    ntlm_challenge: Option<[u8; 8]>,
}

impl AuthExchange {
    pub fn start(mechanism: &[u8], initial: Option<&[u8]>, meta: EventMeta) -> Self {
        let mut ex = AuthExchange {
            mechanism: Mechanism::parse(mechanism),
            authzid: None,
            username: None,
            secret: None,
            hashcat: None,
            outcome: AuthOutcome::Unknown,
            reply: None,
            meta,
            secret_meta: None,
            cancelled: false,
            undecodable: 0,
            responses: 0,
            challenge_b64: None,
            ntlm_challenge: None,
            cut: false,
            username_partial: None,
            inferred: false,
            inside_tls: false,
        };
        if let Some(initial) = initial {
            // RFC 4954 §4: "=" is an empty initial response.
            let initial = if initial == b"=" { &b""[..] } else { initial };
            ex.client_line(initial, meta);
        }
        ex
    }

    /// An exchange seen only through the server's replies (`334` challenges, then `235` or
    /// `535`): the client's lines were not captured. The first challenge may name the
    /// mechanism (LOGIN asks `Username:`, CRAM-MD5 sends `<...>`); otherwise it is unknown.
    pub fn inferred(meta: EventMeta) -> Self {
        let mut ex = AuthExchange::start(b"unknown", None, meta);
        ex.mechanism = Mechanism::Other("unknown".to_string());
        ex.inferred = true;
        ex.secret_meta = Some(meta);
        ex
    }

    /// A client response line cut short by the capture: decoded as far as whole base64
    /// quanta go. PLAIN's user name (and LOGIN's) is kept as a prefix unless its end was
    /// captured; a partial password is still a secret.
    pub fn client_line_cut(&mut self, line: &[u8], meta: EventMeta) {
        self.cut = true;
        self.secret_meta.get_or_insert(meta);
        let line = line.trim_ascii();
        // A last partial quantum of 2 or 3 characters still holds whole bytes; one character
        // holds none.
        let most = line.len() - usize::from(line.len() % 4 == 1);
        let whole = line.len() - line.len() % 4;
        let decoded = B64_CUT
            .decode(line.get(..most).unwrap_or_default())
            .or_else(|_| B64.decode(line.get(..whole).unwrap_or_default()));
        let Ok(decoded) = decoded else {
            self.undecodable += 1;
            return;
        };
        self.responses += 1;
        match self.mechanism {
            Mechanism::Plain => {
                let mut parts = decoded.splitn(3, |b| *b == 0);
                let (authzid, authcid, passwd) = (parts.next(), parts.next(), parts.next());
                if let Some(z) = authzid.filter(|z| !z.is_empty()) {
                    self.authzid = Some(lossy(z, MAX_NAME));
                }
                match (authcid, passwd) {
                    (Some(user), Some(pw)) => {
                        self.username = Some(lossy(user, MAX_NAME));
                        if !pw.is_empty() {
                            self.secret = Some(Secret::new(pw.to_vec()));
                        }
                    }
                    (Some(user), None) if !user.is_empty() => {
                        self.username_partial = Some(lossy(user, MAX_NAME));
                    }
                    _ => {}
                }
            }
            Mechanism::Login if self.username.is_none() && !decoded.is_empty() => {
                self.username_partial = Some(lossy(&decoded, MAX_NAME));
            }
            _ => {}
        }
    }

    /// True while the mechanism still expects client data; used when the server's 334 was
    /// not captured (one-sided captures) to tell a response line from the next command.
    pub fn expects_response(&self) -> bool {
        if self.cancelled || self.reply.is_some() {
            return false;
        }
        match self.mechanism {
            Mechanism::Plain | Mechanism::XOauth2 | Mechanism::OauthBearer => self.responses == 0,
            Mechanism::Login => self.secret.is_none() && self.responses < 2,
            Mechanism::CramMd5 | Mechanism::DigestMd5 => self.responses == 0,
            Mechanism::Ntlm => self.secret.is_none() && self.responses < 2,
            Mechanism::Other(_) => false,
        }
    }

    /// A `334` continuation from the server (RFC 4954 §4).
    pub fn challenge(&mut self, text: &[u8]) {
        let text = text.trim_ascii();
        self.challenge_b64 = Some(lossy(text, 4096));
        if self.inferred && self.responses == 0 && matches!(self.mechanism, Mechanism::Other(_)) {
            if let Some(m) = B64
                .decode(text)
                .ok()
                .and_then(|c| mechanism_from_challenge(&c))
            {
                self.mechanism = m;
            }
        }
        if self.mechanism == Mechanism::Ntlm {
            match B64.decode(text) {
                Ok(msg) => {
                    if let Some(ch) = ntlm_server_challenge(&msg) {
                        self.ntlm_challenge = Some(ch);
                    }
                }
                // Exchange answers a bare "AUTH NTLM" with "334 NTLM supported".
                Err(_) if text.is_empty() || text.contains(&b' ') => {}
                Err(_) => self.undecodable += 1,
            }
        }
    }

    /// One client response line (the initial response included).
    pub fn client_line(&mut self, line: &[u8], meta: EventMeta) {
        let line = line.trim_ascii();
        if line == b"*" {
            self.cancelled = true;
            return;
        }
        self.responses += 1;
        let Ok(decoded) = B64.decode(line) else {
            self.undecodable += 1;
            return;
        };
        match self.mechanism {
            Mechanism::Plain => self.plain(&decoded, meta),
            Mechanism::Login => self.login(decoded, meta),
            Mechanism::CramMd5 => self.cram_md5(&decoded, line, meta),
            Mechanism::DigestMd5 => self.digest_md5(&decoded, meta),
            Mechanism::Ntlm => self.ntlm(&decoded, meta),
            Mechanism::XOauth2 => self.xoauth2(&decoded, meta),
            Mechanism::OauthBearer => self.oauthbearer(&decoded, meta),
            Mechanism::Other(_) => {}
        }
    }

    /// The final reply: 235 success; 4xx/5xx (535, or 501 after a cancel) failure.
    pub fn finish(&mut self, code: ReplyCode) {
        self.reply = Some(code);
        self.outcome = if self.cancelled {
            AuthOutcome::Failure
        } else if code == ReplyCode::AUTH_SUCCEEDED {
            AuthOutcome::Success
        } else if code.is_negative() {
            AuthOutcome::Failure
        } else {
            AuthOutcome::Unknown
        };
    }

    /// RFC 4616 §2: `[authzid] NUL authcid NUL passwd`.
    fn plain(&mut self, msg: &[u8], meta: EventMeta) {
        if msg.is_empty() && self.responses == 1 && self.secret.is_none() {
            // An empty initial response asks for a 334 and the real response after it.
            self.responses = 0;
            return;
        }
        let mut parts = msg.splitn(3, |b| *b == 0);
        let (Some(authzid), Some(authcid), Some(passwd)) =
            (parts.next(), parts.next(), parts.next())
        else {
            self.undecodable += 1;
            return;
        };
        if !authzid.is_empty() {
            self.authzid = Some(lossy(authzid, MAX_NAME));
        }
        self.username = Some(lossy(authcid, MAX_NAME));
        self.secret = Some(Secret::new(passwd.to_vec()));
        self.secret_meta = Some(meta);
    }

    fn login(&mut self, msg: Vec<u8>, meta: EventMeta) {
        if self.username.is_none() {
            self.username = Some(lossy(&msg, MAX_NAME));
            self.secret_meta = Some(meta);
        } else if self.secret.is_none() {
            self.secret = Some(Secret::new(msg));
            self.secret_meta = Some(meta);
        }
    }

    /// RFC 2195 §2: the response is `user SP hex-digest`.
    fn cram_md5(&mut self, msg: &[u8], line: &[u8], meta: EventMeta) {
        let Some(sp) = msg.iter().rposition(|b| *b == b' ') else {
            self.undecodable += 1;
            return;
        };
        let (user, digest) = msg.split_at(sp);
        let digest = digest.get(1..).unwrap_or_default();
        self.username = Some(lossy(user, MAX_NAME));
        self.secret = Some(Secret::new(digest.to_vec()));
        self.secret_meta = Some(meta);
        if let Some(ch) = &self.challenge_b64 {
            let form = format!("$cram_md5${ch}${}", String::from_utf8_lossy(line));
            self.hashcat = Some(Secret::new(form.into_bytes()));
        }
    }

    /// RFC 2831 §2.1.2: `username="..."` and `response=<32 hex>` among the directives.
    fn digest_md5(&mut self, msg: &[u8], meta: EventMeta) {
        if let Some(user) = directive(msg, b"username") {
            self.username = Some(lossy(user, MAX_NAME));
        }
        if let Some(resp) = directive(msg, b"response") {
            self.secret = Some(Secret::new(resp.to_vec()));
            self.secret_meta = Some(meta);
        }
    }

    fn ntlm(&mut self, msg: &[u8], meta: EventMeta) {
        match ntlm_message_type(msg) {
            Some(1) => {}
            Some(3) => match NtlmAuthenticate::parse(msg) {
                Some(auth) => self.ntlm_authenticate(auth, meta),
                None => self.undecodable += 1,
            },
            _ => self.undecodable += 1,
        }
    }

    fn ntlm_authenticate(&mut self, auth: NtlmAuthenticate<'_>, meta: EventMeta) {
        let user = auth.text(auth.user);
        let domain = auth.text(auth.domain);
        self.username = Some(if domain.is_empty() {
            user.clone()
        } else {
            format!("{domain}\\{user}")
        });
        // An anonymous AUTHENTICATE carries no response and so no secret.
        if auth.nt.is_empty() {
            return;
        }
        self.secret = Some(Secret::new(hex::encode(auth.nt).into_bytes()));
        self.secret_meta = Some(meta);
        let Some(challenge) = self.ntlm_challenge else {
            return;
        };
        let challenge = hex::encode(challenge);
        // MS-NLMP §3.3.1: a 24-byte NT response is NTLMv1; NTLMv2 is NTProofStr (16) + blob.
        let form = if auth.nt.len() == 24 {
            format!(
                "{user}::{domain}:{}:{}:{challenge}",
                hex::encode(auth.lm),
                hex::encode(auth.nt)
            )
        } else if let (Some(proof), Some(blob)) = (auth.nt.get(..16), auth.nt.get(16..)) {
            format!(
                "{user}::{domain}:{challenge}:{}:{}",
                hex::encode(proof),
                hex::encode(blob)
            )
        } else {
            return;
        };
        self.hashcat = Some(Secret::new(form.into_bytes()));
    }

    /// `user=<u> ^A auth=Bearer <token> ^A ^A`.
    fn xoauth2(&mut self, msg: &[u8], meta: EventMeta) {
        if msg.is_empty() {
            // The client's empty reply to the server's JSON error challenge.
            return;
        }
        let mut found = false;
        for field in msg.split(|b| *b == 0x01) {
            if let Some(user) = field.strip_prefix(b"user=") {
                self.username = Some(lossy(user, MAX_NAME));
                found = true;
            } else if let Some(token) = bearer(field) {
                self.secret = Some(Secret::new(token.to_vec()));
                self.secret_meta = Some(meta);
                found = true;
            }
        }
        if !found {
            self.undecodable += 1;
        }
    }

    /// RFC 7628 §3.1: GS2 header `n,a=<user>,` then `^A`-separated key=value pairs.
    fn oauthbearer(&mut self, msg: &[u8], meta: EventMeta) {
        if msg.is_empty() || msg == b"\x01" {
            return;
        }
        let mut fields = msg.split(|b| *b == 0x01);
        let header = fields.next().unwrap_or_default();
        let mut gs2 = header.split(|b| *b == b',');
        let _flag = gs2.next();
        match gs2.next().and_then(|a| a.strip_prefix(b"a=")) {
            Some(user) => self.username = Some(saslname(user)),
            None if header.is_empty() => {}
            None => {}
        }
        let mut found = false;
        for field in fields {
            if let Some(token) = bearer(field) {
                self.secret = Some(Secret::new(token.to_vec()));
                self.secret_meta = Some(meta);
                found = true;
            }
        }
        if !found {
            self.undecodable += 1;
        }
    }

    /// The contract view; the secret and hashcat form are shown only when `reveal`.
    pub fn record(&self, reveal: bool) -> AuthRecord {
        AuthRecord {
            mechanism: self.mechanism.name().to_string(),
            username: self.username.clone(),
            in_cleartext: !self.inside_tls,
            outcome: self.outcome,
            reply: self.reply.map(|c| c.0),
            frame: self.meta.frame,
            frame_capture: None,
            ts: self.meta.ts,
            authzid: self.authzid.clone(),
            secret: self.secret.as_ref().map(|s| s.record(reveal)),
            secret_tag: self.secret.as_ref().map(Secret::tag),
            hashcat: if reveal {
                self.hashcat.as_ref().map(Secret::expose)
            } else {
                None
            },
            secret_frame: self.secret_meta.map(|m| m.frame),
            secret_frame_capture: None,
            cancelled: self.cancelled,
            undecodable: self.undecodable,
            cut: self.cut,
            username_partial: self.username_partial.clone(),
            inferred: self.inferred,
        }
    }
}

/// The mechanism a first server challenge gives away when the AUTH command itself was not
/// captured: LOGIN prompts `Username:`, CRAM-MD5 sends a `<msg-id>` (RFC 2195 §2),
/// DIGEST-MD5 a `nonce=` directive (RFC 2831 §2.1.1), NTLM a Type 2 message.
fn mechanism_from_challenge(c: &[u8]) -> Option<Mechanism> {
    if c.eq_ignore_ascii_case(b"Username:") {
        Some(Mechanism::Login)
    } else if c.starts_with(b"<") && c.ends_with(b">") && c.contains(&b'@') {
        Some(Mechanism::CramMd5)
    } else if c.windows(6).any(|w| w == b"nonce=") {
        Some(Mechanism::DigestMd5)
    } else if ntlm_message_type(c) == Some(2) {
        Some(Mechanism::Ntlm)
    } else {
        None
    }
}

/// `auth=Bearer <token>` (RFC 6750 §2.1 scheme name is case-insensitive).
fn bearer(field: &[u8]) -> Option<&[u8]> {
    let value = field.strip_prefix(b"auth=")?;
    let scheme = value.get(..7)?;
    if !scheme.eq_ignore_ascii_case(b"Bearer ") {
        return None;
    }
    value.get(7..).map(<[u8]>::trim_ascii)
}

/// RFC 5801 §4 saslname: `=2C` is a comma, `=3D` an equals sign.
fn saslname(raw: &[u8]) -> String {
    lossy(raw, MAX_NAME).replace("=2C", ",").replace("=3D", "=")
}

/// Value of `key=value` or `key="value"` in a DIGEST-MD5 directive list.
fn directive<'a>(msg: &'a [u8], key: &[u8]) -> Option<&'a [u8]> {
    let mut rest = msg;
    loop {
        rest = rest.trim_ascii_start();
        let eq = rest.iter().position(|b| *b == b'=')?;
        let (name, after) = rest.split_at(eq);
        let after = after.get(1..)?;
        let (value, next) = if let Some(quoted) = after.strip_prefix(b"\"") {
            let end = quoted.iter().position(|b| *b == b'"')?;
            (quoted.get(..end)?, quoted.get(end + 1..)?)
        } else {
            let end = after.iter().position(|b| *b == b',').unwrap_or(after.len());
            (after.get(..end)?, after.get(end..)?)
        };
        if name.trim_ascii().eq_ignore_ascii_case(key) {
            return Some(value);
        }
        let comma = next.iter().position(|b| *b == b',')?;
        rest = next.get(comma + 1..)?;
    }
}

const NTLM_SIGNATURE: &[u8] = b"NTLMSSP\0";

fn le_u16(b: &[u8], at: usize) -> Option<u16> {
    Some(u16::from_le_bytes([*b.get(at)?, *b.get(at + 1)?]))
}

fn le_u32(b: &[u8], at: usize) -> Option<u32> {
    let s = b.get(at..at + 4)?;
    Some(u32::from_le_bytes([
        *s.first()?,
        *s.get(1)?,
        *s.get(2)?,
        *s.get(3)?,
    ]))
}

/// MS-NLMP §2.2.1: signature then a 32-bit message type.
fn ntlm_message_type(msg: &[u8]) -> Option<u32> {
    if !msg.starts_with(NTLM_SIGNATURE) {
        return None;
    }
    le_u32(msg, 8)
}

/// MS-NLMP §2.2.1.2: the 8-byte ServerChallenge at offset 24 of a CHALLENGE_MESSAGE.
fn ntlm_server_challenge(msg: &[u8]) -> Option<[u8; 8]> {
    if ntlm_message_type(msg)? != 2 {
        return None;
    }
    msg.get(24..32)?.try_into().ok()
}

/// The fields of an AUTHENTICATE_MESSAGE (MS-NLMP §2.2.1.3) smtpaudit reports.
struct NtlmAuthenticate<'a> {
    lm: &'a [u8],
    nt: &'a [u8],
    domain: &'a [u8],
    user: &'a [u8],
    unicode: bool,
}

impl<'a> NtlmAuthenticate<'a> {
    fn parse(msg: &'a [u8]) -> Option<Self> {
        if ntlm_message_type(msg)? != 3 {
            return None;
        }
        // Each field is Len (u16), MaxLen (u16), BufferOffset (u32); every one is checked
        // against the message before it is read.
        let field = |at: usize| -> Option<&'a [u8]> {
            let len = usize::from(le_u16(msg, at)?);
            let off = usize::try_from(le_u32(msg, at + 4)?).ok()?;
            msg.get(off..off.checked_add(len)?)
        };
        let flags = le_u32(msg, 60).unwrap_or(0);
        Some(NtlmAuthenticate {
            lm: field(12)?,
            nt: field(20)?,
            domain: field(28)?,
            user: field(36)?,
            // NTLMSSP_NEGOTIATE_UNICODE (MS-NLMP §2.2.2.5 flag A).
            unicode: flags & 0x0000_0001 != 0,
        })
    }

    fn text(&self, raw: &[u8]) -> String {
        if self.unicode {
            let units: Vec<u16> = raw
                .chunks_exact(2)
                .map(|c| {
                    u16::from_le_bytes([
                        c.first().copied().unwrap_or(0),
                        c.get(1).copied().unwrap_or(0),
                    ])
                })
                .collect();
            let mut s = String::from_utf16_lossy(&units);
            s.truncate(MAX_NAME);
            s
        } else {
            lossy(raw, MAX_NAME)
        }
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used, clippy::expect_used)]
mod tests {
    use super::*;

    fn meta(frame: u64) -> EventMeta {
        EventMeta {
            frame,
            ..EventMeta::default()
        }
    }

    fn b64(s: &[u8]) -> String {
        base64::engine::general_purpose::STANDARD.encode(s)
    }

    #[test]
    fn plain_initial_response_rfc4616() {
        // RFC 4616 §4 example: authzid "Ursel", authcid "Kurt", password "xipj3plmq".
        let ir = b64(b"Ursel\0Kurt\0xipj3plmq");
        let mut ex = AuthExchange::start(b"plain", Some(ir.as_bytes()), meta(4));
        ex.finish(ReplyCode(235));
        assert_eq!(ex.mechanism, Mechanism::Plain);
        assert_eq!(ex.authzid.as_deref(), Some("Ursel"));
        assert_eq!(ex.username.as_deref(), Some("Kurt"));
        assert_eq!(
            ex.secret.as_ref().map(Secret::expose).as_deref(),
            Some("xipj3plmq")
        );
        assert_eq!(ex.secret_meta.map(|m| m.frame), Some(4));
        assert_eq!(ex.outcome, AuthOutcome::Success);
        assert!(!ex.expects_response());
    }

    #[test]
    fn plain_two_steps() {
        let mut ex = AuthExchange::start(b"PLAIN", None, meta(1));
        assert!(ex.expects_response());
        ex.challenge(b"");
        ex.client_line(b"AHRlc3QAMTIzNA==", meta(3)); // "\0test\01234"
        ex.finish(ReplyCode(535));
        assert_eq!(ex.authzid, None);
        assert_eq!(ex.username.as_deref(), Some("test"));
        assert_eq!(ex.secret.as_ref().map(Secret::len), Some(4));
        assert_eq!(ex.outcome, AuthOutcome::Failure);
    }

    #[test]
    fn plain_empty_initial_then_response() {
        let mut ex = AuthExchange::start(b"PLAIN", Some(b"="), meta(1));
        assert!(ex.expects_response());
        ex.client_line(b"AHUAcA==", meta(2));
        assert_eq!(ex.username.as_deref(), Some("u"));
    }

    #[test]
    fn login_with_and_without_initial() {
        let mut ex = AuthExchange::start(b"LOGIN", None, meta(1));
        ex.challenge(b"VXNlcm5hbWU6");
        ex.client_line(b"Z3VycGFydGFwQHBhdHJpb3RzLmlu", meta(5));
        assert!(ex.expects_response());
        ex.challenge(b"UGFzc3dvcmQ6");
        ex.client_line(b"cHVuamFiQDEyMw==", meta(7));
        ex.finish(ReplyCode(235));
        assert_eq!(ex.username.as_deref(), Some("gurpartap@patriots.in"));
        assert_eq!(
            ex.secret.as_ref().map(Secret::expose).as_deref(),
            Some("punjab@123")
        );
        assert_eq!(ex.secret_meta.map(|m| m.frame), Some(7));

        let mut ex = AuthExchange::start(b"LOGIN", Some(b"YWxpY2U="), meta(1));
        ex.client_line(b"c2VjcmV0", meta(2));
        assert_eq!(ex.username.as_deref(), Some("alice"));
        assert_eq!(
            ex.secret.as_ref().map(Secret::expose).as_deref(),
            Some("secret")
        );
    }

    #[test]
    fn cram_md5_rfc2195() {
        let mut ex = AuthExchange::start(b"CRAM-MD5", None, meta(1));
        ex.challenge(b"PDE4OTYuNjk3MTcwOTUyQHBvc3RvZmZpY2UucmVzdG9uLm1jaS5uZXQ+");
        ex.client_line(b"dGltIGI5MTNhNjAyYzdlZGE3YTQ5NWI0ZTZlNzMzNGQzODkw", meta(3));
        ex.finish(ReplyCode(235));
        assert_eq!(ex.username.as_deref(), Some("tim"));
        assert_eq!(
            ex.secret.as_ref().map(Secret::expose).as_deref(),
            Some("b913a602c7eda7a495b4e6e7334d3890")
        );
        assert_eq!(
            ex.hashcat.as_ref().map(Secret::expose).as_deref(),
            Some(
                "$cram_md5$PDE4OTYuNjk3MTcwOTUyQHBvc3RvZmZpY2UucmVzdG9uLm1jaS5uZXQ+\
                 $dGltIGI5MTNhNjAyYzdlZGE3YTQ5NWI0ZTZlNzMzNGQzODkw"
            )
        );
    }

    #[test]
    fn digest_md5_rfc2831() {
        let mut ex = AuthExchange::start(b"DIGEST-MD5", None, meta(1));
        ex.challenge(b"cmVhbG09ImVsd29vZC5pbm5vc29mdC5jb20iLG5vbmNlPSJPQTZNRzl0RVFHbTJoaCIscW9wPSJhdXRoIixhbGdvcml0aG09bWQ1LXNlc3MsY2hhcnNldD11dGYtOA==");
        let resp = b64(b"charset=utf-8,username=\"chris\",realm=\"elwood.innosoft.com\",nonce=\"OA6MG9tEQGm2hh\",nc=00000001,cnonce=\"OA6MHXh6VqTrRk\",digest-uri=\"imap/elwood.innosoft.com\",response=d388dad90d4bbd760a152321f2143af7,qop=auth");
        ex.client_line(resp.as_bytes(), meta(3));
        assert_eq!(ex.username.as_deref(), Some("chris"));
        assert_eq!(
            ex.secret.as_ref().map(Secret::expose).as_deref(),
            Some("d388dad90d4bbd760a152321f2143af7")
        );
    }

    #[test]
    fn ntlm_v1_from_corpus_exchange() {
        // arkime/ntlm_synthetic.pcap, the SMTP flow.
        let mut ex = AuthExchange::start(b"NTLM", None, meta(1));
        ex.challenge(b"");
        ex.client_line(
            b"TlRMTVNTUAABAAAABwIAAgcABwAoAAAACAAIAC8AAAAKAGFKAAAAD1NNVFBET01TTVRQSE9TVA==",
            meta(3),
        );
        assert!(ex.expects_response());
        ex.challenge(b"TlRMTVNTUAACAAAADgAOADgAAAAFAgACASNFZ4mrze8AAAAAAAAAAAQABABGAAAACgBhSgAAAA9TAE0AVABQAFQARwBUAAAAAAA=");
        ex.client_line(b"TlRMTVNTUAADAAAAGAAYAFgAAAAYABgAcAAAAA4ADgCIAAAACAAIAJYAAAAQABAAngAAABAAEACuAAAABQIAAgoAYUoAAAAPAAAAAAAAAAAAAAAAAAAAAExMTExMTExMTExMTExMTExMTExMTExMTE5OTk5OTk5OTk5OTk5OTk5OTk5OTk5OTlMATQBUAFAARABPAE0AagBhAGMAawBTAE0AVABQAEgATwBTAFQAS0tLS0tLS0tLS0tLS0tLSw==", meta(5));
        ex.finish(ReplyCode(235));
        assert_eq!(ex.username.as_deref(), Some("SMTPDOM\\jack"));
        assert_eq!(ex.undecodable, 0);
        let l = hex::encode([b'L'; 24]);
        let n = hex::encode([b'N'; 24]);
        assert_eq!(
            ex.hashcat.as_ref().map(Secret::expose),
            Some(format!("jack::SMTPDOM:{l}:{n}:0123456789abcdef"))
        );
        assert_eq!(ex.secret_meta.map(|m| m.frame), Some(5));
    }

    fn ntlm_type3(nt: &[u8], user: &[u8], domain: &[u8], unicode: bool) -> Vec<u8> {
        let mut m = Vec::new();
        m.extend_from_slice(NTLM_SIGNATURE);
        m.extend_from_slice(&3u32.to_le_bytes());
        let payload_at = 64u32;
        let lm = [0u8; 24];
        let bufs: [&[u8]; 6] = [&lm, nt, domain, user, b"", b""];
        let mut off = payload_at;
        for b in bufs {
            m.extend_from_slice(&(b.len() as u16).to_le_bytes());
            m.extend_from_slice(&(b.len() as u16).to_le_bytes());
            m.extend_from_slice(&off.to_le_bytes());
            off += b.len() as u32;
        }
        m.extend_from_slice(&(if unicode { 1u32 } else { 0 }).to_le_bytes());
        for b in bufs {
            m.extend_from_slice(b);
        }
        m
    }

    #[test]
    fn ntlm_v2_hashcat_5600() {
        let mut ex = AuthExchange::start(b"NTLM", None, meta(1));
        let mut t2 = Vec::from(NTLM_SIGNATURE);
        t2.extend_from_slice(&2u32.to_le_bytes());
        t2.extend_from_slice(&[0; 12]);
        t2.extend_from_slice(&[0x11, 0x22, 0x33, 0x44, 0x55, 0x66, 0x77, 0x88]);
        ex.challenge(b64(&t2).as_bytes());
        let nt: Vec<u8> = (0u8..40).collect();
        let t3 = ntlm_type3(&nt, b"bob", b"CORP", false);
        ex.client_line(b64(&t3).as_bytes(), meta(2));
        assert_eq!(ex.username.as_deref(), Some("CORP\\bob"));
        let proof = hex::encode(&nt[..16]);
        let blob = hex::encode(&nt[16..]);
        assert_eq!(
            ex.hashcat.as_ref().map(Secret::expose),
            Some(format!("bob::CORP:1122334455667788:{proof}:{blob}"))
        );
    }

    #[test]
    fn ntlm_bad_offsets_do_not_panic() {
        let mut t3 = ntlm_type3(&[1; 24], b"u", b"d", false);
        // Point the user field far past the end.
        t3[40..44].copy_from_slice(&0xFFFF_FFF0u32.to_le_bytes());
        let mut ex = AuthExchange::start(b"NTLM", None, meta(1));
        ex.client_line(b64(&t3).as_bytes(), meta(2));
        assert_eq!(ex.username, None);
        assert_eq!(ex.undecodable, 1);
        ex.client_line(b64(b"NTLMSSP\0\x03").as_bytes(), meta(3));
        assert_eq!(ex.undecodable, 2);
    }

    #[test]
    fn xoauth2_and_oauthbearer() {
        let ir = b64(b"user=someuser@example.com\x01auth=Bearer ya29.vF9dft4qmTc2Nvb3RlckBhdHRhdmlzdGEuY29tCg\x01\x01");
        let mut ex = AuthExchange::start(b"XOAUTH2", Some(ir.as_bytes()), meta(2));
        ex.finish(ReplyCode(235));
        assert_eq!(ex.username.as_deref(), Some("someuser@example.com"));
        assert_eq!(
            ex.secret.as_ref().map(Secret::expose).as_deref(),
            Some("ya29.vF9dft4qmTc2Nvb3RlckBhdHRhdmlzdGEuY29tCg")
        );

        // RFC 7628 §4.1.
        let ir = b64(b"n,a=user@example.com,\x01host=server.example.com\x01port=143\x01auth=Bearer vF9dft4qmTc2Nvb3RlckBhbHRhdmlzdGEuY29tCg==\x01\x01");
        let mut ex = AuthExchange::start(b"OAUTHBEARER", Some(ir.as_bytes()), meta(2));
        ex.finish(ReplyCode(235));
        assert_eq!(ex.username.as_deref(), Some("user@example.com"));
        assert_eq!(
            ex.secret.as_ref().map(Secret::expose).as_deref(),
            Some("vF9dft4qmTc2Nvb3RlckBhbHRhdmlzdGEuY29tCg==")
        );
        assert_eq!(saslname(b"a=3Db=2Cc"), "a=b,c");
    }

    #[test]
    fn cancel_and_garbage() {
        let mut ex = AuthExchange::start(b"LOGIN", None, meta(1));
        ex.client_line(b"*", meta(2));
        ex.finish(ReplyCode(501));
        assert!(ex.cancelled);
        assert_eq!(ex.outcome, AuthOutcome::Failure);
        assert_eq!(ex.secret, None);

        let mut ex = AuthExchange::start(b"PLAIN", Some(b"!!!not base64!!!"), meta(1));
        assert_eq!(ex.undecodable, 1);
        assert_eq!(ex.secret, None);
        ex.finish(ReplyCode(250));
        assert_eq!(ex.outcome, AuthOutcome::Unknown);
    }

    #[test]
    fn other_mechanism_kept_by_name() {
        let ex = AuthExchange::start(b"gssapi", Some(b"YWJj"), meta(1));
        assert_eq!(ex.mechanism.name(), "GSSAPI");
        assert_eq!(ex.secret, None);
        assert!(!ex.expects_response());
    }

    #[test]
    fn secret_debug_and_record_are_redacted() {
        let s = Secret::new(b"hunter2".to_vec());
        assert_eq!(format!("{s:?}"), "Secret(redacted, 7 bytes)");
        assert_eq!(
            s.record(false),
            SecretRecord::Redacted {
                redacted: true,
                length: 7
            }
        );
        let ir = b64(b"\0alice\0hunter2");
        let ex = AuthExchange::start(b"PLAIN", Some(ir.as_bytes()), meta(1));
        assert!(!format!("{ex:?}").contains("hunter2"));
        let rec = ex.record(false);
        assert!(!serde_json::to_string(&rec).unwrap().contains("hunter2"));
        let rec = ex.record(true);
        assert!(serde_json::to_string(&rec).unwrap().contains("hunter2"));
    }
}
