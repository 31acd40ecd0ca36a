//! Several inputs at once: each independent capture, and each chain of files that are one
//! capture, on a thread of its own (the one-thread path), up to `cfg.threads` at a time,
//! reported strictly in the order of the run's plan ([`super::chain::plan`]).
//!
//! The calling thread owns the sink and the observer. It takes the units' events in that
//! order: the first unit's flows are written as they finish, the others wait in a bounded
//! channel (so an input far ahead of the one being written stops until its turn, and memory
//! stays bounded). Everything an input's thread would have told the observer is replayed in
//! order too, so stderr reads as it would with one thread.

use std::collections::VecDeque;
use std::io;
use std::sync::mpsc::{self, Receiver, SyncSender};
use std::thread;

use super::chain::{self, Files, Unit};
use super::{CaptureFailure, Observer, Tally, analyse_capture};
use crate::analysis::Output;
use crate::cli::Config;
use crate::report::ReportSink;
use crate::report::model::CaptureRecord;

/// Events of one input waiting for their turn, at most (a few MB of records).
const QUEUED_EVENTS: usize = 1024;

enum Event {
    Start(String, Option<u64>),
    Progress(u64, u64),
    Finish,
    Warning(String),
    /// A finished flow or evidence, in the order the input's analysis handed them on.
    Out(Box<Output>),
    /// The files of a chain read so far (before the first flow that may point into the last).
    Files(Files),
    Done(String, Box<Result<CaptureRecord, CaptureFailure>>),
    /// Every capture of the unit is done.
    End,
}

/// The observer of an input's thread: queues everything for the calling thread.
struct Queue(SyncSender<Event>);

/// The calling thread stopped listening (its output failed).
fn hung_up() -> io::Error {
    io::Error::other("report writer stopped")
}

impl Observer for Queue {
    fn start_capture(&mut self, path: &str, total: Option<u64>) {
        let _ = self.0.send(Event::Start(path.to_string(), total));
    }
    fn progress(&mut self, input_bytes: u64, packets: u64) {
        let _ = self.0.send(Event::Progress(input_bytes, packets));
    }
    fn finish_capture(&mut self) {
        let _ = self.0.send(Event::Finish);
    }
    fn error(&mut self, message: &str) {
        // Only the calling thread reports errors (in `Tally::capture`); kept for completeness.
        let _ = self.0.send(Event::Warning(message.to_string()));
    }
    fn warning(&mut self, message: &str) {
        let _ = self.0.send(Event::Warning(message.to_string()));
    }
}

/// Analyses one unit on the current thread, queueing its events.
fn analyse_unit(cfg: &Config, unit: &Unit, tx: SyncSender<Event>) {
    let mut obs = Queue(tx.clone());
    match unit {
        Unit::One(path) => {
            let analysed = super::open_input(cfg, path)
                .map_err(CaptureFailure::Unreadable)
                .and_then(|reader| {
                    // The flows go to the writing thread, which frees them.
                    let mut emit = |out: Output, _: &mut Vec<_>| {
                        tx.send(Event::Out(Box::new(out))).map_err(|_| hung_up())
                    };
                    analyse_capture(cfg, reader, &mut obs, &mut emit)
                });
            let _ = tx.send(Event::Done(path.clone(), Box::new(analysed)));
        }
        Unit::Chain(paths) => {
            let mut sent = 0;
            let mut emit = |out: Output, files: &Files| {
                // The calling thread maps frames back with the files as they were then.
                if files.len() > sent {
                    sent = files.len();
                    tx.send(Event::Files(files.clone()))
                        .map_err(|_| hung_up())?;
                }
                tx.send(Event::Out(Box::new(out))).map_err(|_| hung_up())
            };
            for (path, analysed) in chain::analyse_chain(cfg, paths, &mut obs, &mut emit) {
                let _ = tx.send(Event::Done(path, Box::new(analysed)));
            }
        }
    }
    let _ = tx.send(Event::End);
}

pub(super) fn run_units(
    cfg: &Config,
    units: &[Unit],
    sink: &mut dyn ReportSink,
    obs: &mut dyn Observer,
) -> io::Result<super::RunOutcome> {
    let at_once = cfg.threads.max(1);
    let mut tally = Tally::new(cfg);
    thread::scope(|scope| -> io::Result<()> {
        let mut pending = units.iter();
        let mut running: VecDeque<(&str, Receiver<Event>, thread::ScopedJoinHandle<'_, ()>)> =
            VecDeque::new();
        let mut start = |running: &mut VecDeque<_>| {
            // After a stop, the inputs not begun are left out.
            if cfg.stop.requested() {
                return;
            }
            if let Some(unit) = pending.next() {
                let (tx, rx) = mpsc::sync_channel(QUEUED_EVENTS);
                let handle = scope.spawn(move || analyse_unit(cfg, unit, tx));
                let name = match unit {
                    Unit::One(path) => path.as_str(),
                    Unit::Chain(paths) => paths.first().map_or("", String::as_str),
                };
                running.push_back((name, rx, handle));
            }
        };
        for _ in 0..at_once {
            start(&mut running);
        }
        let mut result = Ok(());
        while let Some((path, rx, handle)) = running.pop_front() {
            result = replay(&mut tally, sink, obs, path, &rx);
            // On failure, hanging up ends every input thread at its next event.
            drop(rx);
            if handle.join().is_err() && result.is_ok() {
                result = Err(io::Error::other(format!("{path}: analysis thread stopped")));
            }
            if result.is_err() {
                // Hang up on the others too: each ends at its next event.
                for (_, rx, handle) in running.drain(..) {
                    drop(rx);
                    let _ = handle.join();
                }
                break;
            }
            start(&mut running);
        }
        result
    })?;
    tally.finish(sink)
}

/// Writes one unit's events, in the order its thread produced them, until it is done.
fn replay(
    tally: &mut Tally,
    sink: &mut dyn ReportSink,
    obs: &mut dyn Observer,
    path: &str,
    rx: &Receiver<Event>,
) -> io::Result<()> {
    let mut files: Option<Files> = None;
    for event in rx.iter() {
        match event {
            Event::Start(p, total) => obs.start_capture(&p, total),
            Event::Progress(bytes, packets) => obs.progress(bytes, packets),
            Event::Finish => obs.finish_capture(),
            Event::Warning(w) => obs.warning(&w),
            Event::Out(out) => tally.output(sink, *out, files.as_ref())?,
            Event::Files(f) => files = Some(f),
            Event::Done(p, analysed) => tally.capture(sink, obs, &p, *analysed)?,
            Event::End => return Ok(()),
        }
    }
    Err(io::Error::other(format!("{path}: analysis thread stopped")))
}
