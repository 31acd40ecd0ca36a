//! TLS secrets from an NSS key log (what `SSLKEYLOGFILE` writes) or from pcapng Decryption
//! Secrets Blocks, indexed by the client random of the handshake they belong to.
//!
//! Secrets are held in [`Secret`], whose `Debug` says only its length and whose memory is
//! wiped when dropped. Nothing here ever formats a secret: a malformed line is reported by
//! its number and what is wrong with it, never by its content.

use std::collections::HashMap;
use std::fmt;
use std::io::BufRead;
use std::sync::RwLock;

use zeroize::Zeroizing;

/// Client randoms held at most; more lines are counted and skipped, so a huge key log
/// cannot grow memory without bound.
pub const MAX_CLIENTS: usize = 1 << 20;
/// Warnings kept; more are counted.
const MAX_WARNINGS: usize = 32;
/// A key log line longer than this is not one (the longest, a TLS 1.3 label with a 48-byte
/// secret, is under 200 bytes).
const MAX_LINE: usize = 1024;

/// Key material, wiped on drop, never printed.
#[derive(Clone, PartialEq, Eq)]
pub struct Secret(Zeroizing<Vec<u8>>);

impl Secret {
    pub fn new(bytes: Vec<u8>) -> Self {
        Secret(Zeroizing::new(bytes))
    }
    pub fn bytes(&self) -> &[u8] {
        &self.0
    }
}

impl fmt::Debug for Secret {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "Secret(redacted, {} bytes)", self.0.len())
    }
}

/// Where a session's keys came from.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum KeySource {
    /// `--keylog PATH`.
    Keylog,
    /// A Decryption Secrets Block inside the pcapng being read.
    Dsb,
}

impl KeySource {
    pub fn as_str(self) -> &'static str {
        match self {
            KeySource::Keylog => "keylog",
            KeySource::Dsb => "pcapng_dsb",
        }
    }
}

/// The secrets of one handshake (one client random).
#[derive(Clone, Debug, Default)]
pub struct ClientSecrets {
    /// TLS 1.2 and older: the 48-byte master secret (`CLIENT_RANDOM`).
    pub master: Option<Secret>,
    pub client_handshake: Option<Secret>,
    pub server_handshake: Option<Secret>,
    pub client_traffic: Option<Secret>,
    pub server_traffic: Option<Secret>,
    pub client_early: Option<Secret>,
    pub source: Option<KeySource>,
}

/// What is wrong with a key log line (never what it says).
#[derive(Clone, Copy, Debug, PartialEq, Eq, thiserror::Error)]
pub enum LineError {
    #[error("not `LABEL CLIENT_RANDOM SECRET`")]
    Fields,
    #[error("unknown label")]
    Label,
    #[error("client random is not 32 bytes of hex")]
    Random,
    #[error("secret is not hex of a usable length")]
    Secret,
    #[error("line too long")]
    TooLong,
}

/// Secrets by client random.
#[derive(Debug, Default)]
pub struct KeyLog {
    by_random: HashMap<[u8; 32], ClientSecrets>,
    /// Lines skipped because the table was full.
    pub dropped: u64,
    /// Malformed lines: `line N: reason`, at most [`MAX_WARNINGS`].
    pub warnings: Vec<String>,
    /// Malformed lines in all.
    pub malformed: u64,
}

impl KeyLog {
    /// Reads a key log; malformed lines become warnings, never errors. Only the reader's
    /// own I/O error fails.
    pub fn read(r: impl BufRead, source: KeySource) -> std::io::Result<Self> {
        let mut log = KeyLog::default();
        log.extend_from(r, source)?;
        Ok(log)
    }

    /// Adds the lines of `r` (a key log file, or the text of a Decryption Secrets Block).
    pub fn extend_from(&mut self, mut r: impl BufRead, source: KeySource) -> std::io::Result<()> {
        let mut line = Vec::new();
        let mut n = 0u64;
        loop {
            line.clear();
            // Bounded read: a line past MAX_LINE is consumed but not kept.
            let mut too_long = false;
            loop {
                let buf = r.fill_buf()?;
                if buf.is_empty() {
                    break;
                }
                let (take, end) = match buf.iter().position(|&b| b == b'\n') {
                    Some(i) => (i + 1, true),
                    None => (buf.len(), false),
                };
                if line.len() + take <= MAX_LINE {
                    line.extend_from_slice(buf.get(..take).unwrap_or_default());
                } else {
                    too_long = true;
                }
                r.consume(take);
                if end {
                    break;
                }
            }
            if line.is_empty() && !too_long {
                break;
            }
            n += 1;
            let result = if too_long {
                Err(LineError::TooLong)
            } else {
                self.add_line(&line, source)
            };
            if let Err(e) = result {
                self.malformed += 1;
                if self.warnings.len() < MAX_WARNINGS {
                    self.warnings.push(format!("line {n}: {e}"));
                }
            }
            line.fill(0);
        }
        Ok(())
    }

    /// One line. Comments, blank lines and labels that carry nothing usable here (`RSA`,
    /// the exporter secrets) are accepted and ignored.
    pub fn add_line(&mut self, line: &[u8], source: KeySource) -> Result<(), LineError> {
        let text = std::str::from_utf8(line).map_err(|_| LineError::Fields)?;
        let text = text.trim();
        if text.is_empty() || text.starts_with('#') {
            return Ok(());
        }
        let mut fields = text.split_ascii_whitespace();
        let (Some(label), Some(random), Some(secret), None) =
            (fields.next(), fields.next(), fields.next(), fields.next())
        else {
            return Err(LineError::Fields);
        };
        let slot: fn(&mut ClientSecrets) -> &mut Option<Secret> = match label {
            "CLIENT_RANDOM" => |c| &mut c.master,
            "CLIENT_HANDSHAKE_TRAFFIC_SECRET" => |c| &mut c.client_handshake,
            "SERVER_HANDSHAKE_TRAFFIC_SECRET" => |c| &mut c.server_handshake,
            "CLIENT_TRAFFIC_SECRET_0" => |c| &mut c.client_traffic,
            "SERVER_TRAFFIC_SECRET_0" => |c| &mut c.server_traffic,
            "CLIENT_EARLY_TRAFFIC_SECRET" => |c| &mut c.client_early,
            // Known labels this tool has no use for.
            "RSA" | "EXPORTER_SECRET" | "EARLY_EXPORTER_SECRET" | "PMS_CLIENT_RANDOM" => {
                return Ok(());
            }
            _ => return Err(LineError::Label),
        };
        let mut cr = [0u8; 32];
        hex::decode_to_slice(random, &mut cr).map_err(|_| LineError::Random)?;
        let secret = Zeroizing::new(hex::decode(secret).map_err(|_| LineError::Secret)?);
        let ok_len = match label {
            "CLIENT_RANDOM" => secret.len() == 48,
            _ => matches!(secret.len(), 32 | 48),
        };
        if !ok_len {
            return Err(LineError::Secret);
        }
        if self.by_random.len() >= MAX_CLIENTS && !self.by_random.contains_key(&cr) {
            self.dropped += 1;
            return Ok(());
        }
        let entry = self.by_random.entry(cr).or_default();
        entry.source.get_or_insert(source);
        *slot(entry) = Some(Secret(secret));
        Ok(())
    }

    pub fn get(&self, client_random: &[u8; 32]) -> Option<&ClientSecrets> {
        self.by_random.get(client_random)
    }

    pub fn len(&self) -> usize {
        self.by_random.len()
    }

    pub fn is_empty(&self) -> bool {
        self.by_random.is_empty()
    }
}

/// The secrets of a run: the `--keylog` file, and those found in Decryption Secrets Blocks
/// of the captures as they are read (shared by the threads that analyse them).
#[derive(Debug, Default)]
pub struct KeyStore {
    file: std::sync::Arc<KeyLog>,
    embedded: RwLock<KeyLog>,
}

impl KeyStore {
    pub fn new(file: KeyLog) -> Self {
        KeyStore {
            file: std::sync::Arc::new(file),
            embedded: RwLock::new(KeyLog::default()),
        }
    }

    /// The store of one capture: the key log file's secrets, and none embedded yet. A
    /// capture's Decryption Secrets Blocks serve that capture only, so the report does not
    /// depend on which captures run before or beside it.
    pub fn for_capture(&self) -> Self {
        KeyStore {
            file: self.file.clone(),
            embedded: RwLock::new(KeyLog::default()),
        }
    }

    /// Adds the text of a pcapng Decryption Secrets Block (NSS key log lines); returns the
    /// number of malformed lines.
    pub fn add_embedded(&self, text: &[u8]) -> u64 {
        let Ok(mut log) = self.embedded.write() else {
            return 0;
        };
        let before = log.malformed;
        // Reading from a slice cannot fail.
        let _ = log.extend_from(text, KeySource::Dsb);
        log.malformed - before
    }

    /// The secrets of the handshake with this client random, if any source has them.
    pub fn lookup(&self, client_random: &[u8; 32]) -> Option<ClientSecrets> {
        if let Some(s) = self.file.get(client_random) {
            return Some(s.clone());
        }
        self.embedded.read().ok()?.get(client_random).cloned()
    }

    pub fn file(&self) -> &KeyLog {
        &self.file
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;

    const CR: &str = "52362c1012cf23628256e745e903cea696e9f62a60ba0ae8311d70dea5e41949";

    #[test]
    fn parses_labels_comments_and_rsa_lines() {
        let text = format!(
            "# comment\n\nRSA 0011223344556677 {}\nCLIENT_RANDOM {CR} {}\n\
             CLIENT_HANDSHAKE_TRAFFIC_SECRET {CR} {}\r\n",
            "ab".repeat(48),
            "cd".repeat(48),
            "ef".repeat(32)
        );
        let log = KeyLog::read(text.as_bytes(), KeySource::Keylog).unwrap();
        assert!(log.warnings.is_empty(), "{:?}", log.warnings);
        let mut cr = [0u8; 32];
        hex::decode_to_slice(CR, &mut cr).unwrap();
        let s = log.get(&cr).unwrap();
        assert_eq!(s.master.as_ref().unwrap().bytes(), &[0xcd; 48][..]);
        assert_eq!(
            s.client_handshake.as_ref().unwrap().bytes(),
            &[0xef; 32][..]
        );
        assert_eq!(s.source, Some(KeySource::Keylog));
    }

    #[test]
    fn malformed_lines_are_warnings_without_their_content() {
        let secret = "9f".repeat(48);
        let text = format!(
            "CLIENT_RANDOM {CR}\nBOGUS {CR} {secret}\nCLIENT_RANDOM zz {secret}\n\
             CLIENT_RANDOM {CR} {}\n{}\n",
            "9f".repeat(47),
            "x".repeat(5000)
        );
        let log = KeyLog::read(text.as_bytes(), KeySource::Keylog).unwrap();
        assert_eq!(log.malformed, 5);
        assert_eq!(log.warnings[0], "line 1: not `LABEL CLIENT_RANDOM SECRET`");
        assert_eq!(log.warnings[1], "line 2: unknown label");
        assert_eq!(log.warnings[4], "line 5: line too long");
        for w in &log.warnings {
            assert!(!w.contains("9f9f") && !w.contains(CR));
        }
        assert!(log.is_empty());
    }

    #[test]
    fn debug_redacts() {
        let s = Secret::new(vec![0x42; 32]);
        let shown = format!("{s:?}");
        assert_eq!(shown, "Secret(redacted, 32 bytes)");
        let c = ClientSecrets {
            master: Some(Secret::new(vec![0x42; 48])),
            ..ClientSecrets::default()
        };
        assert!(!format!("{c:?}").contains("42, 42"));
    }
}
