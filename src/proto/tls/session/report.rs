//! The contract view of a session: its record and its findings.

use super::*;

impl TlsSession {
    /// The contract view.
    pub fn record(&self) -> TlsRecord {
        let outcome_evidence = match &self.outcome {
            // The capture may end before either side closed: the same reasons apply.
            Outcome::Pending => self
                .undecided
                .or_else(|| self.undecidable(self.began()).map(|r| (r, self.last_meta)))
                .map(|(rule, meta)| OutcomeEvidence {
                    frame_capture: None,
                    rule: rule.to_string(),
                    confidence: Confidence::Likely,
                    frame: meta.frame,
                }),
            Outcome::Complete {
                rule,
                confidence,
                meta,
            } => Some(OutcomeEvidence {
                frame_capture: None,
                rule: rule.to_string(),
                confidence: *confidence,
                frame: meta.frame,
            }),
            Outcome::Failed(f) => Some(OutcomeEvidence {
                rule: f.rule.to_string(),
                confidence: f.confidence,
                frame: f.meta.frame,
                frame_capture: None,
            }),
        };
        let cipher = match (&self.server_hello, self.sslv2_cipher) {
            (_, Some(c)) if self.sslv2 => Some(sslv2_cipher_name(c)),
            (Some((sh, _)), _) if !self.sslv2 => Some(cipher_name(sh.cipher)),
            _ => None,
        };
        let client = self.client_hello.as_ref().map(|(ch, m)| ClientHelloRecord {
            version: ch.version.name(),
            sslv2_format: ch.sslv2,
            supported_versions: ch.supported_versions.iter().map(|v| v.name()).collect(),
            ciphers: ch
                .ciphers
                .iter()
                .map(|&c| match u16::try_from(c) {
                    Ok(c) if !ch.sslv2 => cipher_name(c),
                    _ => sslv2_cipher_name(c),
                })
                .collect(),
            extensions: ch.extensions.clone(),
            supported_groups: ch.groups.clone(),
            ec_point_formats: ch.ec_point_formats.clone(),
            signature_algorithms: ch.signature_algorithms.clone(),
            alpn: ch.alpn.clone(),
            session_id: ch.session_id_len > 0,
            session_ticket: ch.session_ticket,
            pre_shared_key: ch.pre_shared_key,
            early_data: ch.early_data,
            frame: m.frame,
            frame_capture: None,
        });
        let server = self.server_hello.as_ref().map(|(sh, m)| ServerHelloRecord {
            legacy_version: sh.version.name(),
            extensions: sh.extensions.clone(),
            alpn: sh.alpn.clone(),
            resumed: self.resumed(),
            frame: m.frame,
            frame_capture: None,
        });
        let [to_server, to_client] = [Direction::ToServer, Direction::ToClient].map(|d| {
            let s = &self.dirs[d.index()];
            let mut st = s.stats;
            st.stopped = matches!(s.framing, Framing::Stopped);
            if let Some(dec) = &self.dec {
                (
                    st.decrypted_records,
                    st.undecryptable_records,
                    st.decrypted_bytes,
                    st.renegotiations,
                ) = dec.counts(d);
            }
            st
        });
        TlsRecord {
            version: self.version().map(Version::name),
            cipher,
            sni: self
                .client_hello
                .as_ref()
                .and_then(|(ch, _)| ch.sni.clone()),
            handshake: self.outcome(),
            decrypted: self.dec.as_ref().is_some_and(|d| d.any_decrypted()),
            key_source: self.dec.as_ref().map(|d| d.source.as_str().to_string()),
            alerts: self.alerts.clone(),
            ja3: self.ja3.as_ref().map(|j| j.hash.clone()),
            ja3s: self.ja3s.as_ref().map(|j| j.hash.clone()),
            ja4: self.ja4.as_ref().map(|j| j.hash.clone()),
            outcome_evidence,
            client_hello_seen: self.client_hello_seen(),
            server_hello_seen: self.server_hello_seen(),
            hello_retry_request: self.hello_retry_request,
            client,
            server,
            ja3_full: self.ja3.as_ref().map(|j| j.full.clone()),
            ja3s_full: self.ja3s.as_ref().map(|j| j.full.clone()),
            ja4_r: self.ja4.as_ref().map(|j| j.raw.clone()),
            certificate: self.certificate.as_ref().map(|(c, _)| c.record.clone()),
            to_server,
            to_client,
            anomalies: self.anomalies.clone(),
        }
    }

    /// The contract view at the end of the connection, built without copies: what the
    /// record only repeats (fingerprints, the certificate, alerts, anomalies, the hellos'
    /// lists) is moved into it instead of cloned. The same record as [`Self::record`].
    pub fn into_record(mut self) -> TlsRecord {
        use std::mem::take;
        let ja3 = self.ja3.take();
        let ja3s = self.ja3s.take();
        let ja4 = self.ja4.take();
        let certificate = self.certificate.take().map(|(c, _)| c.record);
        let alerts = take(&mut self.alerts);
        let anomalies = take(&mut self.anomalies);
        // Nothing but the record reads these lists (the fingerprints are made already).
        let client_lists = self.client_hello.as_mut().map(|(ch, _)| {
            (
                take(&mut ch.sni),
                take(&mut ch.extensions),
                take(&mut ch.groups),
                take(&mut ch.ec_point_formats),
                take(&mut ch.signature_algorithms),
                take(&mut ch.alpn),
            )
        });
        let server_lists = self
            .server_hello
            .as_mut()
            .map(|(sh, _)| (take(&mut sh.extensions), take(&mut sh.alpn)));
        let mut r = self.record();
        (r.ja3, r.ja3_full) = ja3.map(|j| (j.hash, j.full)).unzip();
        (r.ja3s, r.ja3s_full) = ja3s.map(|j| (j.hash, j.full)).unzip();
        (r.ja4, r.ja4_r) = ja4.map(|j| (j.hash, j.raw)).unzip();
        r.certificate = certificate;
        r.alerts = alerts;
        r.anomalies = anomalies;
        if let Some((sni, extensions, groups, points, sigs, alpn)) = client_lists {
            r.sni = sni;
            if let Some(c) = r.client.as_mut() {
                c.extensions = extensions;
                c.supported_groups = groups;
                c.ec_point_formats = points;
                c.signature_algorithms = sigs;
                c.alpn = alpn;
            }
        }
        if let (Some((extensions, alpn)), Some(s)) = (server_lists, r.server.as_mut()) {
            s.extensions = extensions;
            s.alpn = alpn;
        }
        r
    }

    /// Findings (flow id not yet attached).
    pub fn findings(&self) -> Vec<Finding> {
        let mut out = Vec::new();
        if let Outcome::Failed(f) = &self.outcome {
            let who = f.sender.map(sender_str);
            let message = match (f.rule, &f.description, who) {
                ("fatal_alert", Some(d), Some(w)) => {
                    format!("TLS handshake failed: {w} sent fatal alert {d}")
                }
                ("tls13_client_rejected_server_flight", _, _) => "TLS handshake likely failed: \
                     the client answered the server's TLS 1.3 flight with an encrypted alert \
                     and closed"
                    .to_string(),
                ("tls13_server_rejected_client_finished", _, _) => "TLS handshake likely \
                     failed: the server answered the client's Finished with an encrypted \
                     alert and closed"
                    .to_string(),
                ("client_hello_after_starttls_refused", _, _) => format!(
                    "TLS handshake failed: the client sent a ClientHello after the server \
                     refused STARTTLS ({}); the server was not ready for TLS",
                    self.ctx.starttls_refused.unwrap_or_default()
                ),
                ("protocol_error", _, Some(w)) => {
                    format!("TLS handshake failed: the {w} sent bytes that are not TLS")
                }
                ("reset_before_completion" | "reset_before_client_hello", _, Some(w)) => {
                    format!("TLS handshake failed: {w} reset the connection before completion")
                }
                (_, _, Some(w)) => {
                    format!("TLS handshake failed: {w} closed the connection before completion")
                }
                _ => "TLS handshake failed".to_string(),
            };
            let mut finding =
                Finding::new(Kind::TlsHandshakeFailure, Severity::Medium, f.meta, message)
                    .with("rule", f.rule)
                    .with("confidence", confidence_str(f.confidence))
                    .with("stage", f.stage)
                    .with("sender", who)
                    .with("description", f.description.clone());
            if let Some(code) = self.ctx.starttls_refused {
                finding = finding.with("starttls_refused_reply", code);
            }
            out.push(finding);
        }
        if let Some(v) = self.version() {
            let meta = self
                .server_hello
                .as_ref()
                .map(|(_, m)| *m)
                .unwrap_or_default();
            let severity = match v {
                Version::SSL2 | Version::SSL3 => Some(Severity::High),
                Version::TLS10 | Version::TLS11 => Some(Severity::Medium),
                _ => None,
            };
            if let Some(sev) = severity {
                out.push(
                    Finding::new(
                        Kind::WeakTlsVersion,
                        sev,
                        meta,
                        format!("{} negotiated", v.name()),
                    )
                    .with("version", v.name()),
                );
            }
            let (name, weaknesses) = match (&self.server_hello, self.sslv2_cipher) {
                (_, Some(c)) if self.sslv2 => (sslv2_cipher_name(c), sslv2_cipher_weaknesses(c)),
                (Some((sh, _)), _) if !self.sslv2 => {
                    (cipher_name(sh.cipher), cipher_weaknesses(sh.cipher))
                }
                _ => (String::new(), Vec::new()),
            };
            if !weaknesses.is_empty() {
                let sev = if weaknesses.iter().any(|w| w.is_high()) {
                    Severity::High
                } else {
                    Severity::Medium
                };
                let reasons: Vec<&str> = weaknesses.iter().map(|w| w.as_str()).collect();
                out.push(
                    Finding::new(
                        Kind::WeakCipher,
                        sev,
                        meta,
                        format!(
                            "weak cipher suite {name} negotiated ({})",
                            reasons.join(", ")
                        ),
                    )
                    .with("cipher", name)
                    .with("weaknesses", reasons),
                );
            }
        }
        if let Some((c, meta)) = &self.certificate
            && !c.problems.is_empty()
        {
            let sev = if c.problems.iter().any(|p| p.is_medium()) {
                Severity::Medium
            } else {
                Severity::Low
            };
            let problems: Vec<&str> = c.problems.iter().map(|p| p.as_str()).collect();
            out.push(
                Finding::new(
                    Kind::CertificateProblem,
                    sev,
                    *meta,
                    format!(
                        "server certificate {}: {}",
                        c.record.subject,
                        problems.join(", ")
                    ),
                )
                .with("problems", problems)
                .with("subject", c.record.subject.clone())
                .with("issuer", c.record.issuer.clone())
                .with("not_before", c.record.not_before.clone())
                .with("not_after", c.record.not_after.clone())
                .with("key_type", c.record.key_type.clone())
                .with("key_bits", c.record.key_bits)
                .with("name_checked", c.record.name_checked.clone())
                .with("san", c.record.san.clone())
                .with("sha256", c.record.sha256.clone()),
            );
        }
        out
    }
}

fn confidence_str(c: Confidence) -> &'static str {
    match c {
        Confidence::Certain => "certain",
        Confidence::Likely => "likely",
    }
}
