//! Fuzz target for `xmppd-jid`: parses arbitrary input as every address type
//! and part, and checks that accepted addresses are stable (RFC 7622 §3,
//! RFC 8264 §7).

#![no_main]

use libfuzzer_sys::fuzz_target;

use xmppd_jid::{BareJid, DomainJid, FullJid, Jid, nameprep, nodeprep, resourceprep};

fuzz_target!(|data: &[u8]| {
    // Non-UTF-8 input becomes U+FFFD, which must be handled like any other
    // code point.
    let input = String::from_utf8_lossy(data);
    let input = input.as_ref();

    let _ = input.parse::<BareJid>();
    let _ = input.parse::<FullJid>();
    let _ = input.parse::<DomainJid>();
    let _ = nodeprep(input);
    let _ = resourceprep(input);
    let _ = nameprep(input);

    let Ok(jid) = input.parse::<Jid>() else {
        return;
    };
    // The normalised form is a fixed point of parsing.
    match jid.as_str().parse::<Jid>() {
        Ok(again) => assert_eq!(again.as_str(), jid.as_str()),
        Err(error) => panic!("normalised {:?} no longer parses: {error}", jid.as_str()),
    }
    // The parts reassemble into the same address.
    match Jid::from_parts(jid.node(), jid.domain(), jid.resource()) {
        Ok(rebuilt) => assert_eq!(rebuilt, jid),
        Err(error) => panic!("parts of {:?} do not rebuild: {error}", jid.as_str()),
    }
    let bare = jid.to_bare();
    assert_eq!(bare.as_str(), jid.bare_str());
    assert!(jid.domain().len() <= 1023);
});
