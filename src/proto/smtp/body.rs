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
                    // Most bytes are inside lines: jump to the next LF in one search.
                    match data
                        .get(i..)
                        .and_then(|r| r.iter().position(|c| *c == b'\n'))
                    {
                        Some(p) => {
                            i += p;
                            DotScanner::Text
                        }
                        None => {
                            *self = DotScanner::Text;
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
    fn after_gap_needs_a_line_start() {
        let mut s = DotScanner::default();
        s.gap();
        assert_eq!(s.scan(b".\r\n"), (3, false));
        assert_eq!(s.scan(b".\r\n"), (3, true));
    }
}
