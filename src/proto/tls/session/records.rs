//! What each record means for the handshake: counters, ChangeCipherSpec, alerts in clear,
//! heartbeats, and the sizes and order of encrypted records that TLS 1.3 inference reads.

use super::*;
use framing::Small;

impl TlsSession {
    pub(super) fn on_record_start(&mut self, dir: Direction, hdr: RecordHeader, meta: EventMeta) {
        let tls13 = self.tls13_negotiated();
        let ccs_changes_keys = !tls13 && !self.hello_retry_request;
        let collecting = self.decrypt_record_start(dir, hdr);
        let d = dir.index();
        let Some(s) = self.dirs.get_mut(d) else {
            return;
        };
        s.stats.records += 1;
        match hdr.content_type {
            ContentType::HANDSHAKE if s.keys_changed => {
                s.stats.encrypted_handshake += 1;
                if !tls13 {
                    s.finished_after_ccs = true;
                }
                self.evaluate(meta);
            }
            ContentType::HANDSHAKE => s.stats.handshake += 1,
            ContentType::CHANGE_CIPHER_SPEC => {
                s.stats.change_cipher_spec += 1;
                // In TLS 1.3 a CCS is only middlebox camouflage (RFC 8446 appendix D.4).
                if ccs_changes_keys {
                    s.keys_changed = true;
                    s.settle_handshake();
                }
            }
            ContentType::ALERT => {
                s.stats.alert += 1;
                // A record being decrypted says what it is once whole.
                if !alert_in_clear(s, hdr.len) && !collecting {
                    self.push_alert(AlertRecord {
                        from: sender(dir),
                        level: ReportAlertLevel::Encrypted,
                        description: None,
                        frame: meta.frame,
                        frame_capture: None,
                    });
                }
            }
            ContentType::APPLICATION_DATA => {
                s.stats.application_data += 1;
                s.stats.application_data_bytes += hdr.len as u64;
                self.on_app_record(dir, hdr.len, meta);
            }
            ContentType::HEARTBEAT => s.stats.heartbeat += 1,
            _ => {}
        }
    }

    pub(super) fn on_record_piece(
        &mut self,
        dir: Direction,
        hdr: RecordHeader,
        piece: &[u8],
        small: &mut Small,
        meta: EventMeta,
    ) {
        self.decrypt_record_piece(dir, piece);
        let Some(s) = self.dirs.get(dir.index()) else {
            return;
        };
        match hdr.content_type {
            ContentType::HANDSHAKE if !s.keys_changed && !s.hs.disabled => {
                self.hs_push(dir, piece, meta);
            }
            ContentType::ALERT | ContentType::HEARTBEAT if !s.keys_changed => small.push(piece),
            _ => {}
        }
    }

    pub(super) fn on_record_end(
        &mut self,
        dir: Direction,
        hdr: RecordHeader,
        small: &Small,
        meta: EventMeta,
    ) {
        if self.decrypt_record_end(dir, hdr, meta) {
            return;
        }
        let Some(s) = self.dirs.get(dir.index()) else {
            return;
        };
        if s.keys_changed {
            return;
        }
        match hdr.content_type {
            ContentType::ALERT if alert_in_clear(s, hdr.len) => {
                for pair in small.bytes().chunks_exact(2) {
                    if let [level, desc] = pair {
                        self.on_clear_alert(dir, AlertLevel(*level), AlertDescription(*desc), meta);
                    }
                }
            }
            ContentType::HEARTBEAT => {
                // RFC 6520 section 4: type(1) payload_length(2) payload padding(>= 16); a
                // payload_length past the record is the Heartbleed over-read (CVE-2014-0160).
                if let [_, hi, lo, ..] = small.bytes() {
                    let claimed = u16::from_be_bytes([*hi, *lo]) as usize;
                    if claimed + 3 + 16 > hdr.len as usize {
                        self.note(format!(
                            "{}: heartbeat_payload_overlong at frame {}",
                            dir_str(dir),
                            meta.frame
                        ));
                    }
                }
            }
            _ => {}
        }
    }

    pub(super) fn on_clear_alert(
        &mut self,
        dir: Direction,
        level: AlertLevel,
        desc: AlertDescription,
        meta: EventMeta,
    ) {
        let report_level = match level {
            AlertLevel::FATAL => ReportAlertLevel::Fatal,
            AlertLevel::WARNING => ReportAlertLevel::Warning,
            _ => {
                self.note(format!(
                    "{}: alert with unknown level {} at frame {}",
                    dir_str(dir),
                    level.0,
                    meta.frame
                ));
                ReportAlertLevel::Fatal
            }
        };
        self.push_alert(AlertRecord {
            from: sender(dir),
            level: report_level,
            description: Some(desc.name()),
            frame: meta.frame,
            frame_capture: None,
        });
        // TLS 1.3 treats every alert but close_notify and user_canceled as fatal whatever
        // its level (RFC 8446 section 6.2).
        let fatal = report_level == ReportAlertLevel::Fatal
            || (self.tls13_negotiated()
                && desc != AlertDescription::CLOSE_NOTIFY
                && desc != AlertDescription::USER_CANCELED);
        if fatal && self.outcome == Outcome::Pending {
            self.outcome = Outcome::Failed(Failure {
                rule: "fatal_alert",
                confidence: Confidence::Certain,
                meta,
                sender: Some(sender(dir)),
                description: Some(desc.name()),
                stage: self.stage(),
            });
        }
    }

    pub(super) fn on_app_record(&mut self, dir: Direction, len: u16, meta: EventMeta) {
        if self.tls13_negotiated() {
            let t = &mut self.tls13;
            match dir {
                Direction::ToServer => {
                    t.client_records += 1;
                    // After accepted 0-RTT data the client's first encrypted record is
                    // EndOfEarlyData (RFC 8446 section 4.5), as small as an alert; a record
                    // after it shows it was not a fatal alert: the next one is the Finished.
                    let early = self
                        .client_hello
                        .as_ref()
                        .is_some_and(|(ch, _)| ch.early_data);
                    if early
                        && t.client_records == 2
                        && t.server_after_client == 0
                        && outcome::alert_sized(t.client_first_len)
                    {
                        t.client_records = 1;
                    }
                    if t.client_records == 1 {
                        t.client_first_len = len;
                        t.client_first_meta = meta;
                        if let Some(s) = self.dirs.get_mut(dir.index()) {
                            s.settle_handshake();
                        }
                    }
                }
                Direction::ToClient if t.client_records > 0 => {
                    t.server_after_client += 1;
                    if t.server_after_client == 1 {
                        t.server_after_client_first_len = len;
                    }
                }
                Direction::ToClient => {}
            }
        }
        if matches!(self.outcome, Outcome::Complete { .. })
            && let Some(s) = self.dirs.get_mut(dir.index())
        {
            s.app_after_complete += 1;
        }
        self.evaluate(meta);
    }
}

/// Whether an alert record of `len` bytes from this side can be read in clear. A clear alert
/// is 2 bytes (level, description); RFC 5246 section 6.2.1 allows several in one record,
/// but only during a handshake seen in clear. After ChangeCipherSpec, or from a side whose
/// handshake was never seen (a capture begun mid-session), a longer alert record is
/// ciphertext: TLS 1.2's encrypted close_notify with AES-GCM is 26 bytes, which read in
/// clear would be thirteen alerts.
fn alert_in_clear(s: &DirState, len: u16) -> bool {
    if s.keys_changed {
        return false;
    }
    len == 2 || (s.stats.handshake > 0 && len > 2 && len % 2 == 0 && len as usize <= SMALL_BODY)
}
