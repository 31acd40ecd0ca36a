//! AES-CBC records with an HMAC (TLS 1.0 to 1.2): MAC-then-encrypt (RFC 5246 section
//! 6.2.3.2) or encrypt-then-MAC (RFC 7366); the padding and the MAC are both checked.

use super::suites::MacAlg;
use super::{KeyBytes, Plain};
use aes::cipher::block_padding::NoPadding;
use aes::cipher::{BlockModeDecrypt, KeyIvInit};

pub(super) struct CbcKeys {
    pub(super) key: KeyBytes,
    pub(super) mac: MacAlg,
    pub(super) mac_key: KeyBytes,
    /// TLS 1.0: the IV is the last ciphertext block of the previous record (RFC 2246
    /// section 6.2.3.2); later versions carry it in each record.
    pub(super) chained_iv: Option<[u8; 16]>,
    /// encrypt_then_mac negotiated (RFC 7366): the MAC covers the ciphertext.
    pub(super) etm: bool,
}

impl CbcKeys {
    /// One CBC record: (explicit IV,) ciphertext, MAC; padding and MAC both checked.
    pub(super) fn open(&mut self, seq: u64, header: [u8; 5], body: &mut [u8]) -> Option<Plain> {
        let seq = seq.to_be_bytes();
        let k = self;
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
}
