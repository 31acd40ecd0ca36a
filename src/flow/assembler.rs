//! Per-direction reassembly by sequence number (skeleton).

/// Reassembles one direction of a TCP connection.
#[derive(Debug, Default)]
pub struct StreamAssembler {}
