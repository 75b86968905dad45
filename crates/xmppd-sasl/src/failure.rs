//! SASL failure conditions (RFC 6120 §6.5).

use std::fmt;

/// A SASL failure condition, sent as a child of `<failure/>`
/// (RFC 6120 §6.5).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum SaslFailure {
    /// `<aborted/>`: the client aborted the exchange (RFC 6120 §6.5.1).
    Aborted,
    /// `<account-disabled/>` (RFC 6120 §6.5.2).
    AccountDisabled,
    /// `<credentials-expired/>` (RFC 6120 §6.5.3).
    CredentialsExpired,
    /// `<encryption-required/>`: the mechanism needs a TLS-protected
    /// stream (RFC 6120 §6.5.4).
    EncryptionRequired,
    /// `<incorrect-encoding/>`: bad base64 in the XML payload
    /// (RFC 6120 §6.5.5).
    IncorrectEncoding,
    /// `<invalid-authzid/>` (RFC 6120 §6.5.6).
    InvalidAuthzid,
    /// `<invalid-mechanism/>`: the mechanism is not offered (RFC 6120 §6.5.7).
    InvalidMechanism,
    /// `<malformed-request/>` (RFC 6120 §6.5.8).
    MalformedRequest,
    /// `<mechanism-too-weak/>` (RFC 6120 §6.5.9).
    MechanismTooWeak,
    /// `<not-authorized/>`: wrong credentials or unknown user
    /// (RFC 6120 §6.5.10).
    NotAuthorized,
    /// `<temporary-auth-failure/>`: a server-side problem (RFC 6120 §6.5.11).
    TemporaryAuthFailure,
}

impl SaslFailure {
    /// The XML element name of the condition, in the
    /// `urn:ietf:params:xml:ns:xmpp-sasl` namespace (RFC 6120 §6.5).
    pub fn condition_name(self) -> &'static str {
        match self {
            SaslFailure::Aborted => "aborted",
            SaslFailure::AccountDisabled => "account-disabled",
            SaslFailure::CredentialsExpired => "credentials-expired",
            SaslFailure::EncryptionRequired => "encryption-required",
            SaslFailure::IncorrectEncoding => "incorrect-encoding",
            SaslFailure::InvalidAuthzid => "invalid-authzid",
            SaslFailure::InvalidMechanism => "invalid-mechanism",
            SaslFailure::MalformedRequest => "malformed-request",
            SaslFailure::MechanismTooWeak => "mechanism-too-weak",
            SaslFailure::NotAuthorized => "not-authorized",
            SaslFailure::TemporaryAuthFailure => "temporary-auth-failure",
        }
    }

    /// Parses a condition element name (RFC 6120 §6.5).
    pub fn from_condition_name(name: &str) -> Option<SaslFailure> {
        [
            SaslFailure::Aborted,
            SaslFailure::AccountDisabled,
            SaslFailure::CredentialsExpired,
            SaslFailure::EncryptionRequired,
            SaslFailure::IncorrectEncoding,
            SaslFailure::InvalidAuthzid,
            SaslFailure::InvalidMechanism,
            SaslFailure::MalformedRequest,
            SaslFailure::MechanismTooWeak,
            SaslFailure::NotAuthorized,
            SaslFailure::TemporaryAuthFailure,
        ]
        .into_iter()
        .find(|failure| failure.condition_name() == name)
    }
}

impl fmt::Display for SaslFailure {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.condition_name())
    }
}

/// A failure together with a short, static explanation for server logs.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct Reject {
    pub(crate) failure: SaslFailure,
    pub(crate) detail: &'static str,
}

impl Reject {
    pub(crate) fn malformed(detail: &'static str) -> Reject {
        Reject { failure: SaslFailure::MalformedRequest, detail }
    }

    pub(crate) fn new(failure: SaslFailure, detail: &'static str) -> Reject {
        Reject { failure, detail }
    }
}
