//! Helpers shared by the integration tests.
#![allow(dead_code, clippy::unwrap_used)]

use xmppd_xml::{Event, Limits, RawElement, StreamHeader, StreamParser, XmlError};

/// A c2s stream header as in RFC 6120 §9.1.1 (plus a dialback prefix).
pub const HEADER: &str = "<?xml version='1.0'?><stream:stream from='juliet@im.example.com' to='im.example.com' \
     version='1.0' xml:lang='en' xmlns='jabber:client' xmlns:stream='http://etherx.jabber.org/streams' \
     xmlns:db='jabber:server:dialback'>";

pub const STREAMS_NS: &str = "http://etherx.jabber.org/streams";

/// Feeds `chunks` one after another, draining events after each; stops at
/// the first error.
pub fn run_with(limits: Limits, chunks: &[&[u8]]) -> (Vec<Event>, Option<XmlError>) {
    let mut parser = StreamParser::new(limits);
    let mut events = Vec::new();
    for chunk in chunks {
        parser.feed(chunk);
        loop {
            match parser.next_event() {
                Ok(Some(event)) => events.push(event),
                Ok(None) => {
                    // Only an incomplete token or stanza, within its limit,
                    // stays buffered.
                    assert!(
                        parser.buffered_len() <= parser.limits().max_stanza_bytes.max(parser.limits().max_header_bytes)
                    );
                    break;
                }
                Err(error) => return (events, Some(error)),
            }
        }
    }
    (events, None)
}

pub fn run(input: &[u8]) -> (Vec<Event>, Option<XmlError>) {
    run_with(Limits::default(), &[input])
}

/// Feeds `input` split into chunks whose sizes cycle through `sizes`.
pub fn run_split(limits: Limits, input: &[u8], sizes: &[usize]) -> (Vec<Event>, Option<XmlError>) {
    let mut chunks = Vec::new();
    let mut rest = input;
    let mut index = 0;
    while !rest.is_empty() {
        let size = sizes.get(index % sizes.len().max(1)).copied().unwrap_or(1).clamp(1, rest.len());
        let (chunk, tail) = rest.split_at(size);
        chunks.push(chunk);
        rest = tail;
        index += 1;
    }
    run_with(limits, &chunks)
}

/// The error produced by `HEADER` followed by `body`.
pub fn error_after_header(body: &[u8]) -> Option<XmlError> {
    let mut input = HEADER.as_bytes().to_vec();
    input.extend_from_slice(body);
    run(&input).1
}

pub fn header_of(events: &[Event]) -> &StreamHeader {
    match events.first() {
        Some(Event::StreamOpen(header)) => header,
        other => panic!("expected a stream header, got {other:?}"),
    }
}

pub fn stanzas(events: &[Event]) -> Vec<&RawElement> {
    events
        .iter()
        .filter_map(|event| match event {
            Event::Stanza(raw) => Some(raw),
            _ => None,
        })
        .collect()
}

/// Parses `HEADER` + one stanza and returns it.
pub fn one_stanza(stanza: &str) -> RawElement {
    let (events, error) = run(format!("{HEADER}{stanza}").as_bytes());
    assert_eq!(error, None, "{stanza}");
    let found = stanzas(&events);
    assert_eq!(found.len(), 1, "{stanza}");
    found[0].clone()
}
