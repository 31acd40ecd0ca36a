//! Skipping a DATA body: finds the end-of-data line (`CRLF . CRLF`, RFC 5321 §4.1.1.4)
//! across chunk boundaries without keeping any of the body.

/// Where the scanner is relative to line starts. A bare LF ends a line too, and `.` LF ends
/// the body, as common servers accept it (RFC 5321 §4.1.1.4 only defines CRLF).
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub enum DotScanner {
    /// At the first byte of a line (the body starts here).
    #[default]
    LineStart,
    /// A `.` at line start.
    Dot,
    /// `.` CR at line start.
    DotCr,
    /// Inside a line.
    Text,
}

impl DotScanner {
    /// Scans `data`; returns the bytes that belong to the body (the end-of-data line
    /// included) and whether the end was found.
    pub fn scan(&mut self, data: &[u8]) -> (usize, bool) {
        let mut i = 0;
        while let Some(&b) = data.get(i) {
            i += 1;
            *self = match (*self, b) {
                (DotScanner::LineStart, b'.') => DotScanner::Dot,
                (DotScanner::Dot | DotScanner::DotCr, b'\n') => {
                    *self = DotScanner::LineStart;
                    return (i, true);
                }
                (DotScanner::Dot, b'\r') => DotScanner::DotCr,
                (_, b'\n') => DotScanner::LineStart,
                _ => {
                    // Inside a line only an LF followed by a dot can lead to the end: jump
                    // straight to the next such pair (every other line start is irrelevant).
                    let rest = data.get(i..).unwrap_or_default();
                    match find_lf_dot(rest) {
                        Some(p) => {
                            i += p + 2;
                            DotScanner::Dot
                        }
                        None => {
                            *self = if rest.last() == Some(&b'\n') {
                                DotScanner::LineStart
                            } else {
                                DotScanner::Text
                            };
                            return (data.len(), false);
                        }
                    }
                }
            };
        }
        (data.len(), false)
    }

    /// Bytes were lost: the position relative to line starts is unknown, so wait for the
    /// next LF before a dot can end the body.
    pub fn gap(&mut self) {
        *self = DotScanner::Text;
    }
}

/// Bytes compared per step of [`find_lf_dot`]: a fixed-size block without an early exit,
/// which the compiler turns into vector compares.
const BLOCK: usize = 32;

/// Position of the first `LF .` pair in `h`. Message bodies are most of the bytes of a mail
/// flow, so this search is what skipping a body costs: blocks first, bytes only near a hit.
fn find_lf_dot(h: &[u8]) -> Option<usize> {
    let mut at = 0;
    while let Some(block) = h
        .get(at..at + BLOCK + 1)
        .and_then(|b| <&[u8; BLOCK + 1]>::try_from(b).ok())
    {
        let mut hit = false;
        for k in 0..BLOCK {
            hit |= (block[k] == b'\n') & (block[k + 1] == b'.');
        }
        if hit {
            break;
        }
        at += BLOCK;
    }
    h.get(at..)?
        .windows(2)
        .position(|w| w == b"\n.")
        .map(|p| p + at)
}

#[cfg(test)]
#[allow(clippy::unwrap_used, clippy::expect_used)]
mod tests {
    use super::*;

    fn run(chunks: &[&[u8]]) -> Option<(usize, usize)> {
        let mut s = DotScanner::default();
        for (ci, c) in chunks.iter().enumerate() {
            let (n, done) = s.scan(c);
            if done {
                return Some((ci, n));
            }
            assert_eq!(n, c.len());
        }
        None
    }

    #[test]
    fn finds_end_in_one_chunk() {
        assert_eq!(
            run(&[b"Subject: x\r\n\r\nhi\r\n.\r\nQUIT\r\n"]),
            Some((0, 21))
        );
    }

    #[test]
    fn dot_stuffed_line_is_not_the_end() {
        assert_eq!(run(&[b"a\r\n..\r\n.x\r\nb\r\n.\r\n"]), Some((0, 17)));
    }

    #[test]
    fn end_split_across_chunks() {
        assert_eq!(run(&[b"body\r\n.", b"\r\n"]), Some((1, 2)));
        assert_eq!(run(&[b"body\r\n", b".\r", b"\nQUIT"]), Some((2, 1)));
        assert_eq!(run(&[b"body\r", b"\n", b".", b"\r", b"\n"]), Some((4, 1)));
    }

    #[test]
    fn empty_body_and_bare_lf() {
        assert_eq!(run(&[b".\r\n"]), Some((0, 3)));
        assert_eq!(run(&[b"x\n.\n"]), Some((0, 4)));
    }

    #[test]
    fn no_end() {
        assert_eq!(run(&[b"a.\r\n", b"b\r\n. \r\n"]), None);
    }

    #[test]
    fn end_found_far_into_a_long_body_and_across_blocks() {
        for pad in [0usize, 1, 30, 31, 32, 33, 63, 64, 65, 1000] {
            let mut body = vec![b'x'; pad];
            body.extend_from_slice(b"\r\n.y\r\n..\r\nz.\r\n.\r\nQUIT");
            let end = body.len() - 4;
            assert_eq!(run(&[&body]), Some((0, end)), "pad {pad}");
            // Split at every point near the end: the state carries across chunks.
            for cut in end.saturating_sub(12)..end {
                let (a, b) = body.split_at(cut);
                let got = run(&[a, b]);
                assert!(
                    got == Some((1, end - cut)) || (got == Some((0, end)) && cut >= end),
                    "pad {pad} cut {cut}: {got:?}"
                );
            }
        }
    }

    /// The rules spelled out byte by byte, for comparison with the block search.
    fn reference(chunks: &[Vec<u8>]) -> Option<(usize, usize)> {
        let mut st = DotScanner::LineStart;
        for (ci, c) in chunks.iter().enumerate() {
            for (i, &b) in c.iter().enumerate() {
                st = match (st, b) {
                    (DotScanner::LineStart, b'.') => DotScanner::Dot,
                    (DotScanner::Dot | DotScanner::DotCr, b'\n') => return Some((ci, i + 1)),
                    (DotScanner::Dot, b'\r') => DotScanner::DotCr,
                    (_, b'\n') => DotScanner::LineStart,
                    _ => DotScanner::Text,
                };
            }
        }
        None
    }

    proptest::proptest! {
        #[test]
        fn block_search_agrees_with_the_byte_rules(
            chunks in proptest::collection::vec(
                proptest::collection::vec(
                    proptest::prop_oneof![Just(b'\n'), Just(b'.'), Just(b'\r'), Just(b'a')],
                    0..80,
                ),
                1..5,
            )
        ) {
            let refs: Vec<&[u8]> = chunks.iter().map(Vec::as_slice).collect();
            proptest::prop_assert_eq!(run_lenient(&refs), reference(&chunks));
        }
    }

    use proptest::strategy::Just;

    /// Like `run`, without asserting on chunks the end was not in.
    fn run_lenient(chunks: &[&[u8]]) -> Option<(usize, usize)> {
        let mut s = DotScanner::default();
        for (ci, c) in chunks.iter().enumerate() {
            let (n, done) = s.scan(c);
            if done {
                return Some((ci, n));
            }
        }
        None
    }

    #[test]
    fn lf_dot_search() {
        assert_eq!(find_lf_dot(b""), None);
        assert_eq!(find_lf_dot(b"\n"), None);
        assert_eq!(find_lf_dot(b"\n."), Some(0));
        let mut long = vec![b'a'; 100];
        long.extend_from_slice(b"\n.");
        assert_eq!(find_lf_dot(&long), Some(100));
        long[31] = b'\n';
        long[32] = b'.';
        assert_eq!(find_lf_dot(&long), Some(31));
    }

    #[test]
    fn after_gap_needs_a_line_start() {
        let mut s = DotScanner::default();
        s.gap();
        assert_eq!(s.scan(b".\r\n"), (3, false));
        assert_eq!(s.scan(b".\r\n"), (3, true));
    }
}
