//! `tls-exporter` channel binding (RFC 9266) for connections driven
//! through rustls' unbuffered API, which does not expose
//! `export_keying_material`.
//!
//! The TLS 1.3 exporter master secret reaches us through rustls' `KeyLog`
//! hook, keyed by the ClientHello random; the session reads that random
//! from the first bytes the client sends, takes its secret once the
//! handshake is complete, and derives the exporter value itself (RFC 8446
//! §7.5). The secret is held only until then. TLS 1.2 connections get no
//! exporter value and therefore offer only `tls-server-end-point`.

use std::collections::HashMap;
use std::sync::Mutex;

use hmac::Mac as _;
use sha2::{Sha256, Sha384};

/// The exporter label for channel binding (RFC 9266 §2).
const CHANNEL_BINDING_LABEL: &[u8] = b"EXPORTER-Channel-Binding";
/// Length of the channel-binding value (RFC 9266 §2).
const CHANNEL_BINDING_LEN: usize = 32;
/// Secrets of handshakes that never completed are dropped beyond this many.
const MAX_PENDING: usize = 65_536;

/// Collects TLS 1.3 exporter master secrets, keyed by ClientHello random.
#[derive(Debug, Default)]
pub struct ExporterSecrets {
    pending: Mutex<HashMap<[u8; 32], Vec<u8>>>,
}

impl rustls::KeyLog for ExporterSecrets {
    fn log(&self, label: &str, client_random: &[u8], secret: &[u8]) {
        let Ok(random) = <[u8; 32]>::try_from(client_random) else { return };
        if label != "EXPORTER_SECRET" {
            return;
        }
        let mut pending = self.pending.lock().unwrap_or_else(|poisoned| poisoned.into_inner());
        if pending.len() >= MAX_PENDING {
            pending.clear();
        }
        pending.insert(random, secret.to_vec());
    }

    fn will_log(&self, label: &str) -> bool {
        label == "EXPORTER_SECRET"
    }
}

impl ExporterSecrets {
    /// Removes and returns the exporter master secret of a handshake.
    pub fn take(&self, client_random: &[u8; 32]) -> Option<Vec<u8>> {
        self.pending.lock().unwrap_or_else(|poisoned| poisoned.into_inner()).remove(client_random)
    }
}

/// The hash of the negotiated TLS 1.3 cipher suite.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum SuiteHash {
    /// TLS_AES_128_GCM_SHA256, TLS_CHACHA20_POLY1305_SHA256.
    Sha256,
    /// TLS_AES_256_GCM_SHA384.
    Sha384,
}

/// `TLS-Exporter("EXPORTER-Channel-Binding", "", 32)` from the exporter
/// master secret (RFC 8446 §7.5, RFC 9266 §2).
pub fn tls13_channel_binding(exporter_master_secret: &[u8], hash: SuiteHash) -> Option<Vec<u8>> {
    match hash {
        SuiteHash::Sha256 => exporter::<Sha256>(exporter_master_secret),
        SuiteHash::Sha384 => exporter::<Sha384>(exporter_master_secret),
    }
}

fn exporter<D>(secret: &[u8]) -> Option<Vec<u8>>
where
    D: hmac::EagerHash + sha2::Digest,
{
    // Derive-Secret(Secret, label, "") = HKDF-Expand-Label(Secret, label, Hash(""), Hash.length)
    let empty_hash = D::digest(b"");
    let derived = expand_label::<D>(secret, CHANNEL_BINDING_LABEL, &empty_hash, empty_hash.len())?;
    // HKDF-Expand-Label(derived, "exporter", Hash(context = ""), length)
    expand_label::<D>(&derived, b"exporter", &empty_hash, CHANNEL_BINDING_LEN)
}

/// HKDF-Expand-Label (RFC 8446 §7.1).
fn expand_label<D>(secret: &[u8], label: &[u8], context: &[u8], length: usize) -> Option<Vec<u8>>
where
    D: hmac::EagerHash + sha2::Digest,
{
    let full_label_len = u8::try_from(6 + label.len()).ok()?;
    let mut info = Vec::with_capacity(4 + full_label_len as usize + context.len());
    info.extend_from_slice(&u16::try_from(length).ok()?.to_be_bytes());
    info.push(full_label_len);
    info.extend_from_slice(b"tls13 ");
    info.extend_from_slice(label);
    info.push(u8::try_from(context.len()).ok()?);
    info.extend_from_slice(context);
    // HKDF-Expand (RFC 5869 §2.3).
    let mut output = Vec::with_capacity(length);
    let mut previous: Vec<u8> = Vec::new();
    let mut counter = 1u8;
    while output.len() < length {
        let mut mac = <hmac::Hmac<D> as hmac::KeyInit>::new_from_slice(secret).ok()?;
        mac.update(&previous);
        mac.update(&info);
        mac.update(&[counter]);
        previous = mac.finalize().into_bytes().to_vec();
        output.extend_from_slice(&previous);
        counter = counter.checked_add(1)?;
    }
    output.truncate(length);
    Some(output)
}

/// The ClientHello random from the first bytes of a TLS connection, when
/// the first record holds it (RFC 8446 §4.1.2: record header, handshake
/// header, legacy_version, then the 32-byte random).
pub fn client_random(first_bytes: &[u8]) -> Option<[u8; 32]> {
    let record_type = *first_bytes.first()?;
    let handshake_type = *first_bytes.get(5)?;
    let record_len = u16::from_be_bytes([*first_bytes.get(3)?, *first_bytes.get(4)?]);
    if record_type != 0x16 || handshake_type != 0x01 || record_len < 38 {
        return None;
    }
    first_bytes.get(11..43)?.try_into().ok()
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use std::sync::Arc;

    use rustls::pki_types::{CertificateDer, PrivateKeyDer, ServerName};
    use rustls::{ClientConnection, ServerConnection};

    use super::*;

    /// Our derivation equals rustls' own `export_keying_material`, for each
    /// TLS 1.3 cipher suite.
    #[test]
    fn matches_rustls_exporter() {
        let provider = Arc::new(rustls::crypto::aws_lc_rs::default_provider());
        let cert = rcgen::generate_simple_self_signed(vec!["localhost".to_owned()]).unwrap();
        let chain = vec![CertificateDer::from(cert.cert.der().to_vec())];
        let key = PrivateKeyDer::Pkcs8(cert.signing_key.serialize_der().into());
        for suite in provider.cipher_suites.iter().filter(|s| s.version() == &rustls::version::TLS13) {
            let secrets = Arc::new(ExporterSecrets::default());
            let mut server_config = rustls::ServerConfig::builder_with_provider(provider.clone())
                .with_protocol_versions(&[&rustls::version::TLS13])
                .unwrap()
                .with_no_client_auth()
                .with_single_cert(chain.clone(), key.clone_key())
                .unwrap();
            server_config.key_log = secrets.clone();
            let mut client_provider = (*provider).clone();
            client_provider.cipher_suites = vec![*suite];
            let client_config = rustls::ClientConfig::builder_with_provider(Arc::new(client_provider))
                .with_protocol_versions(&[&rustls::version::TLS13])
                .unwrap()
                .with_root_certificates({
                    let mut roots = rustls::RootCertStore::empty();
                    roots.add(chain[0].clone()).unwrap();
                    roots
                })
                .with_no_client_auth();
            let mut client =
                ClientConnection::new(Arc::new(client_config), ServerName::try_from("localhost").unwrap()).unwrap();
            let mut server = ServerConnection::new(Arc::new(server_config)).unwrap();
            let mut first_flight = Vec::new();
            client.write_tls(&mut first_flight).unwrap();
            let random = client_random(&first_flight).unwrap();
            server.read_tls(&mut first_flight.as_slice()).unwrap();
            server.process_new_packets().unwrap();
            while server.is_handshaking() || client.is_handshaking() {
                let mut buf = Vec::new();
                server.write_tls(&mut buf).unwrap();
                client.read_tls(&mut buf.as_slice()).unwrap();
                client.process_new_packets().unwrap();
                let mut buf = Vec::new();
                client.write_tls(&mut buf).unwrap();
                server.read_tls(&mut buf.as_slice()).unwrap();
                server.process_new_packets().unwrap();
            }
            let expected = server.export_keying_material([0u8; 32], CHANNEL_BINDING_LABEL, None).unwrap();
            let hash = if suite.suite() == rustls::CipherSuite::TLS13_AES_256_GCM_SHA384 {
                SuiteHash::Sha384
            } else {
                SuiteHash::Sha256
            };
            let secret = secrets.take(&random).unwrap();
            assert_eq!(tls13_channel_binding(&secret, hash).unwrap(), expected.to_vec(), "{:?}", suite.suite());
            assert!(secrets.take(&random).is_none(), "secrets are handed out once");
        }
    }

    #[test]
    fn client_random_needs_a_client_hello() {
        assert_eq!(client_random(b""), None);
        assert_eq!(client_random(&[0x17; 64]), None);
        let mut hello = vec![0x16, 3, 1, 0, 200, 1, 0, 0, 196, 3, 3];
        hello.extend(0u8..32);
        assert_eq!(client_random(&hello).map(|r| r[31]), Some(31));
    }
}
