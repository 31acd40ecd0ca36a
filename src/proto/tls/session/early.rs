//! TLS 1.3 0-RTT early data (RFC 8446 section 4.2.10) with `CLIENT_EARLY_TRAFFIC_SECRET`.
//!
//! The client's early records follow its ClientHello, usually before the ServerHello is
//! captured, so they are opened by trial with the early secret under each suite the client
//! offered whose hash fits the secret (the PSK's suite is one of them); after the ServerHello
//! only the selected suite remains. Their plaintext is held until the server's answer is
//! known: early_data in its EncryptedExtensions (or the client's EndOfEarlyData) releases it
//! to the SMTP session, a server that refused it (RFC 8446: it skips what it cannot decrypt)
//! means the bytes were never read, so they are dropped and counted neither as decrypted nor
//! as undecryptable. The first client record the early keys do not open ends the early data:
//! the client's handshake keys take over from it.

use super::decrypt::{Decryption, MAX_PLAIN};
use super::keys::tls13_keys;
use super::*;
use crate::proto::tls::decrypt::{self as dec, RecordKeys};
use crate::proto::tls::handshake::ext;
use crate::proto::tls::keylog::KeySource;

/// 0-RTT state of the client's direction.
#[derive(Debug, Default)]
pub(super) struct Early {
    /// Keys from the early secret, one per candidate suite.
    candidates: Vec<(u16, RecordKeys)>,
    /// The client's handshake keys, once the ServerHello is seen, waiting for the early
    /// data to end.
    pub(super) handshake: Option<RecordKeys>,
    /// The server's answer, once known.
    accepted: Option<bool>,
    /// Early plaintext held until the answer is known, and its records.
    held: Vec<u8>,
    held_records: u64,
}

/// What became of a client record while early data may flow.
pub(super) enum EarlyRecord {
    /// Opened with the early keys; acted on here.
    Done,
    /// Not early data: decrypt it the usual way (the body is intact).
    NotEarly,
}

impl TlsSession {
    /// After a ClientHello that offers early data: keys from the key log's early secret.
    pub(super) fn start_early_decryption(&mut self) {
        let (Some(store), Some((ch, _))) = (&self.ctx.keys, &self.client_hello) else {
            return;
        };
        if !ch.early_data || ch.sslv2 || self.dec.is_some() {
            return;
        }
        let Some(secrets) = store.lookup(&ch.random) else {
            return;
        };
        let Some(secret) = secrets.client_early.clone() else {
            return;
        };
        let candidates: Vec<(u16, RecordKeys)> = ch
            .ciphers
            .iter()
            .filter_map(|&c| u16::try_from(c).ok())
            .filter_map(|c| Some((c, dec::tls13_suite(c)?)))
            .filter(|(_, s)| s.hash.output_len() == secret.bytes().len())
            .filter_map(|(c, s)| Some((c, tls13_keys(s, secret.bytes())?)))
            .collect();
        if candidates.is_empty() {
            return;
        }
        let source = secrets.source.unwrap_or(KeySource::Keylog);
        let mut d = Decryption::new(secrets, source, true);
        d.early = Some(Box::new(Early {
            candidates,
            ..Early::default()
        }));
        self.dec = Some(Box::new(d));
    }

    /// A whole client record while early data may flow: try the early keys on a copy.
    pub(super) fn early_record(&mut self, header: [u8; 5], body: &[u8]) -> EarlyRecord {
        let Some(e) = self.dec.as_mut().and_then(|d| d.early.as_mut()) else {
            return EarlyRecord::NotEarly;
        };
        let mut opened = None;
        for (i, (_, keys)) in e.candidates.iter_mut().enumerate() {
            let mut copy = body.to_vec();
            if let Some(p) = keys.decrypt(header, &mut copy) {
                opened = Some((i, p, copy));
                break;
            }
        }
        let Some((i, p, copy)) = opened else {
            // Not early data. Before the ServerHello there are no other keys to try: the
            // caller counts it. After it, the handshake keys take over.
            if e.handshake.is_some() {
                self.end_early(false);
            }
            return EarlyRecord::NotEarly;
        };
        // The suite is settled by the first record it opens.
        let keep = e.candidates.swap_remove(i);
        e.candidates = vec![keep];
        let content = copy.get(p.start..p.end).unwrap_or_default();
        match ContentType(p.content_type) {
            ContentType::APPLICATION_DATA => match e.accepted {
                Some(true) => {
                    if let Some(dd) = self.dec.as_mut().and_then(|d| d.dirs.first_mut()) {
                        dd.push_plain(content);
                        dd.ok += 1;
                    }
                }
                Some(false) => {}
                None => {
                    if e.held.len() + content.len() <= MAX_PLAIN {
                        e.held.extend_from_slice(content);
                        e.held_records += 1;
                    }
                }
            },
            // EndOfEarlyData (type 5) is sent only when the server accepted.
            ContentType::HANDSHAKE if content.first() == Some(&5) => {
                if let Some(dd) = self.dec.as_mut().and_then(|d| d.dirs.first_mut()) {
                    dd.ok += 1;
                }
                self.end_early(true);
            }
            _ => {}
        }
        EarlyRecord::Done
    }

    /// The server's answer to the early data (its EncryptedExtensions).
    pub(super) fn early_answer(&mut self, encrypted_extensions: &[u8]) {
        let accepted = extension_types(encrypted_extensions).any(|t| t == ext::EARLY_DATA);
        self.settle_early(accepted);
    }

    /// The early data is over: the client's handshake keys take over.
    fn end_early(&mut self, accepted: bool) {
        self.settle_early(accepted);
        if let Some(d) = self.dec.as_mut()
            && let Some(e) = d.early.take()
            && let Some(dd) = d.dirs.first_mut()
        {
            dd.keys = e.handshake;
        }
    }

    /// Release or drop the held early plaintext, once.
    fn settle_early(&mut self, accepted: bool) {
        let Some(d) = self.dec.as_mut() else {
            return;
        };
        let Some(e) = d.early.as_mut().filter(|e| e.accepted.is_none()) else {
            return;
        };
        e.accepted = Some(accepted);
        let held = std::mem::take(&mut e.held);
        let records = std::mem::take(&mut e.held_records);
        if accepted && let Some(dd) = d.dirs.first_mut() {
            dd.push_plain(&held);
            dd.ok += records;
        }
    }
}

/// Extension types of an EncryptedExtensions body (RFC 8446 section 4.3.1).
fn extension_types(body: &[u8]) -> impl Iterator<Item = u16> + '_ {
    let list = body.get(2..).unwrap_or_default();
    let mut at = 0usize;
    std::iter::from_fn(move || {
        let ty = u16::from_be_bytes([*list.get(at)?, *list.get(at + 1)?]);
        let len = u16::from_be_bytes([*list.get(at + 2)?, *list.get(at + 3)?]) as usize;
        at += 4 + len;
        Some(ty)
    })
}

impl Early {
    /// After the ServerHello: only its suite can be the PSK's (when the server accepts).
    pub(super) fn keep_suite(&mut self, cipher: u16) {
        self.candidates.retain(|(c, _)| *c == cipher);
    }
}

#[cfg(test)]
mod early_tests {
    use super::extension_types;

    #[test]
    fn encrypted_extensions_types_and_truncation() {
        // server_name (empty), early_data (empty), ALPN with "smtp".
        let body = [
            0, 17, 0, 0, 0, 0, 0, 42, 0, 0, 0, 16, 0, 7, 0, 5, 4, b's', b'm', b't', b'p',
        ];
        assert_eq!(extension_types(&body).collect::<Vec<_>>(), [0, 42, 16]);
        assert_eq!(extension_types(&body[..10]).collect::<Vec<_>>(), [0, 42]);
        assert_eq!(extension_types(&body[..9]).collect::<Vec<_>>(), [0]);
        assert_eq!(extension_types(&[]).count(), 0);
        assert_eq!(extension_types(&[0, 4, 0, 42, 0]).count(), 0);
    }
}
