//! Tests: RFC test vectors, round trips with a test client, failure paths,
//! PLAIN edge cases and property tests.

#![allow(clippy::unwrap_used)]

mod client;
mod failures;
mod misc;
mod plain;
mod properties;
mod roundtrip;
mod vectors;

use crate::{ChannelBindingData, DowngradeInfo, Mechanism, SaslConfig, ScramCredentials, ServerSession, Step};

/// Fixed secret so that fake credentials are reproducible in tests.
fn config() -> SaslConfig {
    SaslConfig::new([7u8; 32]).with_fake_iterations(64)
}

/// Starts a session with a fixed server nonce.
fn start(
    mechanism: Mechanism,
    channel_binding: ChannelBindingData,
    downgrade: DowngradeInfo,
    initial_response: Option<&[u8]>,
    server_nonce: &str,
) -> (ServerSession, Step) {
    ServerSession::start_with_server_nonce(
        &config(),
        mechanism,
        channel_binding,
        downgrade,
        initial_response,
        server_nonce.to_owned(),
    )
}

fn both_cb() -> ChannelBindingData {
    ChannelBindingData {
        tls_exporter: Some(b"exporter-keying-material-32-byte".to_vec()),
        tls_server_end_point: Some(b"\x01\x02certificate hash\xff\xfe".to_vec()),
    }
}

fn challenge(step: Step) -> Vec<u8> {
    match step {
        Step::Challenge(data) => data,
        other => panic!("expected a challenge, got {other:?}"),
    }
}

fn need_credentials(step: Step) -> (String, Option<String>) {
    match step {
        Step::NeedCredentials { authcid, authzid } => (authcid, authzid),
        other => panic!("expected NeedCredentials, got {other:?}"),
    }
}

fn success(step: Step) -> (String, Option<String>, Vec<u8>) {
    match step {
        Step::Success { authcid, authzid, additional_data } => (authcid, authzid, additional_data),
        other => panic!("expected success, got {other:?}"),
    }
}

fn credentials(mechanism: Mechanism, password: &str) -> ScramCredentials {
    let hash = mechanism.hash().unwrap_or(crate::HashAlg::Sha256);
    ScramCredentials::derive(hash, password, b"test salt 123456", 128).unwrap()
}
