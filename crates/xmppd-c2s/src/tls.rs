//! TLS contexts for client streams (RFC 7590, XEP-0368).

use std::sync::Arc;

use rustls::ServerConfig;
use rustls::pki_types::{CertificateDer, PrivateKeyDer};
use sha2::{Digest, Sha256};

use crate::C2sError;
use crate::exporter::ExporterSecrets;

/// ALPN protocol id for direct TLS client connections (XEP-0368 §3).
pub const ALPN_XMPP_CLIENT: &[u8] = b"xmpp-client";

/// Everything a session needs to start TLS and bind channels to it.
pub struct TlsContext {
    /// Configuration for STARTTLS on 5222 (no ALPN required).
    pub starttls: Arc<ServerConfig>,
    /// Configuration for direct TLS on 5223 (ALPN `xmpp-client`).
    pub direct: Arc<ServerConfig>,
    /// TLS 1.3 exporter secrets of handshakes in progress (RFC 9266).
    pub exporter_secrets: Arc<ExporterSecrets>,
    /// `tls-server-end-point` channel-binding data (RFC 5929 §4.1): the hash
    /// of our certificate. SHA-256 is right for the ECDSA-P256-SHA256 and
    /// RSA-SHA256 certificates we generate or accept; MD5/SHA-1-signed
    /// certificates also map to SHA-256 per the RFC.
    pub server_end_point: Vec<u8>,
}

impl TlsContext {
    /// Builds both acceptors from a certificate chain and key.
    pub fn new(
        chain: Vec<CertificateDer<'static>>,
        key: PrivateKeyDer<'static>,
        tls13_only: bool,
    ) -> Result<Self, C2sError> {
        let server_end_point = chain.first().map(|leaf| Sha256::digest(leaf.as_ref()).to_vec()).unwrap_or_default();
        let versions: &[&rustls::SupportedProtocolVersion] =
            if tls13_only { &[&rustls::version::TLS13] } else { &[&rustls::version::TLS13, &rustls::version::TLS12] };
        let mut provider = rustls::crypto::aws_lc_rs::default_provider();
        // Server preference: AES-128-GCM/SHA-256 first. It is the TLS 1.3
        // mandatory suite (RFC 8446 §9.1), and SHA-256 runs on the SHA
        // extensions of current CPUs where SHA-384 does not, which makes
        // every handshake's key schedule markedly cheaper.
        provider.cipher_suites.sort_by_key(|suite| match suite.suite() {
            rustls::CipherSuite::TLS13_AES_128_GCM_SHA256 => 0,
            rustls::CipherSuite::TLS13_CHACHA20_POLY1305_SHA256 => 1,
            rustls::CipherSuite::TLS13_AES_256_GCM_SHA384 => 2,
            _ => 3,
        });
        let provider = Arc::new(provider);
        let mut config = ServerConfig::builder_with_provider(provider)
            .with_protocol_versions(versions)?
            .with_no_client_auth()
            .with_single_cert(chain, key)?;
        // RFC 9266 §3: tls-exporter is only safe on TLS 1.2 with the
        // extended master secret.
        config.require_ems = true;
        config.ignore_client_order = true;
        // One TLS 1.3 ticket per handshake is enough for a client to resume
        // once (and a resumed session hands out a fresh one); rustls'
        // default of two costs a second ticket on every login.
        config.send_tls13_tickets = 1;
        let exporter_secrets = Arc::new(ExporterSecrets::default());
        config.key_log = exporter_secrets.clone();
        let starttls = Arc::new(config.clone());
        config.alpn_protocols = vec![ALPN_XMPP_CLIENT.to_vec()];
        let direct = Arc::new(config);
        Ok(TlsContext { starttls, direct, exporter_secrets, server_end_point })
    }
}
