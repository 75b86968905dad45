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
