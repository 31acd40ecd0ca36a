//! The SMTP dialog of one connection as a state machine over both directions.
//!
//! Invariants:
//! - Bytes of each direction are consumed exactly once, in order, whatever the chunking: a
//!   dialog fed byte by byte yields the same record as fed in one piece.
//! - Replies are matched to commands through a FIFO of outstanding commands (RFC 2920 §3:
//!   replies come in command order), so pipelined STARTTLS, AUTH, MAIL, RCPT and DATA each
//!   get their own reply.
//! - Nothing grows with the input: lines are capped ([`MAX_LINE`]), message bodies are
//!   scanned and dropped, and every kept list has a cap whose overflow is counted.

use std::collections::VecDeque;

use crate::flow::{Direction, EventMeta};
use crate::report::model::{AuthOutcome, SmtpStats, TransactionRecord};

use super::Feed;
use super::auth::AuthExchange;
use super::body::{DotScanner, Stop};
#[cfg(doc)]
use super::line::MAX_LINE;
use super::line::{Line, LineReader};
use super::parser::{
    self, Capability, ReplyCode, ReplyLine, Verb, auth_mechanisms, capability, command,
    looks_mangled_starttls, lossy,
};
use super::smuggle::{Fork, Shadow, SmuggleFact};

/// Commands sent and not yet answered, at most; beyond it the oldest is forgotten and
/// counted in `dropped_records` (a client pipelining 256 commands unanswered is not SMTP).
const MAX_PENDING: usize = 256;
/// EHLO capability lines kept per list.
const MAX_CAPABILITIES: usize = 64;
/// Room made for capabilities at the first one (most EHLO replies fit).
const CAPABILITIES_HINT: usize = 12;
/// Longest capability, banner or reply text kept.
const MAX_TEXT: usize = 512;
/// AUTH exchanges kept.
const MAX_AUTH: usize = 32;
/// Transactions kept in detail.
pub(super) const MAX_TRANSACTIONS: usize = 64;
/// Reply codes kept in order.
const MAX_REPLY_CODES: usize = 64;
/// AUTH mechanisms kept from the capability.
const MAX_MECHANISMS: usize = 16;

/// A command waiting for its reply.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(super) enum Pending {
    /// The server's greeting answers the connection itself (RFC 5321 §3.1).
    Greeting,
    Hello {
        ehlo: bool,
    },
    StartTls,
    /// Index into the kept AUTH exchanges (None beyond the cap).
    Auth(Option<usize>),
    Mail(Option<usize>),
    Rcpt(Option<usize>),
    Data(Option<usize>),
    /// The end-of-data line gets its own reply (RFC 5321 §4.1.1.4).
    DataEnd(Option<usize>),
    Bdat {
        txn: Option<usize>,
        last: bool,
    },
    Quit,
    Other,
}

impl Pending {
    /// The same command, for transaction `txn`.
    pub(super) fn with_txn(self, txn: Option<usize>) -> Self {
        match self {
            Pending::Mail(_) => Pending::Mail(txn),
            Pending::Rcpt(_) => Pending::Rcpt(txn),
            Pending::Data(_) => Pending::Data(txn),
            Pending::DataEnd(_) => Pending::DataEnd(txn),
            p => p,
        }
    }
}

/// What the client's bytes are at the current position.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(super) enum ClientMode {
    /// Command lines (and AUTH responses).
    Commands,
    /// DATA was sent and its 354 not yet seen: known verbs are still commands, anything
    /// else means the client went on with the body without waiting.
    AwaitBody(Option<usize>),
    /// Inside a DATA body.
    Body {
        scan: DotScanner,
        txn: Option<usize>,
    },
    /// Inside a BDAT chunk (RFC 3030 §2: exactly `remaining` more bytes).
    Bdat { remaining: u64, txn: Option<usize> },
    /// After STARTTLS the client's bytes are TLS.
    Tls,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum ServerMode {
    Replies,
    Tls,
}

/// Where STARTTLS stands.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(super) enum TlsPhase {
    NotIssued,
    /// STARTTLS sent, reply outstanding.
    Requested,
    /// 2xx: both sides should switch to TLS now (RFC 3207 §4.2).
    Accepted,
    Refused,
}

/// The reply being read (the lines of a multi-line reply).
#[derive(Clone, Copy, Debug)]
struct ReplyInProgress {
    code: ReplyCode,
    head: Option<Pending>,
    /// Capabilities of this EHLO reply go to the post-STARTTLS list.
    after_starttls: bool,
}

/// Everything the findings and the record are built from.
#[derive(Debug)]
pub(super) struct Facts {
    pub banner: Option<String>,
    pub banner_host: Option<String>,
    pub helo: Option<String>,
    pub capabilities: Vec<String>,
    pub capabilities_after_starttls: Vec<String>,
    pub auth_offered: Vec<String>,
    /// The EHLO reply line that offered AUTH before TLS.
    pub auth_offered_meta: Option<EventMeta>,
    pub starttls_offered: bool,
    pub starttls_phase: TlsPhase,
    pub starttls_meta: Option<EventMeta>,
    pub starttls_reply: Option<(ReplyCode, String, EventMeta)>,
    /// Reply to a STARTTLS that had been offered was "command not recognised".
    pub starttls_unrecognised: bool,
    /// The client began a TLS handshake although STARTTLS had been refused (OpenSSL's
    /// `s_client -starttls smtp` goes on whatever the reply): a TLS attempt the server was
    /// not ready for.
    pub tls_after_refusal: Option<EventMeta>,
    /// A capability that looks like STARTTLS overwritten.
    pub mangled: Option<(String, EventMeta)>,
    pub client_tls: bool,
    pub server_tls: bool,
    pub client_injected: u64,
    pub client_injected_meta: Option<EventMeta>,
    pub server_injected: u64,
    pub server_injected_meta: Option<EventMeta>,
    /// The first known command the client sent in plaintext after STARTTLS was accepted,
    /// instead of a TLS handshake.
    pub plaintext_after_accept: Option<EventMeta>,
    /// Known commands sent in plaintext after the accepted STARTTLS.
    pub plaintext_commands_after_accept: u32,
    /// The server's first plaintext reply to one of those commands.
    pub plaintext_reply_after_accept: Option<EventMeta>,
    /// First AUTH or MAIL sent in cleartext after STARTTLS had been offered and not issued.
    pub cleartext_after_offer: Option<(&'static str, EventMeta)>,
    pub first_message: Option<EventMeta>,
    pub auths: Vec<AuthExchange>,
    pub transactions: u32,
    pub recipients: u32,
    pub messages: u32,
    pub txns: Vec<TransactionRecord>,
    pub stats: SmtpStats,
    pub server_spoke: bool,
    pub client_spoke: bool,
    /// Non-standard end-of-data sequences in message bodies.
    pub smuggling: Vec<SmuggleFact>,
    /// The server answered 2xx/3xx to a command line or message that held a bare LF.
    pub bare_lf_accepted: bool,
    /// It answered 4xx/5xx to one.
    pub bare_lf_refused: bool,
}

/// One SMTP connection's dialog state.
#[derive(Debug)]
pub struct SmtpSession {
    pub(super) client: LineReader,
    server: LineReader,
    pub(super) client_mode: ClientMode,
    server_mode: ServerMode,
    pub(super) pending: VecDeque<Pending>,
    reply: Option<ReplyInProgress>,
    /// The AUTH exchange still waiting for its final reply.
    auth_active: Option<usize>,
    /// A 334 came: the next client line is an AUTH response, not a command.
    auth_awaiting_client: bool,
    /// A transaction's BDAT chunks have started (its message is counted once).
    bdat_open: bool,
    /// The next body byte starts a message (noted for `cleartext_mail`).
    body_start: bool,
    /// The transaction the last MAIL opened, until RSET or the end of its message.
    pub(super) open_txn: Option<usize>,
    /// A non-standard end-of-data whose reading the server's replies have not decided.
    pub(super) fork: Option<Box<Fork>>,
    /// The current BDAT transaction's chunks, scanned for the same sequences.
    pub(super) bdat_scan: DotScanner,
    /// What follows a sequence in the current BDAT transaction.
    pub(super) bdat_shadow: Option<Box<Shadow>>,
    /// The next command pushed held a bare LF (or the message body did).
    bare_lf_mark: bool,
    /// Ordinal of the reply that answers the first such command not yet answered.
    bare_lf_watch: Option<u64>,
    /// The client sent bytes after STARTTLS was accepted (its handshake or plaintext): from
    /// then on server bytes answer the client rather than being slipped in ahead of it.
    client_after_accept: bool,
    /// Any byte (or gap) of the client's direction was seen. Until then a reply that answers
    /// no command comes from a capture without the client's side, and what the reply alone
    /// proves it answers is inferred (`infer_command`).
    client_seen: bool,
    /// The end of a DATA body may have been lost in a gap: the server's next reply then
    /// answers the end of data.
    body_gapped: bool,
    /// The bytes fed now are decrypted TLS application data (`feed_inside_tls`): nothing
    /// said from here on crossed the wire in clear.
    in_tls: bool,
    /// What another connection's findings may need, as it was on the wire (see [`Signal`]).
    signals: Vec<Signal>,
    pub(super) facts: Facts,
}

/// A fact of this dialog that findings across connections need at the moment it crossed the
/// wire, not when the connection ends (the connection may stay open long after).
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Signal {
    /// An EHLO reply listed STARTTLS (the reply line's frame).
    StarttlsOffered(EventMeta),
    /// STARTTLS was answered 4xx/5xx (the reply's frame).
    StarttlsRefused(EventMeta),
    /// An AUTH exchange failed: its user name and the AUTH command's frame.
    AuthFailed { username: String, meta: EventMeta },
}

impl Default for SmtpSession {
    fn default() -> Self {
        Self::new()
    }
}

/// A TLS record (or SSLv2 hello) starts here. The first byte alone decides: SMTP lines never
/// start with a control byte 20..=24 (TLS content types) or with a byte above 0x7f (SSLv2
/// headers), and every TLS record or SSLv2 hello starts with one. Looking further (as
/// `looks_like_tls` does) would make the answer depend on how many bytes this chunk happens
/// to hold: `fa 8a 0e` fed at once would be SMTP, fed one byte at a time TLS. Bytes that
/// start like TLS but are not well-formed become the TLS session's framing anomaly.
fn starts_tls(data: &[u8]) -> bool {
    data.first()
        .is_some_and(|b| (20..=24).contains(b) || *b >= 0x80)
}

impl SmtpSession {
    /// A session before any byte: the server's greeting is the first reply expected.
    pub fn new() -> Self {
        let mut pending = VecDeque::new();
        pending.push_back(Pending::Greeting);
        SmtpSession {
            client: LineReader::default(),
            server: LineReader::default(),
            client_mode: ClientMode::Commands,
            server_mode: ServerMode::Replies,
            pending,
            reply: None,
            auth_active: None,
            auth_awaiting_client: false,
            bdat_open: false,
            body_start: false,
            open_txn: None,
            fork: None,
            bdat_scan: DotScanner::default(),
            bdat_shadow: None,
            bare_lf_mark: false,
            bare_lf_watch: None,
            client_after_accept: false,
            client_seen: false,
            body_gapped: false,
            in_tls: false,
            signals: Vec::new(),
            facts: Facts {
                banner: None,
                banner_host: None,
                helo: None,
                capabilities: Vec::new(),
                capabilities_after_starttls: Vec::new(),
                auth_offered: Vec::new(),
                auth_offered_meta: None,
                starttls_offered: false,
                starttls_phase: TlsPhase::NotIssued,
                starttls_meta: None,
                starttls_reply: None,
                starttls_unrecognised: false,
                tls_after_refusal: None,
                mangled: None,
                client_tls: false,
                server_tls: false,
                client_injected: 0,
                client_injected_meta: None,
                server_injected: 0,
                server_injected_meta: None,
                plaintext_after_accept: None,
                plaintext_commands_after_accept: 0,
                plaintext_reply_after_accept: None,
                cleartext_after_offer: None,
                first_message: None,
                auths: Vec::new(),
                transactions: 0,
                recipients: 0,
                messages: 0,
                txns: Vec::new(),
                stats: SmtpStats::default(),
                server_spoke: false,
                client_spoke: false,
                smuggling: Vec::new(),
                bare_lf_accepted: false,
                bare_lf_refused: false,
            },
        }
    }

    /// Bytes of one direction, in order. Returns `Feed::Upgrade` once this direction
    /// switched to TLS after STARTTLS; later calls for that direction keep returning it.
    pub fn feed(&mut self, dir: Direction, data: &[u8], meta: EventMeta) -> Feed {
        match dir {
            Direction::ToServer => self.feed_client(data, meta),
            Direction::ToClient => self.feed_server(data, meta),
        }
    }

    /// Signals raised since the last call, in wire order.
    pub fn take_signals(&mut self) -> Vec<Signal> {
        std::mem::take(&mut self.signals)
    }

    pub fn has_signals(&self) -> bool {
        !self.signals.is_empty()
    }

    /// `len` bytes of this direction are lost. The line they cut short is interpreted as far
    /// as it goes (a snap length cuts every long line); the next line may start mid-line and
    /// is read only if it parses from its first byte.
    pub fn gap(&mut self, dir: Direction, len: u64, meta: EventMeta) {
        self.facts.stats.gaps += 1;
        self.facts.stats.gap_bytes = self.facts.stats.gap_bytes.saturating_add(len);
        match dir {
            Direction::ToServer => match self.client_mode {
                ClientMode::Commands | ClientMode::AwaitBody(_) => {
                    self.client_seen = true;
                    if let Some((bytes, after_gap)) = self.client.gap() {
                        let line = Line {
                            bytes: bytes.strip_suffix(b"\r").unwrap_or(&bytes),
                            truncated: false,
                            wire_len: bytes.len(),
                            cut: true,
                            after_gap,
                        };
                        self.client_line(line, meta);
                    }
                }
                // The end-of-data dot may still come: keep scanning, from mid-line.
                ClientMode::Body { ref mut scan, .. } => {
                    scan.gap();
                    self.body_gapped = true;
                }
                ClientMode::Bdat { remaining, txn } => {
                    self.bdat_scan.gap();
                    if len < remaining {
                        self.client_mode = ClientMode::Bdat {
                            remaining: remaining - len,
                            txn,
                        };
                    } else {
                        // The chunk ended inside the gap; what followed it is lost too.
                        self.client_mode = ClientMode::Commands;
                        if len > remaining {
                            self.client.gap();
                        }
                    }
                }
                ClientMode::Tls => {}
            },
            Direction::ToClient => {
                if self.server_mode == ServerMode::Replies {
                    if let Some((bytes, after_gap)) = self.server.gap() {
                        let text = bytes.strip_suffix(b"\r").unwrap_or(&bytes);
                        self.server_line(text, bytes.len(), (true, after_gap), meta);
                    }
                    // The rest of the reply in progress was in the gap: it ended there, and
                    // the command it answered is done (else every later reply would be
                    // matched to the wrong command).
                    if let Some(reply) = self.reply.take() {
                        self.end_reply(reply);
                    }
                }
            }
        }
    }

    /// The direction closed (FIN or RST): a last line without its line ending still counts.
    pub fn end(&mut self, dir: Direction, meta: EventMeta) {
        match dir {
            Direction::ToServer => {
                if !matches!(
                    self.client_mode,
                    ClientMode::Commands | ClientMode::AwaitBody(_)
                ) {
                    return;
                }
                if let Some(rest) = self.client.take_partial() {
                    let line = Line {
                        bytes: rest.strip_suffix(b"\r").unwrap_or(&rest),
                        truncated: false,
                        wire_len: rest.len(),
                        cut: false,
                        after_gap: false,
                    };
                    self.client_line(line, meta);
                }
            }
            Direction::ToClient => {
                if self.server_mode != ServerMode::Replies {
                    return;
                }
                if let Some(rest) = self.server.take_partial() {
                    let bytes = rest.strip_suffix(b"\r").unwrap_or(&rest);
                    self.server_line(bytes, rest.len(), (false, false), meta);
                }
                self.settle_fork_at_close();
            }
        }
    }

    /// The server sent at least one well-formed reply line (such as `220 `).
    pub fn server_spoke_smtp(&self) -> bool {
        self.facts.server_spoke
    }

    /// The client sent at least one command with a known SMTP verb.
    pub fn client_spoke_smtp(&self) -> bool {
        self.facts.client_spoke
    }

    /// The dialog shows something only SMTP has: an EHLO/HELO, EHLO capabilities, a mail
    /// transaction, STARTTLS, or a greeting that names (E)SMTP. Reply codes alone are not
    /// enough (FTP and NNTP use them too), nor are verbs that POP3 and FTP share (AUTH, QUIT).
    pub fn smtp_specific(&self) -> bool {
        let f = &self.facts;
        f.helo.is_some()
            || !f.capabilities.is_empty()
            || f.transactions > 0
            || f.starttls_phase != TlsPhase::NotIssued
            || f.banner
                .as_deref()
                .is_some_and(|b| b.to_ascii_uppercase().contains("SMTP"))
    }

    /// STARTTLS was issued and answered 2xx (the flow's class becomes `starttls`), whether
    /// or not a handshake followed.
    pub fn starttls_accepted(&self) -> bool {
        self.facts.starttls_phase == TlsPhase::Accepted
    }

    /// The client's direction is in the capture (it sent bytes this session may never see,
    /// such as a ClientHello to a plaintext server): replies are not read as proof of
    /// commands a one-sided capture lacks.
    pub fn client_present(&mut self) {
        self.client_seen = true;
    }

    /// The reply that refused STARTTLS, when the client then began TLS anyway.
    pub fn tls_after_refusal(&self) -> Option<u16> {
        self.facts.tls_after_refusal?;
        self.facts.starttls_reply.as_ref().map(|r| r.0.0)
    }

    /// Decrypted application bytes of one direction (after STARTTLS, or on implicit TLS).
    /// The first call resumes the dialog inside TLS: after STARTTLS the client speaks first
    /// again (RFC 3207 section 4.2, a new EHLO); on implicit TLS the greeting comes first.
    pub fn feed_inside_tls(&mut self, dir: Direction, data: &[u8], meta: EventMeta) {
        if !self.in_tls {
            self.in_tls = true;
            self.client_mode = ClientMode::Commands;
            self.server_mode = ServerMode::Replies;
            self.client = LineReader::default();
            self.server = LineReader::default();
            self.reply = None;
            self.auth_awaiting_client = false;
            if self.facts.starttls_phase == TlsPhase::Accepted {
                self.pending.clear();
            }
        }
        let _ = self.feed(dir, data, meta);
    }

    /// Host name announced in the banner (`220 mx.example.org ESMTP`), for certificate
    /// checks; `None` when the greeting starts with no plausible domain.
    pub fn banner_host(&self) -> Option<&str> {
        self.facts.banner_host.as_deref()
    }

    fn feed_client(&mut self, data: &[u8], meta: EventMeta) -> Feed {
        // The reader lends lines that borrow it while `self` is updated: move it out for the
        // duration (an empty reader does not allocate).
        if self.facts.starttls_phase == TlsPhase::Accepted && !data.is_empty() {
            self.client_after_accept = true;
        }
        self.client_seen |= !data.is_empty();
        let mut reader = std::mem::take(&mut self.client);
        let mut pos = 0;
        let mut result = Feed::Smtp;
        while let Some(rest) = data.get(pos..).filter(|r| !r.is_empty()) {
            match self.client_mode {
                ClientMode::Tls => {
                    result = Feed::Upgrade { offset: pos };
                    break;
                }
                ClientMode::Body { mut scan, txn } => {
                    self.note_body_start(meta);
                    let (n, stop) = scan.scan(rest);
                    pos += n;
                    self.facts.stats.data_bytes += n as u64;
                    self.add_body_bytes(txn, n as u64);
                    self.client_mode = ClientMode::Body { scan, txn };
                    // Bytes after an earlier sequence, read as a server that honoured it would.
                    self.shadow_body(rest.get(..n).unwrap_or_default(), meta);
                    match stop {
                        Some(Stop::End) => {
                            self.bare_lf_mark = scan.bare_lf;
                            self.push(Pending::DataEnd(txn));
                            self.shadow_real_end();
                            self.close_txn();
                            self.client_mode = ClientMode::Commands;
                        }
                        Some(Stop::Smuggle(seq)) => self.smuggle_in_data(seq, txn, meta),
                        None => {}
                    }
                }
                ClientMode::Bdat { remaining, txn } => {
                    let n = remaining.min(rest.len() as u64);
                    // `n` is at most `rest.len()`, so the cast back is lossless.
                    let chunk = rest.get(..n as usize).unwrap_or_default();
                    pos += n as usize;
                    self.facts.stats.bdat_bytes += n;
                    self.add_body_bytes(txn, n);
                    self.scan_bdat(chunk, txn, meta);
                    self.client_mode = if n == remaining {
                        if !self.bdat_open {
                            self.bdat_done();
                        }
                        ClientMode::Commands
                    } else {
                        ClientMode::Bdat {
                            remaining: remaining - n,
                            txn,
                        }
                    };
                }
                ClientMode::Commands | ClientMode::AwaitBody(_) => {
                    if reader.at_line_start()
                        && !self.in_tls
                        && self.client_mode == ClientMode::Commands
                        && self.facts.starttls_phase != TlsPhase::NotIssued
                        && starts_tls(rest)
                    {
                        // RFC 3207 §4.2: the client starts the handshake after STARTTLS; after
                        // a refusal it is an attempt the server will read as a bad command.
                        if self.facts.starttls_phase == TlsPhase::Refused {
                            self.facts.tls_after_refusal.get_or_insert(meta);
                        }
                        self.client_mode = ClientMode::Tls;
                        self.facts.client_tls = true;
                        result = Feed::Upgrade { offset: pos };
                        break;
                    }
                    let (n, line) = reader.next_line(rest);
                    pos += n;
                    if let Some(line) = line {
                        // A line the reader ended at a bare LF (it strips one CR before it).
                        self.bare_lf_mark =
                            !line.truncated && line.wire_len == line.bytes.len() + 1;
                        self.client_line(line, meta);
                        self.bare_lf_mark = false;
                    }
                }
            }
        }
        self.facts.stats.long_lines = reader.long_lines + self.server.long_lines;
        self.client = reader;
        result
    }

    fn feed_server(&mut self, data: &[u8], meta: EventMeta) -> Feed {
        let mut reader = std::mem::take(&mut self.server);
        let mut pos = 0;
        let mut result = Feed::Smtp;
        while let Some(rest) = data.get(pos..).filter(|r| !r.is_empty()) {
            if self.server_mode == ServerMode::Tls {
                result = Feed::Upgrade { offset: pos };
                break;
            }
            if reader.at_line_start()
                && !self.in_tls
                && self.reply.is_none()
                && self.facts.starttls_phase == TlsPhase::Accepted
                && starts_tls(rest)
            {
                self.server_mode = ServerMode::Tls;
                self.facts.server_tls = true;
                result = Feed::Upgrade { offset: pos };
                break;
            }
            let (n, line) = reader.next_line(rest);
            pos += n;
            if let Some(line) = line {
                self.server_line(line.bytes, line.wire_len, (false, line.after_gap), meta);
            }
        }
        self.facts.stats.long_lines = reader.long_lines + self.client.long_lines;
        self.server = reader;
        result
    }

    fn note_body_start(&mut self, meta: EventMeta) {
        if std::mem::take(&mut self.body_start) {
            self.facts.messages += 1;
            if !self.in_tls {
                self.facts.first_message.get_or_insert(meta);
            }
        }
    }

    fn add_body_bytes(&mut self, txn: Option<usize>, n: u64) {
        if let Some(t) = txn.and_then(|i| self.facts.txns.get_mut(i)) {
            t.body_bytes += n;
        }
    }

    fn push(&mut self, p: Pending) {
        if self.pending.len() >= MAX_PENDING {
            self.pending.pop_front();
            self.facts.stats.dropped_records += 1;
        }
        self.pending.push_back(p);
        if std::mem::take(&mut self.bare_lf_mark) && self.bare_lf_watch.is_none() {
            // Replies come in command order: this one is answered by that reply.
            self.bare_lf_watch = Some(self.facts.stats.replies + self.pending.len() as u64);
        }
        self.shadow_command(p);
    }

    /// BDAT chunk bytes: a sequence in them is content on this hop, yet it ends the message
    /// early on a next hop that relays it with DATA and honours it.
    fn scan_bdat(&mut self, chunk: &[u8], txn: Option<usize>, meta: EventMeta) {
        let mut off = 0;
        while let Some(rest) = chunk.get(off..).filter(|r| !r.is_empty()) {
            let (k, stop) = self.bdat_scan.scan(rest);
            self.shadow_bdat(rest.get(..k).unwrap_or_default(), meta);
            off += k;
            match stop {
                Some(Stop::Smuggle(seq)) => self.smuggle_in_bdat(seq, txn, meta),
                // CRLF . CRLF in a chunk is content; a relay dot-stuffs it.
                Some(Stop::End) | None => {}
            }
        }
    }

    /// One complete client line in command mode.
    fn client_line(&mut self, mut line: Line<'_>, meta: EventMeta) {
        let mut cmd = command(line.bytes);
        if line.after_gap && !cmd.is_some_and(|c| c.verb.is_known()) {
            // After a gap only a line that is a command from its first byte is one: anything
            // else may be the tail of a line whose start was lost (not junk: not counted).
            return;
        }
        if cmd.is_none() {
            let known = |l: &[u8]| command(l).is_some_and(|c| c.verb.is_known());
            if let Some(at) = parser::resync_offset(line.bytes, known) {
                self.facts.stats.non_smtp_bytes += at as u64;
                line.bytes = line.bytes.get(at..).unwrap_or_default();
                line.wire_len = line.wire_len.saturating_sub(at);
                cmd = command(line.bytes);
            }
        }
        let known = cmd.is_some_and(|c| c.verb.is_known());
        if let Some(idx) = self.auth_active {
            let expects = self
                .facts
                .auths
                .get(idx)
                .is_some_and(AuthExchange::expects_response);
            // After a 334 the line is a response whatever it looks like; without the 334
            // (one-sided capture) a line that is no known command is taken as one too.
            if self.auth_awaiting_client || (expects && !known) {
                self.auth_awaiting_client = false;
                if let Some(ex) = self.facts.auths.get_mut(idx) {
                    if line.cut {
                        ex.client_line_cut(line.bytes, meta);
                    } else {
                        ex.client_line(line.bytes, meta);
                    }
                }
                return;
            }
        }
        if let (ClientMode::AwaitBody(txn), false) = (self.client_mode, known) {
            // RFC 2920 §3.1 puts DATA last in a group, but clients that do not wait for the
            // 354 send the body at once: a line that is no command is its first line.
            self.client_mode = ClientMode::Body {
                scan: DotScanner::default(),
                txn,
            };
            self.body_start = true;
            self.note_body_start(meta);
            let n = line.wire_len as u64;
            self.facts.stats.data_bytes += n;
            self.add_body_bytes(txn, n);
            if line.bytes == b"." && line.wire_len == 3 {
                self.push(Pending::DataEnd(txn));
                self.client_mode = ClientMode::Commands;
                self.close_txn();
            }
            return;
        }
        let Some(cmd) = cmd else {
            self.facts.stats.non_smtp_bytes += line.wire_len as u64;
            return;
        };
        if self.facts.starttls_phase == TlsPhase::Requested {
            // A command pipelined after STARTTLS before its reply: the CVE-2011-0411 pattern
            // when the server then accepts.
            self.facts.client_injected += line.wire_len as u64;
            self.facts.client_injected_meta.get_or_insert(meta);
        }
        if self.facts.starttls_phase == TlsPhase::Accepted && !self.in_tls && cmd.verb.is_known() {
            // The 2xx to STARTTLS asked for a handshake; a command instead means the dialog
            // goes on in plaintext (`starttls_ignored` once the server answers it).
            self.facts.plaintext_after_accept.get_or_insert(meta);
            self.facts.plaintext_commands_after_accept =
                self.facts.plaintext_commands_after_accept.saturating_add(1);
        }
        self.facts.stats.commands += 1;
        if cmd.verb.is_known() {
            self.facts.client_spoke = true;
        } else {
            self.facts.stats.unknown_commands += 1;
        }
        if self.facts.server_spoke && self.pending.iter().any(|p| *p != Pending::Greeting) {
            self.facts.stats.pipelining_used = true;
        }
        let pending = match cmd.verb {
            Verb::Helo | Verb::Ehlo | Verb::Lhlo => {
                let name = cmd.args.split(|b| *b == b' ').next().unwrap_or_default();
                // The first EHLO/HELO that names the client (a bare "EHLO" names nobody);
                // a name cut by the capture is not its name.
                if self.facts.helo.is_none() && !name.is_empty() && !line.cut {
                    self.facts.helo = Some(lossy(name, 255));
                }
                Pending::Hello {
                    ehlo: cmd.verb != Verb::Helo,
                }
            }
            Verb::StartTls => {
                self.facts.starttls_meta.get_or_insert(meta);
                self.facts.starttls_phase = TlsPhase::Requested;
                Pending::StartTls
            }
            Verb::Auth => self.auth_command(cmd.args, line.cut, meta),
            Verb::Mail => {
                self.note_cleartext_after_offer("MAIL", meta);
                self.facts.transactions = self.facts.transactions.saturating_add(1);
                self.bdat_open = false;
                let txn = if self.facts.txns.len() < MAX_TRANSACTIONS {
                    self.facts.txns.push(TransactionRecord {
                        frame: meta.frame,
                        ..TransactionRecord::default()
                    });
                    Some(self.facts.txns.len() - 1)
                } else {
                    self.facts.stats.dropped_records += 1;
                    None
                };
                self.open_txn = txn;
                Pending::Mail(txn)
            }
            Verb::Rcpt => {
                self.facts.recipients = self.facts.recipients.saturating_add(1);
                let txn = self.current_txn();
                if let Some(t) = txn.and_then(|i| self.facts.txns.get_mut(i)) {
                    t.recipients += 1;
                }
                Pending::Rcpt(txn)
            }
            Verb::Data => {
                let txn = self.current_txn();
                if let Some(t) = txn.and_then(|i| self.facts.txns.get_mut(i)) {
                    t.body = Some("data");
                }
                self.client_mode = ClientMode::AwaitBody(txn);
                Pending::Data(txn)
            }
            Verb::Bdat => match parser::bdat_args(cmd.args) {
                Some((size, last)) => {
                    let txn = self.current_txn();
                    if let Some(t) = txn.and_then(|i| self.facts.txns.get_mut(i)) {
                        t.body = Some("bdat");
                    }
                    if !self.bdat_open {
                        self.bdat_done();
                        self.bdat_open = true;
                        self.body_start = true;
                        self.note_body_start(meta);
                    }
                    if last {
                        self.bdat_open = false;
                        self.close_txn();
                    }
                    if size > 0 {
                        self.client_mode = ClientMode::Bdat {
                            remaining: size,
                            txn,
                        };
                    }
                    Pending::Bdat { txn, last }
                }
                // Without a valid size the chunk cannot be skipped; read on as commands.
                None => Pending::Other,
            },
            Verb::Rset => {
                self.bdat_open = false;
                self.close_txn();
                Pending::Other
            }
            Verb::Quit => Pending::Quit,
            _ => Pending::Other,
        };
        self.push(pending);
    }

    fn auth_command(&mut self, args: &[u8], cut: bool, meta: EventMeta) -> Pending {
        self.note_cleartext_after_offer("AUTH", meta);
        let Some(auth) = parser::auth_command(args) else {
            return Pending::Other;
        };
        let ex = match (cut, auth.initial) {
            // `AUTH PLAIN AGFsaWNl` cut by the snap length: an initial response was sent in
            // clear, and what was captured of it is read as far as it goes.
            (true, Some(initial)) => {
                let mut ex = AuthExchange::start(auth.mechanism, None, meta);
                ex.client_line_cut(initial, meta);
                ex
            }
            _ => AuthExchange::start(auth.mechanism, auth.initial, meta),
        };
        let mut ex = ex;
        ex.inside_tls = self.in_tls;
        let idx = if self.facts.auths.len() < MAX_AUTH {
            self.facts.auths.push(ex);
            Some(self.facts.auths.len() - 1)
        } else {
            self.facts.stats.dropped_records += 1;
            None
        };
        self.auth_active = idx;
        self.auth_awaiting_client = false;
        Pending::Auth(idx)
    }

    fn note_cleartext_after_offer(&mut self, what: &'static str, meta: EventMeta) {
        if self.facts.starttls_offered
            && !self.in_tls
            && self.facts.starttls_phase == TlsPhase::NotIssued
            && self.facts.cleartext_after_offer.is_none()
        {
            self.facts.cleartext_after_offer = Some((what, meta));
        }
    }

    /// The transaction the last MAIL opened, unless RSET or a finished message closed it.
    fn current_txn(&self) -> Option<usize> {
        self.open_txn
    }

    fn close_txn(&mut self) {
        self.open_txn = None;
    }

    /// One server line; `(cut, after_gap)`: it ended at a gap (its end is unknown), it began
    /// right after one (it may be the tail of a longer line).
    fn server_line(
        &mut self,
        mut bytes: &[u8],
        mut wire_len: usize,
        (cut, after_gap): (bool, bool),
        meta: EventMeta,
    ) {
        let mut parsed = parser::reply_line(bytes);
        if parsed.is_none() && !after_gap {
            let is_reply = |l: &[u8]| parser::reply_line(l).is_some();
            if let Some(at) = parser::resync_offset(bytes, is_reply) {
                self.facts.stats.non_smtp_bytes += at as u64;
                bytes = bytes.get(at..).unwrap_or_default();
                wire_len = wire_len.saturating_sub(at);
                parsed = parser::reply_line(bytes);
            }
        }
        let Some(r) = parsed else {
            // Not a reply: junk, or another protocol after STARTTLS (a mode mismatch the
            // analysis reports), but nothing a client would read as an SMTP answer.
            self.facts.stats.non_smtp_bytes += wire_len as u64;
            return;
        };
        self.facts.server_spoke = true;
        if self.reply.is_none() {
            self.note_server_injection(wire_len, meta);
            self.begin_reply(bytes, &r, cut, meta);
        } else if !cut {
            // A capability cut short could be any keyword (`250-STARTT`): not kept.
            self.reply_continuation(&r, meta);
        }
        if r.last {
            if let Some(reply) = self.reply.take() {
                self.end_reply(reply);
            }
        }
    }

    /// After a 2xx to STARTTLS the server's next bytes must be its TLS handshake; a reply
    /// that answers no outstanding command, before the client said anything more, was
    /// slipped in ahead of the handshake for the client to read as an answer inside TLS.
    fn note_server_injection(&mut self, wire_len: usize, meta: EventMeta) {
        if self.facts.starttls_phase == TlsPhase::Accepted
            && !self.in_tls
            && !self.client_after_accept
            && self.pending.is_empty()
            && self.reply.is_none()
        {
            self.facts.server_injected += wire_len as u64;
            self.facts.server_injected_meta.get_or_insert(meta);
        }
    }

    fn begin_reply(&mut self, bytes: &[u8], r: &ReplyLine<'_>, cut: bool, meta: EventMeta) {
        // A capture that starts mid-dialog has no greeting: RFC 5321 §3.1 allows only 220
        // and 554 there (421 when shutting down), so anything else answers a command.
        if self.pending.front() == Some(&Pending::Greeting) && !matches!(r.code.0, 220 | 421 | 554)
        {
            self.pending.pop_front();
        }
        if self.pending.is_empty() {
            if let (ClientMode::Body { txn, .. }, true) = (self.client_mode, self.body_gapped) {
                // The server answers only once the body ended: its end-of-data line was in a
                // gap (a snap length cuts the segment that carries it).
                self.client_mode = ClientMode::Commands;
                self.body_gapped = false;
                self.push(Pending::DataEnd(txn));
                self.close_txn();
            } else if !self.client_seen {
                self.infer_command(r, meta);
            }
        }
        self.decide_fork(r);
        let head = self.pending.front().copied();
        let after_starttls = self.facts.starttls_phase == TlsPhase::Accepted;
        if after_starttls
            && self.facts.plaintext_after_accept.is_some()
            && head.is_some_and(|h| h != Pending::Greeting)
        {
            self.facts.plaintext_reply_after_accept.get_or_insert(meta);
        }
        match head {
            Some(Pending::Greeting) if self.facts.banner.is_none() => {
                self.facts.banner = Some(lossy(bytes, MAX_TEXT));
                // A host name that runs to the cut may be cut itself.
                let host = parser::greeting_host(r.text)
                    .filter(|h| !cut || r.text.get(h.len()).is_some_and(|b| *b == b' '));
                self.facts.banner_host = host.map(str::to_string);
            }
            Some(Pending::Hello { ehlo: true }) if r.code.is_positive() => {
                // The first line names the server; keywords follow (RFC 5321 §4.1.1.1). A
                // new EHLO reply replaces what an earlier one offered.
                if after_starttls {
                    self.facts.capabilities_after_starttls.clear();
                } else {
                    self.facts.capabilities.clear();
                }
            }
            Some(Pending::StartTls) => {
                self.facts.starttls_reply = Some((r.code, lossy(r.text, MAX_TEXT), meta));
            }
            Some(Pending::Auth(Some(idx))) if r.code == ReplyCode::AUTH_CONTINUE => {
                if let Some(ex) = self.facts.auths.get_mut(idx) {
                    ex.challenge(r.text);
                }
            }
            _ => {}
        }
        self.reply = Some(ReplyInProgress {
            code: r.code,
            head,
            after_starttls,
        });
    }

    /// A reply that answers no command seen, in a capture without the client's side (taken
    /// on the server, or a tap that lost one direction): queues the command the reply alone
    /// proves it answers. After the greeting 220 answers only STARTTLS (RFC 3207 §4); a
    /// multi-line 250 only EHLO (RFC 5321 §4.1.1.1); 334, 235 and 535 only AUTH (RFC 4954
    /// §4, §6); 354 only DATA, and the reply after it the end of the message (RFC 5321
    /// §4.1.1.4). Anything else (a lone 250, 221) proves no particular command.
    fn infer_command(&mut self, r: &ReplyLine<'_>, meta: EventMeta) {
        let pending = match r.code.0 {
            220 if self.facts.banner.is_some() => {
                self.facts.starttls_meta.get_or_insert(meta);
                self.facts.starttls_phase = TlsPhase::Requested;
                Pending::StartTls
            }
            250 if !r.last => Pending::Hello { ehlo: true },
            334 | 235 | 535 => {
                self.note_cleartext_after_offer("AUTH", meta);
                let idx = if self.facts.auths.len() < MAX_AUTH {
                    self.facts.auths.push(AuthExchange::inferred(meta));
                    Some(self.facts.auths.len() - 1)
                } else {
                    self.facts.stats.dropped_records += 1;
                    None
                };
                self.auth_active = idx;
                Pending::Auth(idx)
            }
            354 => {
                self.note_cleartext_after_offer("DATA", meta);
                self.facts.transactions = self.facts.transactions.saturating_add(1);
                let txn = if self.facts.txns.len() < MAX_TRANSACTIONS {
                    self.facts.txns.push(TransactionRecord {
                        frame: meta.frame,
                        body: Some("data"),
                        ..TransactionRecord::default()
                    });
                    Some(self.facts.txns.len() - 1)
                } else {
                    self.facts.stats.dropped_records += 1;
                    None
                };
                // 354 invites the body: a message crossed before the next reply.
                self.body_start = true;
                self.note_body_start(meta);
                self.push(Pending::Data(txn));
                self.push(Pending::DataEnd(txn));
                self.facts.stats.inferred_commands += 1;
                return;
            }
            _ => return,
        };
        self.facts.stats.inferred_commands += 1;
        self.push(pending);
    }

    fn reply_continuation(&mut self, r: &ReplyLine<'_>, meta: EventMeta) {
        let Some(reply) = self.reply else { return };
        if reply.head == Some(Pending::Hello { ehlo: true }) && reply.code.is_positive() {
            if let Some(cap) = capability(r.text) {
                self.capability(cap, r.text, reply.after_starttls, meta);
            }
        }
    }

    fn capability(&mut self, cap: Capability<'_>, text: &[u8], after: bool, meta: EventMeta) {
        let list = if after {
            &mut self.facts.capabilities_after_starttls
        } else {
            &mut self.facts.capabilities
        };
        if list.is_empty() {
            // An EHLO reply lists about ten keywords: one allocation instead of four growths.
            list.reserve(CAPABILITIES_HINT);
        }
        if list.len() < MAX_CAPABILITIES {
            list.push(lossy(text.trim_ascii(), MAX_TEXT));
        } else {
            self.facts.stats.dropped_records += 1;
        }
        if after {
            return;
        }
        if cap.keyword.eq_ignore_ascii_case(parser::STARTTLS) {
            if !self.facts.starttls_offered {
                self.signals.push(Signal::StarttlsOffered(meta));
            }
            self.facts.starttls_offered = true;
        } else if looks_mangled_starttls(cap.keyword) && self.facts.mangled.is_none() {
            self.facts.mangled = Some((lossy(text.trim_ascii(), MAX_TEXT), meta));
        } else if cap.keyword.eq_ignore_ascii_case(b"AUTH") {
            for mech in auth_mechanisms(cap.params) {
                let mut mech = lossy(mech, 64);
                mech.make_ascii_uppercase();
                if !self.facts.auth_offered.contains(&mech)
                    && self.facts.auth_offered.len() < MAX_MECHANISMS
                {
                    self.facts.auth_offered.push(mech);
                }
            }
            self.facts.auth_offered_meta.get_or_insert(meta);
        }
    }

    /// The last line of a reply: the command it answers is done (except AUTH on 334).
    fn end_reply(&mut self, reply: ReplyInProgress) {
        let code = reply.code;
        self.facts.stats.replies += 1;
        if self.bare_lf_watch == Some(self.facts.stats.replies) {
            self.bare_lf_watch = None;
            if code.0 < 400 {
                self.facts.bare_lf_accepted = true;
            } else {
                self.facts.bare_lf_refused = true;
            }
        }
        let codes = &mut self.facts.stats.reply_codes;
        if codes.is_empty() {
            // A short session's replies in one allocation rather than three.
            codes.reserve(16);
        }
        if codes.len() < MAX_REPLY_CODES {
            codes.push(code.0);
        }
        let Some(head) = reply.head else {
            self.facts.stats.unmatched_replies += 1;
            return;
        };
        if matches!(head, Pending::Auth(_)) && code == ReplyCode::AUTH_CONTINUE {
            // RFC 4954 §4: the exchange goes on; the client answers this challenge.
            self.auth_awaiting_client = true;
            return;
        }
        self.pending.pop_front();
        match head {
            Pending::Greeting | Pending::Hello { .. } | Pending::Quit | Pending::Other => {}
            Pending::StartTls => {
                if code.is_positive() {
                    self.facts.starttls_phase = TlsPhase::Accepted;
                } else {
                    self.facts.starttls_phase = TlsPhase::Refused;
                    if let Some((_, _, meta)) = &self.facts.starttls_reply {
                        self.signals.push(Signal::StarttlsRefused(*meta));
                    }
                    if self.facts.starttls_offered
                        && matches!(code, ReplyCode::SYNTAX_ERROR | ReplyCode::NOT_IMPLEMENTED)
                    {
                        self.facts.starttls_unrecognised = true;
                    }
                }
            }
            Pending::Auth(idx) => {
                if let Some(ex) = idx.and_then(|i| self.facts.auths.get_mut(i)) {
                    ex.finish(code);
                    if ex.outcome == AuthOutcome::Failure
                        && let Some(user) = ex.username.as_ref().filter(|u| !u.is_empty())
                    {
                        self.signals.push(Signal::AuthFailed {
                            username: user.clone(),
                            meta: ex.meta,
                        });
                    }
                }
                // Counted beyond the cap on kept exchanges, for brute-force aggregation.
                if code.0 >= 400 {
                    self.facts.stats.auth_failures += 1;
                }
                self.auth_active = None;
                self.auth_awaiting_client = false;
            }
            Pending::Mail(txn) => {
                if let Some(t) = txn.and_then(|i| self.facts.txns.get_mut(i)) {
                    t.mail_reply = Some(code.0);
                }
            }
            Pending::Rcpt(txn) => {
                if let (true, Some(t)) = (
                    code.is_positive(),
                    txn.and_then(|i| self.facts.txns.get_mut(i)),
                ) {
                    t.recipients_accepted += 1;
                }
            }
            Pending::Data(txn) => {
                if code == ReplyCode::START_MAIL_INPUT {
                    if let ClientMode::AwaitBody(_) = self.client_mode {
                        self.client_mode = ClientMode::Body {
                            scan: DotScanner::default(),
                            txn,
                        };
                        self.body_start = true;
                    }
                } else if let ClientMode::AwaitBody(_) = self.client_mode {
                    // Refused: no body follows (RFC 5321 §4.1.1.4).
                    self.client_mode = ClientMode::Commands;
                }
            }
            Pending::DataEnd(txn) => {
                if let Some(t) = txn.and_then(|i| self.facts.txns.get_mut(i)) {
                    t.reply = Some(code.0);
                }
            }
            Pending::Bdat { txn, last } => {
                if let (true, Some(t)) = (last, txn.and_then(|i| self.facts.txns.get_mut(i))) {
                    t.reply = Some(code.0);
                }
            }
        }
    }
}
