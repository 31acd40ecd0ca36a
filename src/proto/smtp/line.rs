//! Line framing for one direction: complete lines are lent straight out of the caller's chunk
//! when they lie in it; only a line split across chunks is copied, and never beyond
//! [`MAX_LINE`] bytes.

/// Longest line kept. RFC 5321 §4.5.3.1 limits command lines to 512 octets and reply lines
/// to 512, text lines to 1000; real clients exceed that (long EHLO names, big AUTH tokens such
/// as XOAUTH2 or NTLM blobs of a few KiB), so the cap is 8 KiB. Longer lines are cut at the
/// cap, counted in `long_lines`, and the rest up to the next LF is skipped.
pub const MAX_LINE: usize = 8192;

/// A line without its line ending (CRLF, or a bare LF, which is tolerated).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Line<'a> {
    pub bytes: &'a [u8],
    /// The line was longer than [`MAX_LINE`] and was cut.
    pub truncated: bool,
    /// Bytes the line took on the wire, line ending included.
    pub wire_len: usize,
    /// The line ended at a gap (cut by the snap length, or its end lost): what it holds is
    /// true, what followed is unknown.
    pub cut: bool,
    /// The line began right after a gap, so it may be the tail of a longer line.
    pub after_gap: bool,
}

#[derive(Default)]
pub struct LineReader {
    /// Start of a line split across chunks (at most `MAX_LINE` bytes).
    buf: Vec<u8>,
    /// Bytes of the current line seen so far, kept or not.
    seen: usize,
    /// The last call lent `buf`; it is emptied on the next call.
    lent: bool,
    /// The line being read began right after a gap.
    after_gap: bool,
    /// Lines cut at the cap.
    pub long_lines: u64,
}

// The buffer may hold a line that carries a password: never print its bytes.
impl std::fmt::Debug for LineReader {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("LineReader")
            .field("buffered", &self.buf.len())
            .field("after_gap", &self.after_gap)
            .field("long_lines", &self.long_lines)
            .finish()
    }
}

impl LineReader {
    /// True when the next byte starts a new line (nothing partial is pending). Right after a
    /// gap it is taken to: a snap-length cut loses the end of a segment, and senders start
    /// segments at the lines (or TLS records) they write.
    pub fn at_line_start(&self) -> bool {
        self.lent || self.seen == 0
    }

    /// Reads from `data` up to the end of the next line. Returns how many bytes of `data` were
    /// consumed and the line when one completed.
    pub fn next_line<'a>(&'a mut self, data: &'a [u8]) -> (usize, Option<Line<'a>>) {
        if self.lent {
            self.buf.clear();
            self.seen = 0;
            self.lent = false;
            self.after_gap = false;
        }
        let Some(lf) = data.iter().position(|b| *b == b'\n') else {
            let before = self.seen;
            self.stash(data);
            // Counted when it passes the cap, not when it ends: a line that never ends
            // (megabytes without LF, then FIN or the end of the capture) is the attack
            // this counter exists to show.
            if before <= MAX_LINE && self.seen > MAX_LINE {
                self.long_lines += 1;
            }
            return (data.len(), None);
        };
        let consumed = lf + 1;
        let part = data.get(..lf).unwrap_or_default();
        let after_gap = std::mem::take(&mut self.after_gap);
        let total = self.seen + consumed;
        let truncated = total - 1 > MAX_LINE;
        // Not counted again when the part before this chunk already passed the cap.
        if truncated && self.seen <= MAX_LINE {
            self.long_lines += 1;
        }
        if self.buf.is_empty() && self.seen == 0 {
            let bytes = part.get(..MAX_LINE).unwrap_or(part);
            self.seen = 0;
            return (
                consumed,
                Some(Line {
                    bytes: strip_cr(bytes, truncated),
                    truncated,
                    wire_len: consumed,
                    cut: false,
                    after_gap,
                }),
            );
        }
        self.stash(part);
        self.lent = true;
        (
            consumed,
            Some(Line {
                bytes: strip_cr(&self.buf, truncated),
                truncated,
                wire_len: total,
                cut: false,
                after_gap,
            }),
        )
    }

    /// The partial line at the end of the stream, if any (a last reply without CRLF).
    pub fn take_partial(&mut self) -> Option<Vec<u8>> {
        if self.lent || self.seen == 0 {
            return None;
        }
        self.seen = 0;
        Some(std::mem::take(&mut self.buf))
    }

    /// Bytes were lost. The partial line before them is handed back (with whether it too
    /// began after a gap): a line cut there still proves what it holds, as
    /// `AUTH PLAIN AGFsaWNl` proves an AUTH PLAIN sent in clear. The next line is marked
    /// `after_gap`.
    pub fn gap(&mut self) -> Option<(Vec<u8>, bool)> {
        let partial = if !self.lent && self.seen > 0 {
            Some((std::mem::take(&mut self.buf), self.after_gap))
        } else {
            None
        };
        self.buf.clear();
        self.seen = 0;
        self.lent = false;
        self.after_gap = true;
        partial
    }

    fn stash(&mut self, part: &[u8]) {
        let room = MAX_LINE.saturating_sub(self.buf.len());
        let keep = part.get(..room).unwrap_or(part);
        self.buf.extend_from_slice(keep);
        self.seen += part.len();
    }
}

fn strip_cr(line: &[u8], truncated: bool) -> &[u8] {
    if truncated {
        return line;
    }
    line.strip_suffix(b"\r").unwrap_or(line)
}

#[cfg(test)]
#[allow(clippy::unwrap_used, clippy::expect_used)]
mod tests {
    use super::*;

    fn lines(chunks: &[&[u8]]) -> Vec<(Vec<u8>, bool)> {
        let mut r = LineReader::default();
        let mut out = Vec::new();
        for chunk in chunks {
            let mut pos = 0;
            while pos < chunk.len() {
                let (n, line) = r.next_line(&chunk[pos..]);
                pos += n;
                if let Some(l) = line {
                    out.push((l.bytes.to_vec(), l.truncated));
                }
            }
        }
        out
    }

    #[test]
    fn splits_crlf_and_bare_lf() {
        let got = lines(&[b"EHLO a\r\nMAIL FROM:<>\nQUIT\r\n"]);
        assert_eq!(
            got,
            vec![
                (b"EHLO a".to_vec(), false),
                (b"MAIL FROM:<>".to_vec(), false),
                (b"QUIT".to_vec(), false)
            ]
        );
    }

    #[test]
    fn joins_across_chunks() {
        let got = lines(&[b"EHL", b"O a\r", b"\nQU", b"IT\r\n"]);
        assert_eq!(
            got,
            vec![(b"EHLO a".to_vec(), false), (b"QUIT".to_vec(), false)]
        );
    }

    #[test]
    fn long_line_is_cut_and_counted() {
        let long = vec![b'A'; MAX_LINE * 3];
        let mut r = LineReader::default();
        let mut pos = 0;
        // Fed in pieces so the buffer path is taken.
        for piece in long.chunks(1000) {
            let (n, line) = r.next_line(piece);
            assert!(line.is_none());
            pos += n;
        }
        assert_eq!(pos, long.len());
        let (_, line) = r.next_line(b"\r\n");
        let line = line.unwrap();
        assert!(line.truncated);
        assert_eq!(line.bytes.len(), MAX_LINE);
        assert_eq!(r.long_lines, 1);
        assert!(r.buf.capacity() <= MAX_LINE * 2);
        let (_, line) = r.next_line(b"QUIT\r\n");
        assert_eq!(line.unwrap().bytes, b"QUIT");
    }

    /// Found by tests/hostile.rs: 48 MiB without a line ending, then FIN, left
    /// `long_lines` at 0 because lines were only counted when their LF came.
    #[test]
    fn endless_line_is_counted_once_when_it_passes_the_cap() {
        let mut r = LineReader::default();
        for _ in 0..10 {
            let (n, line) = r.next_line(&[b'A'; 4096]);
            assert_eq!((n, line.is_none()), (4096, true));
        }
        assert_eq!(r.long_lines, 1);
        // Its end (if it ever comes) does not count it twice.
        let (_, line) = r.next_line(b"\r\n");
        assert!(line.unwrap().truncated);
        assert_eq!(r.long_lines, 1);
        // A line at exactly the cap is not long.
        let mut exact = vec![b'B'; MAX_LINE];
        exact.push(b'\n');
        for piece in exact.chunks(100) {
            let _ = r.next_line(piece);
        }
        assert_eq!(r.long_lines, 1);
    }

    #[test]
    fn long_line_in_one_chunk() {
        let mut data = vec![b'B'; MAX_LINE + 10];
        data.extend_from_slice(b"\r\nNOOP\r\n");
        let got = lines(&[&data]);
        assert_eq!(got.len(), 2);
        assert!(got[0].1);
        assert_eq!(got[0].0.len(), MAX_LINE);
        assert_eq!(got[1], (b"NOOP".to_vec(), false));
    }

    #[test]
    fn gap_hands_back_the_cut_line_and_marks_the_next() {
        let mut r = LineReader::default();
        let (_, l) = r.next_line(b"MAIL FR");
        assert!(l.is_none());
        assert_eq!(r.gap(), Some((b"MAIL FR".to_vec(), false)));
        assert!(r.at_line_start());
        let (n, l) = r.next_line(b"OM:<x>\r\nRCPT TO:<y>\r\n");
        assert_eq!(n, 8);
        let l = l.unwrap();
        assert_eq!((l.bytes, l.after_gap), (&b"OM:<x>"[..], true));
        let (_, l) = r.next_line(b"RCPT TO:<y>\r\n");
        let l = l.unwrap();
        assert_eq!((l.bytes, l.after_gap), (&b"RCPT TO:<y>"[..], false));
        // A line begun after one gap and cut by the next says so.
        let _ = r.gap();
        let _ = r.next_line(b"DAT");
        assert_eq!(r.gap(), Some((b"DAT".to_vec(), true)));
        assert_eq!(r.gap(), None);
    }

    #[test]
    fn partial_at_end() {
        let mut r = LineReader::default();
        let _ = r.next_line(b"221 Bye");
        assert_eq!(r.take_partial(), Some(b"221 Bye".to_vec()));
        assert_eq!(r.take_partial(), None);
    }
}
