//! Names, helpers and credential derivation.

use crate::{
    ChannelBindingData, ChannelBindingType, DowngradeInfo, HashAlg, Mechanism, SaslError, SaslFailure,
    ScramCredentials, advertised_channel_binding_types, decode_payload, encode_payload,
};

#[test]
fn mechanism_names_round_trip() {
    for mechanism in Mechanism::ALL {
        assert_eq!(Mechanism::from_name(mechanism.name()), Some(mechanism));
        assert_eq!(mechanism.to_string(), mechanism.name());
        assert_eq!(mechanism.is_plus(), mechanism.name().ends_with("-PLUS"));
        if let Some(hash) = mechanism.hash() {
            assert!(mechanism.name().contains(hash.name()));
            assert_eq!(Mechanism::scram(hash, mechanism.is_plus()), mechanism);
        }
    }
    assert_eq!(Mechanism::from_name("scram-sha-1"), None);
    assert_eq!(Mechanism::from_name("SCRAM-SHA-1-PLUS "), None);
    assert_eq!(Mechanism::from_name("EXTERNAL"), None);
    assert_eq!(Mechanism::Plain.hash(), None);
    assert!(!Mechanism::Plain.is_scram());
    assert_eq!(Mechanism::ScramSha256Plus.hash(), Some(HashAlg::Sha256));
}

#[test]
fn failure_condition_names() {
    let expected = [
        (SaslFailure::Aborted, "aborted"),
        (SaslFailure::AccountDisabled, "account-disabled"),
        (SaslFailure::CredentialsExpired, "credentials-expired"),
        (SaslFailure::EncryptionRequired, "encryption-required"),
        (SaslFailure::IncorrectEncoding, "incorrect-encoding"),
        (SaslFailure::InvalidAuthzid, "invalid-authzid"),
        (SaslFailure::InvalidMechanism, "invalid-mechanism"),
        (SaslFailure::MalformedRequest, "malformed-request"),
        (SaslFailure::MechanismTooWeak, "mechanism-too-weak"),
        (SaslFailure::NotAuthorized, "not-authorized"),
        (SaslFailure::TemporaryAuthFailure, "temporary-auth-failure"),
    ];
    for (failure, name) in expected {
        assert_eq!(failure.condition_name(), name);
        assert_eq!(SaslFailure::from_condition_name(name), Some(failure));
    }
    assert_eq!(SaslFailure::from_condition_name("bad-auth"), None);
}

#[test]
fn channel_binding_types_for_xep0440() {
    assert_eq!(ChannelBindingType::TlsExporter.name(), "tls-exporter");
    assert_eq!(ChannelBindingType::from_name("tls-server-end-point"), Some(ChannelBindingType::TlsServerEndPoint));
    assert_eq!(ChannelBindingType::from_name("tls-unique"), None);
    assert!(advertised_channel_binding_types(&ChannelBindingData::none()).is_empty());
    assert!(!ChannelBindingData::none().is_available());
    let endpoint_only = ChannelBindingData { tls_exporter: Some(Vec::new()), tls_server_end_point: Some(vec![1]) };
    assert_eq!(advertised_channel_binding_types(&endpoint_only), vec![ChannelBindingType::TlsServerEndPoint]);
    let both = ChannelBindingData { tls_exporter: Some(vec![1]), tls_server_end_point: Some(vec![2]) };
    assert_eq!(
        advertised_channel_binding_types(&both),
        vec![ChannelBindingType::TlsExporter, ChannelBindingType::TlsServerEndPoint]
    );
    assert_eq!(crate::SASL_CB_NS, "urn:xmpp:sasl-cb:0");
    // Debug output does not leak the binding data.
    assert!(!format!("{both:?}").contains("[1]"));
}

#[test]
fn downgrade_hash_without_xep0440() {
    let info = DowngradeInfo::new(["SCRAM-SHA-512", "SCRAM-SHA-1", "EXTERNAL"]);
    assert_eq!(info.hash_input(), b"EXTERNAL\x1eSCRAM-SHA-1\x1eSCRAM-SHA-512");
    // An empty channel-binding list means XEP-0440 was not used.
    let same = info.clone().with_channel_binding_types(Vec::<String>::new());
    assert_eq!(same.hash_input(), info.hash_input());
    assert_eq!(same.channel_binding_types(), None);
    // Octet order: upper case sorts before lower case, '-' before letters.
    let info = DowngradeInfo::new(["b", "B", "a-b", "ab"]).with_channel_binding_types(["z"]);
    assert_eq!(info.hash_input(), b"B\x1ea-b\x1eab\x1eb\x1fz");
    // Each hash function gives its own length.
    for hash in HashAlg::ALL {
        let value = info.attribute_value(hash).unwrap();
        let decoded = base64::Engine::decode(&base64::engine::general_purpose::STANDARD, value).unwrap();
        assert_eq!(decoded.len(), hash.output_len());
    }
}

#[test]
fn payload_encoding() {
    assert_eq!(decode_payload(""), Ok(None));
    assert_eq!(decode_payload("  \n"), Ok(None));
    assert_eq!(decode_payload("="), Ok(Some(Vec::new())));
    assert_eq!(decode_payload("biws"), Ok(Some(b"n,,".to_vec())));
    assert_eq!(decode_payload(" biws\n"), Ok(Some(b"n,,".to_vec())));
    for bad in ["biw", "bi ws", "b!ws", "==", "biws="] {
        assert_eq!(decode_payload(bad), Err(SaslFailure::IncorrectEncoding), "{bad}");
    }
    assert_eq!(encode_payload(b""), "=");
    assert_eq!(encode_payload(b"n,,"), "biws");
}

#[test]
fn derive_rejects_bad_input() {
    assert_eq!(ScramCredentials::derive(HashAlg::Sha1, "pencil", b"salt", 0), Err(SaslError::InvalidIterationCount));
    assert_eq!(ScramCredentials::derive(HashAlg::Sha1, "pencil", b"", 1), Err(SaslError::EmptySalt));
    assert_eq!(ScramCredentials::derive(HashAlg::Sha1, "", b"salt", 1), Err(SaslError::InvalidPassword));
    assert_eq!(ScramCredentials::derive(HashAlg::Sha1, "pen\u{0}cil", b"salt", 1), Err(SaslError::InvalidPassword));
}

#[test]
fn derive_key_lengths_and_normalization() {
    // From RFC 5802 §5: SaltedPassword etc. are implied by the example; the
    // StoredKey below is H(HMAC(Hi("pencil", salt, 4096), "Client Key")).
    let salt = base64::Engine::decode(&base64::engine::general_purpose::STANDARD, "QSXCR+Q6sek8bf92").unwrap();
    let credentials = ScramCredentials::derive(HashAlg::Sha1, "pencil", &salt, 4096).unwrap();
    assert!(credentials.is_well_formed());
    assert_eq!(credentials.stored_key.len(), 20);
    assert_eq!(credentials.server_key.len(), 20);
    // Non-ASCII spaces map to ASCII space under OpaqueString.
    let nbsp = ScramCredentials::derive(HashAlg::Sha1, "pen\u{a0}cil", &salt, 8).unwrap();
    let space = ScramCredentials::derive(HashAlg::Sha1, "pen cil", &salt, 8).unwrap();
    assert_eq!(nbsp, space);
    // Debug output hides the keys.
    assert!(!format!("{credentials:?}").contains("stored_key"));
}

#[test]
fn saslname_decoding() {
    use crate::scram::decode_saslname;
    assert_eq!(decode_saslname("a=2Cb=3Dc").unwrap(), "a,b=c");
    assert_eq!(decode_saslname("=3D=2C").unwrap(), "=,");
    assert_eq!(decode_saslname("caf\u{e9}").unwrap(), "caf\u{e9}");
    for bad in ["", "=", "=2", "=2c", "=3d", "a=41", "a\0b", "a=="] {
        assert!(decode_saslname(bad).is_err(), "{bad:?}");
    }
}
