//! The command line (clap derive): what the user typed, validated into a [`Config`].

use std::path::PathBuf;
use std::sync::Arc;

use clap::Parser;

use crate::capture::Stop;
use crate::findings::Severity;
use crate::findings::correlate::SCAN_THRESHOLD;
use crate::findings::spraying::SprayThresholds;
use crate::flow::FlowConfig;
use crate::proto::tls::keylog::KeyStore;
use crate::report::Format;
use crate::report::model::Detail;

/// Mail ports: a connection to one of these is reported whatever it carries.
pub const DEFAULT_MAIL_PORTS: [u16; 4] = [25, 465, 587, 2525];

const EXAMPLES: &str = "\
Examples:
  smtpaudit capture.pcap                     summary for people
  smtpaudit --format json a.pcap b.pcapng.gz one JSON document for both captures
  tcpdump -i any -U -w - port 25 or port 587 | smtpaudit --format ndjson -
  smtpaudit --fail-on high --format ecs -o events.ndjson capture.pcap
  smtpaudit --ports 10025,2526 capture.pcap  also treat these ports as mail ports

Exit status: 0 analysis done; 1 a finding at or above --fail-on; 2 bad usage or no input
could be read at all. SIGINT (Ctrl-C) or SIGTERM ends a live capture as its end would:
the report is written and the status is as above; a second signal aborts.";

/// Audit SMTP traffic in packet captures: plaintext, STARTTLS, implicit TLS, TLS handshake
/// failures and cleartext credentials.
#[derive(Debug, Parser)]
#[command(name = "smtpaudit", version, about, after_help = EXAMPLES)]
pub struct Cli {
    /// pcap or pcapng files, gzip-compressed or not; `-` reads standard input.
    #[arg(value_name = "CAPTURE", required = true)]
    pub captures: Vec<String>,

    /// Output format.
    #[arg(long, value_enum, default_value_t = Format::Text)]
    pub format: Format,

    /// How much of each flow `json`, `ndjson` and `ecs` write: `lean` leaves out zero
    /// counters, nulls and details nobody asked for (the fields of the output contract are
    /// always written); `full` writes every field.
    #[arg(long, value_enum, default_value_t = Detail::Lean, value_name = "LEVEL")]
    pub detail: Detail,

    /// Write the report to PATH instead of standard output.
    #[arg(short = 'o', long = "output", value_name = "PATH")]
    pub output: Option<PathBuf>,

    /// Write passwords, tokens and challenge responses as they were sent.
    #[arg(long)]
    pub reveal_secrets: bool,

    /// Exit with status 1 when any finding is at or above SEVERITY
    /// (info, low, medium, high, critical).
    #[arg(long, value_name = "SEVERITY", value_parser = parse_severity)]
    pub fail_on: Option<Severity>,

    /// Also report posture findings on every flow that shows them: `cleartext_auth_offered`
    /// (AUTH PLAIN/LOGIN advertised before TLS) and `cleartext_mail` (a message sent in clear).
    /// The facts are always in the flow records; these findings are opt-in because they fire
    /// on nearly every plaintext session.
    #[arg(long)]
    pub posture_findings: bool,

    /// TLS secrets in the NSS key log format (what SSLKEYLOGFILE makes), for TLS 1.2 and
    /// 1.3: what runs inside TLS is then analysed as if it were in clear. Decryption Secrets
    /// Blocks inside a pcapng are used with or without this option.
    #[arg(long, value_name = "PATH")]
    pub keylog: Option<PathBuf>,

    /// More mail ports, comma-separated (e.g. 10025,2526).
    #[arg(long, value_name = "LIST", value_delimiter = ',', value_parser = clap::value_parser!(u16).range(1..))]
    pub ports: Vec<u16>,

    /// Idle time in seconds (capture time) after which a connection is considered finished.
    #[arg(long, value_name = "SECS", default_value_t = FlowConfig::default().idle_timeout_secs)]
    pub idle_timeout: u64,

    /// Idle time in seconds (capture time) after which a connection that waits on an answer
    /// (a banner, a TLS handshake flight) is considered finished.
    #[arg(long, value_name = "SECS", default_value_t = FlowConfig::default().stall_timeout_secs)]
    pub stall_timeout: u64,

    /// Memory the flow table may hold for live connections, in bytes or with a K, M or G
    /// suffix (powers of 1024); beyond it the longest-idle connection is evicted and counted
    /// in `flow_table.evicted_memcap` (as Suricata's `flow.memcap`).
    #[arg(long, value_name = "BYTES", default_value = "64M", value_parser = parse_size)]
    pub flow_memcap: usize,

    /// Worker threads (default: the number of cores).
    #[arg(long, value_name = "N")]
    pub threads: Option<usize>,

    /// A source that fails to connect to N or more distinct servers (address and port)
    /// within 60 s of capture time is a scanner: no `connection_failed` for it (0: never).
    #[arg(long, value_name = "N", default_value_t = SCAN_THRESHOLD)]
    pub scan_threshold: usize,

    /// Distinct usernames failing AUTH from one client within --auth-window that make
    /// `auth_password_spraying`.
    #[arg(long, value_name = "N", default_value_t = SprayThresholds::default().usernames_per_client, value_parser = clap::builder::RangedU64ValueParser::<usize>::new().range(1..))]
    pub spray_usernames: usize,

    /// Distinct clients failing AUTH for one username within --auth-window that make
    /// `auth_distributed_brute_force`.
    #[arg(long, value_name = "N", default_value_t = SprayThresholds::default().clients_per_username, value_parser = clap::builder::RangedU64ValueParser::<usize>::new().range(1..))]
    pub spray_clients: usize,

    /// Window in seconds (capture time) over which failed AUTH attempts are counted for
    /// password spraying and distributed brute force.
    #[arg(long, value_name = "SECS", default_value_t = SprayThresholds::default().window_secs)]
    pub auth_window: u64,

    /// No progress bar and no warnings on standard error (errors are still printed).
    #[arg(short, long)]
    pub quiet: bool,

    /// When to colour the text report.
    #[arg(long, value_enum, default_value_t = ColorChoice::Auto, value_name = "WHEN")]
    pub color: ColorChoice,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq, clap::ValueEnum)]
pub enum ColorChoice {
    Auto,
    Always,
    Never,
}

/// `4096`, `512K`, `64M`, `1G` (powers of 1024; a trailing `B` or `iB` is allowed).
fn parse_size(s: &str) -> Result<usize, String> {
    let t = s.trim();
    let t = t
        .strip_suffix("iB")
        .or_else(|| t.strip_suffix('B'))
        .unwrap_or(t);
    let (num, shift) = match t.char_indices().last() {
        Some((i, 'K' | 'k')) => (&t[..i], 10),
        Some((i, 'M' | 'm')) => (&t[..i], 20),
        Some((i, 'G' | 'g')) => (&t[..i], 30),
        _ => (t, 0),
    };
    num.trim()
        .parse::<usize>()
        .ok()
        .and_then(|n| n.checked_mul(1usize << shift))
        .filter(|&n| n > 0)
        .ok_or_else(|| format!("not a size in bytes: {s:?} (e.g. 64M)"))
}

fn parse_severity(s: &str) -> Result<Severity, String> {
    Severity::parse(s)
        .ok_or_else(|| format!("unknown severity `{s}` (use info, low, medium, high or critical)"))
}

/// What the analysis needs to know, independent of how it was asked for.
#[derive(Clone, Debug)]
pub struct Config {
    pub reveal_secrets: bool,
    /// Report `cleartext_auth_offered` and `cleartext_mail` findings.
    pub posture_findings: bool,
    /// Mail ports: defaults plus `--ports`.
    pub mail_ports: Vec<u16>,
    pub flow: FlowConfig,
    pub threads: usize,
    /// Distinct servers a source must fail to reach within a minute to be taken for a
    /// scanner, whose failed connections then get no `connection_failed` (0: never).
    pub scan_threshold: usize,
    /// Thresholds of `auth_password_spraying` and `auth_distributed_brute_force`.
    pub spray: SprayThresholds,
    /// Set when the run is to end early (SIGINT, SIGTERM): every input ends there, as at its
    /// end, and the report covers what was read.
    pub stop: Stop,
    /// TLS secrets of the run (`--keylog`, and Decryption Secrets Blocks as they are read).
    pub keys: Option<Arc<KeyStore>>,
}

impl Config {
    pub fn is_mail_port(&self, port: u16) -> bool {
        self.mail_ports.contains(&port)
    }

    /// This configuration for one capture: the same key log, a key store of its own for
    /// the capture's Decryption Secrets Blocks.
    pub fn for_capture(&self) -> Config {
        Config {
            keys: self.keys.as_ref().map(|k| Arc::new(k.for_capture())),
            ..self.clone()
        }
    }
}

impl Default for Config {
    fn default() -> Self {
        Config {
            reveal_secrets: false,
            posture_findings: false,
            mail_ports: DEFAULT_MAIL_PORTS.to_vec(),
            flow: FlowConfig::default(),
            threads: 1,
            scan_threshold: SCAN_THRESHOLD,
            spray: SprayThresholds::default(),
            stop: Stop::default(),
            keys: None,
        }
    }
}

impl Cli {
    /// What clap cannot check, as one line for the user (the CLI exits 2 with it).
    pub fn check(&self) -> Result<(), String> {
        if self.threads == Some(0) {
            return Err("--threads 0: at least one thread is needed".into());
        }
        let stdin = self.captures.iter().filter(|c| *c == "-").count();
        if stdin > 1 {
            return Err(format!(
                "standard input (`-`) is given {stdin} times: it can be read only once"
            ));
        }
        Ok(())
    }

    pub fn config(&self) -> Config {
        let mut mail_ports = DEFAULT_MAIL_PORTS.to_vec();
        for p in &self.ports {
            if !mail_ports.contains(p) {
                mail_ports.push(*p);
            }
        }
        let threads = self.threads.unwrap_or_else(|| {
            std::thread::available_parallelism()
                .map(|n| n.get())
                .unwrap_or(1)
        });
        Config {
            reveal_secrets: self.reveal_secrets,
            posture_findings: self.posture_findings,
            mail_ports,
            flow: FlowConfig {
                idle_timeout_secs: self.idle_timeout,
                stall_timeout_secs: self.stall_timeout,
                memcap: self.flow_memcap,
                ..FlowConfig::default()
            },
            threads: threads.max(1),
            scan_threshold: self.scan_threshold,
            spray: SprayThresholds {
                usernames_per_client: self.spray_usernames,
                clients_per_username: self.spray_clients,
                window_secs: self.auth_window,
            },
            stop: Stop::default(),
            keys: None,
        }
    }
}
