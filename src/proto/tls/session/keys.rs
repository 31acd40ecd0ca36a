//! Record keys from a handshake's secrets: TLS 1.3 traffic keys from a traffic secret, and the
//! TLS 1.0-1.2 key block from the master secret and the two randoms of the handshake (the
//! first one, or a renegotiation's).

use crate::proto::tls::decrypt::schedule::{self, HashAlg, Prf};
use crate::proto::tls::decrypt::{self as dec, RecordKeys, RecordMode, Suite};
use crate::proto::tls::handshake::ServerHello;
use crate::proto::tls::names::Version;

/// TLS 1.3 keys of a direction from its traffic secret.
pub(super) fn tls13_keys(suite: Suite, secret: &[u8]) -> Option<RecordKeys> {
    let (key, iv) = schedule::traffic_keys(suite.hash, secret, suite.aead.key_len())?;
    RecordKeys::new(suite.aead, &key, &iv, RecordMode::Tls13)
}

/// The client's and the server's keys of a TLS 1.0-1.2 handshake, to take effect at each
/// side's ChangeCipherSpec; `None` for a suite or version this module does not decrypt.
pub(super) fn tls12_keys(
    master: &[u8],
    client_random: &[u8; 32],
    sh: &ServerHello,
) -> Option<[Option<RecordKeys>; 2]> {
    let version = sh.selected_version;
    if !matches!(version, Version::TLS10 | Version::TLS11 | Version::TLS12) {
        return None;
    }
    let tls12 = version == Version::TLS12;
    let block = |hash, len| {
        let prf = if tls12 { Prf::Tls12(hash) } else { Prf::Tls10 };
        schedule::key_block(prf, master, client_random, &sh.random, len)
    };
    if let Some(suite) = dec::tls12_suite(sh.cipher).filter(|_| tls12) {
        let (kl, il) = (suite.aead.key_len(), suite.tls12_iv_len());
        let mode = match suite.aead {
            dec::AeadAlg::ChaCha20Poly1305 => RecordMode::Tls12XorNonce,
            _ => RecordMode::Tls12ExplicitNonce,
        };
        // RFC 5246 section 6.3: client key, server key, client IV, server IV (AEAD suites
        // have no MAC keys).
        let b = block(suite.hash, 2 * kl + 2 * il)?;
        let part = |from: usize, len: usize| b.get(from..from + len);
        let (ck, sk) = (part(0, kl)?, part(kl, kl)?);
        let (ci, si) = (part(2 * kl, il)?, part(2 * kl + il, il)?);
        return Some([
            RecordKeys::new(suite.aead, ck, ci, mode),
            RecordKeys::new(suite.aead, sk, si, mode),
        ]);
    }
    let suite = dec::cbc_suite(sh.cipher)?;
    let (ml, kl) = (suite.mac.output_len(), suite.key_len);
    let tls10 = version == Version::TLS10;
    // RFC 7366: encrypt_then_mac (extension 22) in the ServerHello.
    let etm = sh.extensions.contains(&22);
    // TLS 1.0/1.1 use their own PRF whatever the suite says.
    let hash = if tls12 {
        suite.prf_hash
    } else {
        HashAlg::Sha256
    };
    let b = block(hash, 2 * (ml + kl + 16))?;
    // MAC keys, then cipher keys, then IVs (used by TLS 1.0 only).
    let part = |from: usize, len: usize| b.get(from..from + len);
    let (cm, sm) = (part(0, ml)?, part(ml, ml)?);
    let (ck, sk) = (part(2 * ml, kl)?, part(2 * ml + kl, kl)?);
    let (ci, si) = (part(2 * (ml + kl), 16)?, part(2 * (ml + kl) + 16, 16)?);
    Some([
        RecordKeys::new_cbc(ck, suite.mac, cm, ci, tls10, etm),
        RecordKeys::new_cbc(sk, suite.mac, sm, si, tls10, etm),
    ])
}
