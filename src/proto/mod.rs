//! Protocol analyzers: pure parsers plus the per-flow sessions that drive them.

pub mod smtp;
pub mod tls;
