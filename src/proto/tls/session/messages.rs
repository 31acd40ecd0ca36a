//! Handshake message reassembly (bounded) and the hello, certificate and SSLv2 messages.

use super::*;

/// Handshake message reassembly of one direction.
#[derive(Debug, Default)]
pub(super) struct HsBuf {
    pub(super) buf: Vec<u8>,
    /// Bytes of an oversized message still to skip.
    pub(super) skip: usize,
    /// Handshake bytes examined so far.
    pub(super) total: usize,
    /// Past the total cap: no more handshake parsing.
    pub(super) disabled: bool,
}

impl TlsSession {
    // ---- handshake messages ------------------------------------------------------

    /// Appends handshake-record bytes and handles every message they complete. Messages that
    /// arrive whole in one piece are handled in place, without copying.
    pub(super) fn hs_push(&mut self, dir: Direction, piece: &[u8], meta: EventMeta) {
        let d = dir.index();
        let Some(s) = self.dirs.get_mut(d) else {
            return;
        };
        let mut hs = std::mem::take(&mut s.hs);
        let mut piece = piece;
        while !piece.is_empty() && !hs.disabled {
            if hs.skip > 0 {
                let n = hs.skip.min(piece.len());
                hs.skip -= n;
                piece = piece.get(n..).unwrap_or_default();
                continue;
            }
            if hs.buf.is_empty()
                && let Some((ty, body, total)) = whole_message(piece)
                && body.len() <= MAX_MESSAGE
            {
                if !count_total(&mut hs, total) {
                    self.hs_overflow(dir, meta);
                    break;
                }
                self.on_message(dir, HandshakeType(ty), body, meta);
                hs.disabled |= self.settled_meanwhile(d);
                piece = piece.get(total..).unwrap_or_default();
                continue;
            }
            // Fill the 4-byte message header first, then exactly the body it announces.
            if hs.buf.len() < 4 {
                let n = (4 - hs.buf.len()).min(piece.len());
                hs.buf.extend_from_slice(piece.get(..n).unwrap_or_default());
                piece = piece.get(n..).unwrap_or_default();
                if hs.buf.len() < 4 {
                    break;
                }
            }
            let Some((ty, body_len)) = message_header(&hs.buf) else {
                break;
            };
            if body_len > MAX_MESSAGE {
                // Skip the oversized message; keep parsing after it.
                hs.skip = body_len - (hs.buf.len() - 4);
                hs.buf.clear();
                self.hs_overflow(dir, meta);
                continue;
            }
            let need = 4 + body_len - hs.buf.len();
            let n = need.min(piece.len());
            hs.buf.extend_from_slice(piece.get(..n).unwrap_or_default());
            piece = piece.get(n..).unwrap_or_default();
            if hs.buf.len() == 4 + body_len {
                if !count_total(&mut hs, 4 + body_len) {
                    self.hs_overflow(dir, meta);
                    break;
                }
                let buf = std::mem::take(&mut hs.buf);
                self.on_message(
                    dir,
                    HandshakeType(ty),
                    buf.get(4..).unwrap_or_default(),
                    meta,
                );
                hs.disabled |= self.settled_meanwhile(d);
                hs.buf = buf;
                hs.buf.clear();
            }
        }
        if let Some(s) = self.dirs.get_mut(d) {
            // `on_message` may have settled this side meanwhile; keep that decision.
            if s.hs.disabled {
                hs.buf = Vec::new();
                hs.disabled = true;
            }
            s.hs = hs;
        }
    }

    /// `on_message` settled this side (a TLS 1.3 ServerHello: what follows is encrypted)
    /// while `hs_push` holds its buffer. The rest of the piece must then be left alone, as
    /// it would be had it come in a later call: otherwise encrypted bytes in the same
    /// segment were parsed as handshake messages (and counted as overflows).
    pub(super) fn settled_meanwhile(&self, d: usize) -> bool {
        self.dirs.get(d).is_some_and(|s| s.hs.disabled)
    }

    pub(super) fn hs_overflow(&mut self, dir: Direction, meta: EventMeta) {
        if let Some(s) = self.dirs.get_mut(dir.index()) {
            s.stats.handshake_overflow += 1;
        }
        self.note(format!(
            "{}: handshake message over the reassembly cap at frame {}",
            dir_str(dir),
            meta.frame
        ));
    }

    pub(super) fn on_message(
        &mut self,
        dir: Direction,
        ty: HandshakeType,
        body: &[u8],
        meta: EventMeta,
    ) {
        match (dir, ty) {
            (Direction::ToServer, HandshakeType::CLIENT_HELLO) => {
                self.client_hellos += 1;
                if self.client_hello.is_some() {
                    // The second ClientHello after a HelloRetryRequest: the first one
                    // fingerprints the client.
                    return;
                }
                match handshake::parse_client_hello(body) {
                    Ok(ch) => self.set_client_hello(ch, meta),
                    Err(e) => self.note(format!("to_server: {e} at frame {}", meta.frame)),
                }
            }
            (Direction::ToClient, HandshakeType::SERVER_HELLO) => {
                match handshake::parse_server_hello(body) {
                    Ok(sh) if sh.hello_retry_request => self.hello_retry_request = true,
                    Ok(sh) if self.server_hello.is_none() => self.set_server_hello(sh, meta),
                    Ok(_) => self.note(format!(
                        "to_client: second ServerHello at frame {}",
                        meta.frame
                    )),
                    Err(e) => self.note(format!("to_client: {e} at frame {}", meta.frame)),
                }
            }
            // Draft-era HelloRetryRequest had its own type (draft-ietf-tls-tls13-18).
            (Direction::ToClient, HandshakeType(6)) => {
                let _ = handshake::parse_draft_hello_retry_request(body);
                self.hello_retry_request = true;
            }
            (Direction::ToClient, HandshakeType::CERTIFICATE) if !self.cert_seen => {
                self.cert_seen = true;
                match handshake::parse_certificate_chain(body) {
                    Ok(chain) => self.set_certificate(&chain, meta),
                    Err(e) => self.note(format!("to_client: {e} at frame {}", meta.frame)),
                }
            }
            _ => {}
        }
    }

    pub(super) fn set_client_hello(&mut self, ch: ClientHello, meta: EventMeta) {
        self.ja3 = Some(ja3::ja3(&ch));
        self.ja4 = Some(ja4::ja4(&ch));
        self.client_hello = Some((ch, meta));
        self.start_early_decryption();
        if self.ctx.starttls_refused.is_some() && self.outcome == Outcome::Pending {
            // The server refused STARTTLS and still reads SMTP commands: this handshake
            // cannot complete (it answers the ClientHello as a bad command, or not at all).
            self.outcome = Outcome::Failed(Failure {
                rule: "client_hello_after_starttls_refused",
                confidence: Confidence::Certain,
                meta,
                sender: Some(Sender::Client),
                description: None,
                stage: self.stage(),
            });
        }
    }

    pub(super) fn set_server_hello(&mut self, sh: ServerHello, meta: EventMeta) {
        self.ja3s = Some(ja3::ja3s(&sh));
        let tls13 = sh.selected_version.is_tls13_family();
        self.server_hello = Some((sh, meta));
        self.start_decryption();
        if tls13 && let Some(s) = self.dirs.get_mut(Direction::ToClient.index()) {
            // Everything the server sends after its ServerHello is encrypted.
            s.keys_changed = true;
            s.settle_handshake();
        }
    }

    pub(super) fn set_certificate(&mut self, chain: &[&[u8]], meta: EventMeta) {
        let Some(leaf) = chain.first() else {
            return;
        };
        let host = self
            .client_hello
            .as_ref()
            .and_then(|(ch, _)| ch.sni.as_deref())
            .or(self.ctx.banner_host.as_deref());
        let info = match self.certs.as_ref().and_then(|m| m.lock().ok()) {
            Some(mut memo) => memo.inspect(leaf, chain.len(), host, meta.ts),
            None => cert::inspect(leaf, chain.len(), host, meta.ts),
        };
        match info {
            Some(info) => self.certificate = Some((info, meta)),
            None => self.note(format!(
                "to_client: leaf certificate does not parse at frame {}",
                meta.frame
            )),
        }
    }

    // ---- SSLv2 -------------------------------------------------------------------

    pub(super) fn on_v2_record_start(
        &mut self,
        dir: Direction,
        len: usize,
        _meta: EventMeta,
    ) -> Framing {
        let Some(s) = self.dirs.get_mut(dir.index()) else {
            return Framing::Stopped;
        };
        s.v2_records += 1;
        s.stats.records += 1;
        // Only the hellos and the CLIENT-MASTER-KEY are in clear and worth reading.
        let keep = len <= MAX_SSLV2_HELLO
            && match dir {
                Direction::ToServer => s.v2_records <= 2,
                Direction::ToClient => s.v2_records == 1,
            };
        s.hs.buf.clear();
        if len == 0 {
            return Framing::Start;
        }
        Framing::V2Body {
            remaining: len,
            keep,
        }
    }

    pub(super) fn on_v2_record_end(&mut self, dir: Direction, meta: EventMeta) {
        let Some(s) = self.dirs.get_mut(dir.index()) else {
            return;
        };
        let msg = std::mem::take(&mut s.hs.buf);
        match (dir, msg.first().copied()) {
            (Direction::ToServer, Some(1)) if self.client_hello.is_none() => {
                self.client_hellos += 1;
                match handshake::parse_sslv2_client_hello(&msg) {
                    Ok(ch) => self.set_client_hello(ch, meta),
                    Err(e) => self.note(format!("to_server: {e} at frame {}", meta.frame)),
                }
            }
            // CLIENT-MASTER-KEY: msg 2, then the 3-byte CIPHER-KIND the client chose.
            (Direction::ToServer, Some(2)) => {
                if let Some(&[a, b, c]) = msg.get(1..4) {
                    self.sslv2_cipher = Some(u32::from_be_bytes([0, a, b, c]));
                }
            }
            // SERVER-HELLO: msg 4, session-id-hit, certificate type, version(2),
            // certificate length(2), cipher specs length(2), connection id length(2).
            (Direction::ToClient, Some(4)) => {
                let field = |i: usize| {
                    msg.get(i..i + 2)
                        .and_then(|b| <[u8; 2]>::try_from(b).ok())
                        .map(u16::from_be_bytes)
                };
                let (Some(version), Some(cert_len)) = (field(3), field(5)) else {
                    self.note(format!(
                        "to_client: malformed SSLv2 SERVER-HELLO at frame {}",
                        meta.frame
                    ));
                    return;
                };
                self.sslv2 = true;
                self.server_hello = Some((
                    ServerHello {
                        version: Version(version),
                        selected_version: Version::SSL2,
                        ..ServerHello::default()
                    },
                    meta,
                ));
                if let Some(der) = msg.get(11..11 + cert_len as usize) {
                    self.cert_seen = true;
                    self.set_certificate(&[der], meta);
                }
            }
            _ => {}
        }
        self.evaluate(meta);
    }
}

/// Adds `n` to the handshake bytes of a direction; false when that passes the cap.
fn count_total(hs: &mut HsBuf, n: usize) -> bool {
    hs.total = hs.total.saturating_add(n);
    if hs.total > MAX_HANDSHAKE_TOTAL {
        hs.disabled = true;
        hs.buf = Vec::new();
        return false;
    }
    true
}

/// Handshake message header (RFC 8446 section 4): type(1), length(3).
fn message_header(b: &[u8]) -> Option<(u8, usize)> {
    match b {
        [ty, a, b, c, ..] => Some((*ty, u32::from_be_bytes([0, *a, *b, *c]) as usize)),
        _ => None,
    }
}

/// A whole message at the start of `b`: (type, body, total length).
pub(super) fn whole_message(b: &[u8]) -> Option<(u8, &[u8], usize)> {
    let (ty, len) = message_header(b)?;
    let body = b.get(4..4 + len)?;
    Some((ty, body, 4 + len))
}
