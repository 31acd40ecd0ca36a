//! Lowercase hex into a String sized for it once: fingerprints and ids are written per
//! connection, where `hex::encode` (a `String` collected char by char, grown as it goes) and
//! `format!("{:02x}")` showed as a share of every flow's cost.

const DIGITS: &[u8; 16] = b"0123456789abcdef";

/// Appends `bytes` as lowercase hex.
pub fn push_hex(out: &mut String, bytes: &[u8]) {
    out.reserve(bytes.len() * 2);
    for &b in bytes {
        out.push(char::from(DIGITS[usize::from(b >> 4)]));
        out.push(char::from(DIGITS[usize::from(b & 0xf)]));
    }
}

/// `bytes` as lowercase hex, in a String of exactly the size needed.
pub fn to_hex(bytes: &[u8]) -> String {
    let mut s = String::with_capacity(bytes.len() * 2);
    push_hex(&mut s, bytes);
    s
}

/// Appends the four lowercase hex digits of `v` (`0a0b`).
pub fn push_hex_u16(out: &mut String, v: u16) {
    for shift in [12u16, 8, 4, 0] {
        out.push(char::from(DIGITS[usize::from((v >> shift) & 0xf)]));
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn same_digits_as_the_hex_crate() {
        let all: Vec<u8> = (0..=255).collect();
        assert_eq!(to_hex(&all), hex::encode(&all));
        assert_eq!(to_hex(&[]), "");
        let mut s = String::from("x");
        push_hex(&mut s, &[0x00, 0xff, 0x5a]);
        assert_eq!(s, "x00ff5a");
    }

    #[test]
    fn u16_as_four_digits() {
        for v in [0u16, 0x000a, 0x0a0b, 0x1301, 0xffff] {
            let mut s = String::new();
            push_hex_u16(&mut s, v);
            assert_eq!(s, format!("{v:04x}"));
        }
    }
}
