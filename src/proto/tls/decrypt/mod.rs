//! Record decryption with the RustCrypto AEADs and CBC: which suites are supported, the keys
//! of each direction, and one record's decryption (nonce, additional data, tag check).
//!
//! A record that fails to authenticate is reported as such and changes nothing: its
//! sequence number is not consumed, so a record sent under other keys (0-RTT data the
//! server refused, a key log for another connection) cannot shift the ones that follow.

mod cbc_hmac;
pub mod schedule;
mod suites;

use aes_gcm::aead::array::typenum::{U8, U12, U16};
use aes_gcm::aead::{AeadInOut, Tag};
use aes_gcm::{Aes128Gcm, Aes256Gcm, KeyInit};
use ccm::Ccm;
use chacha20poly1305::ChaCha20Poly1305;
use std::fmt;

use cbc_hmac::CbcKeys;
use schedule::KeyBytes;
pub use suites::{AeadAlg, CbcSuite, MacAlg, Suite, cbc_suite, tls12_suite, tls13_suite};

type Aes128Ccm = Ccm<aes::Aes128, U16, U12>;
type Aes256Ccm = Ccm<aes::Aes256, U16, U12>;
type Aes128Ccm8 = Ccm<aes::Aes128, U8, U12>;
type Aes256Ccm8 = Ccm<aes::Aes256, U8, U12>;

enum Cipher {
    Aes128(Box<Aes128Gcm>),
    Aes256(Box<Aes256Gcm>),
    ChaCha(Box<ChaCha20Poly1305>),
    Aes128Ccm(Box<Aes128Ccm>),
    Aes256Ccm(Box<Aes256Ccm>),
    Aes128Ccm8(Box<Aes128Ccm8>),
    Aes256Ccm8(Box<Aes256Ccm8>),
    Cbc(Box<CbcKeys>),
}

/// How the per-record nonce and additional data are formed.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum RecordMode {
    /// RFC 8446 section 5.2-5.3: IV XOR sequence, the record header as additional data,
    /// the real content type inside.
    Tls13,
    /// RFC 5288, RFC 6655: 4-byte salt + 8-byte explicit nonce carried in the record.
    Tls12ExplicitNonce,
    /// RFC 7905: IV XOR sequence, nothing carried in the record.
    Tls12XorNonce,
    /// AES-CBC with an HMAC (TLS 1.0 to 1.2).
    Cbc,
}

/// The keys of one direction and its sequence number.
pub struct RecordKeys {
    cipher: Cipher,
    tag_len: usize,
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
    /// Keys for a direction; `iv` is 12 bytes (TLS 1.3, ChaCha20) or the 4-byte GCM/CCM salt.
    pub fn new(aead: AeadAlg, key: &[u8], iv: &[u8], mode: RecordMode) -> Option<Self> {
        fn boxed<C: KeyInit>(key: &[u8]) -> Option<Box<C>> {
            C::new_from_slice(key).ok().map(Box::new)
        }
        let cipher = match aead {
            AeadAlg::Aes128Gcm => Cipher::Aes128(boxed(key)?),
            AeadAlg::Aes256Gcm => Cipher::Aes256(boxed(key)?),
            AeadAlg::ChaCha20Poly1305 => Cipher::ChaCha(boxed(key)?),
            AeadAlg::Aes128Ccm => Cipher::Aes128Ccm(boxed(key)?),
            AeadAlg::Aes256Ccm => Cipher::Aes256Ccm(boxed(key)?),
            AeadAlg::Aes128Ccm8 => Cipher::Aes128Ccm8(boxed(key)?),
            AeadAlg::Aes256Ccm8 => Cipher::Aes256Ccm8(boxed(key)?),
        };
        let mut full = [0u8; 12];
        full.get_mut(..iv.len())?.copy_from_slice(iv);
        Some(RecordKeys {
            cipher,
            tag_len: aead.tag_len(),
            iv: full,
            seq: 0,
            mode,
        })
    }

    /// Keys of a CBC suite: `iv` is the TLS 1.0 initial IV from the key block, ignored for
    /// TLS 1.1 and later (`tls10` false).
    pub fn new_cbc(
        key: &[u8],
        mac: MacAlg,
        mac_key: &[u8],
        iv: &[u8],
        tls10: bool,
        etm: bool,
    ) -> Option<Self> {
        if !matches!(key.len(), 16 | 32) || mac_key.len() != mac.output_len() {
            return None;
        }
        let chained_iv = if tls10 {
            Some(<[u8; 16]>::try_from(iv).ok()?)
        } else {
            None
        };
        Some(RecordKeys {
            cipher: Cipher::Cbc(Box::new(CbcKeys {
                key: KeyBytes::new(key.to_vec()),
                mac,
                mac_key: KeyBytes::new(mac_key.to_vec()),
                chained_iv,
                etm,
            })),
            tag_len: 0,
            iv: [0; 12],
            seq: 0,
            mode: RecordMode::Cbc,
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
        fn run<A: AeadInOut<NonceSize = U12>>(
            c: &A,
            nonce: &[u8; 12],
            aad: &[u8],
            msg: &mut [u8],
            tag: &[u8],
        ) -> bool {
            let Ok(tag) = Tag::<A>::try_from(tag) else {
                return false;
            };
            c.decrypt_inout_detached(&(*nonce).into(), aad, msg.into(), &tag)
                .is_ok()
        }
        match &self.cipher {
            Cipher::Aes128(c) => run(c.as_ref(), nonce, aad, msg, tag),
            Cipher::Aes256(c) => run(c.as_ref(), nonce, aad, msg, tag),
            Cipher::ChaCha(c) => run(c.as_ref(), nonce, aad, msg, tag),
            Cipher::Aes128Ccm(c) => run(c.as_ref(), nonce, aad, msg, tag),
            Cipher::Aes256Ccm(c) => run(c.as_ref(), nonce, aad, msg, tag),
            Cipher::Aes128Ccm8(c) => run(c.as_ref(), nonce, aad, msg, tag),
            Cipher::Aes256Ccm8(c) => run(c.as_ref(), nonce, aad, msg, tag),
            Cipher::Cbc(_) => false,
        }
    }

    /// Decrypts one record body in place. `header` is the record's 5-byte header as sent.
    /// `None` when it does not authenticate (the buffer is then garbage) or is malformed.
    pub fn decrypt(&mut self, header: [u8; 5], body: &mut [u8]) -> Option<Plain> {
        if let Cipher::Cbc(k) = &mut self.cipher {
            let plain = k.open(self.seq, header, body)?;
            self.seq = self.seq.wrapping_add(1);
            return Some(plain);
        }
        let [ty, v0, v1, _, _] = header;
        let tag_at = body.len().checked_sub(self.tag_len)?;
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
            RecordMode::Cbc => return None,
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
mod tests;
