//! SMTP smuggling: a non-standard end-of-data inside a message body, and what the server did
//! with it.
//!
//! When the body scanner finds `X . Y` (not `CRLF . CRLF`), the dialog has two readings: the
//! body goes on (what the session follows), or the body ended there and what follows are
//! commands. A [`Shadow`] reads the bytes after the sequence as command lines, as a server
//! that honoured it would, and lists the replies that reading expects; the server's replies
//! then decide. A reply that fits only one reading settles it; when the server honoured the
//! sequence, the session switches to that reading, so the dialog and its transactions stay
//! what the server saw.

use std::collections::VecDeque;

use crate::flow::EventMeta;
use crate::report::model::TransactionRecord;

use super::body::{DotScanner, Smuggle};
use super::line::LineReader;
use super::parser::{self, ReplyCode, ReplyLine, Verb, lossy};
use super::session::{ClientMode, Pending, SmtpSession};

/// Sequences kept per session; more are counted in `dropped_records`.
pub(super) const MAX_SMUGGLES: usize = 16;
/// Lines read after a sequence: a smuggled envelope is a few commands.
const MAX_SHADOW_LINES: u32 = 32;
/// Recipients kept per smuggled envelope.
const MAX_SMUGGLED_RCPTS: usize = 8;
/// Replies the other reading may expect before the server's replies decide.
const MAX_EXPECT: usize = 64;

/// What the server did with a non-standard end-of-data.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(super) enum Reaction {
    /// It answered there and took what followed as commands.
    AcceptedAsEnd,
    /// It read on to the real end of data and answered once.
    TreatedAsBody,
    /// It refused the message (Postfix's `550 5.5.2 Error: bare <LF> received`).
    Rejected,
    Unknown,
}

impl Reaction {
    pub(super) fn name(self) -> &'static str {
        match self {
            Reaction::AcceptedAsEnd => "accepted_as_end",
            Reaction::TreatedAsBody => "treated_as_body",
            Reaction::Rejected => "rejected",
            Reaction::Unknown => "unknown",
        }
    }
}

/// One sequence as the findings report it.
#[derive(Clone, Debug)]
pub(super) struct SmuggleFact {
    pub seq: Smuggle,
    pub meta: EventMeta,
    /// Inside a BDAT chunk: this hop reads it as content whatever it is.
    pub bdat: bool,
    /// The first line after it is an SMTP command; None while no line after it was seen.
    pub commands_follow: Option<bool>,
    pub mail_from: Option<String>,
    pub rcpt_to: Vec<String>,
    /// Decided from the replies; None while undecided.
    pub reaction: Option<Reaction>,
    /// The first reply after the sequence (it answers the end of data in either reading).
    pub end_reply: Option<u16>,
    /// The transaction whose body carried it.
    pub txn: Option<usize>,
    /// Something other than line endings followed it in the body. A client that ends its
    /// message with `<LF>.<LF>` (an LF-only client) or adds blank lines after its end of
    /// data smuggles nothing: such a sequence is no finding, though the dialog still follows
    /// what the server did.
    pub content_after: bool,
}

impl SmuggleFact {
    /// The reaction as reported: an undecided one is `rejected` when the end of data drew a
    /// refusal, else `unknown`. In a BDAT chunk the server only ever reads content.
    pub(super) fn reaction(&self, txn_reply: Option<u16>) -> Reaction {
        if self.bdat {
            return match txn_reply {
                Some(c) if c < 400 => Reaction::TreatedAsBody,
                Some(_) => Reaction::Rejected,
                None => Reaction::Unknown,
            };
        }
        self.reaction.unwrap_or(match self.end_reply {
            Some(c) if c >= 400 => Reaction::Rejected,
            _ => Reaction::Unknown,
        })
    }
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum ShadowMode {
    Commands,
    /// After the smuggled DATA: its message body, up to the real end of data.
    Body,
    /// Too many lines: no longer read.
    Stopped,
}

/// The bytes after a sequence read as a server that honoured it would read them.
#[derive(Debug)]
pub(super) struct Shadow {
    fact: Option<usize>,
    reader: LineReader,
    mode: ShadowMode,
    lines: u32,
    /// The smuggled transaction as it would be recorded.
    txn: Option<TransactionRecord>,
    /// Replies this reading expects, in order; `true` marks those of the smuggled transaction.
    expect: VecDeque<(Pending, bool)>,
    /// More replies were expected than kept: the replies can no longer decide.
    lost: bool,
}

impl Shadow {
    fn new(fact: Option<usize>) -> Self {
        Shadow {
            fact,
            reader: LineReader::default(),
            mode: ShadowMode::Commands,
            lines: 0,
            txn: None,
            expect: VecDeque::new(),
            lost: false,
        }
    }

    fn expect(&mut self, p: Pending, smuggled: bool) {
        if self.expect.len() < MAX_EXPECT {
            self.expect.push_back((p, smuggled));
        } else {
            self.lost = true;
        }
    }

    /// Body bytes that follow the sequence.
    fn feed(&mut self, mut data: &[u8], facts: &mut [SmuggleFact], meta: EventMeta) {
        if let Some(f) = self.fact.and_then(|i| facts.get_mut(i)) {
            f.content_after |= data.iter().any(|b| !matches!(b, b'\r' | b'\n'));
        }
        while !data.is_empty() {
            match self.mode {
                ShadowMode::Stopped => return,
                ShadowMode::Body => {
                    if let Some(t) = self.txn.as_mut() {
                        t.body_bytes += data.len() as u64;
                    }
                    return;
                }
                ShadowMode::Commands => {}
            }
            let mut reader = std::mem::take(&mut self.reader);
            let (n, line) = reader.next_line(data);
            data = data.get(n..).unwrap_or_default();
            if let Some(line) = line {
                self.line(line.bytes, facts, meta);
            }
            self.reader = reader;
        }
    }

    fn line(&mut self, bytes: &[u8], facts: &mut [SmuggleFact], meta: EventMeta) {
        self.lines += 1;
        if self.lines > MAX_SHADOW_LINES {
            self.mode = ShadowMode::Stopped;
            self.lost = true;
            return;
        }
        let cmd = parser::command(bytes).filter(|c| c.verb.is_known());
        let fact = self.fact.and_then(|i| facts.get_mut(i));
        if let Some(f) = fact {
            f.commands_follow.get_or_insert(cmd.is_some());
            match cmd.map(|c| (c.verb, c.args)) {
                Some((Verb::Mail, args)) if f.mail_from.is_none() => {
                    f.mail_from = Some(lossy(address(args, b"FROM:"), 256));
                }
                Some((Verb::Rcpt, args)) if f.rcpt_to.len() < MAX_SMUGGLED_RCPTS => {
                    f.rcpt_to.push(lossy(address(args, b"TO:"), 256));
                }
                _ => {}
            }
        }
        let pending = match cmd.map(|c| c.verb) {
            Some(Verb::Mail) => {
                self.txn = Some(TransactionRecord {
                    frame: meta.frame,
                    smuggled: true,
                    ..TransactionRecord::default()
                });
                (Pending::Mail(None), true)
            }
            Some(Verb::Rcpt) => {
                if let Some(t) = self.txn.as_mut() {
                    t.recipients += 1;
                }
                (Pending::Rcpt(None), true)
            }
            Some(Verb::Data) => {
                self.mode = ShadowMode::Body;
                if let Some(t) = self.txn.as_mut() {
                    t.body = Some("data");
                }
                (Pending::Data(None), true)
            }
            Some(Verb::Quit) => (Pending::Quit, false),
            _ => (Pending::Other, false),
        };
        self.expect(pending.0, pending.1);
    }

    /// The real end of data (`CRLF . CRLF`) came: in this reading it ends the smuggled
    /// message, or it is one more (bad) command line.
    /// (The end line itself was fed as a command line when this reading was in commands.)
    fn real_end(&mut self) {
        if self.mode == ShadowMode::Body {
            self.expect(Pending::DataEnd(None), true);
        }
        self.mode = ShadowMode::Stopped;
    }
}

/// The argument's address: `FROM:<a@b> SIZE=1` gives `<a@b>`.
fn address<'a>(args: &'a [u8], prefix: &[u8]) -> &'a [u8] {
    let rest = args
        .get(..prefix.len())
        .filter(|p| p.eq_ignore_ascii_case(prefix))
        .and_then(|_| args.get(prefix.len()..))
        .unwrap_or(args)
        .trim_ascii_start();
    rest.split(|b| *b == b' ').next().unwrap_or_default()
}

/// A sequence in a DATA body whose reading the replies have not decided yet.
#[derive(Debug)]
pub(super) struct Fork {
    shadow: Shadow,
    /// The real end of data came (both readings are back to commands).
    real_end: bool,
    /// Body bytes of the carrying transaction up to the sequence.
    body_bytes_at_fork: u64,
    replies: u32,
}

/// Whether a reply with `code` can answer `p`.
fn fits(code: ReplyCode, p: Option<Pending>) -> bool {
    let Some(p) = p else { return false };
    let c = code.0;
    let refused = (400..600).contains(&c);
    match p {
        Pending::Data(_) => c == 354 || refused,
        Pending::DataEnd(_) | Pending::Mail(_) | Pending::Rcpt(_) => {
            refused || (200..300).contains(&c) && !matches!(c, 220 | 221)
        }
        Pending::Quit => c == 221 || refused,
        _ => c != 354,
    }
}

impl SmtpSession {
    /// A sequence found in a DATA body at `meta`.
    pub(super) fn smuggle_in_data(&mut self, seq: Smuggle, txn: Option<usize>, meta: EventMeta) {
        let fact = self.add_smuggle(seq, false, txn, meta);
        if self.fork.is_some() {
            // A second sequence before the replies settled the first: its reading is not
            // followed.
            if let Some(f) = fact.and_then(|i| self.facts.smuggling.get_mut(i)) {
                f.reaction = Some(Reaction::Unknown);
                // Inside what is already a suspect body: reported as it is.
                f.content_after = true;
            }
            return;
        }
        let mut shadow = Shadow::new(fact);
        // Commands still unanswered (a client that sent the body without waiting for 354)
        // are answered first in either reading.
        for p in self.pending.iter().copied() {
            shadow.expect(p, false);
        }
        shadow.expect(Pending::DataEnd(txn), false);
        let body_bytes_at_fork = txn
            .and_then(|i| self.facts.txns.get(i))
            .map_or(0, |t| t.body_bytes);
        self.fork = Some(Box::new(Fork {
            shadow,
            real_end: false,
            body_bytes_at_fork,
            replies: 0,
        }));
    }

    /// A sequence found in a BDAT chunk: the envelope after it is read to the end of the
    /// transaction's chunks.
    pub(super) fn smuggle_in_bdat(&mut self, seq: Smuggle, txn: Option<usize>, meta: EventMeta) {
        let fact = self.add_smuggle(seq, true, txn, meta);
        if self.bdat_shadow.is_none() {
            self.bdat_shadow = Some(Box::new(Shadow::new(fact)));
        }
    }

    fn add_smuggle(
        &mut self,
        seq: Smuggle,
        bdat: bool,
        txn: Option<usize>,
        meta: EventMeta,
    ) -> Option<usize> {
        if self.facts.smuggling.len() >= MAX_SMUGGLES {
            self.facts.stats.dropped_records += 1;
            return None;
        }
        self.facts.smuggling.push(SmuggleFact {
            seq,
            meta,
            bdat,
            commands_follow: None,
            mail_from: None,
            rcpt_to: Vec::new(),
            reaction: None,
            end_reply: None,
            txn,
            content_after: false,
        });
        Some(self.facts.smuggling.len() - 1)
    }

    /// DATA body bytes after an undecided sequence, up to the real end of data.
    pub(super) fn shadow_body(&mut self, data: &[u8], meta: EventMeta) {
        if let Some(fork) = self.fork.as_mut().filter(|f| !f.real_end) {
            fork.shadow.feed(data, &mut self.facts.smuggling, meta);
        }
    }

    /// BDAT chunk bytes after a sequence.
    pub(super) fn shadow_bdat(&mut self, data: &[u8], meta: EventMeta) {
        if let Some(s) = self.bdat_shadow.as_mut() {
            s.feed(data, &mut self.facts.smuggling, meta);
        }
    }

    /// The transaction's last BDAT chunk was sent.
    pub(super) fn bdat_done(&mut self) {
        self.bdat_shadow = None;
        self.bdat_scan = DotScanner::default();
    }

    /// The real end of data came; call after pushing its `DataEnd`.
    pub(super) fn shadow_real_end(&mut self) {
        if let Some(fork) = self.fork.as_mut().filter(|f| !f.real_end) {
            fork.shadow.real_end();
            fork.real_end = true;
        }
    }

    /// A command after the real end of data: both readings expect its reply.
    pub(super) fn shadow_command(&mut self, p: Pending) {
        if let Some(fork) = self.fork.as_mut().filter(|f| f.real_end) {
            fork.shadow.expect(p, false);
        }
    }

    /// A reply begins: when it fits one reading only, that reading is the server's.
    pub(super) fn decide_fork(&mut self, r: &ReplyLine<'_>) {
        let Some(mut fork) = self.fork.take() else {
            return;
        };
        let idx = fork.shadow.fact;
        fork.replies += 1;
        if fork.replies == 1 {
            if let Some(f) = idx.and_then(|i| self.facts.smuggling.get_mut(i)) {
                f.end_reply = Some(r.code.0);
            }
        }
        let bare_refusal =
            r.code.0 >= 500 && r.text.windows(4).any(|w| w.eq_ignore_ascii_case(b"bare"));
        let a = !fork.shadow.lost && fits(r.code, fork.shadow.expect.front().map(|e| e.0));
        let b = fits(r.code, self.pending.front().copied());
        let reaction = match (a, b) {
            _ if bare_refusal => Reaction::Rejected,
            // The other reading was not followed to its end: the replies cannot tell.
            _ if fork.shadow.lost && r.code.0 >= 400 && fork.replies == 1 => Reaction::Rejected,
            _ if fork.shadow.lost => Reaction::Unknown,
            (true, false) if r.code.0 < 400 => {
                self.accept_fork(*fork);
                Reaction::AcceptedAsEnd
            }
            // Refused where only the early end expects a reply: the server ended the body
            // there and refused the message; what follows is read as before.
            (true, false) => Reaction::Rejected,
            (false, true) if r.code.0 >= 400 && fork.replies == 1 => Reaction::Rejected,
            (false, true) => Reaction::TreatedAsBody,
            (true, true) => {
                fork.shadow.expect.pop_front();
                self.fork = Some(fork);
                return;
            }
            (false, false) => Reaction::Unknown,
        };
        if let Some(f) = idx.and_then(|i| self.facts.smuggling.get_mut(i)) {
            f.reaction = Some(reaction);
        }
    }

    /// The server closed its side with the readings undecided: when the body reading had
    /// every reply it expected and the other still waits for some, the server read on.
    pub(super) fn settle_fork_at_close(&mut self) {
        let Some(fork) = self.fork.take() else {
            return;
        };
        if fork.real_end
            && !fork.shadow.lost
            && self.pending.is_empty()
            && !fork.shadow.expect.is_empty()
        {
            if let Some(f) = fork
                .shadow
                .fact
                .and_then(|i| self.facts.smuggling.get_mut(i))
            {
                f.reaction.get_or_insert(match f.end_reply {
                    Some(c) if c >= 400 => Reaction::Rejected,
                    _ => Reaction::TreatedAsBody,
                });
            }
        }
    }

    /// The server honoured the sequence: from here the session follows that reading.
    fn accept_fork(&mut self, fork: Fork) {
        let Fork {
            shadow,
            real_end,
            body_bytes_at_fork,
            ..
        } = fork;
        let carrier = shadow.expect.front().and_then(|e| match e.0 {
            Pending::DataEnd(t) => t,
            _ => None,
        });
        if let Some(t) = carrier.and_then(|i| self.facts.txns.get_mut(i)) {
            t.body_bytes = body_bytes_at_fork;
        }
        let mut smuggled = None;
        if let Some(t) = shadow.txn {
            self.facts.transactions = self.facts.transactions.saturating_add(1);
            self.facts.recipients = self.facts.recipients.saturating_add(t.recipients);
            if t.body.is_some() {
                self.facts.messages += 1;
            }
            if self.facts.txns.len() < super::session::MAX_TRANSACTIONS {
                self.facts.txns.push(t);
                smuggled = Some(self.facts.txns.len() - 1);
            } else {
                self.facts.stats.dropped_records += 1;
            }
        }
        self.facts.stats.commands += u64::from(shadow.lines.min(MAX_SHADOW_LINES));
        self.pending = shadow
            .expect
            .iter()
            .map(|&(p, mine)| if mine { p.with_txn(smuggled) } else { p })
            .collect();
        if real_end {
            return;
        }
        // The client is still sending what the server reads as commands or the smuggled body.
        match (self.client_mode, shadow.mode) {
            (ClientMode::Body { scan, .. }, ShadowMode::Body) => {
                self.client_mode = ClientMode::Body {
                    scan,
                    txn: smuggled,
                };
                self.open_txn = smuggled;
            }
            (ClientMode::Body { .. }, _) => {
                self.client_mode = ClientMode::Commands;
                self.client = shadow.reader;
                self.open_txn = smuggled;
            }
            _ => {}
        }
    }
}
