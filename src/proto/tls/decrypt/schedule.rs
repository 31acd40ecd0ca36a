//! Key schedules over hmac/hkdf: TLS 1.3 HKDF-Expand-Label (RFC 8446 section 7.1) for
//! traffic keys and key updates, and the TLS 1.2 PRF (RFC 5246 section 5) and the TLS 1.0/1.1
//! PRF (RFC 2246 section 5) for the key block.

use hkdf::Hkdf;
use hmac::{Hmac, KeyInit, Mac};
use md5::Md5;
use sha1::Sha1;
use sha2::{Sha256, Sha384};
use zeroize::Zeroizing;

/// The hash of a suite's key schedule.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum HashAlg {
    Sha256,
    Sha384,
}

impl HashAlg {
    pub fn output_len(self) -> usize {
        match self {
            HashAlg::Sha256 => 32,
            HashAlg::Sha384 => 48,
        }
    }
}

/// HKDF-Expand-Label(secret, label, context, len); `None` when `secret` is not a usable
/// PRK for the hash or `len` is out of HKDF's range.
pub fn expand_label(
    hash: HashAlg,
    secret: &[u8],
    label: &str,
    context: &[u8],
    len: usize,
) -> Option<Zeroizing<Vec<u8>>> {
    let full = [b"tls13 ", label.as_bytes()].concat();
    let mut info = Vec::with_capacity(4 + full.len() + context.len());
    info.extend_from_slice(&u16::try_from(len).ok()?.to_be_bytes());
    info.push(u8::try_from(full.len()).ok()?);
    info.extend_from_slice(&full);
    info.push(u8::try_from(context.len()).ok()?);
    info.extend_from_slice(context);
    let mut out = Zeroizing::new(vec![0u8; len]);
    match hash {
        HashAlg::Sha256 => Hkdf::<Sha256>::from_prk(secret)
            .ok()?
            .expand(&info, &mut out)
            .ok()?,
        HashAlg::Sha384 => Hkdf::<Sha384>::from_prk(secret)
            .ok()?
            .expand(&info, &mut out)
            .ok()?,
    }
    Some(out)
}

/// Key material that is wiped on drop.
pub type KeyBytes = Zeroizing<Vec<u8>>;

/// TLS 1.3 traffic key and IV from a traffic secret.
pub fn traffic_keys(hash: HashAlg, secret: &[u8], key_len: usize) -> Option<(KeyBytes, KeyBytes)> {
    Some((
        expand_label(hash, secret, "key", &[], key_len)?,
        expand_label(hash, secret, "iv", &[], 12)?,
    ))
}

/// The next traffic secret after a KeyUpdate (RFC 8446 section 7.2).
pub fn next_traffic_secret(hash: HashAlg, secret: &[u8]) -> Option<Zeroizing<Vec<u8>>> {
    expand_label(hash, secret, "traffic upd", &[], hash.output_len())
}

/// P_hash (RFC 5246 section 5) XORed into `out`.
fn p_hash_xor<M: Mac + KeyInit + Clone>(
    secret: &[u8],
    seed: &[&[u8]],
    out: &mut [u8],
) -> Option<()> {
    let base = <M as KeyInit>::new_from_slice(secret).ok()?;
    // A(1) = HMAC(secret, seed); A(i) = HMAC(secret, A(i-1)).
    let mut a = {
        let mut m = base.clone();
        for s in seed {
            m.update(s);
        }
        Zeroizing::new(m.finalize().into_bytes().to_vec())
    };
    let mut pos = 0;
    while pos < out.len() {
        let mut m = base.clone();
        m.update(&a);
        for s in seed {
            m.update(s);
        }
        let block = Zeroizing::new(m.finalize().into_bytes().to_vec());
        for (o, b) in out.iter_mut().skip(pos).zip(block.iter()) {
            *o ^= b;
        }
        pos += block.len();
        let mut m = base.clone();
        m.update(&a);
        a = Zeroizing::new(m.finalize().into_bytes().to_vec());
    }
    Some(())
}

/// Which PRF a TLS 1.2-or-older session uses.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Prf {
    /// TLS 1.0 and 1.1: P_MD5 over the first half of the secret XOR P_SHA1 over the second.
    Tls10,
    Tls12(HashAlg),
}

/// PRF(secret, label, seed) of `len` bytes.
pub fn prf(
    kind: Prf,
    secret: &[u8],
    label: &[u8],
    seed: &[&[u8]],
    len: usize,
) -> Option<Zeroizing<Vec<u8>>> {
    let mut out = Zeroizing::new(vec![0u8; len]);
    let mut full: Vec<&[u8]> = vec![label];
    full.extend_from_slice(seed);
    match kind {
        Prf::Tls12(HashAlg::Sha256) => p_hash_xor::<Hmac<Sha256>>(secret, &full, &mut out)?,
        Prf::Tls12(HashAlg::Sha384) => p_hash_xor::<Hmac<Sha384>>(secret, &full, &mut out)?,
        Prf::Tls10 => {
            // RFC 2246 section 5: the halves overlap by one byte when the length is odd.
            let half = secret.len().div_ceil(2);
            let s1 = secret.get(..half)?;
            let s2 = secret.get(secret.len() - half..)?;
            p_hash_xor::<Hmac<Md5>>(s1, &full, &mut out)?;
            p_hash_xor::<Hmac<Sha1>>(s2, &full, &mut out)?;
        }
    }
    Some(out)
}

/// The TLS 1.2-or-older key block: PRF(master, "key expansion", server_random + client_random).
pub fn key_block(
    kind: Prf,
    master: &[u8],
    client_random: &[u8; 32],
    server_random: &[u8; 32],
    len: usize,
) -> Option<Zeroizing<Vec<u8>>> {
    prf(
        kind,
        master,
        b"key expansion",
        &[server_random, client_random],
        len,
    )
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;

    fn h(s: &str) -> Vec<u8> {
        hex::decode(s.replace(' ', "")).unwrap()
    }

    // RFC 8448 section 3 (simple 1-RTT handshake).
    const HS_SECRET: &str = "1d c8 26 e9 36 06 aa 6f dc 0a ad c1 2f 74 1b 01 04 6a a6 b9 9f 69 1e d2 21 a9 f0 ca 04 3f be ac";
    const HELLO_HASH: &str = "86 0c 06 ed c0 78 58 ee 8e 78 f0 e7 42 8c 58 ed d6 b4 3f 2c a3 e6 e9 5f 02 ed 06 3c f0 e1 ca d8";
    const C_HS: &str = "b3 ed db 12 6e 06 7f 35 a7 80 b3 ab f4 5e 2d 8f 3b 1a 95 07 38 f5 2e 96 00 74 6a 0e 27 a5 5a 21";
    const S_HS: &str = "b6 7b 7d 69 0c c1 6c 4e 75 e5 42 13 cb 2d 37 b4 e9 c9 12 bc de d9 10 5d 42 be fd 59 d3 91 ad 38";
    const EMPTY_HASH: &str = "e3 b0 c4 42 98 fc 1c 14 9a fb f4 c8 99 6f b9 24 27 ae 41 e4 64 9b 93 4c a4 95 99 1b 78 52 b8 55";
    const DERIVED_HS: &str = "43 de 77 e0 c7 77 13 85 9a 94 4d b9 db 25 90 b5 31 90 a6 5b 3e e2 e4 f1 2d d7 a0 bb 7c e2 54 b4";
    const C_AP: &str = "9e 40 64 6c e7 9a 7f 9d c0 5a f8 88 9b ce 65 52 87 5a fa 0b 06 df 00 87 f7 92 eb b7 c1 75 04 a5";
    const S_AP: &str = "a1 1a f9 f0 55 31 f8 56 ad 47 11 6b 45 a9 50 32 82 04 b4 f4 4b fb 6b 3a 4b 4f 1f 3f cb 63 16 43";

    #[test]
    fn rfc8448_handshake_traffic_secrets() {
        let hs = h(HS_SECRET);
        let ctx = h(HELLO_HASH);
        let c = expand_label(HashAlg::Sha256, &hs, "c hs traffic", &ctx, 32).unwrap();
        let s = expand_label(HashAlg::Sha256, &hs, "s hs traffic", &ctx, 32).unwrap();
        assert_eq!(*c, h(C_HS));
        assert_eq!(*s, h(S_HS));
        let d = expand_label(HashAlg::Sha256, &hs, "derived", &h(EMPTY_HASH), 32).unwrap();
        assert_eq!(*d, h(DERIVED_HS));
    }

    #[test]
    fn rfc8448_traffic_keys() {
        let (key, iv) = traffic_keys(HashAlg::Sha256, &h(S_HS), 16).unwrap();
        assert_eq!(*key, h("3f ce 51 60 09 c2 17 27 d0 f2 e4 e8 6e e4 03 bc"));
        assert_eq!(*iv, h("5d 31 3e b2 67 12 76 ee 13 00 0b 30"));
        let (key, iv) = traffic_keys(HashAlg::Sha256, &h(C_HS), 16).unwrap();
        assert_eq!(*key, h("db fa a6 93 d1 76 2c 5b 66 6a f5 d9 50 25 8d 01"));
        assert_eq!(*iv, h("5b d3 c7 1b 83 6e 0b 76 bb 73 26 5f"));
        let (key, iv) = traffic_keys(HashAlg::Sha256, &h(S_AP), 16).unwrap();
        assert_eq!(*key, h("9f 02 28 3b 6c 9c 07 ef c2 6b b9 f2 ac 92 e3 56"));
        assert_eq!(*iv, h("cf 78 2b 88 dd 83 54 9a ad f1 e9 84"));
        let (key, iv) = traffic_keys(HashAlg::Sha256, &h(C_AP), 16).unwrap();
        assert_eq!(*key, h("17 42 2d da 59 6e d5 d9 ac d8 90 e3 c6 3f 50 51"));
        assert_eq!(*iv, h("5b 78 92 3d ee 08 57 90 33 e5 23 d9"));
    }

    #[test]
    fn rfc8448_finished_key_uses_the_same_expansion() {
        let k = expand_label(HashAlg::Sha256, &h(S_HS), "finished", &[], 32).unwrap();
        assert_eq!(
            *k,
            h(
                "00 8d 3b 66 f8 16 ea 55 9f 96 b5 37 e8 85 c3 1f c0 68 bf 49 2c 65 2f 01 f2 88 a1 d8 cd c1 9f c8"
            )
        );
    }

    #[test]
    fn key_update_changes_the_secret_and_keeps_its_length() {
        let next = next_traffic_secret(HashAlg::Sha256, &h(C_AP)).unwrap();
        assert_eq!(next.len(), 32);
        assert_ne!(*next, h(C_AP));
        assert!(next_traffic_secret(HashAlg::Sha384, &[0u8; 48]).is_some());
    }

    #[test]
    fn tls12_prf_sha256_known_answer() {
        // The widely published TLS 1.2 PRF SHA-256 test vector (secret, "test label", seed).
        let secret = h("9b be 43 6b a9 40 f0 17 b1 76 52 84 9a 71 db 35");
        let seed = h("a0 ba 9f 93 6c da 31 18 27 a6 f7 96 ff d5 19 8c");
        let out = prf(
            Prf::Tls12(HashAlg::Sha256),
            &secret,
            b"test label",
            &[&seed],
            100,
        )
        .unwrap();
        assert_eq!(
            hex::encode(out.get(..16).unwrap()),
            "e3f229ba727be17b8d122620557cd453"
        );
        assert_eq!(out.len(), 100);
    }

    #[test]
    fn tls10_prf_splits_odd_secrets_with_overlap() {
        let a = prf(Prf::Tls10, &[1, 2, 3], b"x", &[b"y"], 20).unwrap();
        let b = prf(Prf::Tls10, &[1, 2, 3], b"x", &[b"y"], 40).unwrap();
        assert_eq!(a.as_slice(), b.get(..20).unwrap());
    }
}
