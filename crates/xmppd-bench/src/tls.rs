//! TLS client configuration: any server certificate is accepted (the
//! targets are local test servers with self-signed certificates), session
//! resumption is off so that every login pays a full handshake.

use std::sync::Arc;

use rustls::client::danger::{HandshakeSignatureValid, ServerCertVerified, ServerCertVerifier};
use rustls::crypto::CryptoProvider;
use rustls::pki_types::{CertificateDer, ServerName, UnixTime};
use rustls::{ClientConfig, DigitallySignedStruct, SignatureScheme};

/// ALPN protocol of XEP-0368 direct TLS for clients.
pub const ALPN_XMPP_CLIENT: &[u8] = b"xmpp-client";

/// The two client configurations a run needs.
#[derive(Clone)]
pub struct TlsConfigs {
    /// For STARTTLS (no ALPN).
    pub starttls: Arc<ClientConfig>,
    /// For direct TLS (ALPN `xmpp-client`).
    pub direct: Arc<ClientConfig>,
}

impl TlsConfigs {
    /// Builds both configurations with the aws-lc-rs provider.
    pub fn new() -> Result<TlsConfigs, rustls::Error> {
        Ok(TlsConfigs { starttls: Arc::new(config(None)?), direct: Arc::new(config(Some(ALPN_XMPP_CLIENT))?) })
    }
}

fn config(alpn: Option<&[u8]>) -> Result<ClientConfig, rustls::Error> {
    let provider = Arc::new(rustls::crypto::aws_lc_rs::default_provider());
    let mut config = ClientConfig::builder_with_provider(provider.clone())
        .with_safe_default_protocol_versions()?
        .dangerous()
        .with_custom_certificate_verifier(Arc::new(AcceptAnyCertificate(provider)))
        .with_no_client_auth();
    config.resumption = rustls::client::Resumption::disabled();
    if let Some(alpn) = alpn {
        config.alpn_protocols = vec![alpn.to_vec()];
    }
    Ok(config)
}

/// Accepts every certificate but still checks the handshake signatures, so
/// the server does the same work as with a real client.
#[derive(Debug)]
struct AcceptAnyCertificate(Arc<CryptoProvider>);

impl ServerCertVerifier for AcceptAnyCertificate {
    fn verify_server_cert(
        &self,
        _end_entity: &CertificateDer<'_>,
        _intermediates: &[CertificateDer<'_>],
        _server_name: &ServerName<'_>,
        _ocsp: &[u8],
        _now: UnixTime,
    ) -> Result<ServerCertVerified, rustls::Error> {
        Ok(ServerCertVerified::assertion())
    }

    fn verify_tls12_signature(
        &self,
        message: &[u8],
        cert: &CertificateDer<'_>,
        dss: &DigitallySignedStruct,
    ) -> Result<HandshakeSignatureValid, rustls::Error> {
        rustls::crypto::verify_tls12_signature(message, cert, dss, &self.0.signature_verification_algorithms)
    }

    fn verify_tls13_signature(
        &self,
        message: &[u8],
        cert: &CertificateDer<'_>,
        dss: &DigitallySignedStruct,
    ) -> Result<HandshakeSignatureValid, rustls::Error> {
        rustls::crypto::verify_tls13_signature(message, cert, dss, &self.0.signature_verification_algorithms)
    }

    fn supported_verify_schemes(&self) -> Vec<SignatureScheme> {
        self.0.signature_verification_algorithms.supported_schemes()
    }
}
