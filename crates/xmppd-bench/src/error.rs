//! The one error type of the load generator.

use xmppd_sasl::SaslError;
use xmppd_xml::XmlError;

/// Why a connection, a login or a run failed.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum Error {
    /// Socket error.
    #[error("I/O: {0}")]
    Io(#[from] std::io::Error),
    /// The server's XML is not acceptable to our parser (RFC 6120 §11).
    #[error("XML from the server: {0}")]
    Xml(#[from] XmlError),
    /// The server closed the stream with `<stream:error/>` (RFC 6120 §4.9).
    #[error("stream error from the server: {condition}{}", text.as_deref().map(|t| format!(" ({t})")).unwrap_or_default())]
    Stream {
        /// Condition element name, e.g. `policy-violation`.
        condition: String,
        /// Descriptive text, if any.
        text: Option<String>,
    },
    /// The server closed the stream or the connection.
    #[error("the server closed the connection")]
    Closed,
    /// SASL `<failure/>` (RFC 6120 §6.5).
    #[error("SASL failure: {0}")]
    Sasl(String),
    /// The SCRAM exchange failed on our side (RFC 5802).
    #[error("SCRAM: {0}")]
    Scram(#[from] SaslError),
    /// The server did something this client cannot work with.
    #[error("protocol: {0}")]
    Protocol(String),
    /// A step did not finish in time.
    #[error("timed out: {0}")]
    Timeout(&'static str),
    /// The run cannot go on (setup, provisioning, limits).
    #[error("{0}")]
    Setup(String),
}
