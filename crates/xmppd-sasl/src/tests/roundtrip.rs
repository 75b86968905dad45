//! Full client↔server exchanges for every SCRAM mechanism and
//! channel-binding choice.

use super::{both_cb, challenge, credentials, need_credentials, start, success};
use crate::tests::client::{ClientCbind, TestClient};
use crate::{ChannelBindingData, ChannelBindingType, DowngradeInfo, HashAlg, Mechanism, SaslFailure, Step};

/// Runs one exchange and returns the final step plus whether the client
/// accepted the server signature.
fn run(
    mechanism: Mechanism,
    channel_binding: ChannelBindingData,
    downgrade: DowngradeInfo,
    mut client: TestClient,
    password: &str,
) -> (Step, bool) {
    let (mut session, step) = start(mechanism, channel_binding, downgrade, Some(&client.client_first()), "serverNonce");
    need_credentials(step);
    let server_first = challenge(session.provide_credentials(Some(credentials(mechanism, password))));
    let step = session.step(&client.client_final(&server_first));
    let verified = match &step {
        Step::Success { additional_data, .. } => client.verify_server_final(additional_data),
        _ => false,
    };
    (step, verified)
}

fn advertised_everything() -> DowngradeInfo {
    DowngradeInfo::from_advertised(&Mechanism::ALL, &ChannelBindingType::ALL)
}

#[test]
fn every_plus_variant_with_every_channel_binding_type() {
    for hash in HashAlg::ALL {
        let mechanism = Mechanism::scram(hash, true);
        for cb_type in ChannelBindingType::ALL {
            for downgrade in [DowngradeInfo::none(), advertised_everything()] {
                let data = both_cb().get(cb_type).unwrap().to_vec();
                let client = TestClient::new(hash, "juliet", "r0m30").with_cbind(ClientCbind::Bind(cb_type), &data);
                let (step, verified) = run(mechanism, both_cb(), downgrade, client, "r0m30");
                assert!(verified, "{mechanism} {cb_type}: {step:?}");
            }
        }
    }
}

#[test]
fn plus_variant_with_only_one_type_available() {
    let only_endpoint = ChannelBindingData { tls_exporter: None, tls_server_end_point: Some(b"cert hash".to_vec()) };
    let client = TestClient::new(HashAlg::Sha512, "juliet", "r0m30")
        .with_cbind(ClientCbind::Bind(ChannelBindingType::TlsServerEndPoint), b"cert hash");
    let (_, verified) = run(Mechanism::ScramSha512Plus, only_endpoint, DowngradeInfo::none(), client, "r0m30");
    assert!(verified);
}

#[test]
fn every_non_plus_variant_without_channel_binding() {
    for hash in HashAlg::ALL {
        let mechanism = Mechanism::scram(hash, false);
        for downgrade in [DowngradeInfo::none(), advertised_everything()] {
            // "n" is fine even when the server could bind (RFC 5802 §6).
            for channel_binding in [ChannelBindingData::none(), both_cb()] {
                let client = TestClient::new(hash, "juliet", "r0m30");
                let (step, verified) = run(mechanism, channel_binding, downgrade.clone(), client, "r0m30");
                assert!(verified, "{mechanism}: {step:?}");
            }
        }
    }
}

#[test]
fn y_flag_accepted_when_no_plus_was_advertised() {
    // No channel binding at all (cleartext or offloaded TLS).
    let client = TestClient::new(HashAlg::Sha256, "juliet", "r0m30").with_cbind(ClientCbind::Yes, b"");
    let (_, verified) = run(Mechanism::ScramSha256, ChannelBindingData::none(), DowngradeInfo::none(), client, "r0m30");
    assert!(verified);
    // Channel binding possible, but the operator advertised no -PLUS.
    let client = TestClient::new(HashAlg::Sha256, "juliet", "r0m30").with_cbind(ClientCbind::Yes, b"");
    let (_, verified) =
        run(Mechanism::ScramSha256, both_cb(), DowngradeInfo::new(["SCRAM-SHA-256", "SCRAM-SHA-1"]), client, "r0m30");
    assert!(verified);
}

#[test]
fn sha512_with_authzid_and_escaped_username() {
    let client = TestClient::new(HashAlg::Sha512, "ro,meo=x", "r0m30").with_authzid("juliet@capulet.lit,=");
    let mut client_for_first = client;
    let first = client_for_first.client_first();
    assert!(String::from_utf8_lossy(&first).starts_with("n,a=juliet@capulet.lit=2C=3D,n=ro=2Cmeo=3Dx,"));
    let (mut session, step) =
        start(Mechanism::ScramSha512, ChannelBindingData::none(), DowngradeInfo::none(), Some(&first), "serverNonce");
    assert_eq!(need_credentials(step), ("ro,meo=x".to_owned(), Some("juliet@capulet.lit,=".to_owned())));
    let server_first = challenge(session.provide_credentials(Some(credentials(Mechanism::ScramSha512, "r0m30"))));
    let (authcid, authzid, server_final) = success(session.step(&client_for_first.client_final(&server_first)));
    assert_eq!(authcid, "ro,meo=x");
    assert_eq!(authzid.as_deref(), Some("juliet@capulet.lit,="));
    assert!(client_for_first.verify_server_final(&server_final));
}

#[test]
fn non_ascii_password_is_normalized_consistently() {
    // U+2163 (ROMAN NUMERAL FOUR) is allowed by OpaqueString; NFC keeps it.
    // "e\u{301}" (e + combining acute) is NFC-normalized to U+00E9.
    let stored = crate::ScramCredentials::derive(HashAlg::Sha256, "caf\u{e9}\u{2163}", b"salt", 16).unwrap();
    assert!(stored.verify_plain("cafe\u{301}\u{2163}"));
    let mut client = TestClient::new(HashAlg::Sha256, "juliet", "cafe\u{301}\u{2163}");
    let (mut session, _) = start(
        Mechanism::ScramSha256,
        ChannelBindingData::none(),
        DowngradeInfo::none(),
        Some(&client.client_first()),
        "serverNonce",
    );
    let server_first = challenge(session.provide_credentials(Some(stored)));
    let (_, _, server_final) = success(session.step(&client.client_final(&server_first)));
    assert!(client.verify_server_final(&server_final));
}

#[test]
fn exchange_without_initial_response() {
    let mut client = TestClient::new(HashAlg::Sha1, "juliet", "r0m30");
    let (mut session, step) =
        start(Mechanism::ScramSha1, ChannelBindingData::none(), DowngradeInfo::none(), None, "serverNonce");
    assert_eq!(step, Step::Challenge(Vec::new()));
    need_credentials(session.step(&client.client_first()));
    let server_first = challenge(session.provide_credentials(Some(credentials(Mechanism::ScramSha1, "r0m30"))));
    let (_, _, server_final) = success(session.step(&client.client_final(&server_first)));
    assert!(client.verify_server_final(&server_final));
    // Nothing more is accepted.
    assert_eq!(session.step(b"anything"), Step::Failure(SaslFailure::MalformedRequest));
}

#[test]
fn random_server_nonce_is_fresh_and_printable() {
    let config = super::config();
    let mut nonces = Vec::new();
    for _ in 0..2 {
        let mut client = TestClient::new(HashAlg::Sha256, "juliet", "r0m30");
        let (mut session, _) = crate::ServerSession::start(
            &config,
            Mechanism::ScramSha256,
            ChannelBindingData::none(),
            DowngradeInfo::none(),
            Some(&client.client_first()),
        );
        let server_first = challenge(session.provide_credentials(Some(credentials(Mechanism::ScramSha256, "r0m30"))));
        let text = String::from_utf8(server_first.clone()).unwrap();
        let nonce = text.strip_prefix("r=clientNONCE+/0123456789").unwrap().split(',').next().unwrap().to_owned();
        assert!(nonce.len() >= 24, "server nonce {nonce:?} too short");
        assert!(crate::scram::is_nonce(&nonce));
        nonces.push(nonce);
        let (_, _, server_final) = success(session.step(&client.client_final(&server_first)));
        assert!(client.verify_server_final(&server_final));
    }
    assert_ne!(nonces[0], nonces[1]);
}
