//! Property tests: parsing arbitrary input never panics, and accepted
//! addresses are stable under re-parsing.

#![allow(clippy::unwrap_used)]

use proptest::prelude::*;

use xmppd_jid::{BareJid, DomainJid, FullJid, Jid, nameprep, nodeprep, resourceprep};

/// Checks everything that must hold for one input.
fn check(input: &str) {
    let _ = input.parse::<BareJid>();
    let _ = input.parse::<FullJid>();
    let _ = input.parse::<DomainJid>();
    let _ = nodeprep(input);
    let _ = resourceprep(input);
    let _ = nameprep(input);
    if let Ok(jid) = input.parse::<Jid>() {
        // Enforcement is idempotent (RFC 8264 §7): the normalised form parses
        // to itself.
        let reparsed: Jid = jid.as_str().parse().unwrap();
        assert_eq!(reparsed.as_str(), jid.as_str());
        // The accessors reassemble the normalised text.
        let mut text = String::new();
        if let Some(node) = jid.node() {
            text.push_str(node);
            text.push('@');
        }
        text.push_str(jid.domain());
        if let Some(resource) = jid.resource() {
            text.push('/');
            text.push_str(resource);
        }
        assert_eq!(text, jid.as_str());
        assert_eq!(Jid::from_parts(jid.node(), jid.domain(), jid.resource()).unwrap(), jid);
        assert!(jid.node().is_none_or(|n| !n.is_empty() && n.len() <= 1023));
        assert!(!jid.domain().is_empty() && jid.domain().len() <= 1023);
        assert!(jid.resource().is_none_or(|r| !r.is_empty() && r.len() <= 1023));
    }
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(2000))]

    #[test]
    fn arbitrary_unicode(input in any::<String>()) {
        check(&input);
    }

    #[test]
    fn arbitrary_bytes(bytes in proptest::collection::vec(any::<u8>(), 0..64)) {
        check(&String::from_utf8_lossy(&bytes));
    }

    #[test]
    fn jid_shaped(input in "[a-zA-Z0-9@/.:\\[\\] \u{df}\u{3a3}\u{ff41}\u{300}\u{5d0}-]{0,24}") {
        check(&input);
    }

    #[test]
    fn structured(
        node in proptest::option::of("\\PC{0,12}"),
        domain in "[a-zA-Z\u{e0}-\u{ff}\u{3b1}-\u{3c9}.-]{0,20}",
        resource in proptest::option::of("\\PC{0,12}"),
    ) {
        let mut input = String::new();
        if let Some(node) = &node {
            input.push_str(node);
            input.push('@');
        }
        input.push_str(&domain);
        if let Some(resource) = &resource {
            input.push('/');
            input.push_str(resource);
        }
        check(&input);
    }
}
