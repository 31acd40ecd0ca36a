//! Record decryption with the RustCrypto AEADs: which suites are supported, the keys of each
//! direction, and one record's decryption (nonce, additional data, tag check).
//!
//! A record that fails to authenticate is reported as such and changes nothing: its
//! sequence number is not consumed, so a record sent under other keys (0-RTT data the
//! server refused, a key log for another connection) cannot shift the ones that follow.

pub mod schedule;

use aes::cipher::block_padding::NoPadding;
use aes::cipher::{BlockModeDecrypt, KeyIvInit};
use aes_gcm::aead::AeadInOut;
use aes_gcm::{Aes128Gcm, Aes256Gcm, KeyInit};
use chacha20poly1305::ChaCha20Poly1305;
use hmac::{Hmac, Mac};
use sha1::Sha1;
use sha2::{Sha256, Sha384};
use std::fmt;

use schedule::{HashAlg, KeyBytes};

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

/// The MAC of a CBC suite (RFC 5246 section 6.2.3.1).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum MacAlg {
    Sha1,
    Sha256,
    Sha384,
}

impl MacAlg {
    pub fn output_len(self) -> usize {
        match self {
            MacAlg::Sha1 => 20,
            MacAlg::Sha256 => 32,
            MacAlg::Sha384 => 48,
        }
    }

    fn hmac(self, key: &[u8], parts: &[&[u8]]) -> Option<Vec<u8>> {
        fn run<M: Mac + KeyInit>(key: &[u8], parts: &[&[u8]]) -> Option<Vec<u8>> {
            let mut m = <M as KeyInit>::new_from_slice(key).ok()?;
            for p in parts {
                m.update(p);
            }
            Some(m.finalize().into_bytes().to_vec())
        }
        match self {
            MacAlg::Sha1 => run::<Hmac<Sha1>>(key, parts),
            MacAlg::Sha256 => run::<Hmac<Sha256>>(key, parts),
            MacAlg::Sha384 => run::<Hmac<Sha384>>(key, parts),
        }
    }
}

/// A TLS 1.0-1.2 AES-CBC suite: key length, MAC, and the TLS 1.2 PRF hash.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct CbcSuite {
    pub key_len: usize,
    pub mac: MacAlg,
    pub prf_hash: HashAlg,
}

/// An AES-CBC suite this module decrypts (RFC 5246 appendix A.5, RFC 4492, RFC 5289,
/// RFC 4279, RFC 5487), whatever the key exchange.
pub fn cbc_suite(id: u16) -> Option<CbcSuite> {
    let s = |key_len, mac, prf_hash| {
        Some(CbcSuite {
            key_len,
            mac,
            prf_hash,
        })
    };
    match id {
        // AES-128-CBC-SHA: RSA, DH-DSS, DH-RSA, DHE-DSS, DHE-RSA, DH-anon, PSK, DHE-PSK,
        // RSA-PSK, ECDH-ECDSA, ECDHE-ECDSA, ECDH-RSA, ECDHE-RSA, ECDH-anon, ECDHE-PSK.
        0x002f | 0x0030 | 0x0031 | 0x0032 | 0x0033 | 0x0034 | 0x008c | 0x0090 | 0x0094 | 0xc004
        | 0xc009 | 0xc00e | 0xc013 | 0xc018 | 0xc035 => s(16, MacAlg::Sha1, HashAlg::Sha256),
        0x0035 | 0x0036 | 0x0037 | 0x0038 | 0x0039 | 0x003a | 0x008d | 0x0091 | 0x0095 | 0xc005
        | 0xc00a | 0xc00f | 0xc014 | 0xc019 | 0xc036 => s(32, MacAlg::Sha1, HashAlg::Sha256),
        0x003c | 0x003e | 0x003f | 0x0040 | 0x0067 | 0x006c | 0x00ae | 0x00b2 | 0x00b6 | 0xc023
        | 0xc025 | 0xc027 | 0xc029 | 0xc037 => s(16, MacAlg::Sha256, HashAlg::Sha256),
        0x003d | 0x0068 | 0x0069 | 0x006a | 0x006b | 0x006d => {
            s(32, MacAlg::Sha256, HashAlg::Sha256)
        }
        0x00af | 0x00b3 | 0x00b7 | 0xc024 | 0xc026 | 0xc028 | 0xc02a | 0xc038 => {
            s(32, MacAlg::Sha384, HashAlg::Sha384)
        }
        _ => None,
    }
}

enum Cipher {
    Aes128(Box<Aes128Gcm>),
    Aes256(Box<Aes256Gcm>),
    ChaCha(Box<ChaCha20Poly1305>),
    Cbc(Box<CbcKeys>),
}

struct CbcKeys {
    key: KeyBytes,
    mac: MacAlg,
    mac_key: KeyBytes,
    /// TLS 1.0: the IV is the last ciphertext block of the previous record (RFC 2246
    /// section 6.2.3.2); later versions carry it in each record.
    chained_iv: Option<[u8; 16]>,
    /// encrypt_then_mac negotiated (RFC 7366): the MAC covers the ciphertext.
    etm: bool,
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
    /// AES-CBC with an HMAC (TLS 1.0 to 1.2).
    Cbc,
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
        let Ok(tag) = <&[u8; TAG_LEN]>::try_from(tag) else {
            return false;
        };
        let nonce = (*nonce).into();
        let tag = (*tag).into();
        match &self.cipher {
            Cipher::Aes128(c) => c.decrypt_inout_detached(&nonce, aad, msg.into(), &tag),
            Cipher::Aes256(c) => c.decrypt_inout_detached(&nonce, aad, msg.into(), &tag),
            Cipher::ChaCha(c) => c.decrypt_inout_detached(&nonce, aad, msg.into(), &tag),
            Cipher::Cbc(_) => return false,
        }
        .is_ok()
    }

    /// One CBC record: (explicit IV,) ciphertext, MAC; padding and MAC both checked.
    fn open_cbc(&mut self, header: [u8; 5], body: &mut [u8]) -> Option<Plain> {
        let seq = self.seq.to_be_bytes();
        let Cipher::Cbc(k) = &mut self.cipher else {
            return None;
        };
        let [ty, v0, v1, _, _] = header;
        let mac_len = k.mac.output_len();
        let explicit = if k.chained_iv.is_some() { 0 } else { 16 };
        // Encrypt-then-MAC: the MAC follows the ciphertext and covers it (with its IV).
        let ct_end = if k.etm {
            body.len().checked_sub(mac_len)?
        } else {
            body.len()
        };
        let ct_len = ct_end.checked_sub(explicit)?;
        if ct_len == 0 || ct_len % 16 != 0 {
            return None;
        }
        if k.etm {
            let (head, mac) = body.split_at(ct_end);
            let len = u16::try_from(head.len()).ok()?.to_be_bytes();
            let want = k.mac.hmac(&k.mac_key, &[&seq, &[ty, v0, v1], &len, head])?;
            if want.as_slice() != mac {
                return None;
            }
        }
        let iv: [u8; 16] = match k.chained_iv {
            Some(iv) => iv,
            None => <[u8; 16]>::try_from(body.get(..16)?).ok()?,
        };
        let last_block = <[u8; 16]>::try_from(body.get(ct_end - 16..ct_end)?).ok()?;
        let ct = body.get_mut(explicit..ct_end)?;
        let ok = match k.key.len() {
            16 => cbc::Decryptor::<aes::Aes128>::new_from_slices(&k.key, &iv)
                .ok()?
                .decrypt_padded::<NoPadding>(ct)
                .is_ok(),
            _ => cbc::Decryptor::<aes::Aes256>::new_from_slices(&k.key, &iv)
                .ok()?
                .decrypt_padded::<NoPadding>(ct)
                .is_ok(),
        };
        if !ok {
            return None;
        }
        // Padding: pad_len + 1 bytes, each pad_len (RFC 5246 section 6.2.3.2).
        let pad = *ct.last()? as usize;
        let unpadded = ct.len().checked_sub(pad + 1)?;
        if !ct.get(unpadded..)?.iter().all(|&b| b as usize == pad) {
            return None;
        }
        let end = if k.etm {
            unpadded
        } else {
            let content_len = unpadded.checked_sub(mac_len)?;
            let (content, rest) = ct.split_at(content_len);
            let len = u16::try_from(content_len).ok()?.to_be_bytes();
            let want = k
                .mac
                .hmac(&k.mac_key, &[&seq, &[ty, v0, v1], &len, content])?;
            if want.as_slice() != rest.get(..mac_len)? {
                return None;
            }
            content_len
        };
        if k.chained_iv.is_some() {
            k.chained_iv = Some(last_block);
        }
        Some(Plain {
            content_type: ty,
            start: explicit,
            end: explicit + end,
        })
    }

    /// Decrypts one record body in place. `header` is the record's 5-byte header as sent.
    /// `None` when it does not authenticate (the buffer is then garbage) or is malformed.
    pub fn decrypt(&mut self, header: [u8; 5], body: &mut [u8]) -> Option<Plain> {
        if self.mode == RecordMode::Cbc {
            let plain = self.open_cbc(header, body)?;
            self.seq = self.seq.wrapping_add(1);
            return Some(plain);
        }
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
            Cipher::Cbc(_) => unreachable!(),
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

    /// A TLS 1.2 MAC-then-encrypt CBC record, made with the cbc crate's encryptor.
    fn cbc_record(key: &[u8], mac_key: &[u8], seq: u64, iv: [u8; 16], plain: &[u8]) -> Vec<u8> {
        use aes::cipher::BlockModeEncrypt;
        let mac = MacAlg::Sha1
            .hmac(
                mac_key,
                &[
                    &seq.to_be_bytes(),
                    &[23, 3, 3],
                    &(plain.len() as u16).to_be_bytes(),
                    plain,
                ],
            )
            .unwrap();
        let mut buf = plain.to_vec();
        buf.extend_from_slice(&mac);
        let pad = 15 - buf.len() % 16;
        buf.extend(std::iter::repeat_n(pad as u8, pad + 1));
        let n = buf.len();
        cbc::Encryptor::<aes::Aes128>::new_from_slices(key, &iv)
            .unwrap()
            .encrypt_padded::<NoPadding>(&mut buf, n)
            .unwrap();
        let mut rec = iv.to_vec();
        rec.extend_from_slice(&buf);
        rec
    }

    #[test]
    fn tls12_cbc_mac_then_encrypt() {
        let (key, mac_key) = ([5u8; 16], [6u8; 20]);
        let mut k =
            RecordKeys::new_cbc(&key, MacAlg::Sha1, &mac_key, &[0; 16], false, false).unwrap();
        for seq in 0..2u64 {
            let mut rec = cbc_record(&key, &mac_key, seq, [seq as u8; 16], b"AUTH LOGIN\r\n");
            let len = (rec.len() as u16).to_be_bytes();
            let header = [23, 3, 3, len[0], len[1]];
            let mut bad = rec.clone();
            bad[20] ^= 1;
            assert!(k.decrypt(header, &mut bad).is_none());
            let p = k.decrypt(header, &mut rec).unwrap();
            assert_eq!(&rec[p.start..p.end], b"AUTH LOGIN\r\n");
        }
        assert_eq!(k.seq(), 2);
    }

    #[test]
    fn cbc_suites_name_their_mac_and_prf() {
        let s = cbc_suite(0x002f).unwrap();
        assert_eq!(
            (s.key_len, s.mac, s.prf_hash),
            (16, MacAlg::Sha1, HashAlg::Sha256)
        );
        let s = cbc_suite(0xc028).unwrap();
        assert_eq!(
            (s.key_len, s.mac, s.prf_hash),
            (32, MacAlg::Sha384, HashAlg::Sha384)
        );
        assert!(cbc_suite(0x000a).is_none());
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
