//! Shared input format of the session-level fuzz targets (`smtp_session`, `tls_session`,
//! `flow_analysis`) and the seed maker (`make_seeds.py`, which writes the same format).
//!
//! An input is a script of operations on the two directions of one TCP connection, in the
//! order a flow table would deliver them. Each operation starts with a control byte:
//!
//! ```text
//! bit 0      direction: 0 client -> server, 1 server -> client
//! bits 1-2   kind:
//!              0  data, length = ctl >> 3 (0..=31), the bytes follow
//!              1  data, length = next two bytes (big-endian), the bytes follow
//!              2  gap, length = next two bytes (big-endian) << (ctl >> 3)
//!              3  end of the direction: bit 3 set = reset, clear = FIN
//! ```
//!
//! A length running past the end of the input takes what is left, so every byte string is
//! a valid script and truncation never hides a case.

use smtpaudit::flow::{Direction, EventMeta};
use smtpaudit::time::Timestamp;

/// One step of a script.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Op<'a> {
    Data(Direction, &'a [u8]),
    Gap(Direction, u64),
    /// `true` for a reset, `false` for a FIN.
    End(Direction, bool),
}

/// Decodes a script lazily; never fails.
pub struct Script<'a> {
    rest: &'a [u8],
}

impl<'a> Script<'a> {
    pub fn new(data: &'a [u8]) -> Self {
        Script { rest: data }
    }

    fn take(&mut self, n: usize) -> &'a [u8] {
        let n = n.min(self.rest.len());
        let (head, tail) = self.rest.split_at(n);
        self.rest = tail;
        head
    }

    fn u16(&mut self) -> u16 {
        let b = self.take(2);
        match *b {
            [hi, lo] => u16::from_be_bytes([hi, lo]),
            [hi] => u16::from(hi) << 8,
            _ => 0,
        }
    }
}

impl<'a> Iterator for Script<'a> {
    type Item = Op<'a>;

    fn next(&mut self) -> Option<Op<'a>> {
        let (&ctl, tail) = self.rest.split_first()?;
        self.rest = tail;
        let dir = if ctl & 1 == 0 {
            Direction::ToServer
        } else {
            Direction::ToClient
        };
        Some(match (ctl >> 1) & 3 {
            0 => Op::Data(dir, self.take(usize::from(ctl >> 3))),
            1 => {
                let len = self.u16();
                Op::Data(dir, self.take(usize::from(len)))
            }
            2 => {
                let len = u64::from(self.u16()) << (ctl >> 3);
                Op::Gap(dir, len)
            }
            _ => Op::End(dir, ctl & 8 != 0),
        })
    }
}

/// Capture-time metadata for the `n`th operation: one frame and one millisecond each, so
/// durations and frame citations stay meaningful.
pub fn meta(n: u64) -> EventMeta {
    EventMeta {
        ts: Timestamp::new(
            1_700_000_000 + (n / 1000) as i64,
            ((n % 1000) * 1_000_000) as u32,
        ),
        frame: n + 1,
    }
}

/// Encodes operations in the script format (for tests of the format itself and for
/// generating inputs from Rust).
pub fn encode(ops: &[Op<'_>]) -> Vec<u8> {
    let mut out = Vec::new();
    for op in ops {
        match *op {
            Op::Data(dir, bytes) => {
                for chunk in bytes.chunks(usize::from(u16::MAX)) {
                    out.push(2 | dir_bit(dir));
                    out.extend_from_slice(&(chunk.len() as u16).to_be_bytes());
                    out.extend_from_slice(chunk);
                }
            }
            Op::Gap(dir, len) => {
                let shift = (64 - len.leading_zeros()).saturating_sub(16).min(31);
                out.push(4 | dir_bit(dir) | ((shift as u8) << 3));
                out.extend_from_slice(&((len >> shift) as u16).to_be_bytes());
            }
            Op::End(dir, reset) => out.push(6 | dir_bit(dir) | if reset { 8 } else { 0 }),
        }
    }
    out
}

fn dir_bit(dir: Direction) -> u8 {
    match dir {
        Direction::ToServer => 0,
        Direction::ToClient => 1,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn round_trip() {
        let ops = [
            Op::Data(Direction::ToClient, b"220 mx ESMTP\r\n"),
            Op::Data(Direction::ToServer, b""),
            Op::Gap(Direction::ToServer, 70_000),
            Op::Gap(Direction::ToClient, 3),
            Op::End(Direction::ToServer, true),
            Op::End(Direction::ToClient, false),
        ];
        let enc = encode(&ops);
        let dec: Vec<_> = Script::new(&enc).collect();
        // 70 000 does not fit 16 bits: it travels as 35 000 << 1.
        assert_eq!(dec, ops);
    }

    #[test]
    fn short_forms_and_truncation() {
        // 0x18: short data of 3 to the server; 0x0b: long data to the client whose length
        // (0x01 then nothing: 256) runs past the end.
        let dec: Vec<_> = Script::new(&[0x18, b'a', b'b', b'c', 0x0b, 0x01]).collect();
        assert_eq!(
            dec,
            [
                Op::Data(Direction::ToServer, b"abc"),
                Op::Data(Direction::ToClient, b"")
            ]
        );
    }
}
