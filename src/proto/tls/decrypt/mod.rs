//! Record decryption with the RustCrypto AEADs: which suites are supported, the keys of each
//! direction, and one record's decryption (nonce, additional data, tag check).
//!
//! A record that fails to authenticate is reported as such and changes nothing: its
//! sequence number is not consumed, so a record sent under other keys (0-RTT data the
//! server refused, a key log for another connection) cannot shift the ones that follow.

pub mod schedule;

use aes_gcm::aead::AeadInOut;
use aes_gcm::{Aes128Gcm, Aes256Gcm, KeyInit};
use chacha20poly1305::ChaCha20Poly1305;
use std::fmt;

use schedule::HashAlg;

/// AEAD tag length of every supported suite.
pub const TAG_LEN: usize = 16;

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum AeadAlg {
    Aes128Gcm,
    Aes256Gcm,
    ChaCha20Poly1305,
}

impl AeadAlg {
    pub fn key_len(self) -> usize {
        match self {
            AeadAlg::Aes128Gcm => 16,
            AeadAlg::Aes256Gcm | AeadAlg::ChaCha20Poly1305 => 32,
        }
    }
}

/// What decryption needs to know of a cipher suite.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Suite {
    pub aead: AeadAlg,
    pub hash: HashAlg,
}

impl Suite {
    /// TLS 1.2 fixed IV bytes from the key block: GCM's 4-byte salt (RFC 5288), or
    /// ChaCha20-Poly1305's 12-byte IV (RFC 7905).
    pub fn tls12_iv_len(self) -> usize {
        match self.aead {
            AeadAlg::ChaCha20Poly1305 => 12,
            _ => 4,
        }
    }
}

/// A TLS 1.3 suite (RFC 8446 appendix B.4) this module decrypts.
pub fn tls13_suite(id: u16) -> Option<Suite> {
    let (aead, hash) = match id {
        0x1301 => (AeadAlg::Aes128Gcm, HashAlg::Sha256),
        0x1302 => (AeadAlg::Aes256Gcm, HashAlg::Sha384),
        0x1303 => (AeadAlg::ChaCha20Poly1305, HashAlg::Sha256),
        _ => return None,
    };
    Some(Suite { aead, hash })
}

/// A TLS 1.2 AEAD suite this module decrypts: AES-GCM (RFC 5288, 5487, 5289) and
/// ChaCha20-Poly1305 (RFC 7905), whatever the key exchange.
pub fn tls12_suite(id: u16) -> Option<Suite> {
    let s = |aead, hash| Some(Suite { aead, hash });
    match id {
        // AES-128-GCM-SHA256: RSA, DHE-RSA, DH-RSA, DHE-DSS, DH-DSS, DH-anon, PSK,
        // DHE-PSK, RSA-PSK, ECDHE-ECDSA, ECDH-ECDSA, ECDHE-RSA, ECDH-RSA, ECDHE-PSK.
        0x009c | 0x009e | 0x00a0 | 0x00a2 | 0x00a4 | 0x00a6 | 0x00a8 | 0x00aa | 0x00ac | 0xc02b
        | 0xc02d | 0xc02f | 0xc031 | 0xd001 => s(AeadAlg::Aes128Gcm, HashAlg::Sha256),
        0x009d | 0x009f | 0x00a1 | 0x00a3 | 0x00a5 | 0x00a7 | 0x00a9 | 0x00ab | 0x00ad | 0xc02c
        | 0xc02e | 0xc030 | 0xc032 | 0xd002 => s(AeadAlg::Aes256Gcm, HashAlg::Sha384),
        0xcca8..=0xccae => s(AeadAlg::ChaCha20Poly1305, HashAlg::Sha256),
        _ => None,
    }
}

enum Cipher {
    Aes128(Box<Aes128Gcm>),
    Aes256(Box<Aes256Gcm>),
    ChaCha(Box<ChaCha20Poly1305>),
}

/// How the per-record nonce and additional data are formed.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum RecordMode {
    /// RFC 8446 section 5.2-5.3: IV XOR sequence, the record header as additional data,
    /// the real content type inside.
    Tls13,
    /// RFC 5288: 4-byte salt + 8-byte explicit nonce carried in the record.
    Tls12ExplicitNonce,
    /// RFC 7905: IV XOR sequence, nothing carried in the record.
    Tls12XorNonce,
}

/// The keys of one direction and its sequence number.
pub struct RecordKeys {
    cipher: Cipher,
    iv: [u8; 12],
    seq: u64,
    mode: RecordMode,
}

impl fmt::Debug for RecordKeys {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("RecordKeys")
            .field("mode", &self.mode)
            .field("seq", &self.seq)
            .finish_non_exhaustive()
    }
}

/// The decrypted content of a record.
#[derive(Debug, PartialEq, Eq)]
pub struct Plain {
    /// The real content type (TLS 1.3: from inside the record).
    pub content_type: u8,
    /// Where the plaintext is in the buffer that was decrypted in place.
    pub start: usize,
    pub end: usize,
}

impl RecordKeys {
    /// Keys for a direction; `iv` is 12 bytes (TLS 1.3, ChaCha20) or the 4-byte GCM salt.
    pub fn new(aead: AeadAlg, key: &[u8], iv: &[u8], mode: RecordMode) -> Option<Self> {
        let cipher = match aead {
            AeadAlg::Aes128Gcm => Cipher::Aes128(Box::new(Aes128Gcm::new_from_slice(key).ok()?)),
            AeadAlg::Aes256Gcm => Cipher::Aes256(Box::new(Aes256Gcm::new_from_slice(key).ok()?)),
            AeadAlg::ChaCha20Poly1305 => {
                Cipher::ChaCha(Box::new(ChaCha20Poly1305::new_from_slice(key).ok()?))
            }
        };
        let mut full = [0u8; 12];
        full.get_mut(..iv.len())?.copy_from_slice(iv);
        Some(RecordKeys {
            cipher,
            iv: full,
            seq: 0,
            mode,
        })
    }

    /// Records decrypted with these keys so far.
    pub fn seq(&self) -> u64 {
        self.seq
    }

    fn xor_nonce(&self) -> [u8; 12] {
        let mut n = self.iv;
        for (b, s) in n.iter_mut().skip(4).zip(self.seq.to_be_bytes()) {
            *b ^= s;
        }
        n
    }

    fn open(&self, nonce: &[u8; 12], aad: &[u8], msg: &mut [u8], tag: &[u8]) -> bool {
        let Ok(tag) = <&[u8; TAG_LEN]>::try_from(tag) else {
            return false;
        };
        let nonce = (*nonce).into();
        let tag = (*tag).into();
        match &self.cipher {
            Cipher::Aes128(c) => c.decrypt_inout_detached(&nonce, aad, msg.into(), &tag),
            Cipher::Aes256(c) => c.decrypt_inout_detached(&nonce, aad, msg.into(), &tag),
            Cipher::ChaCha(c) => c.decrypt_inout_detached(&nonce, aad, msg.into(), &tag),
        }
        .is_ok()
    }

    /// Decrypts one record body in place. `header` is the record's 5-byte header as sent.
    /// `None` when it does not authenticate (the buffer is then garbage) or is malformed.
    pub fn decrypt(&mut self, header: [u8; 5], body: &mut [u8]) -> Option<Plain> {
        let [ty, v0, v1, _, _] = header;
        let tag_at = body.len().checked_sub(TAG_LEN)?;
        let plain = match self.mode {
            RecordMode::Tls13 => {
                let nonce = self.xor_nonce();
                let (msg, tag) = body.split_at_mut(tag_at);
                if !self.open(&nonce, &header, msg, tag) {
                    return None;
                }
                // TLSInnerPlaintext: content, content type, zero padding.
                let last = msg.iter().rposition(|&b| b != 0)?;
                let content_type = *msg.get(last)?;
                Plain {
                    content_type,
                    start: 0,
                    end: last,
                }
            }
            RecordMode::Tls12ExplicitNonce | RecordMode::Tls12XorNonce => {
                let explicit = if self.mode == RecordMode::Tls12ExplicitNonce {
                    8
                } else {
                    0
                };
                let len = tag_at.checked_sub(explicit)?;
                let nonce = if explicit > 0 {
                    let mut n = self.iv;
                    n.get_mut(4..)?.copy_from_slice(body.get(..8)?);
                    n
                } else {
                    self.xor_nonce()
                };
                let mut aad = [0u8; 13];
                aad[..8].copy_from_slice(&self.seq.to_be_bytes());
                aad[8..11].copy_from_slice(&[ty, v0, v1]);
                aad[11..].copy_from_slice(&u16::try_from(len).ok()?.to_be_bytes());
                let (head, tag) = body.split_at_mut(tag_at);
                let msg = head.get_mut(explicit..)?;
                if !self.open(&nonce, &aad, msg, tag) {
                    return None;
                }
                Plain {
                    content_type: ty,
                    start: explicit,
                    end: tag_at,
                }
            }
        };
        self.seq = self.seq.wrapping_add(1);
        Some(plain)
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;

    fn seal(keys: &RecordKeys, nonce: &[u8; 12], aad: &[u8], msg: &mut Vec<u8>) {
        let tag = match &keys.cipher {
            Cipher::Aes128(c) => c
                .encrypt_inout_detached(&(*nonce).into(), aad, msg.as_mut_slice().into())
                .unwrap()
                .to_vec(),
            Cipher::Aes256(c) => c
                .encrypt_inout_detached(&(*nonce).into(), aad, msg.as_mut_slice().into())
                .unwrap()
                .to_vec(),
            Cipher::ChaCha(c) => c
                .encrypt_inout_detached(&(*nonce).into(), aad, msg.as_mut_slice().into())
                .unwrap()
                .to_vec(),
        };
        msg.extend_from_slice(&tag);
    }

    #[test]
    fn tls13_record_round_trip_and_sequence() {
        for aead in [
            AeadAlg::Aes128Gcm,
            AeadAlg::Aes256Gcm,
            AeadAlg::ChaCha20Poly1305,
        ] {
            let key = vec![7u8; aead.key_len()];
            let iv = [9u8; 12];
            let mut dec = RecordKeys::new(aead, &key, &iv, RecordMode::Tls13).unwrap();
            let enc = RecordKeys::new(aead, &key, &iv, RecordMode::Tls13).unwrap();
            for seq in 0..3u64 {
                let mut inner = b"250 OK\r\n".to_vec();
                inner.extend_from_slice(&[23, 0, 0]);
                let len = (inner.len() + TAG_LEN) as u16;
                let header = [23, 3, 3, (len >> 8) as u8, len as u8];
                let mut n = iv;
                for (b, s) in n.iter_mut().skip(4).zip(seq.to_be_bytes()) {
                    *b ^= s;
                }
                seal(&enc, &n, &header, &mut inner);
                let mut wrong = inner.clone();
                wrong[0] ^= 1;
                assert!(dec.decrypt(header, &mut wrong).is_none());
                let p = dec.decrypt(header, &mut inner).unwrap();
                assert_eq!(p.content_type, 23);
                assert_eq!(&inner[p.start..p.end], b"250 OK\r\n");
            }
            assert_eq!(dec.seq(), 3);
        }
    }

    #[test]
    fn tls12_gcm_explicit_nonce() {
        let key = [3u8; 16];
        let salt = [1, 2, 3, 4];
        let mut dec = RecordKeys::new(
            AeadAlg::Aes128Gcm,
            &key,
            &salt,
            RecordMode::Tls12ExplicitNonce,
        )
        .unwrap();
        let enc = RecordKeys::new(
            AeadAlg::Aes128Gcm,
            &key,
            &salt,
            RecordMode::Tls12ExplicitNonce,
        )
        .unwrap();
        let explicit = [0, 0, 0, 0, 0, 0, 0, 42];
        let mut nonce = [0u8; 12];
        nonce[..4].copy_from_slice(&salt);
        nonce[4..].copy_from_slice(&explicit);
        let plain = b"EHLO client\r\n";
        let mut aad = vec![0u8; 8];
        aad.extend_from_slice(&[23, 3, 3, 0, plain.len() as u8]);
        let mut ct = plain.to_vec();
        seal(&enc, &nonce, &aad, &mut ct);
        let mut body = explicit.to_vec();
        body.extend_from_slice(&ct);
        let len = body.len() as u16;
        let p = dec
            .decrypt([23, 3, 3, (len >> 8) as u8, len as u8], &mut body)
            .unwrap();
        assert_eq!(&body[p.start..p.end], plain);
    }

    #[test]
    fn short_and_garbage_records_are_rejected() {
        let mut k =
            RecordKeys::new(AeadAlg::Aes128Gcm, &[0; 16], &[0; 12], RecordMode::Tls13).unwrap();
        assert!(k.decrypt([23, 3, 3, 0, 3], &mut [1, 2, 3]).is_none());
        assert!(k.decrypt([23, 3, 3, 0, 20], &mut [0; 20]).is_none());
        assert_eq!(k.seq(), 0);
        assert!(
            RecordKeys::new(AeadAlg::Aes128Gcm, &[0; 15], &[0; 12], RecordMode::Tls13).is_none()
        );
    }
}
