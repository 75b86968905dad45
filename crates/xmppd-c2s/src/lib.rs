//! The client-to-server session (RFC 6120, RFC 6121), written once.
//!
//! Framings (plain TCP with STARTTLS, direct TLS per XEP-0368, later
//! WebSocket and BOSH) only move bytes; [`session::run`] drives the sans-I/O
//! negotiation from `xmppd-stream` and hands bound stanzas to
//! [`xmppd_core::Server::route`].
#![warn(missing_docs)]

pub mod exporter;
pub mod session;
pub mod tls;
pub mod transport;

pub use session::run;
pub use tls::TlsContext;

use xmppd_core::{Protocol, Support};

/// What the client session itself implements (the feature table and DOAP
/// list these next to the modules' own declarations).
pub static PROTOCOLS: &[Protocol] = &[
    // Client streams: TLS, SASL, binding, stanza semantics, errors. Server
    // to server streams are not there yet.
    Protocol { spec: "RFC 6120", version: "c2s", support: Support::Partial },
    Protocol { spec: "RFC 7590", version: "TLS 1.2/1.3", support: Support::Complete },
    Protocol { spec: "RFC 7622", version: "PRECIS", support: Support::Complete },
    Protocol { spec: "RFC 5802", version: "SCRAM-SHA-1(-PLUS)", support: Support::Complete },
    Protocol { spec: "RFC 7677", version: "SCRAM-SHA-256(-PLUS)", support: Support::Complete },
    Protocol { spec: "RFC 9266", version: "tls-exporter", support: Support::Complete },
    Protocol { spec: "XEP-0368", version: "1.1.0", support: Support::Complete },
    Protocol { spec: "XEP-0440", version: "1.0.0", support: Support::Complete },
    Protocol { spec: "XEP-0474", version: "0.5.0", support: Support::Complete },
];

/// What every c2s session shares: TLS acceptors and SASL settings.
pub struct C2sContext {
    /// TLS acceptors and channel-binding data.
    pub tls: TlsContext,
    /// SASL settings (fake-credential secret for unknown users).
    pub sasl: xmppd_sasl::SaslConfig,
}

/// Errors of the c2s layer.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum C2sError {
    /// TLS setup failed (bad certificate or key).
    #[error("TLS: {0}")]
    Tls(#[from] rustls::Error),
    /// Socket I/O failed.
    #[error("I/O: {0}")]
    Io(#[from] std::io::Error),
}
