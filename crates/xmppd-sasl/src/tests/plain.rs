//! PLAIN (RFC 4616) parsing and verification.

use super::{config, credentials, need_credentials, start, success};
use crate::plain::parse;
use crate::{
    ChannelBindingData, DowngradeInfo, HashAlg, Mechanism, SaslFailure, ScramCredentials, ServerSession, Step,
};

fn plain(initial_response: Option<&[u8]>) -> (ServerSession, Step) {
    start(Mechanism::Plain, ChannelBindingData::none(), DowngradeInfo::none(), initial_response, "unused")
}

#[test]
fn parse_accepts_valid_messages() {
    let message = parse(b"\0juliet\0r0m30").unwrap();
    assert_eq!(message.authzid, None);
    assert_eq!(message.authcid, "juliet");
    assert_eq!(message.password, "r0m30");

    let message = parse("romeo@montague.lit\0juliet\0p\u{e4}ss word".as_bytes()).unwrap();
    assert_eq!(message.authzid.as_deref(), Some("romeo@montague.lit"));
    assert_eq!(message.password, "p\u{e4}ss word");
    // Debug output never shows the password.
    assert!(!format!("{message:?}").contains("word"));
}

#[test]
fn parse_rejects_invalid_messages() {
    let cases: &[&[u8]] = &[
        b"",
        b"juliet",
        b"\0juliet",
        b"\0\0r0m30",
        b"\0juliet\0",
        b"\0\0",
        b"\0juliet\0r0m30\0",
        b"a\0juliet\0r0\0m30",
        b"\0\0\0",
        b"\0jul\xffiet\0r0m30",
        b"\0juliet\0r0m\xc330",
        b"\xff\0juliet\0r0m30",
    ];
    for case in cases {
        let reject = parse(case).unwrap_err();
        assert_eq!(reject.failure, SaslFailure::MalformedRequest, "{case:?}");
        let (session, step) = plain(Some(case));
        assert_eq!(step, Step::Failure(SaslFailure::MalformedRequest), "{case:?}");
        assert!(session.is_finished());
    }
}

#[test]
fn correct_password_succeeds() {
    let (mut session, step) = plain(Some(b"juliet@capulet.lit\0juliet\0r0m30"));
    assert_eq!(need_credentials(step), ("juliet".to_owned(), Some("juliet@capulet.lit".to_owned())));
    let (authcid, authzid, additional_data) =
        success(session.provide_credentials(Some(credentials(Mechanism::ScramSha512, "r0m30"))));
    assert_eq!(authcid, "juliet");
    assert_eq!(authzid.as_deref(), Some("juliet@capulet.lit"));
    assert!(additional_data.is_empty());
    assert!(session.is_finished());
}

#[test]
fn wrong_password_fails() {
    let (mut session, step) = plain(Some(b"\0juliet\0r0m31"));
    need_credentials(step);
    let step = session.provide_credentials(Some(credentials(Mechanism::ScramSha1, "r0m30")));
    assert_eq!(step, Step::Failure(SaslFailure::NotAuthorized));
    assert_eq!(session.failure_detail(), Some("wrong password"));
}

#[test]
fn password_rejected_by_opaque_string_fails() {
    // A control character is not allowed by OpaqueString (RFC 8265 §4.2).
    let (mut session, step) = plain(Some(b"\0juliet\0r0m\x0730"));
    need_credentials(step);
    let step = session.provide_credentials(Some(credentials(Mechanism::ScramSha256, "r0m30")));
    assert_eq!(step, Step::Failure(SaslFailure::NotAuthorized));
}

#[test]
fn unknown_user_fails() {
    let (mut session, step) = plain(Some(b"\0nobody\0r0m30"));
    need_credentials(step);
    assert_eq!(session.provide_credentials(None), Step::Failure(SaslFailure::NotAuthorized));
    assert_eq!(session.failure_detail(), Some("unknown user"));
}

#[test]
fn malformed_stored_credentials() {
    let (mut session, _) = plain(Some(b"\0juliet\0r0m30"));
    let mut broken = credentials(Mechanism::ScramSha256, "r0m30");
    broken.iterations = 0;
    assert_eq!(session.provide_credentials(Some(broken)), Step::Failure(SaslFailure::TemporaryAuthFailure));
}

#[test]
fn without_initial_response() {
    let (mut session, step) = plain(None);
    assert_eq!(step, Step::Challenge(Vec::new()));
    need_credentials(session.step(b"\0juliet\0r0m30"));
    success(session.provide_credentials(Some(credentials(Mechanism::ScramSha256, "r0m30"))));
}

#[test]
fn empty_initial_response_is_malformed() {
    let (_, step) = plain(Some(b""));
    assert_eq!(step, Step::Failure(SaslFailure::MalformedRequest));
}

#[test]
fn length_limit() {
    let mut message = b"\0juliet\0".to_vec();
    message.extend(std::iter::repeat_n(b'x', 4096));
    let (session, step) = plain(Some(&message));
    assert_eq!(step, Step::Failure(SaslFailure::MalformedRequest));
    assert_eq!(session.failure_detail(), Some("message too long"));
    // Exactly at the limit is accepted.
    let mut message = b"\0juliet\0".to_vec();
    message.extend(std::iter::repeat_n(b'x', 4096 - 8));
    let (_, step) = plain(Some(&message));
    need_credentials(step);
}

#[test]
fn plain_not_advertised() {
    let (_, step) = ServerSession::start(
        &config(),
        Mechanism::Plain,
        ChannelBindingData::none(),
        DowngradeInfo::new(["SCRAM-SHA-256"]),
        Some(b"\0juliet\0r0m30"),
    );
    assert_eq!(step, Step::Failure(SaslFailure::InvalidMechanism));
}

#[test]
fn verify_plain_directly() {
    let stored = ScramCredentials::generate(HashAlg::Sha256, "r0m30", 32).unwrap();
    assert!(stored.verify_plain("r0m30"));
    assert!(!stored.verify_plain("r0m3"));
    assert!(!stored.verify_plain(""));
    let mut tampered = stored.clone();
    tampered.server_key[0] ^= 1;
    assert!(!tampered.verify_plain("r0m30"));
    let mut tampered = stored.clone();
    tampered.stored_key[0] ^= 1;
    assert!(!tampered.verify_plain("r0m30"));
    let other = ScramCredentials::generate(HashAlg::Sha256, "r0m30", 32).unwrap();
    assert_ne!(stored.salt, other.salt, "random salts");
}
