//! Every failure path of the SCRAM state machine.

use super::{both_cb, challenge, config, credentials, need_credentials, start};
use crate::tests::client::{ClientCbind, TestClient};
use crate::{
    ChannelBindingData, ChannelBindingType, DowngradeInfo, HashAlg, Mechanism, SaslFailure, ServerSession, Step,
};

const NOT_AUTHORIZED: Step = Step::Failure(SaslFailure::NotAuthorized);
const MALFORMED: Step = Step::Failure(SaslFailure::MalformedRequest);

/// Runs a SCRAM-SHA-256 exchange up to the server-first-message.
fn to_client_final(client: &mut TestClient) -> (ServerSession, Vec<u8>) {
    let (mut session, step) = start(
        Mechanism::ScramSha256,
        ChannelBindingData::none(),
        DowngradeInfo::none(),
        Some(&client.client_first()),
        "serverNonce",
    );
    need_credentials(step);
    let server_first = challenge(session.provide_credentials(Some(credentials(Mechanism::ScramSha256, "r0m30"))));
    (session, server_first)
}

/// Starts a session and feeds it one client-first-message.
fn first_step(
    mechanism: Mechanism,
    channel_binding: ChannelBindingData,
    downgrade: DowngradeInfo,
    message: &[u8],
) -> (ServerSession, Step) {
    start(mechanism, channel_binding, downgrade, Some(message), "serverNonce")
}

#[test]
fn wrong_password() {
    let mut client = TestClient::new(HashAlg::Sha256, "juliet", "wrong");
    let (mut session, server_first) = to_client_final(&mut client);
    assert_eq!(session.step(&client.client_final(&server_first)), NOT_AUTHORIZED);
    assert_eq!(session.failure_detail(), Some("invalid client proof"));
    assert!(session.is_finished());
}

#[test]
fn nonce_not_echoed() {
    let mut client = TestClient::new(HashAlg::Sha256, "juliet", "r0m30");
    let (mut session, server_first) = to_client_final(&mut client);
    let message = String::from_utf8(client.client_final(&server_first)).unwrap();
    let tampered = message.replace("serverNonce", "serverNoncf");
    assert_eq!(session.step(tampered.as_bytes()), NOT_AUTHORIZED);
    assert_eq!(session.failure_detail(), Some("nonce (r=) does not match"));
}

#[test]
fn nonce_missing_server_part() {
    let mut client = TestClient::new(HashAlg::Sha256, "juliet", "r0m30");
    let (mut session, server_first) = to_client_final(&mut client);
    let message = String::from_utf8(client.client_final(&server_first)).unwrap();
    let tampered = message.replace("serverNonce", "");
    assert_eq!(session.step(tampered.as_bytes()), NOT_AUTHORIZED);
}

#[test]
fn tampered_channel_binding_data() {
    for cb_type in ChannelBindingType::ALL {
        let client = TestClient::new(HashAlg::Sha1, "juliet", "r0m30")
            .with_cbind(ClientCbind::Bind(cb_type), b"the MITM's channel binding");
        let mut client = client;
        let (mut session, step) =
            first_step(Mechanism::ScramSha1Plus, both_cb(), DowngradeInfo::none(), &client.client_first());
        need_credentials(step);
        let server_first = challenge(session.provide_credentials(Some(credentials(Mechanism::ScramSha1Plus, "r0m30"))));
        assert_eq!(session.step(&client.client_final(&server_first)), NOT_AUTHORIZED);
        assert_eq!(session.failure_detail(), Some("channel binding (c=) does not match"));
    }
}

#[test]
fn channel_binding_data_of_the_other_type() {
    let data = both_cb();
    let mut client = TestClient::new(HashAlg::Sha256, "juliet", "r0m30")
        .with_cbind(ClientCbind::Bind(ChannelBindingType::TlsExporter), data.tls_server_end_point.as_deref().unwrap());
    let (mut session, step) =
        first_step(Mechanism::ScramSha256Plus, data, DowngradeInfo::none(), &client.client_first());
    need_credentials(step);
    let server_first = challenge(session.provide_credentials(Some(credentials(Mechanism::ScramSha256Plus, "r0m30"))));
    assert_eq!(session.step(&client.client_final(&server_first)), NOT_AUTHORIZED);
}

#[test]
fn gs2_header_changed_between_messages() {
    // Client-first says "n", client-final claims "y" in c=.
    let mut client = TestClient::new(HashAlg::Sha256, "juliet", "r0m30");
    let (mut session, server_first) = to_client_final(&mut client);
    let message = String::from_utf8(client.client_final(&server_first)).unwrap();
    let tampered = message.replacen("c=biws", "c=eSws", 1);
    assert_eq!(session.step(tampered.as_bytes()), NOT_AUTHORIZED);
}

#[test]
fn y_flag_is_a_downgrade_when_plus_was_advertised() {
    let client_first = b"y,,n=juliet,r=abc";
    // Advertised list with -PLUS.
    let downgrade = DowngradeInfo::new(["SCRAM-SHA-256", "SCRAM-SHA-256-PLUS"]);
    let (session, step) = first_step(Mechanism::ScramSha256, both_cb(), downgrade, client_first);
    assert_eq!(step, NOT_AUTHORIZED);
    assert!(session.failure_detail().unwrap().contains("downgrade"));
    // No list given, but channel binding is available: assume -PLUS offered.
    let (_, step) = first_step(Mechanism::ScramSha256, both_cb(), DowngradeInfo::none(), client_first);
    assert_eq!(step, NOT_AUTHORIZED);
}

#[test]
fn p_flag_with_non_plus_mechanism() {
    for hash in HashAlg::ALL {
        let (session, step) = first_step(
            Mechanism::scram(hash, false),
            both_cb(),
            DowngradeInfo::none(),
            b"p=tls-exporter,,n=juliet,r=abc",
        );
        assert_eq!(step, MALFORMED);
        assert_eq!(session.failure_detail(), Some("channel binding requested with a non-PLUS mechanism"));
    }
}

#[test]
fn plus_mechanism_without_p_flag() {
    for message in [&b"n,,n=juliet,r=abc"[..], b"y,,n=juliet,r=abc"] {
        let (_, step) = first_step(Mechanism::ScramSha512Plus, both_cb(), DowngradeInfo::none(), message);
        assert_eq!(step, MALFORMED);
    }
}

#[test]
fn unsupported_or_unavailable_channel_binding_type() {
    let (_, step) =
        first_step(Mechanism::ScramSha256Plus, both_cb(), DowngradeInfo::none(), b"p=tls-unique,,n=juliet,r=abc");
    assert_eq!(step, NOT_AUTHORIZED);
    let only_endpoint = ChannelBindingData { tls_exporter: None, tls_server_end_point: Some(b"hash".to_vec()) };
    let (session, step) =
        first_step(Mechanism::ScramSha256Plus, only_endpoint, DowngradeInfo::none(), b"p=tls-exporter,,n=juliet,r=abc");
    assert_eq!(step, NOT_AUTHORIZED);
    assert_eq!(session.failure_detail(), Some("channel-binding type not available on this connection"));
    // Empty data counts as unavailable.
    let empty_exporter =
        ChannelBindingData { tls_exporter: Some(Vec::new()), tls_server_end_point: Some(b"hash".to_vec()) };
    let (_, step) = first_step(
        Mechanism::ScramSha256Plus,
        empty_exporter,
        DowngradeInfo::none(),
        b"p=tls-exporter,,n=juliet,r=abc",
    );
    assert_eq!(step, NOT_AUTHORIZED);
}

#[test]
fn plus_mechanism_without_any_channel_binding() {
    let (session, step) = start(Mechanism::ScramSha1Plus, ChannelBindingData::none(), DowngradeInfo::none(), None, "n");
    assert_eq!(step, Step::Failure(SaslFailure::InvalidMechanism));
    assert!(session.is_finished());
}

#[test]
fn mechanism_not_in_advertised_list() {
    let (_, step) = start(
        Mechanism::ScramSha1,
        ChannelBindingData::none(),
        DowngradeInfo::new(["SCRAM-SHA-256"]),
        Some(b"n,,n=juliet,r=abc"),
        "n",
    );
    assert_eq!(step, Step::Failure(SaslFailure::InvalidMechanism));
}

#[test]
fn malformed_client_first_messages() {
    let cases: &[&[u8]] = &[
        b"",
        b"n",
        b"n,",
        b"n,,",
        b"x,,n=juliet,r=abc",
        b"N,,n=juliet,r=abc",
        b"p=,,n=juliet,r=abc",
        b"p=tls exporter,,n=juliet,r=abc",
        b"n,b=juliet,n=juliet,r=abc",
        b"n,a=,n=juliet,r=abc",
        b"n,a=jul=2Ciet=,n=juliet,r=abc",
        b"n,,n=,r=abc",
        b"n,,n=jul=2ciet,r=abc",
        b"n,,n=jul=iet,r=abc",
        b"n,,n=jul\0iet,r=abc",
        b"n,,r=abc,n=juliet",
        b"n,,n=juliet",
        b"n,,n=juliet,",
        b"n,,n=juliet,r=",
        b"n,,n=juliet,r=ab c",
        b"n,,n=juliet,r=ab\x7f",
        b"n,,n=juliet,r=caf\xc3\xa9",
        b"n,,n=juliet,r=abc,",
        b"n,,n=juliet,r=abc,,",
        b"n,,n=juliet,r=abc,r=def",
        b"n,,n=juliet,r=abc,n=romeo",
        b"n,,n=juliet,r=abc,xy=1",
        b"n,,n=juliet,r=abc,1=1",
        b"n,,n=juliet,r=abc,x=",
        b"n,,n=juliet,r=abc,x",
        b"n,,m=ext,n=juliet,r=abc",
        b"n,,n=juliet,r=abc,m=ext",
        b"n,,n=juli\xffet,r=abc",
        b"\xef\xbb\xbfn,,n=juliet,r=abc",
    ];
    for case in cases {
        let (session, step) =
            first_step(Mechanism::ScramSha256, ChannelBindingData::none(), DowngradeInfo::none(), case);
        assert_eq!(step, MALFORMED, "{:?}", String::from_utf8_lossy(case));
        assert!(session.is_finished());
    }
}

#[test]
fn unknown_extensions_are_ignored() {
    let (_, step) = first_step(
        Mechanism::ScramSha256,
        ChannelBindingData::none(),
        DowngradeInfo::none(),
        b"n,,n=juliet,r=abc,x=anything=goes,h=foo",
    );
    need_credentials(step);
    let mut client = TestClient::new(HashAlg::Sha256, "juliet", "r0m30");
    client.final_extensions = ",x=extension,y=another".to_owned();
    let (mut session, server_first) = to_client_final(&mut client);
    assert!(matches!(session.step(&client.client_final(&server_first)), Step::Success { .. }));
}

#[test]
fn malformed_client_final_messages() {
    let mut client = TestClient::new(HashAlg::Sha256, "juliet", "r0m30");
    let (_, server_first) = to_client_final(&mut client);
    let good = String::from_utf8(client.client_final(&server_first)).unwrap();
    let (without_proof, proof) = good.rsplit_once(",p=").unwrap();
    let nonce = "clientNONCE+/0123456789serverNonce";
    let cases: Vec<String> = vec![
        String::new(),
        without_proof.to_owned(),
        format!("p={proof},{without_proof}"),
        format!("{without_proof},p="),
        format!("{without_proof},p={proof}x"),
        format!("{without_proof},p=!!!!"),
        format!("{without_proof},p={proof},p={proof}"),
        format!("{without_proof},m=x,p={proof}"),
        format!("{without_proof},r={nonce},p={proof}"),
        format!("{without_proof},,p={proof}"),
        format!("r={nonce},c=biws,p={proof}"),
        format!("c=,r={nonce},p={proof}"),
        format!("c=biws=,r={nonce},p={proof}"),
        format!("c=biws,r=,p={proof}"),
        format!("c=biws,p={proof}"),
        format!("c=biws,r={nonce} ,p={proof}"),
        format!("{without_proof},p=AAAA"),
        format!("{without_proof},p={}", "A".repeat(64)),
        format!("{without_proof}, p={proof}"),
    ];
    for case in cases {
        let mut client = TestClient::new(HashAlg::Sha256, "juliet", "r0m30");
        let (mut session, _) = to_client_final(&mut client);
        assert_eq!(session.step(case.as_bytes()), MALFORMED, "{case:?}");
    }
    // Invalid UTF-8.
    let mut client = TestClient::new(HashAlg::Sha256, "juliet", "r0m30");
    let (mut session, _) = to_client_final(&mut client);
    assert_eq!(session.step(b"c=biws,r=\xff,p=AAAA"), MALFORMED);
}

#[test]
fn oversized_messages() {
    let mut big = b"n,,n=juliet,r=".to_vec();
    big.extend(std::iter::repeat_n(b'a', 5000));
    let (session, step) = first_step(Mechanism::ScramSha256, ChannelBindingData::none(), DowngradeInfo::none(), &big);
    assert_eq!(step, MALFORMED);
    assert_eq!(session.failure_detail(), Some("message too long"));

    let mut client = TestClient::new(HashAlg::Sha256, "juliet", "r0m30");
    let (mut session, _) = to_client_final(&mut client);
    assert_eq!(session.step(&vec![b'c'; 4097]), MALFORMED);

    // The limit is configurable.
    let small = config().with_max_message_len(10);
    let (_, step) = ServerSession::start(
        &small,
        Mechanism::ScramSha256,
        ChannelBindingData::none(),
        DowngradeInfo::none(),
        Some(b"n,,n=juliet,r=abc"),
    );
    assert_eq!(step, MALFORMED);
}

/// Runs an exchange for an unknown user; returns the server-first-message
/// and the final step.
fn unknown_user_exchange(mechanism: Mechanism, username: &str) -> (String, Step) {
    let hash = mechanism.hash().unwrap();
    let mut client = TestClient::new(hash, username, "r0m30");
    let (mut session, step) = start(
        mechanism,
        ChannelBindingData::none(),
        DowngradeInfo::none(),
        Some(&client.client_first()),
        "serverNonce",
    );
    need_credentials(step);
    let server_first = challenge(session.provide_credentials(None));
    let step = session.step(&client.client_final(&server_first));
    if matches!(step, Step::Failure(_)) {
        assert_eq!(session.failure_detail(), Some("unknown user"));
    }
    (String::from_utf8(server_first).unwrap(), step)
}

#[test]
fn unknown_user_gets_stable_fake_salt_and_fails_at_the_end() {
    let (first_a, step) = unknown_user_exchange(Mechanism::ScramSha256, "nobody");
    assert_eq!(step, NOT_AUTHORIZED);
    let (first_b, _) = unknown_user_exchange(Mechanism::ScramSha256, "nobody");
    assert_eq!(first_a, first_b, "fake salt must be deterministic");
    assert!(first_a.ends_with(",i=64"), "{first_a}");
    let salt = first_a.split(",s=").nth(1).unwrap().split(',').next().unwrap();
    assert_eq!(salt.len(), 24, "16-octet salt like real accounts");
    // Case variants of one name share the fake salt (UsernameCaseMapped).
    let (first_upper, _) = unknown_user_exchange(Mechanism::ScramSha256, "NoBody");
    assert_eq!(first_a, first_upper);
    // Other names and other hashes get other salts.
    let (first_other, _) = unknown_user_exchange(Mechanism::ScramSha256, "somebody");
    assert_ne!(first_a, first_other);
    let (first_sha1, step) = unknown_user_exchange(Mechanism::ScramSha1, "nobody");
    assert_ne!(first_a.split(",s=").nth(1), first_sha1.split(",s=").nth(1));
    assert_eq!(step, NOT_AUTHORIZED);
    // A different process secret gives different salts.
    let mut client = TestClient::new(HashAlg::Sha256, "nobody", "r0m30");
    let (mut session, _) = ServerSession::start_with_server_nonce(
        &crate::SaslConfig::new([8u8; 32]).with_fake_iterations(64),
        Mechanism::ScramSha256,
        ChannelBindingData::none(),
        DowngradeInfo::none(),
        Some(&client.client_first()),
        "serverNonce".to_owned(),
    );
    let other_secret = challenge(session.provide_credentials(None));
    assert_ne!(first_a.as_bytes(), other_secret.as_slice());
}

#[test]
fn unusable_credentials() {
    let mut client = TestClient::new(HashAlg::Sha256, "juliet", "r0m30");
    let (mut session, step) = start(
        Mechanism::ScramSha256,
        ChannelBindingData::none(),
        DowngradeInfo::none(),
        Some(&client.client_first()),
        "serverNonce",
    );
    need_credentials(step);
    // SHA-1 credentials for a SHA-256 exchange.
    let step = session.provide_credentials(Some(credentials(Mechanism::ScramSha1, "r0m30")));
    assert_eq!(step, Step::Failure(SaslFailure::TemporaryAuthFailure));

    let (mut session, _) = start(
        Mechanism::ScramSha256,
        ChannelBindingData::none(),
        DowngradeInfo::none(),
        Some(&client.client_first()),
        "serverNonce",
    );
    let mut broken = credentials(Mechanism::ScramSha256, "r0m30");
    broken.stored_key.pop();
    let step = session.provide_credentials(Some(broken));
    assert_eq!(step, Step::Failure(SaslFailure::TemporaryAuthFailure));
}

#[test]
fn out_of_order_calls() {
    let mut client = TestClient::new(HashAlg::Sha256, "juliet", "r0m30");
    // Response while waiting for credentials.
    let (mut session, _) = start(
        Mechanism::ScramSha256,
        ChannelBindingData::none(),
        DowngradeInfo::none(),
        Some(&client.client_first()),
        "serverNonce",
    );
    assert_eq!(session.step(b"c=biws"), MALFORMED);
    // Credentials nobody asked for.
    let (mut session, _) =
        start(Mechanism::ScramSha256, ChannelBindingData::none(), DowngradeInfo::none(), None, "serverNonce");
    assert_eq!(session.provide_credentials(None), Step::Failure(SaslFailure::TemporaryAuthFailure));
    // After a failure everything fails.
    assert_eq!(session.step(&client.client_first()), MALFORMED);
}

#[test]
fn abort() {
    let (mut session, _) =
        start(Mechanism::ScramSha256, ChannelBindingData::none(), DowngradeInfo::none(), None, "serverNonce");
    assert_eq!(session.abort(), Step::Failure(SaslFailure::Aborted));
    assert!(session.is_finished());
}

#[test]
fn replayed_client_final_fails_in_a_new_session() {
    // Same client nonce, different server nonce: the old proof is useless.
    let mut client = TestClient::new(HashAlg::Sha256, "juliet", "r0m30");
    let (mut session, server_first) = to_client_final(&mut client);
    let final_message = client.client_final(&server_first);
    assert!(matches!(session.step(&final_message), Step::Success { .. }));
    let (mut session, _) = start(
        Mechanism::ScramSha256,
        ChannelBindingData::none(),
        DowngradeInfo::none(),
        Some(&client.client_first()),
        "anotherServerNonce",
    );
    let _ = challenge(session.provide_credentials(Some(credentials(Mechanism::ScramSha256, "r0m30"))));
    assert_eq!(session.step(&final_message), NOT_AUTHORIZED);
}
