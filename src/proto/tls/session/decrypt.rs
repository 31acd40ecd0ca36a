//! Decryption of a session whose secrets are in the run's key store: keys per direction
//! from the ServerHello on (TLS 1.3) or from each side's ChangeCipherSpec (TLS 1.2 and
//! older), the record bodies collected while they arrive, and what their plaintext says:
//! TLS 1.3 handshake messages (the certificate, Finished, KeyUpdate), alerts by name, and
//! application data handed to the caller through [`TlsSession::take_plaintext`].
//!
//! Only sessions with keys pay for any of this: without them no body is copied.

use super::early::{Early, EarlyRecord};
use super::keys::{self, tls13_keys};
use super::*;
use crate::proto::tls::decrypt::schedule::{self, KeyBytes};
use crate::proto::tls::decrypt::{self as dec, RecordKeys, Suite};
use crate::proto::tls::keylog::{ClientSecrets, KeySource};

/// Decrypted application bytes held per direction until the caller takes them; past it
/// they are counted and dropped (the caller takes them after every chunk it feeds).
pub(super) const MAX_PLAIN: usize = 1 << 20;

/// What decryption knows of a session.
#[derive(Debug)]
pub(super) struct Decryption {
    secrets: ClientSecrets,
    pub(super) source: KeySource,
    /// The TLS 1.3 suite (its hash drives key updates).
    suite: Option<Suite>,
    tls13: bool,
    /// TLS 1.2 and older: the client random of a renegotiation's ClientHello, until its
    /// ServerHello says how to derive the keys.
    reneg_random: Option<[u8; 32]>,
    /// TLS 1.3: the ClientHello offered early data, and the 0-RTT state when the key log has
    /// its secret.
    early_offered: bool,
    pub(super) early: Option<Box<Early>>,
    pub(super) dirs: [DirDecrypt; 2],
}

#[derive(Debug, Default)]
pub(super) struct DirDecrypt {
    pub(super) keys: Option<RecordKeys>,
    /// TLS 1.2 and older: keys that take effect at this side's ChangeCipherSpec.
    next: Option<RecordKeys>,
    /// `next` comes from a renegotiation (counted when it takes effect).
    next_renegotiated: bool,
    renegotiations: u64,
    /// TLS 1.3: the traffic secret in use after the handshake, for KeyUpdate.
    secret: Option<KeyBytes>,
    /// The body of the record being collected, when it is one to decrypt.
    body: Vec<u8>,
    collecting: bool,
    /// Decrypted handshake bytes not yet a whole message.
    hs: Vec<u8>,
    plain: Vec<u8>,
    pub(super) ok: u64,
    failed: u64,
    plain_bytes: u64,
    dropped: u64,
    finished: bool,
}

impl DirDecrypt {
    /// Application bytes for the caller, up to [`MAX_PLAIN`] held (the rest counted).
    pub(super) fn push_plain(&mut self, content: &[u8]) {
        self.plain_bytes += content.len() as u64;
        if self.plain.len() + content.len() <= MAX_PLAIN {
            self.plain.extend_from_slice(content);
        } else {
            self.dropped += content.len() as u64;
        }
    }
}

impl Decryption {
    pub(super) fn new(secrets: ClientSecrets, source: KeySource, tls13: bool) -> Self {
        Decryption {
            secrets,
            source,
            suite: None,
            tls13,
            reneg_random: None,
            early_offered: false,
            early: None,
            dirs: [DirDecrypt::default(), DirDecrypt::default()],
        }
    }

    /// Records of `dir` decrypted and authenticated, those that failed, the application
    /// bytes recovered, and the renegotiated keys this side switched to.
    pub(super) fn counts(&self, dir: Direction) -> (u64, u64, u64, u64) {
        self.dirs.get(dir.index()).map_or((0, 0, 0, 0), |d| {
            (d.ok, d.failed, d.plain_bytes, d.renegotiations)
        })
    }

    pub(super) fn any_decrypted(&self) -> bool {
        self.dirs.iter().any(|d| d.ok > 0)
    }
}

impl TlsSession {
    /// After the ServerHello: look the client random up and derive what can be derived.
    pub(super) fn start_decryption(&mut self) {
        let (Some(store), Some((ch, _)), Some((sh, _))) =
            (&self.ctx.keys, &self.client_hello, &self.server_hello)
        else {
            return;
        };
        // Keys from a ClientHello's early data are replaced; others are final.
        let early = match self.dec.take() {
            Some(mut d) if d.early.is_some() => Some((d.early.take(), d.dirs[0].failed)),
            Some(d) => {
                self.dec = Some(d);
                return;
            }
            None => None,
        };
        if ch.sslv2 {
            return;
        }
        let Some(secrets) = store.lookup(&ch.random) else {
            return;
        };
        let source = secrets.source.unwrap_or(KeySource::Keylog);
        let mut d = Decryption::new(secrets, source, sh.selected_version == Version::TLS13);
        d.early_offered = ch.early_data;
        if d.tls13 {
            let Some(suite) = dec::tls13_suite(sh.cipher) else {
                return;
            };
            d.suite = Some(suite);
            let keys = |s: &Option<crate::proto::tls::keylog::Secret>| {
                s.as_ref().and_then(|s| tls13_keys(suite, s.bytes()))
            };
            d.dirs[0].keys = keys(&d.secrets.client_handshake);
            d.dirs[1].keys = keys(&d.secrets.server_handshake);
            // Early data may come first: the client's handshake keys wait for its end.
            if let Some((Some(mut e), failed)) = early {
                e.handshake = d.dirs[0].keys.take();
                e.keep_suite(sh.cipher);
                d.early = Some(e);
                d.dirs[0].failed = failed;
            }
        } else if let Some(master) = &d.secrets.master
            && let Some([c, s]) = keys::tls12_keys(master.bytes(), &ch.random, sh)
        {
            d.dirs[0].next = c;
            d.dirs[1].next = s;
        }
        if d.early.is_some() || d.dirs.iter().any(|x| x.keys.is_some() || x.next.is_some()) {
            self.dec = Some(Box::new(d));
        }
    }

    /// A record starts: collect its body when it is to be decrypted.
    #[inline]
    pub(super) fn decrypt_record_start(&mut self, dir: Direction, hdr: RecordHeader) -> bool {
        let Some(d) = self.dec.as_mut() else {
            return false;
        };
        let tls13 = d.tls13;
        let Some(dd) = d.dirs.get_mut(dir.index()) else {
            return false;
        };
        if !tls13 && hdr.content_type == ContentType::CHANGE_CIPHER_SPEC {
            // A renegotiation installs new keys only if the key log had them: without them
            // the old ones stay, and the records that follow fail and are counted.
            if let Some(next) = dd.next.take() {
                dd.keys = Some(next);
                if std::mem::take(&mut dd.next_renegotiated) {
                    dd.renegotiations += 1;
                }
            }
            return false;
        }
        let early = dir == Direction::ToServer && d.early.is_some();
        let Some(dd) = d.dirs.get_mut(dir.index()) else {
            return false;
        };
        dd.collecting = (dd.keys.is_some() || early)
            && hdr.content_type != ContentType::CHANGE_CIPHER_SPEC
            && (!tls13 || hdr.content_type == ContentType::APPLICATION_DATA);
        dd.body.clear();
        dd.collecting
    }

    #[inline]
    pub(super) fn decrypt_record_piece(&mut self, dir: Direction, piece: &[u8]) {
        if let Some(dd) = self
            .dec
            .as_mut()
            .and_then(|d| d.dirs.get_mut(dir.index()))
            .filter(|dd| dd.collecting)
        {
            dd.body.extend_from_slice(piece);
        }
    }

    /// A collected record is whole: decrypt it and act on what it holds. Returns whether
    /// the record was one this session decrypts (then the caller does nothing more with it).
    #[inline]
    pub(super) fn decrypt_record_end(
        &mut self,
        dir: Direction,
        hdr: RecordHeader,
        meta: EventMeta,
    ) -> bool {
        let Some(dd) = self.dec.as_mut().and_then(|d| d.dirs.get_mut(dir.index())) else {
            return false;
        };
        if !std::mem::take(&mut dd.collecting) {
            return false;
        }
        let mut body = std::mem::take(&mut dd.body);
        let [v0, v1] = hdr.version.0.to_be_bytes();
        let [l0, l1] = hdr.len.to_be_bytes();
        let header = [hdr.content_type.0, v0, v1, l0, l1];
        if dir == Direction::ToServer
            && let EarlyRecord::Done = self.early_record(header, &body)
        {
            self.recycle(dir, body);
            return true;
        }
        let Some(d) = self.dec.as_mut() else {
            return false;
        };
        // Early data the server skipped (RFC 8446 section 4.2.10) is not the handshake
        // keys' failure: before the client's Finished such a record is passed over.
        let skip_early = d.early_offered && d.tls13 && !d.dirs[0].finished;
        let Some(dd) = d.dirs.get_mut(dir.index()) else {
            return false;
        };
        let plain = dd.keys.as_mut().and_then(|k| k.decrypt(header, &mut body));
        let Some(p) = plain else {
            if skip_early && dir == Direction::ToServer {
                self.recycle(dir, body);
                return true;
            }
            dd.failed += 1;
            dd.body = body;
            dd.body.clear();
            if hdr.content_type == ContentType::ALERT {
                self.push_alert(AlertRecord {
                    from: sender(dir),
                    level: ReportAlertLevel::Encrypted,
                    description: None,
                    frame: meta.frame,
                    frame_capture: None,
                });
            }
            return true;
        };
        dd.ok += 1;
        let content = body.get(p.start..p.end).unwrap_or_default();
        match ContentType(p.content_type) {
            ContentType::APPLICATION_DATA => dd.push_plain(content),
            ContentType::ALERT => {
                let pairs: Vec<(u8, u8)> = content
                    .chunks_exact(2)
                    .filter_map(|p| match p {
                        [a, b] => Some((*a, *b)),
                        _ => None,
                    })
                    .collect();
                for (level, desc) in pairs {
                    self.on_clear_alert(dir, AlertLevel(level), AlertDescription(desc), meta);
                }
            }
            ContentType::HANDSHAKE => {
                let mut buf = std::mem::take(&mut dd.hs);
                if buf.len() + content.len() <= MAX_MESSAGE + 4 {
                    buf.extend_from_slice(content);
                } else {
                    buf.clear();
                }
                let mut at = 0;
                while let Some((ty, msg_body, total)) =
                    buf.get(at..).and_then(super::messages::whole_message)
                {
                    let msg_body = msg_body.to_vec();
                    at += total;
                    self.on_decrypted_message(dir, HandshakeType(ty), &msg_body, meta);
                }
                buf.drain(..at.min(buf.len()));
                if let Some(dd) = self.dec.as_mut().and_then(|d| d.dirs.get_mut(dir.index())) {
                    dd.hs = buf;
                }
            }
            _ => {}
        }
        self.recycle(dir, body);
        true
    }

    /// The record buffer goes back to its direction for the next record.
    fn recycle(&mut self, dir: Direction, mut body: Vec<u8>) {
        if let Some(dd) = self.dec.as_mut().and_then(|d| d.dirs.get_mut(dir.index())) {
            body.clear();
            dd.body = body;
        }
    }

    fn on_decrypted_message(
        &mut self,
        dir: Direction,
        ty: HandshakeType,
        body: &[u8],
        meta: EventMeta,
    ) {
        let Some(d) = self.dec.as_mut() else {
            return;
        };
        let Some(suite) = d.suite.filter(|_| d.tls13) else {
            self.on_renegotiation_message(dir, ty, body);
            return;
        };
        let tls13 = true;
        match ty {
            // EncryptedExtensions: whether the server took the early data.
            HandshakeType(8) if dir == Direction::ToClient && d.early.is_some() => {
                self.early_answer(body);
            }
            HandshakeType::CERTIFICATE
                if tls13 && dir == Direction::ToClient && !self.cert_seen =>
            {
                self.cert_seen = true;
                match handshake::parse_tls13_certificate_chain(body) {
                    Ok(chain) => self.set_certificate(&chain, meta),
                    Err(e) => self.note(format!("to_client: {e} at frame {}", meta.frame)),
                }
            }
            // Finished: TLS 1.3 switches this side to its application traffic secret.
            HandshakeType(20) => {
                let first = d.dirs.get(dir.index()).is_some_and(|dd| !dd.finished);
                if tls13 && first {
                    let secret = match dir {
                        Direction::ToServer => d.secrets.client_traffic.clone(),
                        Direction::ToClient => d.secrets.server_traffic.clone(),
                    };
                    if let Some(dd) = d.dirs.get_mut(dir.index()) {
                        dd.keys = secret.as_ref().and_then(|s| tls13_keys(suite, s.bytes()));
                        dd.secret = secret.map(|s| KeyBytes::new(s.bytes().to_vec()));
                    }
                }
                if let Some(dd) = d.dirs.get_mut(dir.index()) {
                    dd.finished = true;
                }
                if tls13 && dir == Direction::ToServer {
                    self.finished_decrypted(meta);
                }
            }
            // KeyUpdate (RFC 8446 section 4.6.3): this side's next secret.
            HandshakeType(24) if tls13 => {
                if let Some(dd) = d.dirs.get_mut(dir.index())
                    && let Some(next) = dd
                        .secret
                        .as_ref()
                        .and_then(|s| schedule::next_traffic_secret(suite.hash, s))
                {
                    dd.keys = tls13_keys(suite, &next);
                    dd.secret = Some(next);
                }
            }
            _ => {}
        }
    }

    /// TLS 1.2 and older: a handshake message inside the encrypted stream belongs to a
    /// renegotiation (RFC 5746). Its ClientHello brings a new client random, its ServerHello
    /// the server random and suite; with the key log's master secret for that client random
    /// both sides get new keys, each taking effect at that side's next ChangeCipherSpec.
    fn on_renegotiation_message(&mut self, dir: Direction, ty: HandshakeType, body: &[u8]) {
        let Some(d) = self.dec.as_mut() else {
            return;
        };
        match (dir, ty) {
            (Direction::ToServer, HandshakeType::CLIENT_HELLO) => {
                d.reneg_random = handshake::parse_client_hello(body)
                    .ok()
                    .filter(|ch| !ch.sslv2)
                    .map(|ch| ch.random);
            }
            (Direction::ToClient, HandshakeType::SERVER_HELLO) => {
                let (Some(random), Some(store)) = (d.reneg_random.take(), &self.ctx.keys) else {
                    return;
                };
                let Ok(sh) = handshake::parse_server_hello(body) else {
                    return;
                };
                let Some(master) = store.lookup(&random).and_then(|s| s.master) else {
                    return;
                };
                if let Some(pair) = keys::tls12_keys(master.bytes(), &random, &sh) {
                    for (dd, k) in d.dirs.iter_mut().zip(pair) {
                        dd.next_renegotiated = k.is_some();
                        dd.next = k;
                    }
                }
            }
            _ => {}
        }
    }

    /// The client's TLS 1.3 Finished decrypted and authenticated: the handshake completed,
    /// whatever the record sizes suggested.
    fn finished_decrypted(&mut self, meta: EventMeta) {
        let open = matches!(
            self.outcome,
            Outcome::Pending
                | Outcome::Complete {
                    confidence: Confidence::Likely,
                    ..
                }
        );
        if open {
            let meta = match self.outcome {
                Outcome::Complete { meta, .. } => meta,
                _ => meta,
            };
            self.outcome = Outcome::Complete {
                rule: "finished_decrypted",
                confidence: Confidence::Certain,
                meta,
            };
        }
    }

    /// Decrypted application bytes of `dir` since the last call.
    pub fn take_plaintext(&mut self, dir: Direction) -> Vec<u8> {
        self.dec
            .as_mut()
            .and_then(|d| d.dirs.get_mut(dir.index()))
            .map(|dd| std::mem::take(&mut dd.plain))
            .unwrap_or_default()
    }

    /// Whether this session has keys (and so may hand out plaintext).
    pub fn has_keys(&self) -> bool {
        self.dec.is_some()
    }
}
