//! Resource limits (RFC 6120 §4.9.3.14, §13.12): every limit is enforced and
//! memory stays bounded while the peer keeps sending.
#![allow(clippy::unwrap_used)]

mod common;

use common::{HEADER, run_with};
use xmppd_xml::{Event, LimitKind, Limits, StreamParser, XmlError};

fn parser(limits: Limits) -> StreamParser {
    let mut parser = StreamParser::new(limits);
    parser.feed(HEADER.as_bytes());
    assert!(matches!(parser.next_event(), Ok(Some(Event::StreamOpen(_)))));
    parser
}

fn small(max_stanza_bytes: usize) -> Limits {
    Limits { max_stanza_bytes, ..Limits::default() }
}

/// Feeds `prefix`, then `filler` forever in chunks, checking that the
/// buffer never exceeds the limit by more than one chunk, until the stanza
/// limit is reported.
fn assert_bounded(limit: usize, prefix: &[u8], filler: &[u8]) {
    let mut parser = parser(small(limit));
    parser.feed(prefix);
    assert_eq!(parser.next_event(), Ok(None));
    for _ in 0..10_000 {
        parser.feed(filler);
        match parser.next_event() {
            Ok(None) => assert!(parser.buffered_len() < limit, "buffered {} with limit {limit}", parser.buffered_len()),
            Err(error) => {
                assert_eq!(error, XmlError::PolicyViolation(LimitKind::StanzaSize));
                assert_eq!(parser.buffered_len(), 0);
                return;
            }
            Ok(Some(event)) => panic!("unexpected {event:?}"),
        }
    }
    panic!("the limit was never reported");
}

#[test]
fn stanza_limit_is_detected_mid_stanza() {
    // Never-ending text, attribute value, tag name, CDATA section, and
    // nesting whose end tags never come.
    assert_bounded(1024, b"<message><body>", b"aaaaaaa");
    assert_bounded(1024, b"<message to='", b"aaaaaaa");
    assert_bounded(1024, b"<message", b"aaaaaaa");
    assert_bounded(1024, b"<message><body><![CDATA[", b"<<&&]]");
    assert_bounded(1024, b"<message>", b"<a></a>");
    assert_bounded(1024, b"<message><body>", "é€😀".as_bytes());
    assert_bounded(1024, b"<message></", b"message");
}

#[test]
fn stanza_limit_is_exact() {
    let limit = 100;
    let make = |size: usize| {
        let open = "<message><body>";
        let close = "</body></message>";
        format!("{open}{}{close}", "x".repeat(size - open.len() - close.len()))
    };
    let exact = make(limit);
    assert_eq!(exact.len(), limit);
    let (events, error) = run_with(small(limit), &[HEADER.as_bytes(), exact.as_bytes()]);
    assert_eq!(error, None);
    assert_eq!(events.len(), 2);

    let over = make(limit + 1);
    let (_, error) = run_with(small(limit), &[HEADER.as_bytes(), over.as_bytes()]);
    assert_eq!(error, Some(XmlError::PolicyViolation(LimitKind::StanzaSize)));

    // Many stanzas in one chunk are fine even if the chunk is larger.
    let many = exact.repeat(20);
    let (events, error) = run_with(small(limit), &[HEADER.as_bytes(), many.as_bytes()]);
    assert_eq!(error, None);
    assert_eq!(events.len(), 21);
}

#[test]
fn header_limit() {
    let limits = Limits { max_header_bytes: 400, ..Limits::default() };
    let (_, error) = run_with(limits.clone(), &[HEADER.as_bytes()]);
    assert_eq!(error, None, "the test header fits in 400 bytes");
    assert!(HEADER.len() <= 400);

    let long = format!("<stream:stream xmlns:stream='s' to='{}'>", "a".repeat(500));
    let (_, error) = run_with(limits.clone(), &[long.as_bytes()]);
    assert_eq!(error, Some(XmlError::PolicyViolation(LimitKind::HeaderSize)));

    // Whitespace and a declaration count towards the prolog.
    let padded = format!("<?xml version='1.0'?>{}<stream:stream xmlns:stream='s'>", " ".repeat(390));
    let (_, error) = run_with(limits.clone(), &[padded.as_bytes()]);
    assert_eq!(error, Some(XmlError::PolicyViolation(LimitKind::HeaderSize)));

    // Endless whitespace before the header is refused, not buffered.
    let mut parser = StreamParser::new(limits);
    let mut result = Ok(None);
    for _ in 0..1000 {
        parser.feed(b"    ");
        result = parser.next_event();
        if result.is_err() {
            break;
        }
        assert!(parser.buffered_len() <= 4);
    }
    assert_eq!(result, Err(XmlError::PolicyViolation(LimitKind::HeaderSize)));
}

#[test]
fn depth_limit() {
    let limits = Limits { max_depth: 3, ..Limits::default() };
    let (_, error) = run_with(limits.clone(), &[HEADER.as_bytes(), b"<a><b><c/></b></a><a><b><c></c></b></a>"]);
    assert_eq!(error, None);
    let (_, error) = run_with(limits.clone(), &[HEADER.as_bytes(), b"<a><b><c><d/></c></b></a>"]);
    assert_eq!(error, Some(XmlError::PolicyViolation(LimitKind::Depth)));
    // Detected at the start tag, before the element ends.
    let (_, error) = run_with(limits, &[HEADER.as_bytes(), b"<a><b><c><d>"]);
    assert_eq!(error, Some(XmlError::PolicyViolation(LimitKind::Depth)));

    // The default limit stops a deeply nested stanza.
    let deep = "<a>".repeat(10_000);
    let (_, error) = run_with(Limits::default(), &[HEADER.as_bytes(), deep.as_bytes()]);
    assert_eq!(error, Some(XmlError::PolicyViolation(LimitKind::Depth)));
}

#[test]
fn attribute_and_declaration_limits() {
    let attrs = |n: usize| (0..n).map(|i| format!(" a{i}='{i}'")).collect::<String>();
    let decls = |n: usize| (0..n).map(|i| format!(" xmlns:p{i}='urn:{i}'")).collect::<String>();
    let limits = Limits::default();
    let ok = format!("<message{}{}/>", attrs(64), decls(16));
    assert_eq!(run_with(limits.clone(), &[HEADER.as_bytes(), ok.as_bytes()]).1, None);
    let too_many_attrs = format!("<message><x{}/></message>", attrs(65));
    assert_eq!(
        run_with(limits.clone(), &[HEADER.as_bytes(), too_many_attrs.as_bytes()]).1,
        Some(XmlError::PolicyViolation(LimitKind::Attributes))
    );
    let too_many_decls = format!("<message{}/>", decls(17));
    assert_eq!(
        run_with(limits.clone(), &[HEADER.as_bytes(), too_many_decls.as_bytes()]).1,
        Some(XmlError::PolicyViolation(LimitKind::NamespaceDeclarations))
    );
    // The header is limited too.
    let header = format!("<stream:stream xmlns:stream='s'{}>", attrs(65));
    assert_eq!(run_with(limits, &[header.as_bytes()]).1, Some(XmlError::PolicyViolation(LimitKind::Attributes)));
}

#[test]
fn many_tiny_attributes_are_refused_before_they_are_collected() {
    // 20 000 attributes in one tag: the count limit triggers first.
    let attrs = (0..20_000).map(|i| format!(" a{i}=''")).collect::<String>();
    let stanza = format!("<message{attrs}/>");
    let (_, error) = run_with(Limits::default(), &[HEADER.as_bytes(), stanza.as_bytes()]);
    assert_eq!(error, Some(XmlError::PolicyViolation(LimitKind::Attributes)));
}
