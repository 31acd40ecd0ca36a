//! Record decryption round trips and known answers.

use super::schedule::HashAlg;
use super::*;
use aes::cipher::KeyIvInit;
use aes::cipher::block_padding::NoPadding;

fn seal(keys: &RecordKeys, nonce: &[u8; 12], aad: &[u8], msg: &mut Vec<u8>) {
    fn run<A: AeadInOut<NonceSize = U12>>(
        c: &A,
        n: &[u8; 12],
        aad: &[u8],
        m: &mut [u8],
    ) -> Vec<u8> {
        c.encrypt_inout_detached(&(*n).into(), aad, m.into())
            .unwrap()
            .to_vec()
    }
    let m = msg.as_mut_slice();
    let tag = match &keys.cipher {
        Cipher::Aes128(c) => run(c.as_ref(), nonce, aad, m),
        Cipher::Aes256(c) => run(c.as_ref(), nonce, aad, m),
        Cipher::ChaCha(c) => run(c.as_ref(), nonce, aad, m),
        Cipher::Aes128Ccm(c) => run(c.as_ref(), nonce, aad, m),
        Cipher::Aes256Ccm(c) => run(c.as_ref(), nonce, aad, m),
        Cipher::Aes128Ccm8(c) => run(c.as_ref(), nonce, aad, m),
        Cipher::Aes256Ccm8(c) => run(c.as_ref(), nonce, aad, m),
        Cipher::Cbc(_) => unreachable!(),
    };
    msg.extend_from_slice(&tag);
}

fn h(s: &str) -> Vec<u8> {
    hex::decode(s.replace(' ', "")).unwrap()
}

#[test]
fn tls13_record_round_trip_and_sequence() {
    for aead in [
        AeadAlg::Aes128Gcm,
        AeadAlg::Aes256Gcm,
        AeadAlg::ChaCha20Poly1305,
        AeadAlg::Aes128Ccm,
        AeadAlg::Aes128Ccm8,
        AeadAlg::Aes256Ccm,
        AeadAlg::Aes256Ccm8,
    ] {
        let key = vec![7u8; aead.key_len()];
        let iv = [9u8; 12];
        let mut dec = RecordKeys::new(aead, &key, &iv, RecordMode::Tls13).unwrap();
        let enc = RecordKeys::new(aead, &key, &iv, RecordMode::Tls13).unwrap();
        for seq in 0..3u64 {
            let mut inner = b"250 OK\r\n".to_vec();
            inner.extend_from_slice(&[23, 0, 0]);
            let len = (inner.len() + aead.tag_len()) as u16;
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
    let mut k = RecordKeys::new_cbc(&key, MacAlg::Sha1, &mac_key, &[0; 16], false, false).unwrap();
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
    let mut k = RecordKeys::new(AeadAlg::Aes128Gcm, &[0; 16], &[0; 12], RecordMode::Tls13).unwrap();
    assert!(k.decrypt([23, 3, 3, 0, 3], &mut [1, 2, 3]).is_none());
    assert!(k.decrypt([23, 3, 3, 0, 20], &mut [0; 20]).is_none());
    assert_eq!(k.seq(), 0);
    assert!(RecordKeys::new(AeadAlg::Aes128Gcm, &[0; 15], &[0; 12], RecordMode::Tls13).is_none());
}

/// NIST SP 800-38C example 3: AES-128-CCM, 12-byte nonce, 8-byte tag (the CCM_8 shape).
#[test]
fn ccm8_sp800_38c_example_3() {
    let k = RecordKeys::new(
        AeadAlg::Aes128Ccm8,
        &h("404142434445464748494a4b4c4d4e4f"),
        &[0; 12],
        RecordMode::Tls13,
    )
    .unwrap();
    let nonce: [u8; 12] = h("101112131415161718191a1b").try_into().unwrap();
    let aad = h("000102030405060708090a0b0c0d0e0f10111213");
    let mut ct = h("e3b201a9f5b71a7a9b1ceaeccd97e70b6176aad9a4428aa5");
    let tag = h("484392fbc1b09951");
    assert!(k.open(&nonce, &aad, &mut ct, &tag));
    assert_eq!(ct, h("202122232425262728292a2b2c2d2e2f3031323334353637"));
    let mut ct = h("e3b201a9f5b71a7a9b1ceaeccd97e70b6176aad9a4428aa5");
    assert!(!k.open(&nonce, &aad, &mut ct, &h("484392fbc1b09950")));
}

/// A TLS 1.3 TLS_AES_128_CCM_SHA256 record (sequence 1) sealed by another implementation
/// (Python cryptography's AESCCM): key 01..10, IV a0..ab.
#[test]
fn tls13_aes_128_ccm_known_record() {
    let key: Vec<u8> = (1..=16).collect();
    let iv: Vec<u8> = (0xa0..=0xab).collect();
    let suite = tls13_suite(0x1304).unwrap();
    assert_eq!(
        (suite.aead, suite.hash),
        (AeadAlg::Aes128Ccm, HashAlg::Sha256)
    );
    let mut k = RecordKeys::new(suite.aead, &key, &iv, RecordMode::Tls13).unwrap();
    let mut body = h("9d5630c9f66b7e86d66d492d7af4dbfda218725fb194139353");
    let header = [23, 3, 3, 0, 0x19];
    // Sequence 0 is not this record's: the tag fails and the sequence stays.
    assert!(k.decrypt(header, &mut body.clone()).is_none());
    k.seq = 1;
    let p = k.decrypt(header, &mut body).unwrap();
    assert_eq!(
        (p.content_type, &body[p.start..p.end]),
        (23, &b"250 OK\r\n"[..])
    );
}

/// A TLS 1.2 AES-256-CCM_8 record (RFC 6655: salt 09080706, explicit nonce 5, sequence 5)
/// sealed by Python cryptography's AESCCM.
#[test]
fn tls12_aes_256_ccm8_known_record() {
    let suite = tls12_suite(0xc0a1).unwrap();
    assert_eq!(suite.aead, AeadAlg::Aes256Ccm8);
    assert_eq!(suite.tls12_iv_len(), 4);
    let mut k = RecordKeys::new(
        suite.aead,
        &[0x42; 32],
        &[9, 8, 7, 6],
        RecordMode::Tls12ExplicitNonce,
    )
    .unwrap();
    k.seq = 5;
    let mut body = h("0000000000000005cb8ed9636021119188900f6a392c0d7d7681bbcd");
    let p = k.decrypt([23, 3, 3, 0, 28], &mut body).unwrap();
    assert_eq!(&body[p.start..p.end], b"AUTH PLAIN\r\n");
}

#[test]
fn ccm_suite_table() {
    for (id, aead) in [
        (0xc09c, AeadAlg::Aes128Ccm),
        (0xc09e, AeadAlg::Aes128Ccm),
        (0xc0ac, AeadAlg::Aes128Ccm),
        (0xc0ad, AeadAlg::Aes256Ccm),
        (0xc0a4, AeadAlg::Aes128Ccm),
        (0xc0ae, AeadAlg::Aes128Ccm8),
        (0xc0a2, AeadAlg::Aes128Ccm8),
        (0xc0a9, AeadAlg::Aes256Ccm8),
    ] {
        let s = tls12_suite(id).unwrap();
        assert_eq!((s.aead, s.hash), (aead, HashAlg::Sha256), "{id:#06x}");
    }
    assert_eq!(tls13_suite(0x1305).unwrap().aead, AeadAlg::Aes128Ccm8);
    assert_eq!(AeadAlg::Aes128Ccm8.tag_len(), 8);
}
