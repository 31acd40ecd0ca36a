//! Protocol analyzers: pure parsers plus the per-flow sessions that drive them.

pub mod hexfmt;
pub mod smtp;
pub mod tls;
