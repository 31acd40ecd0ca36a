//! Scanning a message body: finds the end-of-data line (`CRLF . CRLF`, RFC 5321 §4.1.1.4)
//! and every non-standard one (`X . Y` with X and Y each CR, LF or CRLF, not both CRLF: the
//! SMTP smuggling sequences) across chunk boundaries without keeping any of the body.
//!
//! Only `CRLF . CRLF` ends the body here: a server that honours another sequence shows it in
//! its replies, and the session decides from those (see `smuggle`). A bare CR or a bare LF
//! ends a line for the purpose of spotting a dot after it, since that is what vulnerable
//! servers do.

use std::fmt;

/// A line ending as the client sent it.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Eol {
    Crlf,
    /// An LF without a CR before it.
    Lf,
    /// A CR without an LF after it.
    Cr,
}

impl Eol {
    fn escaped(self) -> &'static str {
        match self {
            Eol::Crlf => "<CR><LF>",
            Eol::Lf => "<LF>",
            Eol::Cr => "<CR>",
        }
    }
}

/// A lone dot between two line endings that are not both CRLF.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Smuggle {
    pub before: Eol,
    pub after: Eol,
}

/// Written as the issue and Postfix's own messages spell it: `<LF>.<CR><LF>`.
impl fmt::Display for Smuggle {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}.{}", self.before.escaped(), self.after.escaped())
    }
}

/// Why [`DotScanner::scan`] stopped before the end of its input.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Stop {
    /// `CRLF . CRLF`: the consumed bytes include it.
    End,
    /// A non-standard end-of-data; the consumed bytes end right after it, the body goes on.
    Smuggle(Smuggle),
}

/// Where the scanner is relative to line starts.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum State {
    /// At the first byte of a line that followed this line ending (the body starts as if
    /// after CRLF: the DATA command line ended there).
    Start(Eol),
    /// A `.` at the start of a line.
    Dot(Eol),
    /// `.` CR at the start of a line.
    DotCr(Eol),
    /// After a CR inside a line (the next byte says whether it was a line ending).
    Cr,
    /// Inside a line.
    Text,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct DotScanner {
    state: State,
    /// The body held an LF without a CR before it.
    pub bare_lf: bool,
}

impl Default for DotScanner {
    fn default() -> Self {
        DotScanner {
            state: State::Start(Eol::Crlf),
            bare_lf: false,
        }
    }
}

impl DotScanner {
    /// Scans `data`; returns the bytes consumed and why it stopped, if it did before the end
    /// of `data`: at the end of data (included in the count) or right after a non-standard
    /// one (call again with the rest: the body goes on).
    pub fn scan(&mut self, data: &[u8]) -> (usize, Option<Stop>) {
        let mut i = 0;
        while let Some(&b) = data.get(i) {
            let (next, stop) = self.step(b);
            match stop {
                // The byte after a bare CR belongs to what follows the sequence: not consumed.
                Some(Stop::Smuggle(s)) if s.after == Eol::Cr => {
                    self.state = next;
                    return (i, stop);
                }
                Some(stop) => {
                    self.state = next;
                    return (i + 1, Some(stop));
                }
                None => {}
            }
            i += 1;
            self.state = next;
            if next == State::Text {
                // Inside a line only a CR or LF followed by a dot, or a bare LF, can matter:
                // jump straight to the next one.
                let rest = data.get(i..).unwrap_or_default();
                match find_interesting(rest) {
                    Some(p) => {
                        // Entering byte `p`: after a CR only if the byte before it was one
                        // (any other line ending before it would have been found first).
                        if p > 0 {
                            self.state = if rest.get(p - 1) == Some(&b'\r') {
                                State::Cr
                            } else {
                                State::Text
                            };
                        }
                        i += p;
                    }
                    None => {
                        self.state = tail_state(rest, self.state);
                        return (data.len(), None);
                    }
                }
            }
        }
        (data.len(), None)
    }

    /// The byte rules; the scanner's state is not changed here.
    fn step(&mut self, b: u8) -> (State, Option<Stop>) {
        use State::{Cr, Dot, DotCr, Start, Text};
        match (self.state, b) {
            (Start(le), b'.') => (Dot(le), None),
            (Cr, b'.') => (Dot(Eol::Cr), None),
            (Cr, b'\n') => (Start(Eol::Crlf), None),
            (Dot(le), b'\r') => (DotCr(le), None),
            (Dot(le), b'\n') => {
                self.bare_lf = true;
                let s = Smuggle {
                    before: le,
                    after: Eol::Lf,
                };
                (Start(Eol::Lf), Some(Stop::Smuggle(s)))
            }
            (DotCr(Eol::Crlf), b'\n') => (Start(Eol::Crlf), Some(Stop::End)),
            (DotCr(le), b'\n') => {
                let s = Smuggle {
                    before: le,
                    after: Eol::Crlf,
                };
                (Start(Eol::Crlf), Some(Stop::Smuggle(s)))
            }
            (DotCr(le), _) => {
                let s = Smuggle {
                    before: le,
                    after: Eol::Cr,
                };
                (Start(Eol::Cr), Some(Stop::Smuggle(s)))
            }
            (_, b'\r') => (Cr, None),
            (_, b'\n') => {
                self.bare_lf = true;
                (Start(Eol::Lf), None)
            }
            _ => (Text, None),
        }
    }

    /// Bytes were lost: the position relative to line starts is unknown, so wait for the
    /// next line ending before a dot can end the body.
    pub fn gap(&mut self) {
        self.state = State::Text;
    }
}

/// The state after `rest`, scanned from `Text` without a hit: only its last two bytes matter
/// (no dot follows a line ending in it, and no LF in it is bare).
fn tail_state(rest: &[u8], before: State) -> State {
    match rest {
        [] => before,
        // Every LF in `rest` has a CR before it, else it would have been a hit.
        [.., b'\n'] => State::Start(Eol::Crlf),
        [.., b'\r'] => State::Cr,
        _ => State::Text,
    }
}

/// Bytes compared per step of [`find_interesting`]: a fixed-size block without an early
/// exit, which the compiler turns into vector compares.
const BLOCK: usize = 32;

/// Whether the byte pair `(a, b)` needs the byte rules: a dot after a CR or LF (a possible
/// end of data), or an LF after anything but CR (a bare LF).
#[inline(always)]
fn interesting(a: u8, b: u8) -> bool {
    (((a == b'\n') | (a == b'\r')) & (b == b'.')) | ((b == b'\n') & (a != b'\r'))
}

/// Position of the first byte of the first interesting pair in `h`, where `h` follows a byte
/// that is neither CR nor LF (so an LF at `h[0]` is bare: position 0). Message bodies are
/// most of the bytes of a mail flow, so this search is what scanning a body costs: blocks
/// first, bytes only near a hit.
fn find_interesting(h: &[u8]) -> Option<usize> {
    if h.first() == Some(&b'\n') {
        return Some(0);
    }
    let mut at = 0;
    while let Some(block) = h
        .get(at..at + BLOCK + 1)
        .and_then(|b| <&[u8; BLOCK + 1]>::try_from(b).ok())
    {
        let mut hit = false;
        for k in 0..BLOCK {
            hit |= interesting(block[k], block[k + 1]);
        }
        if hit {
            break;
        }
        at += BLOCK;
    }
    h.get(at..)?
        .windows(2)
        .position(|w| interesting(w[0], w[1]))
        .map(|p| p + at)
}

#[cfg(test)]
#[allow(clippy::unwrap_used, clippy::expect_used)]
mod tests {
    use super::*;
    use proptest::strategy::Just;

    type Events = (Vec<(usize, Stop)>, bool);

    /// Every stop with its offset in the whole input, up to the end of data; and whether a
    /// bare LF came before it.
    fn run(chunks: &[&[u8]]) -> Events {
        let mut s = DotScanner::default();
        let mut out = Vec::new();
        let mut base = 0;
        for c in chunks {
            let mut pos = 0;
            while pos < c.len() {
                let (n, stop) = s.scan(&c[pos..]);
                pos += n;
                match stop {
                    Some(Stop::End) => {
                        out.push((base + pos, Stop::End));
                        return (out, s.bare_lf);
                    }
                    Some(st) => out.push((base + pos, st)),
                    None => assert_eq!(pos, c.len()),
                }
            }
            base += c.len();
        }
        (out, s.bare_lf)
    }

    /// The rules spelled out over the whole input at once, for comparison.
    fn reference(h: &[u8]) -> Events {
        let eol_before = |j: usize| match j.checked_sub(1).map(|k| h[k]) {
            None => Some(Eol::Crlf),
            Some(b'\r') => Some(Eol::Cr),
            Some(b'\n') if j >= 2 && h[j - 2] == b'\r' => Some(Eol::Crlf),
            Some(b'\n') => Some(Eol::Lf),
            _ => None,
        };
        let mut out = Vec::new();
        let mut bare = false;
        for j in 0..h.len() {
            if h[j] == b'\n' && (j == 0 || h[j - 1] != b'\r') {
                bare = true;
            }
            if h[j] != b'.' {
                continue;
            }
            let Some(before) = eol_before(j) else {
                continue;
            };
            let (after, end) = match (h.get(j + 1), h.get(j + 2)) {
                (Some(b'\n'), _) => (Eol::Lf, j + 2),
                (Some(b'\r'), Some(b'\n')) => (Eol::Crlf, j + 3),
                (Some(b'\r'), Some(_)) => (Eol::Cr, j + 2),
                _ => continue,
            };
            if (before, after) == (Eol::Crlf, Eol::Crlf) {
                out.push((end, Stop::End));
                return (out, bare);
            }
            out.push((end, Stop::Smuggle(Smuggle { before, after })));
        }
        (out, bare)
    }

    const EOLS: [(&[u8], Eol); 3] = [(b"\r\n", Eol::Crlf), (b"\n", Eol::Lf), (b"\r", Eol::Cr)];

    #[test]
    fn standard_end() {
        let body = b"Subject: x\r\n\r\nhi\r\n.\r\nQUIT\r\n";
        assert_eq!(run(&[body]), (vec![(21, Stop::End)], false));
        assert_eq!(run(&[b".\r\n"]), (vec![(3, Stop::End)], false));
    }

    #[test]
    fn dot_stuffed_lines_and_bare_lf_elsewhere_are_no_end() {
        let (ev, bare) = run(&[b"a\r\n..\r\n.x\r\nb\nc\n..\n\r\n.\r\n"]);
        assert_eq!(ev, vec![(23, Stop::End)]);
        assert!(bare);
        // A lone dot inside base64 is dot-stuffed by the client: `..` on its own line.
        let (ev, bare) = run(&[b"QUJD\r\n..\r\nREVG\r\n.\r\n"]);
        assert_eq!(ev, vec![(19, Stop::End)]);
        assert!(!bare);
    }

    /// Every variant, alone and followed by a smuggled command, split at every byte
    /// position, gives the same stops as the whole.
    #[test]
    fn every_variant_at_every_split() {
        for (x, xe) in EOLS {
            for (y, ye) in EOLS {
                if xe == Eol::Crlf && ye == Eol::Crlf {
                    continue;
                }
                let mut body = b"Subject: t\r\n\r\nhello".to_vec();
                body.extend_from_slice(x);
                body.push(b'.');
                body.extend_from_slice(y);
                let fake_end = body.len();
                body.extend_from_slice(b"MAIL FROM:<a@b>\r\nDATA\r\nx\r\n.\r\n");
                let want = vec![
                    (
                        fake_end,
                        Stop::Smuggle(Smuggle {
                            before: xe,
                            after: ye,
                        }),
                    ),
                    (body.len(), Stop::End),
                ];
                assert_eq!(reference(&body).0, want, "{x:?} {y:?}");
                assert_eq!(run(&[&body]).0, want, "{x:?} {y:?}");
                for cut in 0..=body.len() {
                    let (a, b) = body.split_at(cut);
                    assert_eq!(run(&[a, b]).0, want, "{x:?} {y:?} cut {cut}");
                }
                let bytes: Vec<&[u8]> = body.chunks(1).collect();
                assert_eq!(run(&bytes).0, want, "{x:?} {y:?} byte by byte");
            }
        }
    }

    #[test]
    fn sequence_is_written_escaped() {
        let s = Smuggle {
            before: Eol::Lf,
            after: Eol::Crlf,
        };
        assert_eq!(s.to_string(), "<LF>.<CR><LF>");
    }

    #[test]
    fn stops_found_far_into_a_long_body_and_across_blocks() {
        for pad in [0usize, 1, 30, 31, 32, 33, 63, 64, 65, 1000] {
            let mut body = vec![b'x'; pad];
            body.extend_from_slice(b"\r\n.y\r\n..\r\nz.\r\n\n.\r\nM\r\n.\r\nQUIT");
            let want = reference(&body);
            assert_eq!(want.0.len(), 2, "pad {pad}");
            assert_eq!(run(&[&body]), want, "pad {pad}");
            for cut in 0..body.len() {
                let (a, b) = body.split_at(cut);
                assert_eq!(run(&[a, b]), want, "pad {pad} cut {cut}");
            }
        }
    }

    proptest::proptest! {
        #[test]
        fn block_search_agrees_with_the_rules(
            chunks in proptest::collection::vec(
                proptest::collection::vec(
                    proptest::prop_oneof![Just(b'\n'), Just(b'.'), Just(b'\r'), Just(b'a')],
                    0..80,
                ),
                1..5,
            )
        ) {
            let refs: Vec<&[u8]> = chunks.iter().map(Vec::as_slice).collect();
            let whole = chunks.concat();
            proptest::prop_assert_eq!(run(&refs), reference(&whole));
        }
    }

    #[test]
    fn after_gap_needs_a_line_end() {
        let mut s = DotScanner::default();
        s.gap();
        assert_eq!(s.scan(b".\r\n"), (3, None));
        assert_eq!(s.scan(b".\r\n"), (3, Some(Stop::End)));
    }
}
