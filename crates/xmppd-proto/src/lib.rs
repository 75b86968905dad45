//! Typed XMPP protocol data: namespace constants, stream and stanza error
//! conditions, and the small payloads the server itself handles.
//!
//! One file per RFC or XEP. This crate does no I/O and never panics on peer
//! input. Routed stanzas are *not* round-tripped through these types: the
//! router forwards raw bytes (see `xmppd-xml`), and only payloads that the
//! server must understand are parsed here.
#![warn(missing_docs)]

pub mod bind;
pub mod caps;
pub mod data_form;
pub mod datetime;
pub mod ns;
pub mod stanza_error;
pub mod stream_error;

pub use stanza_error::{ErrorType, StanzaErrorCondition};
pub use stream_error::StreamErrorCondition;

/// Errors raised when a payload cannot be interpreted.
#[derive(Debug, thiserror::Error, PartialEq, Eq)]
#[non_exhaustive]
pub enum ProtoError {
    /// The element is not the payload this parser handles (try another).
    #[error("element is not a {0}")]
    Mismatch(&'static str),
    /// The element is the right payload but malformed (`bad-request`).
    #[error("invalid {what}: {reason}")]
    Invalid {
        /// Which payload was being parsed.
        what: &'static str,
        /// Why it was rejected.
        reason: String,
    },
}
