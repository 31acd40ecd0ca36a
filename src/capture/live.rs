//! Ending a run early, and reading a live capture so that it can be ended.
//!
//! `tcpdump -U -w - ... | smtpaudit -` runs until the user presses Ctrl-C or a service
//! manager sends SIGTERM. The signal sets a [`Stop`]; every reading loop checks it and ends as
//! at the end of its input, so the open flows are finished and the report is written.
//!
//! A blocking `read(2)` on a pipe that has no data does not return when the signal arrives:
//! signal-hook installs its handlers with `SA_RESTART`, so the kernel restarts the read, and in
//! a process with several threads the signal may be delivered to another thread than the
//! reader anyway. So standard input, when it is not a regular file, is read by a thread of its
//! own ([`LiveStream`]): the analysis waits on that thread's chunks with a timeout and looks at
//! the flag between waits. The reading thread stays blocked in `read(2)` until the process
//! exits, which is harmless: nothing waits for it.

use std::io::{self, Read};
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::mpsc::{self, Receiver, RecvTimeoutError};
use std::time::Duration;

/// A request to end the run as if every input had ended here (SIGINT, SIGTERM). Clones share
/// the flag.
#[derive(Clone, Debug, Default)]
pub struct Stop(Arc<AtomicBool>);

impl Stop {
    /// The flag itself, for a signal handler to set (`signal_hook::flag::register`).
    pub fn flag(&self) -> Arc<AtomicBool> {
        Arc::clone(&self.0)
    }

    pub fn request(&self) {
        self.0.store(true, Ordering::SeqCst);
    }

    pub fn requested(&self) -> bool {
        self.0.load(Ordering::Relaxed)
    }
}

/// How long a wait for data lasts before the flag is looked at again: a stop takes effect
/// within this time.
const POLL: Duration = Duration::from_millis(100);
/// Bytes one read of the reading thread asks for.
const CHUNK: usize = 64 * 1024;
/// Chunks waiting for the analysis, at most (so at most 1 MiB ahead of it).
const QUEUED: usize = 16;

/// A stream (standard input, a named pipe) read on a thread of its own, ending (as an end of
/// input) when `stop` is requested even while no data comes.
pub struct LiveStream {
    rx: Receiver<io::Result<Vec<u8>>>,
    chunk: Vec<u8>,
    at: usize,
    stop: Stop,
    ended: bool,
}

impl LiveStream {
    pub fn new(stop: Stop) -> io::Result<Self> {
        Self::from_stream(Box::new(io::stdin()), stop)
    }

    /// Reads `src` on a thread of its own.
    pub fn from_stream(mut src: Box<dyn Read + Send>, stop: Stop) -> io::Result<Self> {
        let (tx, rx) = mpsc::sync_channel(QUEUED);
        std::thread::Builder::new()
            .name("live input".into())
            .spawn(move || {
                // One buffer for every read; each chunk sent is a copy of what was read, so a
                // live capture that writes a packet at a time costs a small allocation per
                // packet, not a 64 KiB one.
                let mut buf = vec![0u8; CHUNK];
                loop {
                    let sent = match src.read(&mut buf) {
                        Ok(0) => {
                            let _ = tx.send(Ok(Vec::new()));
                            return;
                        }
                        Ok(n) => tx.send(Ok(buf.get(..n).unwrap_or_default().to_vec())),
                        Err(e) if e.kind() == io::ErrorKind::Interrupted => continue,
                        Err(e) => {
                            let _ = tx.send(Err(e));
                            return;
                        }
                    };
                    if sent.is_err() {
                        return;
                    }
                }
            })?;
        Ok(LiveStream {
            rx,
            chunk: Vec::new(),
            at: 0,
            stop,
            ended: false,
        })
    }
}

impl Read for LiveStream {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        loop {
            if let Some(rest) = self.chunk.get(self.at..).filter(|r| !r.is_empty()) {
                let n = rest.len().min(buf.len());
                if let (Some(dst), Some(src)) = (buf.get_mut(..n), rest.get(..n)) {
                    dst.copy_from_slice(src);
                }
                self.at += n;
                return Ok(n);
            }
            // A stop ends the input here; what the reading thread holds is not waited for.
            if self.ended || self.stop.requested() {
                self.ended = true;
                return Ok(0);
            }
            match self.rx.recv_timeout(POLL) {
                Ok(Ok(chunk)) if chunk.is_empty() => self.ended = true,
                Ok(Ok(chunk)) => {
                    self.chunk = chunk;
                    self.at = 0;
                }
                Ok(Err(e)) => {
                    self.ended = true;
                    return Err(e);
                }
                Err(RecvTimeoutError::Timeout) => {}
                Err(RecvTimeoutError::Disconnected) => self.ended = true,
            }
        }
    }
}

/// Standard input as the capture source: a regular file (`smtpaudit - < a.pcap`) is read
/// directly, since a read of it never blocks for long and the reading loop sees the flag
/// between frames; anything else (a pipe, a terminal, a socket) through [`LiveStream`].
pub fn stdin_source(stop: &Stop) -> io::Result<Box<dyn Read + Send>> {
    if stdin_is_regular_file() {
        return Ok(Box::new(io::stdin()));
    }
    Ok(Box::new(LiveStream::new(stop.clone())?))
}

fn stdin_is_regular_file() -> bool {
    #[cfg(unix)]
    {
        use std::os::fd::AsFd;
        io::stdin()
            .as_fd()
            .try_clone_to_owned()
            .ok()
            .map(std::fs::File::from)
            .and_then(|f| f.metadata().ok())
            .is_some_and(|m| m.is_file())
    }
    #[cfg(not(unix))]
    {
        false
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;

    #[test]
    fn stop_is_shared_by_clones() {
        let a = Stop::default();
        let b = a.clone();
        assert!(!b.requested());
        a.request();
        assert!(b.requested());
        assert!(a.flag().load(Ordering::SeqCst));
    }
}
