//! Test vectors from RFC 5802 §5, RFC 7677 §3 and XEP-0474 §4.3.

use base64::Engine;
use base64::engine::general_purpose::STANDARD;

use super::{challenge, need_credentials, start, success};
use crate::tests::client::TestClient;
use crate::{ChannelBindingData, ChannelBindingType, DowngradeInfo, HashAlg, Mechanism, ScramCredentials, Step};

fn rfc5802_credentials() -> ScramCredentials {
    let salt = STANDARD.decode("QSXCR+Q6sek8bf92").unwrap();
    ScramCredentials::derive(HashAlg::Sha1, "pencil", &salt, 4096).unwrap()
}

/// RFC 5802 §5, exactly, with no XEP-0474 attribute.
#[test]
fn rfc5802_scram_sha1_example() {
    let (mut session, step) = start(
        Mechanism::ScramSha1,
        ChannelBindingData::none(),
        DowngradeInfo::none(),
        Some(b"n,,n=user,r=fyko+d2lbbFgONRv9qkxdawL"),
        "3rfcNHYJY1ZVvWVs7j",
    );
    assert_eq!(need_credentials(step), ("user".to_owned(), None));
    let server_first = challenge(session.provide_credentials(Some(rfc5802_credentials())));
    assert_eq!(
        String::from_utf8(server_first).unwrap(),
        "r=fyko+d2lbbFgONRv9qkxdawL3rfcNHYJY1ZVvWVs7j,s=QSXCR+Q6sek8bf92,i=4096"
    );
    let step = session.step(b"c=biws,r=fyko+d2lbbFgONRv9qkxdawL3rfcNHYJY1ZVvWVs7j,p=v0X8v3Bz2T0CJGbJQyF0X+HI4Ts=");
    let (authcid, authzid, server_final) = success(step);
    assert_eq!(authcid, "user");
    assert_eq!(authzid, None);
    assert_eq!(server_final, b"v=rmF9pqV8S7suAoZWja4dJRkFsKQ=");
    assert!(session.is_finished());
}

/// The RFC 5802 exchange with a one-bit change in the proof fails.
#[test]
fn rfc5802_example_with_flipped_proof_bit_fails() {
    let (mut session, _) = start(
        Mechanism::ScramSha1,
        ChannelBindingData::none(),
        DowngradeInfo::none(),
        Some(b"n,,n=user,r=fyko+d2lbbFgONRv9qkxdawL"),
        "3rfcNHYJY1ZVvWVs7j",
    );
    let _ = challenge(session.provide_credentials(Some(rfc5802_credentials())));
    let step = session.step(b"c=biws,r=fyko+d2lbbFgONRv9qkxdawL3rfcNHYJY1ZVvWVs7j,p=v1X8v3Bz2T0CJGbJQyF0X+HI4Ts=");
    assert_eq!(step, Step::Failure(crate::SaslFailure::NotAuthorized));
    assert_eq!(session.failure_detail(), Some("invalid client proof"));
}

/// With downgrade information the RFC 5802 server-first-message gains the
/// XEP-0474 `h` attribute; the RFC's client-final then no longer matches
/// (the attribute is part of AuthMessage), but a client computing over the
/// actual server-first succeeds.
#[test]
fn rfc5802_example_with_downgrade_attribute() {
    let downgrade = DowngradeInfo::new(["SCRAM-SHA-256", "SCRAM-SHA-1", "PLAIN"]);
    let expected_h = STANDARD.encode(crate::crypto::hash(HashAlg::Sha1, b"PLAIN\x1eSCRAM-SHA-1\x1eSCRAM-SHA-256"));
    let (mut session, _) = start(
        Mechanism::ScramSha1,
        ChannelBindingData::none(),
        downgrade.clone(),
        Some(b"n,,n=user,r=fyko+d2lbbFgONRv9qkxdawL"),
        "3rfcNHYJY1ZVvWVs7j",
    );
    let server_first = challenge(session.provide_credentials(Some(rfc5802_credentials())));
    assert_eq!(
        String::from_utf8(server_first).unwrap(),
        format!("r=fyko+d2lbbFgONRv9qkxdawL3rfcNHYJY1ZVvWVs7j,s=QSXCR+Q6sek8bf92,i=4096,h={expected_h}")
    );
    let step = session.step(b"c=biws,r=fyko+d2lbbFgONRv9qkxdawL3rfcNHYJY1ZVvWVs7j,p=v0X8v3Bz2T0CJGbJQyF0X+HI4Ts=");
    assert_eq!(step, Step::Failure(crate::SaslFailure::NotAuthorized));

    let mut client = TestClient::new(HashAlg::Sha1, "user", "pencil").with_nonce("fyko+d2lbbFgONRv9qkxdawL");
    let (mut session, step) = start(
        Mechanism::ScramSha1,
        ChannelBindingData::none(),
        downgrade,
        Some(&client.client_first()),
        "3rfcNHYJY1ZVvWVs7j",
    );
    need_credentials(step);
    let server_first = challenge(session.provide_credentials(Some(rfc5802_credentials())));
    let (_, _, server_final) = success(session.step(&client.client_final(&server_first)));
    assert!(client.verify_server_final(&server_final));
}

/// RFC 7677 §3, exactly.
#[test]
fn rfc7677_scram_sha256_example() {
    let salt = STANDARD.decode("W22ZaJ0SNY7soEsUEjb6gQ==").unwrap();
    let credentials = ScramCredentials::derive(HashAlg::Sha256, "pencil", &salt, 4096).unwrap();
    let (mut session, step) = start(
        Mechanism::ScramSha256,
        ChannelBindingData::none(),
        DowngradeInfo::none(),
        Some(b"n,,n=user,r=rOprNGfwEbeRWgbNEkqO"),
        "%hvYDpWUa2RaTCAfuxFIlj)hNlF$k0",
    );
    assert_eq!(need_credentials(step), ("user".to_owned(), None));
    let server_first = challenge(session.provide_credentials(Some(credentials)));
    assert_eq!(
        String::from_utf8(server_first).unwrap(),
        "r=rOprNGfwEbeRWgbNEkqO%hvYDpWUa2RaTCAfuxFIlj)hNlF$k0,s=W22ZaJ0SNY7soEsUEjb6gQ==,i=4096"
    );
    let step = session.step(
        b"c=biws,r=rOprNGfwEbeRWgbNEkqO%hvYDpWUa2RaTCAfuxFIlj)hNlF$k0,\
          p=dHzbZapWIk4jUhN+Ute9ytag9zjfMHgsqmmiz7AndVQ=",
    );
    let (_, _, server_final) = success(step);
    assert_eq!(server_final, b"v=6rriTRBi23WpRR/wtup+mMhUZUn/dB5nLTJRsjl95G4=");
}

/// XEP-0474 §4.1 hash of the example advertisement in §4.3.
#[test]
fn xep0474_example_hash() {
    let downgrade = DowngradeInfo::new(["SCRAM-SHA-1-PLUS", "SCRAM-SHA-1"])
        .with_channel_binding_types(["tls-server-end-point", "tls-exporter"]);
    assert_eq!(downgrade.hash_input(), b"SCRAM-SHA-1\x1eSCRAM-SHA-1-PLUS\x1ftls-exporter\x1etls-server-end-point");
    assert_eq!(downgrade.attribute_value(HashAlg::Sha1).as_deref(), Some("G6k/rBLDqgOhRRaCuuatSDFkJ08="));
    let typed =
        DowngradeInfo::from_advertised(&[Mechanism::ScramSha1, Mechanism::ScramSha1Plus], &ChannelBindingType::ALL);
    assert_eq!(typed.hash_input(), downgrade.hash_input());
    assert_eq!(DowngradeInfo::none().attribute_value(HashAlg::Sha1), None);
}

/// XEP-0474 §4.3 full SCRAM-SHA-1-PLUS example (tls-exporter with fake
/// channel-binding data, an `x=` client extension, and the `h` attribute).
#[test]
fn xep0474_full_example() {
    let salt = STANDARD.decode("QSXCR+Q6sek8bf92").unwrap();
    let credentials = ScramCredentials::derive(HashAlg::Sha1, "pencil", &salt, 4096).unwrap();
    let channel_binding = ChannelBindingData {
        tls_exporter: Some(b"THIS IS FAKE CB DATA".to_vec()),
        tls_server_end_point: Some(b"some certificate hash".to_vec()),
    };
    let downgrade = DowngradeInfo::new(["SCRAM-SHA-1", "SCRAM-SHA-1-PLUS"])
        .with_channel_binding_types(["tls-server-end-point", "tls-exporter"]);
    let (mut session, step) = start(
        Mechanism::ScramSha1Plus,
        channel_binding,
        downgrade,
        Some(b"p=tls-exporter,,n=user,r=12C4CD5C-E38E-4A98-8F6D-15C38F51CCC6"),
        "a09117a6-ac50-4f2f-93f1-93799c2bddf6",
    );
    need_credentials(step);
    assert_eq!(session.channel_binding_type(), Some(ChannelBindingType::TlsExporter));
    let server_first = challenge(session.provide_credentials(Some(credentials)));
    assert_eq!(
        String::from_utf8(server_first).unwrap(),
        "r=12C4CD5C-E38E-4A98-8F6D-15C38F51CCC6a09117a6-ac50-4f2f-93f1-93799c2bddf6,\
         s=QSXCR+Q6sek8bf92,i=4096,h=G6k/rBLDqgOhRRaCuuatSDFkJ08="
    );
    let step = session.step(
        b"c=cD10bHMtZXhwb3J0ZXIsLFRISVMgSVMgRkFLRSBDQiBEQVRB,\
          r=12C4CD5C-E38E-4A98-8F6D-15C38F51CCC6a09117a6-ac50-4f2f-93f1-93799c2bddf6,\
          x=19C6532F-1CF4-4A27-A18D-DC9CEA41BBB3,p=M/SIDjT+dfcxUh89jZEypRvFxB4=",
    );
    let (_, _, server_final) = success(step);
    assert_eq!(server_final, b"v=MQrMPvv7yv4x4Cq4W4Ih25EqS2c=");
}
