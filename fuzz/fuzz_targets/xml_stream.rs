//! Fuzz target for `xmppd-xml`: feeds arbitrary bytes through the XMPP stream
//! parser (RFC 6120 §4, §11), whole and in arbitrary chunk splits, with the
//! default limits and with tiny ones.
//!
//! Checks, besides "never panics":
//! * the split never changes the outcome (same events, same error);
//! * every accepted stanza builds a DOM, and the serialised DOM parses back
//!   to the same DOM.
//!
//! Input layout: byte 0 = flags (bit 7: prepend a valid stream header;
//! bits 0–3: how many split-size bytes follow), then the split sizes, then
//! the stream data.

#![no_main]

use libfuzzer_sys::fuzz_target;

use xmppd_xml::{Element, Event, Limits, StreamParser, XmlError};

const HEADER: &[u8] = b"<?xml version='1.0'?><stream:stream to='example.com' version='1.0' xml:lang='en' \
    xmlns='jabber:client' xmlns:stream='http://etherx.jabber.org/streams' xmlns:db='jabber:server:dialback'>";

/// Feeds `data` in chunks whose sizes cycle through `sizes` (whole if empty),
/// draining events after each chunk; stops at the first error.
fn drive(limits: &Limits, data: &[u8], sizes: &[u8]) -> (Vec<Event>, Option<XmlError>) {
    let mut parser = StreamParser::new(limits.clone());
    let mut events = Vec::new();
    let mut rest = data;
    let mut turn = 0usize;
    loop {
        let size = match sizes.get(turn % sizes.len().max(1)) {
            Some(&size) => usize::from(size).max(1),
            None => rest.len(),
        };
        let (chunk, tail) = rest.split_at(size.min(rest.len()));
        parser.feed(chunk);
        loop {
            match parser.next_event() {
                Ok(Some(event)) => events.push(event),
                Ok(None) => break,
                Err(error) => {
                    // Poisoned: the same error again, and nothing buffered.
                    assert_eq!(parser.next_event().as_ref().err(), Some(&error));
                    assert_eq!(parser.buffered_len(), 0);
                    return (events, Some(error));
                }
            }
        }
        // Memory stays bounded: only an incomplete token or stanza, within
        // its limit, stays buffered.
        assert!(parser.buffered_len() <= limits.max_stanza_bytes.max(limits.max_header_bytes));
        rest = tail;
        turn += 1;
        if rest.is_empty() {
            return (events, None);
        }
    }
}

fn check_dom(events: &[Event]) {
    for event in events {
        let Event::Stanza(raw) = event else { continue };
        let element = match raw.parse_element() {
            Ok(element) => element,
            Err(error) => panic!("accepted stanza {:?} has no DOM: {error}", raw.bytes()),
        };
        let mut out = Vec::new();
        element.write_to(&mut out, "jabber:client");
        match Element::parse_standalone(&out, "jabber:client") {
            Ok(again) => assert_eq!(again, element),
            Err(error) => panic!("serialised {:?} does not parse: {error}", String::from_utf8_lossy(&out)),
        }
    }
}

fuzz_target!(|input: &[u8]| {
    let Some((&flags, rest)) = input.split_first() else {
        return;
    };
    let count = usize::from(flags & 0x0F).min(rest.len());
    let (sizes, body) = rest.split_at(count);
    let mut data = Vec::with_capacity(HEADER.len() + body.len());
    if flags & 0x80 != 0 {
        data.extend_from_slice(HEADER);
    }
    data.extend_from_slice(body);

    let tiny = Limits {
        max_stanza_bytes: 128,
        max_header_bytes: 256,
        max_depth: 4,
        max_attributes: 4,
        max_namespace_decls: 3,
    };
    for limits in [Limits::default(), tiny] {
        let whole = drive(&limits, &data, &[]);
        let split = drive(&limits, &data, sizes);
        assert_eq!(whole, split, "the split changed the outcome");
        check_dom(&whole.0);
    }
});
