//! The `smtpaudit` binary: parse arguments, run the pipeline, map the outcome to an exit
//! status (0 done, 1 `--fail-on` matched, 2 bad usage or no input readable).

use std::fs::File;
use std::io::{self, BufWriter, IsTerminal, Write};
use std::process::ExitCode;
use std::sync::Arc;

use anyhow::Context;
use clap::Parser;
use indicatif::{ProgressBar, ProgressDrawTarget, ProgressStyle};

use smtpaudit::cli::{Cli, ColorChoice};
use smtpaudit::pipeline::{self, Observer};
use smtpaudit::proto::tls::keylog::{KeyLog, KeySource, KeyStore};
use smtpaudit::report::{self, SinkOptions};

/// Flow records are built on worker threads and freed on the one that writes the report:
/// see Cargo.toml for why mimalloc.
#[global_allocator]
static GLOBAL: mimalloc::MiMalloc = mimalloc::MiMalloc;

fn main() -> ExitCode {
    let cli = Cli::parse();
    if let Err(message) = cli.check() {
        eprintln!("smtpaudit: {message}");
        return ExitCode::from(2);
    }
    match run(&cli) {
        Ok(code) => code,
        Err(e) if is_broken_pipe(&e) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("smtpaudit: {e:#}");
            ExitCode::from(2)
        }
    }
}

fn run(cli: &Cli) -> anyhow::Result<ExitCode> {
    let cfg = cli.config();
    stop_on_signals(&cfg.stop)?;
    let out: Box<dyn Write> = match &cli.output {
        Some(path) => {
            let f =
                File::create(path).with_context(|| format!("cannot create {}", path.display()))?;
            Box::new(BufWriter::with_capacity(1 << 16, f))
        }
        None => Box::new(BufWriter::with_capacity(1 << 16, io::stdout())),
    };
    let color = match cli.color {
        ColorChoice::Always => true,
        ColorChoice::Never => false,
        ColorChoice::Auto => {
            cli.output.is_none()
                && io::stdout().is_terminal()
                && std::env::var_os("NO_COLOR").is_none_or(|v| v.is_empty())
        }
    };
    let opts = SinkOptions {
        color,
        // A live capture's flows are awaited one by one (`tail -f`, a log shipper); a file's
        // are flushed once a second.
        flush_each_flow: cli.captures.iter().any(|c| is_live(c)),
        detail: cli.detail,
        // Shells set COLUMNS for the terminal; a table for a pipe or file keeps its width.
        text_width: std::env::var("COLUMNS")
            .ok()
            .and_then(|c| c.trim().parse().ok()),
    };
    let mut sink = report::make_sink(cli.format, out, opts);
    let mut obs = StderrObserver::new(cli.quiet);
    let mut cfg = cfg;
    cfg.keys = Some(Arc::new(load_keys(cli, &mut obs)?));
    let outcome = pipeline::run(&cfg, &cli.captures, sink.as_mut(), &mut obs)?;
    drop(sink);
    if outcome.inputs_read == 0 {
        return Ok(ExitCode::from(2));
    }
    if let (Some(threshold), Some(worst)) = (cli.fail_on, outcome.summary.worst()) {
        if worst >= threshold {
            return Ok(ExitCode::from(1));
        }
    }
    Ok(ExitCode::SUCCESS)
}

/// The `--keylog` file (an empty store without it: Decryption Secrets Blocks go there). A
/// malformed line is a warning by its number; the file's content is never printed.
fn load_keys(cli: &Cli, obs: &mut StderrObserver) -> anyhow::Result<KeyStore> {
    let Some(path) = &cli.keylog else {
        return Ok(KeyStore::default());
    };
    let f = File::open(path).with_context(|| format!("cannot open key log {}", path.display()))?;
    let log = KeyLog::read(io::BufReader::new(f), KeySource::Keylog)
        .with_context(|| format!("cannot read key log {}", path.display()))?;
    for w in &log.warnings {
        obs.warning(&format!("key log {}: {w}; line skipped", path.display()));
    }
    let unlisted = log.malformed.saturating_sub(log.warnings.len() as u64);
    if unlisted > 0 {
        obs.warning(&format!(
            "key log {}: {unlisted} more malformed lines skipped",
            path.display()
        ));
    }
    if log.dropped > 0 {
        obs.warning(&format!(
            "key log {}: more than {} handshakes; {} lines skipped",
            path.display(),
            smtpaudit::proto::tls::keylog::MAX_CLIENTS,
            log.dropped
        ));
    }
    Ok(KeyStore::new(log))
}

fn is_broken_pipe(e: &anyhow::Error) -> bool {
    e.chain().any(|c| {
        c.downcast_ref::<io::Error>()
            .is_some_and(|io| io.kind() == io::ErrorKind::BrokenPipe)
    })
}

/// SIGINT and SIGTERM end the run as the end of input would: the pipeline sees `stop` and
/// every input ends there, so the report is written and the exit status is the usual one. A
/// second signal ends the process at once, with the shell's status for it (128 + signal),
/// for the user whose report takes too long to finish.
fn stop_on_signals(stop: &smtpaudit::capture::Stop) -> anyhow::Result<()> {
    use signal_hook::consts::{SIGINT, SIGTERM};
    for sig in [SIGINT, SIGTERM] {
        // Registered first, so it runs before the flag is set: only a second signal exits.
        signal_hook::flag::register_conditional_shutdown(sig, 128 + sig, stop.flag())
            .context("cannot install signal handlers")?;
        signal_hook::flag::register(sig, stop.flag()).context("cannot install signal handlers")?;
    }
    Ok(())
}

/// The input is a live stream (standard input or a named pipe, not a regular file).
fn is_live(path: &str) -> bool {
    let meta = if path == "-" {
        #[cfg(unix)]
        {
            std::fs::metadata("/dev/stdin")
        }
        #[cfg(not(unix))]
        {
            return true;
        }
    } else {
        std::fs::metadata(path)
    };
    meta.is_ok_and(|m| !m.is_file())
}

/// Errors and warnings on stderr; a progress bar when stderr is a terminal and a capture takes
/// more than a moment.
struct StderrObserver {
    quiet: bool,
    bar: Option<ProgressBar>,
    started: std::time::Instant,
    shown: bool,
}

/// A capture shows a progress bar once it has taken this long.
const PROGRESS_AFTER: std::time::Duration = std::time::Duration::from_millis(700);

impl StderrObserver {
    fn new(quiet: bool) -> Self {
        StderrObserver {
            quiet,
            bar: None,
            started: std::time::Instant::now(),
            shown: false,
        }
    }

    fn println(&self, line: &str) {
        match &self.bar {
            Some(bar) if self.shown => bar.suspend(|| eprintln!("{line}")),
            _ => eprintln!("{line}"),
        }
    }
}

impl Observer for StderrObserver {
    fn start_capture(&mut self, path: &str, total: Option<u64>) {
        if self.quiet || !io::stderr().is_terminal() {
            return;
        }
        let style = match total {
            Some(_) => ProgressStyle::with_template(
                "{msg} [{bar:30}] {bytes}/{total_bytes} {bytes_per_sec} eta {eta}",
            ),
            None => ProgressStyle::with_template("{msg} {bytes} {bytes_per_sec} {spinner}"),
        }
        .unwrap_or_else(|_| ProgressStyle::default_bar());
        // Hidden until the capture has taken a moment: small files finish without a flicker.
        let bar =
            ProgressBar::with_draw_target(total, ProgressDrawTarget::hidden()).with_style(style);
        bar.set_message(path.to_string());
        self.bar = Some(bar);
        self.started = std::time::Instant::now();
        self.shown = false;
    }

    fn progress(&mut self, input_bytes: u64, packets: u64) {
        let Some(bar) = &self.bar else {
            return;
        };
        if !self.shown && self.started.elapsed() >= PROGRESS_AFTER {
            bar.set_draw_target(ProgressDrawTarget::stderr());
            bar.enable_steady_tick(std::time::Duration::from_millis(200));
            self.shown = true;
        }
        bar.set_position(input_bytes);
        if bar.length().is_none() {
            bar.set_message(format!("{packets} packets"));
        }
    }

    fn finish_capture(&mut self) {
        if let Some(bar) = self.bar.take() {
            bar.finish_and_clear();
        }
    }

    fn error(&mut self, message: &str) {
        self.println(&format!("smtpaudit: {message}"));
    }

    fn warning(&mut self, message: &str) {
        if !self.quiet {
            self.println(&format!("smtpaudit: warning: {message}"));
        }
    }
}
