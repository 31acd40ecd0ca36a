//! The flow table (skeleton).

use super::{EventMeta, FlowConfig, FlowHandler, FlowTableStats};
use crate::decode::TcpSegment;

/// Tracks live TCP flows and drives a [`FlowHandler`] with reassembled stream events.
pub struct FlowTable<H: FlowHandler> {
    handler: H,
    config: FlowConfig,
    stats: FlowTableStats,
}

impl<H: FlowHandler> FlowTable<H> {
    pub fn new(config: FlowConfig, handler: H) -> Self {
        FlowTable {
            handler,
            config,
            stats: FlowTableStats::default(),
        }
    }

    /// Feeds one decoded segment (in capture order).
    pub fn process(&mut self, _seg: &TcpSegment<'_>, _meta: EventMeta) {
        let _ = self.config;
    }

    /// End of input: every live flow is finished with [`super::CloseReason::EndOfInput`].
    pub fn finish_all(&mut self) {}

    pub fn stats(&self) -> &FlowTableStats {
        &self.stats
    }

    pub fn handler(&self) -> &H {
        &self.handler
    }

    pub fn handler_mut(&mut self) -> &mut H {
        &mut self.handler
    }

    pub fn into_handler(self) -> H {
        self.handler
    }
}
