//! Publish-subscribe for xmppd.
//!
//! * [`config`]: node configuration forms (XEP-0060 §16.4.3) to and from
//!   the storage's node configuration, shared by the service and by
//!   `xmppd import` (XEP-0227 §4.10).
//! * [`pep`]: the personal eventing service of every account (XEP-0163).
//! * [`vcard_avatar`]: avatar conversion between PEP and vCard (XEP-0398).
#![warn(missing_docs)]

pub mod config;
mod interest;
pub mod pep;
pub mod vcard_avatar;

/// Errors of this crate.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum PubsubError {
    /// A configuration field has a value the service does not accept.
    #[error("invalid value {value:?} for {var}")]
    InvalidOption {
        /// The field.
        var: String,
        /// The value given.
        value: String,
    },
    /// A configuration field the service does not know.
    #[error("unknown node option {0}")]
    UnknownOption(String),
}
