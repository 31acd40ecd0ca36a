//! SMTP dialog analysis: replies, commands, capabilities, STARTTLS, AUTH, transactions, and
//! the SMTP findings.
//!
//! [`SmtpSession`] is fed each direction's bytes in order and in any chunking; `parser`
//! holds the pure line parsers, `auth` the SASL mechanisms and the redacted [`Secret`], `body`
//! the end-of-data scanner and `smuggle` the two readings of a non-standard end-of-data.
//!
//! # Findings and their severities
//!
//! | kind | severity | why |
//! | --- | --- | --- |
//! | `cleartext_credentials` | critical | PLAIN, LOGIN, XOAUTH2, OAUTHBEARER: the password or bearer token itself crossed in clear and can be replayed as it is |
//! | `smtp_smuggling` | critical | a non-standard end-of-data (`<LF>.<CR><LF>`, ...) in a DATA body that the server honoured: it will deliver the smuggled message with its forged sender |
//! | `cleartext_credentials` | high | CRAM-MD5, DIGEST-MD5, NTLM: a challenge response crossed; the password falls to an offline dictionary attack (hashcat form given with `--reveal-secrets`) |
//! | `cleartext_credentials` | medium | LOGIN where only the user name crossed (the password step never came) |
//! | `starttls_injection` | high | plaintext the client pipelined after STARTTLS before the server's (2xx) reply, or plaintext the server sent after its 2xx that answers no command: a vulnerable peer runs it inside the TLS session (CVE-2011-0411 class) |
//! | `smtp_smuggling` | high | the same sequence read as body, refused, or with an unknown outcome: a server further on may honour it |
//! | `smtp_smuggling` | medium | the sequence inside a BDAT chunk: content on this hop, a smuggled message after a relay that forwards it with DATA |
//! | `starttls_stripped` | high | an EHLO keyword that is STARTTLS overwritten (`XXXXXXXA`, `STARTTLX`), or a 500/502 "unknown command" to a STARTTLS the server had offered: signs of an active downgrade |
//! | `starttls_not_used` | medium | the server offered STARTTLS and the client sent AUTH or MAIL without it: everything after is readable, but nobody tampered |
//! | `starttls_refused` | medium | the server answered STARTTLS 4xx/5xx: the dialog went on in clear or stopped |
//! | `cleartext_auth_offered` | low | AUTH PLAIN or LOGIN advertised before TLS: a configuration weakness that only matters if a client uses it |
//! | `cleartext_mail` | low | a message body crossed without TLS: normal for much server-to-server mail, yet readable by anyone on the path |
//!
//! Findings cite the frame that proves them: the client line that carried the secret, the
//! AUTH or MAIL command sent in clear, the STARTTLS reply, the capability line, the first
//! injected line, the first body bytes.
//!
//! # Partial captures
//!
//! A line cut by a gap (a snap length, a loss) is read as far as it goes; the line after a
//! gap only if it parses from its first byte. A capture without the client's side is read
//! from the replies: each reply that answers no command seen stands for the command it alone
//! proves (`SmtpSession::infer_command`), so a `235` before TLS is `cleartext_credentials`
//! with the reply's frame, mechanism and user name unknown.

mod auth;
mod body;
mod findings;
mod line;
pub mod parser;
mod session;
mod smuggle;

pub use auth::{AuthExchange, Mechanism, Secret, SecretKind};
pub use line::MAX_LINE;
pub use session::{Signal, SmtpSession};

use crate::findings::Finding;
use crate::report::model::SmtpRecord;

/// What the session did with a chunk of bytes.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Feed {
    /// Every byte belonged to the SMTP dialog.
    Smtp,
    /// This direction switched to TLS: `data[offset..]` is the start of the TLS stream and
    /// every later byte of this direction belongs to TLS too.
    Upgrade { offset: usize },
}

impl SmtpSession {
    /// The contract view; secrets appear only when `reveal_secrets`.
    pub fn record(&self, reveal_secrets: bool) -> SmtpRecord {
        findings::record(&self.facts, reveal_secrets)
    }

    /// The contract view at the end of the session, moved out rather than copied.
    pub fn into_record(self, reveal_secrets: bool) -> SmtpRecord {
        findings::into_record(self.facts, reveal_secrets)
    }

    /// Findings so far (flow id not yet attached). Secrets appear only when `reveal_secrets`.
    pub fn findings(&self, reveal_secrets: bool) -> Vec<Finding> {
        findings::findings(&self.facts, reveal_secrets)
    }
}

#[cfg(test)]
mod tests;
