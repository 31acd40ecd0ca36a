//! Runs captures through reader, decoder, flow table and analysis into a report sink.
