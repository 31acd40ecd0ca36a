//! smtpaudit reads packet captures of mail traffic and reports, per SMTP connection, whether
//! it was plaintext, upgraded with STARTTLS or implicit TLS, how its TLS handshake went, and
//! which credentials crossed the wire in clear.
//!
//! The pipeline runs one way:
//!
//! ```text
//! capture::CaptureReader -> decode::Decoder -> flow::FlowTable -> StreamAssembler (per direction)
//!     -> analysis (classify; proto::smtp::SmtpSession --STARTTLS--> proto::tls::TlsSession)
//!     -> findings -> report::ReportSink (json | ndjson | ecs | text)
//! ```
//!
//! The reader lends frames from a bounded buffer; decoding borrows; reassembly delivers
//! in-order bytes without copying and holds only out-of-order segments (bounded). Parsers are
//! pure functions over byte slices; sessions own the state machines. Payload nobody needs
//! (message bodies, TLS application data) is counted, never buffered. Time is capture time.

pub mod analysis;
pub mod capture;
pub mod cli;
pub mod decode;
pub mod findings;
pub mod flow;
pub mod pipeline;
pub mod proto;
pub mod report;
pub mod time;
