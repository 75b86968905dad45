//! Server-side, sans-I/O SASL for xmppd (RFC 6120 §6).
//!
//! Mechanisms:
//!
//! * `SCRAM-SHA-1`, `SCRAM-SHA-256`, `SCRAM-SHA-512` (RFC 5802, RFC 7677) and
//!   their `-PLUS` variants with the channel-binding types `tls-exporter`
//!   (RFC 9266) and `tls-server-end-point` (RFC 5929);
//! * `PLAIN` (RFC 4616), checked against SCRAM-only credential storage with
//!   [`ScramCredentials::verify_plain`] — the server never stores plaintext.
//!
//! Extensions:
//!
//! * XEP-0440 (SASL Channel-Binding Type Capability):
//!   [`advertised_channel_binding_types`] lists what the
//!   `<sasl-channel-binding xmlns='urn:xmpp:sasl-cb:0'>` stream feature offers.
//! * XEP-0474 (SASL SCRAM Downgrade Protection, version 0.5.0): the
//!   server-first-message carries the `h` attribute computed from a
//!   [`DowngradeInfo`].
//!
//! The crate performs no I/O. One authentication attempt is a
//! [`ServerSession`]; the caller feeds it the decoded client payloads (see
//! [`decode_payload`]) and acts on the returned [`Step`]. Credential lookup is
//! asynchronous in the caller, hence [`Step::NeedCredentials`] and
//! [`ServerSession::provide_credentials`]. Unknown users get a deterministic
//! fake salt and iteration count so that they cannot be told apart from real
//! ones before the final proof check.
//!
//! ```
//! use xmppd_sasl::{
//!     ChannelBindingData, DowngradeInfo, HashAlg, Mechanism, SaslConfig, ScramCredentials,
//!     ServerSession, Step,
//! };
//!
//! let config = SaslConfig::with_random_secret();
//! let (mut session, step) = ServerSession::start(
//!     &config,
//!     Mechanism::Plain,
//!     ChannelBindingData::none(),
//!     DowngradeInfo::none(),
//!     Some(b"\0juliet\0r0m30myr0m30"),
//! );
//! assert!(matches!(step, Step::NeedCredentials { ref authcid, .. } if authcid == "juliet"));
//! let stored = ScramCredentials::derive(HashAlg::Sha256, "r0m30myr0m30", b"salty salt", 4096)?;
//! let step = session.provide_credentials(Some(stored));
//! assert!(matches!(step, Step::Success { .. }));
//! # Ok::<(), xmppd_sasl::SaslError>(())
//! ```

#![warn(missing_docs)]

mod channel_binding;
pub mod client;
mod credentials;
mod crypto;
mod downgrade;
mod failure;
mod mechanism;
mod payload;
mod plain;
mod scram;
mod session;

#[cfg(test)]
mod tests;

pub use crate::channel_binding::{
    ChannelBindingData, ChannelBindingType, SASL_CB_NS, advertised_channel_binding_types,
};
pub use crate::client::{ClientChannelBinding, ClientKeys, ScramClient};
pub use crate::credentials::ScramCredentials;
pub use crate::downgrade::DowngradeInfo;
pub use crate::failure::SaslFailure;
pub use crate::mechanism::{HashAlg, Mechanism};
pub use crate::payload::{decode_payload, encode_payload};
pub use crate::session::{DEFAULT_FAKE_ITERATIONS, DEFAULT_MAX_MESSAGE_LEN, SaslConfig, ServerSession, Step};

/// Errors of this crate's operations: credential derivation, and the
/// SCRAM client's view of a server (the load generator's and tests'
/// client, [`ScramClient`]).
///
/// Protocol failures towards the peer are [`SaslFailure`]s instead
/// (RFC 6120 §6.5).
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum SaslError {
    /// The password is not a valid OpaqueString (RFC 8265 §4.2), e.g. it is
    /// empty or contains control characters.
    #[error("password is not a valid OpaqueString (RFC 8265 §4.2)")]
    InvalidPassword,
    /// The iteration count is zero (RFC 5802 §5.1 requires a positive count).
    #[error("SCRAM iteration count must be at least 1 (RFC 5802 §5.1)")]
    InvalidIterationCount,
    /// The salt is empty (RFC 5802 §7: `salt = "s=" base64`, non-empty).
    #[error("SCRAM salt must not be empty (RFC 5802 §7)")]
    EmptySalt,
    /// The underlying HMAC/PBKDF2 primitive refused its input. HMAC accepts
    /// keys of any length, so this is not expected to happen.
    #[error("cryptographic primitive failed")]
    Crypto,
    // The SCRAM client (`ScramClient`, RFC 5802 §5, §7):
    /// A method was called out of order (e.g. the server-first-message was
    /// handled before the client-first-message was produced).
    #[error("SCRAM client step called out of order")]
    OutOfOrder,
    /// A server message does not follow the RFC 5802 §7 grammar.
    #[error("malformed SCRAM server message: {0}")]
    Malformed(&'static str),
    /// The server requires an extension (`m=`, RFC 5802 §5.1) this client
    /// does not understand.
    #[error("the server requires an unsupported mandatory extension (RFC 5802 §5.1)")]
    MandatoryExtension,
    /// The combined nonce does not start with the client nonce, or the
    /// server added nothing to it (RFC 5802 §5.1 `r`).
    #[error("the server nonce does not extend the client nonce (RFC 5802 §5.1)")]
    NonceMismatch,
    /// The server's iteration count is zero or above the client's
    /// configured maximum (RFC 5802 §5.1 `i`).
    #[error("iteration count {0} is out of range (RFC 5802 §5.1)")]
    IterationCount(u32),
    /// The XEP-0474 `h` attribute does not match what the client saw
    /// advertised: a downgrade attack (XEP-0474 §4.2).
    #[error("the advertised mechanisms were tampered with (XEP-0474 downgrade protection)")]
    Downgrade,
    /// The server-final-message is a `server-error` (RFC 5802 §7 `e=`).
    #[error("the server reported a SCRAM error: {0}")]
    ServerError(String),
    /// The server signature is wrong: the server does not know the
    /// password (RFC 5802 §3, §5).
    #[error("the server signature does not verify (RFC 5802 §3)")]
    BadServerSignature,
}
