//! Property tests: arbitrary peer input never panics and never authenticates.

use proptest::prelude::*;

use super::{both_cb, challenge, credentials, need_credentials, start};
use crate::tests::client::{ClientCbind, TestClient};
use crate::{ChannelBindingType, DowngradeInfo, HashAlg, Mechanism, Step};

fn any_mechanism() -> impl Strategy<Value = Mechanism> {
    proptest::sample::select(Mechanism::ALL.to_vec())
}

/// Arbitrary bytes, or text in SCRAM client-final or PLAIN shape.
fn protocolish_bytes() -> impl Strategy<Value = Vec<u8>> {
    prop_oneof![
        proptest::collection::vec(any::<u8>(), 0..200),
        "[nypacrmsvix=,\\x00A-Za-z0-9+/.-]{0,120}".prop_map(String::into_bytes),
        "c=(biws|eSws|[A-Za-z0-9+/=]{0,8}),r=[!-+\\--~]{0,12}(,[a-z]=[^,]{1,4}){0,2},p=[A-Za-z0-9+/]{0,44}={0,2}"
            .prop_map(String::into_bytes),
        "[a-z]{0,4}\\x00[a-z\\x00]{0,4}\\x00[a-z]{0,4}".prop_map(String::into_bytes),
    ]
}

/// Mostly well-formed-ish client-first-messages, so the later states are
/// reached too.
fn first_message() -> impl Strategy<Value = Vec<u8>> {
    prop_oneof![
        1 => protocolish_bytes(),
        3 => (
            "(n|y|p=tls-exporter|p=tls-server-end-point|p=x),(a=[a-z]{1,4}(=2C|=3D|=)?)?,",
            "(m=x,)?n=[a-z]{1,6}(=2C|=3D|=)?,r=[!-+\\--~]{0,10}(,[a-z]=[^,]{1,5}){0,2}",
        )
            .prop_map(|(header, bare)| format!("{header}{bare}").into_bytes()),
    ]
}

fn drive(
    mechanism: Mechanism,
    first: Option<&[u8]>,
    messages: &[Vec<u8>],
    known_user: bool,
    downgrade: DowngradeInfo,
) -> Vec<Step> {
    let (mut session, mut step) = start(mechanism, both_cb(), downgrade, first, "srv");
    let mut steps = vec![step.clone()];
    let mut rest = messages.iter();
    loop {
        step = match step {
            Step::NeedCredentials { .. } => {
                session.provide_credentials(known_user.then(|| credentials(mechanism, "r0m30")))
            }
            Step::Challenge(_) => match rest.next() {
                Some(message) => session.step(message),
                None => break,
            },
            Step::Success { .. } | Step::Failure(_) => {
                // Further input after the end is rejected without panicking.
                if let Some(message) = rest.next() {
                    let after = session.step(message);
                    assert!(matches!(after, Step::Failure(_)));
                }
                break;
            }
        };
        steps.push(step.clone());
    }
    steps
}

proptest! {
    #[test]
    fn arbitrary_input_never_panics_or_succeeds(
        mechanism in any_mechanism(),
        first in proptest::option::of(first_message()),
        rest in proptest::collection::vec(protocolish_bytes(), 0..3),
        known_user in any::<bool>(),
        with_downgrade in any::<bool>(),
    ) {
        let downgrade = if with_downgrade {
            DowngradeInfo::from_advertised(&Mechanism::ALL, &ChannelBindingType::ALL)
        } else {
            DowngradeInfo::none()
        };
        let steps = drive(mechanism, first.as_deref(), &rest, known_user, downgrade);
        for step in steps {
            if mechanism.is_scram() {
                // Without the password no random message can produce a proof.
                let succeeded = matches!(step, Step::Success { .. });
                prop_assert!(!succeeded);
            }
        }
    }

    #[test]
    fn mutated_client_final_never_succeeds(
        hash_index in 0usize..3,
        plus in any::<bool>(),
        position in any::<prop::sample::Index>(),
        replacement in any::<u8>(),
    ) {
        let hash = HashAlg::ALL[hash_index];
        let mechanism = Mechanism::scram(hash, plus);
        let mut client = TestClient::new(hash, "juliet", "r0m30");
        if plus {
            client = client.with_cbind(
                ClientCbind::Bind(ChannelBindingType::TlsExporter),
                both_cb().tls_exporter.as_deref().unwrap_or_default(),
            );
        }
        let (mut session, step) = start(
            mechanism,
            both_cb(),
            DowngradeInfo::none(),
            Some(&client.client_first()),
            "srv",
        );
        need_credentials(step);
        let server_first = challenge(
            session.provide_credentials(Some(credentials(mechanism, "r0m30"))),
        );
        let mut message = client.client_final(&server_first);
        let index = position.index(message.len());
        prop_assume!(message[index] != replacement);
        message[index] = replacement;
        let step = session.step(&message);
        let failed = matches!(step, Step::Failure(_));
        prop_assert!(failed, "{:?}", step);
    }

    #[test]
    fn payload_decoding_never_panics(text in "\\PC{0,64}") {
        let _ = crate::decode_payload(&text);
    }
}
