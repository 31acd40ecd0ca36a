//! Protocol analyzer throughput: bytes of a dialog through the session per second.
#![allow(clippy::unwrap_used, clippy::expect_used)]
use std::hint::black_box;

use criterion::{Criterion, Throughput, criterion_group, criterion_main};
use smtpaudit::flow::{Direction, EventMeta};
use smtpaudit::proto::smtp::SmtpSession;

// ---------------------------------------------------------------------------------------
// SMTP
// ---------------------------------------------------------------------------------------

/// TCP payload size the dialogs are cut into (an Ethernet MSS).
const SEGMENT: usize = 1448;

/// A submission dialog: greeting, EHLO, AUTH LOGIN, one message of `body_lines` lines of
/// typical mail text (about 76 bytes each, some dot-stuffed), QUIT.
fn smtp_dialog(body_lines: usize) -> Vec<(Direction, Vec<u8>)> {
    let c = Direction::ToServer;
    let s = Direction::ToClient;
    let mut steps: Vec<(Direction, Vec<u8>)> =
        vec![
        (s, b"220 mx.example.org ESMTP Postfix\r\n".to_vec()),
        (c, b"EHLO client.example.net\r\n".to_vec()),
        (
            s,
            b"250-mx.example.org\r\n250-PIPELINING\r\n250-SIZE 52428800\r\n250-STARTTLS\r\n\
              250-AUTH PLAIN LOGIN\r\n250-ENHANCEDSTATUSCODES\r\n250-8BITMIME\r\n250 CHUNKING\r\n"
                .to_vec(),
        ),
        (c, b"AUTH LOGIN\r\n".to_vec()),
        (s, b"334 VXNlcm5hbWU6\r\n".to_vec()),
        (c, b"YWxpY2VAZXhhbXBsZS5uZXQ=\r\n".to_vec()),
        (s, b"334 UGFzc3dvcmQ6\r\n".to_vec()),
        (c, b"c2VjcmV0LXBhc3N3b3Jk\r\n".to_vec()),
        (s, b"235 2.7.0 Authentication successful\r\n".to_vec()),
        (
            c,
            b"MAIL FROM:<alice@example.net> SIZE=100000\r\nRCPT TO:<bob@example.org>\r\nDATA\r\n"
                .to_vec(),
        ),
        (s, b"250 2.1.0 Ok\r\n250 2.1.5 Ok\r\n354 End data with <CR><LF>.<CR><LF>\r\n".to_vec()),
    ];
    let mut body =
        b"From: alice@example.net\r\nTo: bob@example.org\r\nSubject: report\r\n\r\n".to_vec();
    for i in 0..body_lines {
        if i % 50 == 0 {
            body.extend_from_slice(b"..a dot-stuffed line that starts with a period\r\n");
        } else {
            body.extend_from_slice(
                b"Lorem ipsum dolor sit amet, consectetur adipiscing elit, sed do eiusmod te\r\n",
            );
        }
    }
    body.extend_from_slice(b".\r\n");
    for chunk in body.chunks(SEGMENT) {
        steps.push((c, chunk.to_vec()));
    }
    steps.push((s, b"250 2.0.0 Ok: queued as 4F1A2B3C\r\n".to_vec()));
    steps.push((c, b"QUIT\r\n".to_vec()));
    steps.push((s, b"221 2.0.0 Bye\r\n".to_vec()));
    steps
}

/// A relay dialog heavy in commands: 200 pipelined transactions of 5 recipients each.
fn smtp_command_dialog() -> Vec<(Direction, Vec<u8>)> {
    let c = Direction::ToServer;
    let s = Direction::ToClient;
    let mut steps = vec![
        (s, b"220 mx.example.org ESMTP\r\n".to_vec()),
        (c, b"EHLO relay.example.net\r\n".to_vec()),
        (s, b"250-mx.example.org\r\n250 PIPELINING\r\n".to_vec()),
    ];
    for t in 0..200 {
        let mut cmds = format!("MAIL FROM:<sender{t}@example.net>\r\n");
        let mut replies = String::from("250 2.1.0 Ok\r\n");
        for r in 0..5 {
            cmds.push_str(&format!("RCPT TO:<rcpt{r}@example.org>\r\n"));
            replies.push_str("250 2.1.5 Ok\r\n");
        }
        cmds.push_str("DATA\r\n");
        replies.push_str("354 go\r\n");
        steps.push((c, cmds.into_bytes()));
        steps.push((s, replies.into_bytes()));
        steps.push((c, b"Subject: x\r\n\r\nshort body\r\n.\r\n".to_vec()));
        steps.push((s, b"250 2.0.0 queued\r\n".to_vec()));
    }
    steps
}

fn run_dialog(steps: &[(Direction, Vec<u8>)]) -> u64 {
    let mut session = SmtpSession::new();
    for (i, (dir, data)) in steps.iter().enumerate() {
        let meta = EventMeta {
            frame: i as u64 + 1,
            ..EventMeta::default()
        };
        black_box(session.feed(*dir, data, meta));
    }
    session.record(false).stats.commands
}

fn smtp_benches(c: &mut Criterion) {
    let mut group = c.benchmark_group("smtp_session");
    for (name, steps) in [
        ("submission_1mib_body", smtp_dialog(14_000)),
        ("pipelined_relay_200_messages", smtp_command_dialog()),
    ] {
        let bytes: usize = steps.iter().map(|(_, d)| d.len()).sum();
        group.throughput(Throughput::Bytes(bytes as u64));
        group.bench_function(name, |b| b.iter(|| run_dialog(black_box(&steps))));
    }
    group.finish();
}

// ---------------------------------------------------------------------------------------
// TLS
// ---------------------------------------------------------------------------------------

// `tls_benches`: one TLS 1.2 handshake followed by 8 MiB of application data per direction,
// fed in 1448-byte TCP-sized chunks. `follow_to_close` frames every record to the end (the
// worst case: only record headers are read, bodies skipped); `release` is the default, where
// each direction returns `Interest::Done` after its first data record. Both should run at
// memory speed or better: application data costs next to nothing.

use smtpaudit::flow::Interest;
use smtpaudit::proto::tls::{TlsContext, TlsSession};

const APP_BYTES: usize = 8 << 20;
const CHUNK: usize = 1448;

fn rec(ty: u8, body: &[u8]) -> Vec<u8> {
    let mut r = vec![ty, 3, 3];
    r.extend_from_slice(&(body.len() as u16).to_be_bytes());
    r.extend_from_slice(body);
    r
}

fn hs(ty: u8, body: &[u8]) -> Vec<u8> {
    let mut h = vec![ty];
    h.extend_from_slice(&(body.len() as u32).to_be_bytes()[1..]);
    h.extend_from_slice(body);
    h
}

/// Client and server streams: a full TLS 1.2 handshake, then `APP_BYTES` of data records.
fn streams() -> (Vec<u8>, Vec<u8>) {
    let mut ch = vec![3, 3];
    ch.extend_from_slice(&[0x11; 32]);
    ch.push(0);
    ch.extend_from_slice(&[0, 4, 0xc0, 0x2f, 0x00, 0xff, 1, 0]);
    let name = b"mx.example.org";
    let mut sni = ((name.len() + 3) as u16).to_be_bytes().to_vec();
    sni.push(0);
    sni.extend_from_slice(&(name.len() as u16).to_be_bytes());
    sni.extend_from_slice(name);
    let mut exts = vec![0, 0];
    exts.extend_from_slice(&(sni.len() as u16).to_be_bytes());
    exts.extend_from_slice(&sni);
    ch.extend_from_slice(&(exts.len() as u16).to_be_bytes());
    ch.extend_from_slice(&exts);

    let mut sh = vec![3, 3];
    sh.extend_from_slice(&[0x22; 32]);
    sh.extend_from_slice(&[0, 0xc0, 0x2f, 0, 0, 0]);

    let mut c = rec(22, &hs(1, &ch));
    let mut flight = hs(2, &sh);
    flight.extend(hs(14, &[]));
    let mut s = rec(22, &flight);
    c.extend(rec(22, &hs(16, &[0; 66])));
    c.extend(rec(20, &[1]));
    c.extend(rec(22, &[0xee; 40]));
    s.extend(rec(20, &[1]));
    s.extend(rec(22, &[0xdd; 40]));
    let full = rec(23, &[0xab; 16 * 1024]);
    for _ in 0..APP_BYTES / (16 * 1024) {
        c.extend_from_slice(&full);
        s.extend_from_slice(&full);
    }
    (c, s)
}

fn run(c: &[u8], s: &[u8], follow: bool) -> TlsSession {
    let mut t = TlsSession::new(TlsContext::default()).follow_to_close(follow);
    let meta = EventMeta::default();
    let mut done = [false; 2];
    // Interleave the directions chunk by chunk, as a capture would.
    let (mut ci, mut si) = (c.chunks(CHUNK), s.chunks(CHUNK));
    loop {
        let (a, b) = (ci.next(), si.next());
        if a.is_none() && b.is_none() {
            break;
        }
        for (i, dir, chunk) in [(0, Direction::ToServer, a), (1, Direction::ToClient, b)] {
            if let Some(chunk) = chunk
                && !done[i]
            {
                done[i] = t.feed(dir, chunk, meta) == Interest::Done;
            }
        }
    }
    t
}

fn tls_benches(c: &mut Criterion) {
    let (cs, ss) = streams();
    let mut g = c.benchmark_group("tls");
    g.throughput(Throughput::Bytes((cs.len() + ss.len()) as u64));
    g.bench_function("handshake_plus_8MiB_app_data/follow_to_close", |b| {
        b.iter(|| run(&cs, &ss, true))
    });
    g.bench_function("handshake_plus_8MiB_app_data/release", |b| {
        b.iter(|| run(&cs, &ss, false))
    });
    g.finish();
}

// ---------------------------------------------------------------------------------------
// TLS with keys: the same session decrypted (cost per decrypted byte)
// ---------------------------------------------------------------------------------------

use aes_gcm::aead::AeadInOut;
use aes_gcm::{Aes128Gcm, KeyInit};
use chacha20poly1305::ChaCha20Poly1305;
use smtpaudit::proto::tls::decrypt::schedule::{HashAlg, Prf, key_block};
use smtpaudit::proto::tls::keylog::{KeyLog, KeySource, KeyStore};
use std::sync::Arc;

const MASTER: [u8; 48] = [0x44; 48];

/// One TLS 1.2 record of `ty` sealed with `key`/`iv` at `seq` (GCM: explicit nonce; ChaCha:
/// IV XOR sequence).
fn seal(chacha: bool, key: &[u8], iv: &[u8], seq: u64, ty: u8, plain: &[u8]) -> Vec<u8> {
    let mut aad = seq.to_be_bytes().to_vec();
    aad.extend_from_slice(&[ty, 3, 3]);
    aad.extend_from_slice(&(plain.len() as u16).to_be_bytes());
    let mut nonce = [0u8; 12];
    let mut body = Vec::new();
    if chacha {
        nonce.copy_from_slice(iv);
        for (b, s) in nonce.iter_mut().skip(4).zip(seq.to_be_bytes()) {
            *b ^= s;
        }
    } else {
        nonce[..4].copy_from_slice(iv);
        nonce[4..].copy_from_slice(&seq.to_be_bytes());
        body.extend_from_slice(&seq.to_be_bytes());
    }
    let mut msg = plain.to_vec();
    let tag = if chacha {
        ChaCha20Poly1305::new_from_slice(key)
            .unwrap()
            .encrypt_inout_detached(&nonce.into(), &aad, msg.as_mut_slice().into())
            .unwrap()
            .to_vec()
    } else {
        Aes128Gcm::new_from_slice(key)
            .unwrap()
            .encrypt_inout_detached(&nonce.into(), &aad, msg.as_mut_slice().into())
            .unwrap()
            .to_vec()
    };
    body.extend_from_slice(&msg);
    body.extend_from_slice(&tag);
    rec(ty, &body)
}

/// The handshake of `streams()` with suite `cipher` in the order the peers send it, then
/// `APP_BYTES` per direction of application data really encrypted under the keys of
/// `MASTER`.
type Keyed = (Vec<(Direction, Vec<u8>)>, Vec<u8>, Vec<u8>);

fn keyed_streams(cipher: u16, chacha: bool) -> Keyed {
    let (kl, il) = if chacha { (32, 12) } else { (16, 4) };
    let kb = key_block(
        Prf::Tls12(HashAlg::Sha256),
        &MASTER,
        &[0x11; 32],
        &[0x22; 32],
        2 * kl + 2 * il,
    )
    .unwrap();
    let (ck, sk) = (&kb[..kl], &kb[kl..2 * kl]);
    let (ci, si) = (&kb[2 * kl..2 * kl + il], &kb[2 * kl + il..]);
    let mut ch = vec![3, 3];
    ch.extend_from_slice(&[0x11; 32]);
    ch.push(0);
    ch.extend_from_slice(&[0, 2]);
    ch.extend_from_slice(&cipher.to_be_bytes());
    ch.extend_from_slice(&[1, 0, 0, 0]);
    let mut sh = vec![3, 3];
    sh.extend_from_slice(&[0x22; 32]);
    sh.push(0);
    sh.extend_from_slice(&cipher.to_be_bytes());
    sh.extend_from_slice(&[0, 0, 0]);
    let mut flight = hs(2, &sh);
    flight.extend(hs(14, &[]));
    let mut c_fin = rec(22, &hs(16, &[0; 66]));
    c_fin.extend(rec(20, &[1]));
    c_fin.extend(seal(chacha, ck, ci, 0, 22, &hs(20, &[0; 12])));
    let mut s_fin = rec(20, &[1]);
    s_fin.extend(seal(chacha, sk, si, 0, 22, &hs(20, &[0; 12])));
    let handshake = vec![
        (Direction::ToServer, rec(22, &hs(1, &ch))),
        (Direction::ToClient, rec(22, &flight)),
        (Direction::ToServer, c_fin),
        (Direction::ToClient, s_fin),
    ];
    let plain = vec![b'a'; 16 * 1024];
    let (mut c, mut s) = (Vec::new(), Vec::new());
    for seq in 1..=(APP_BYTES / (16 * 1024)) as u64 {
        c.extend(seal(chacha, ck, ci, seq, 23, &plain));
        s.extend(seal(chacha, sk, si, seq, 23, &plain));
    }
    (handshake, c, s)
}

fn keys() -> Arc<KeyStore> {
    let line = format!(
        "CLIENT_RANDOM {} {}\n",
        "11".repeat(32),
        hex::encode(MASTER)
    );
    Arc::new(KeyStore::new(
        KeyLog::read(line.as_bytes(), KeySource::Keylog).unwrap(),
    ))
}

/// Feeds both directions as `run` does, taking (and dropping) the plaintext after every
/// chunk as the analysis does; returns the plaintext bytes.
fn run_keyed(streams: &Keyed, keys: &Arc<KeyStore>) -> usize {
    let (handshake, c, s) = streams;
    let ctx = TlsContext {
        keys: Some(keys.clone()),
        ..TlsContext::default()
    };
    let mut t = TlsSession::new(ctx).follow_to_close(true);
    let meta = EventMeta::default();
    let mut plain = 0;
    for (dir, bytes) in handshake {
        t.feed(*dir, bytes, meta);
    }
    let (mut ci, mut si) = (c.chunks(CHUNK), s.chunks(CHUNK));
    loop {
        let (a, b) = (ci.next(), si.next());
        if a.is_none() && b.is_none() {
            break;
        }
        for (dir, chunk) in [(Direction::ToServer, a), (Direction::ToClient, b)] {
            if let Some(chunk) = chunk {
                t.feed(dir, chunk, meta);
                plain += t.take_plaintext(dir).len();
            }
        }
    }
    plain
}

fn decrypt_benches(c: &mut Criterion) {
    let keys = keys();
    let mut g = c.benchmark_group("tls_decrypt");
    for (name, cipher, chacha) in [
        ("tls12_aes128gcm_8MiB_each_way", 0xc02f, false),
        ("tls12_chacha20poly1305_8MiB_each_way", 0xcca8, true),
    ] {
        let streams = keyed_streams(cipher, chacha);
        assert_eq!(
            run_keyed(&streams, &keys),
            2 * APP_BYTES,
            "{name} does not decrypt"
        );
        g.throughput(Throughput::Bytes((2 * APP_BYTES) as u64));
        g.bench_function(name, |b| b.iter(|| run_keyed(&streams, &keys)));
    }
    g.finish();
}

criterion_group!(benches, smtp_benches, tls_benches, decrypt_benches);
criterion_main!(benches);
