//! Sans-I/O client-to-server stream negotiation (RFC 6120 §4–§7).
//!
//! The transport-facing driver (`xmppd-c2s`) feeds stream headers and
//! top-level elements in; this crate decides what they mean in the current
//! negotiation [`Phase`], which stream error a violation earns, and what the
//! server answers (headers, features, SASL and bind replies). It never touches
//! a socket, a clock or storage.
#![warn(missing_docs)]

pub mod header;
pub mod negotiation;

pub use header::{HeaderInfo, check_c2s_header, response_header};
pub use negotiation::{Command, FeatureSet, Phase};

use xmppd_proto::StreamErrorCondition;

/// A negotiation violation: the stream error to send, with explanatory text.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{}: {text}", condition.name())]
#[non_exhaustive]
pub struct StreamError {
    /// The RFC 6120 §4.9.3 condition.
    pub condition: StreamErrorCondition,
    /// Human-readable explanation sent in `<text/>`.
    pub text: &'static str,
}

impl StreamError {
    /// Builds a stream error.
    pub const fn new(condition: StreamErrorCondition, text: &'static str) -> Self {
        StreamError { condition, text }
    }
}
