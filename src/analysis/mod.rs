//! Per-flow analysis: classify each flow by ports and first bytes, drive the SMTP and TLS
//! sessions, and turn finished flows into report records and findings.
