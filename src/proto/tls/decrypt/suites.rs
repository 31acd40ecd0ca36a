//! The cipher suites this module decrypts and what their records need: the AEAD and its key,
//! tag and IV lengths, or the CBC key and MAC, and the hash of the key schedule.

use super::schedule::HashAlg;
use hmac::{Hmac, KeyInit, Mac};
use sha1::Sha1;
use sha2::{Sha256, Sha384};

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum AeadAlg {
    Aes128Gcm,
    Aes256Gcm,
    ChaCha20Poly1305,
    /// AES-CCM with a 16-byte tag (RFC 6655, RFC 8446 TLS_AES_128_CCM_SHA256).
    Aes128Ccm,
    Aes256Ccm,
    /// AES-CCM with an 8-byte tag (the `_CCM_8` suites).
    Aes128Ccm8,
    Aes256Ccm8,
}

impl AeadAlg {
    pub fn key_len(self) -> usize {
        match self {
            AeadAlg::Aes128Gcm | AeadAlg::Aes128Ccm | AeadAlg::Aes128Ccm8 => 16,
            AeadAlg::Aes256Gcm
            | AeadAlg::ChaCha20Poly1305
            | AeadAlg::Aes256Ccm
            | AeadAlg::Aes256Ccm8 => 32,
        }
    }

    /// Authentication tag length at the end of each record.
    pub fn tag_len(self) -> usize {
        match self {
            AeadAlg::Aes128Ccm8 | AeadAlg::Aes256Ccm8 => 8,
            _ => 16,
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
    /// TLS 1.2 fixed IV bytes from the key block: the 4-byte salt of GCM (RFC 5288) and
    /// CCM (RFC 6655 section 3), or ChaCha20-Poly1305's 12-byte IV (RFC 7905).
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
        0x1304 => (AeadAlg::Aes128Ccm, HashAlg::Sha256),
        0x1305 => (AeadAlg::Aes128Ccm8, HashAlg::Sha256),
        _ => return None,
    };
    Some(Suite { aead, hash })
}

/// A TLS 1.2 AEAD suite this module decrypts: AES-GCM (RFC 5288, 5487, 5289), AES-CCM
/// (RFC 6655, 7251, 8442) and ChaCha20-Poly1305 (RFC 7905), whatever the key exchange.
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
        // CCM suites all use the SHA-256 PRF, whatever their key length (RFC 6655 section 3).
        // RSA, DHE-RSA, PSK, DHE-PSK, ECDHE-ECDSA, ECDHE-PSK.
        0xc09c | 0xc09e | 0xc0a4 | 0xc0a6 | 0xc0ac | 0xd005 => {
            s(AeadAlg::Aes128Ccm, HashAlg::Sha256)
        }
        0xc09d | 0xc09f | 0xc0a5 | 0xc0a7 | 0xc0ad => s(AeadAlg::Aes256Ccm, HashAlg::Sha256),
        0xc0a0 | 0xc0a2 | 0xc0a8 | 0xc0aa | 0xc0ae | 0xd003 => {
            s(AeadAlg::Aes128Ccm8, HashAlg::Sha256)
        }
        0xc0a1 | 0xc0a3 | 0xc0a9 | 0xc0ab | 0xc0af => s(AeadAlg::Aes256Ccm8, HashAlg::Sha256),
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

    pub(super) fn hmac(self, key: &[u8], parts: &[&[u8]]) -> Option<Vec<u8>> {
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
