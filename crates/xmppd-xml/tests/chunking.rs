//! Property tests: however the input is split, the parser produces the same
//! events (or the same error); it never panics; whatever it accepts, the DOM
//! builder and serializer handle.
#![allow(clippy::unwrap_used)]

mod common;

use common::{HEADER, run_split, run_with};
use proptest::prelude::*;
use xmppd_xml::{Element, Event, Limits, StreamParser, XmlError};

/// Stanzas exercising multi-byte UTF-8, CDATA, references, namespaces,
/// prefixes (local and from the header) and self-closing elements.
const STANZAS: &[&str] = &[
    "<message from='juliet@example.com/balcony' id='ktx72v49' to='romeo@example.net' type='chat' xml:lang='en'>\
     <body>Art thou not Romeo, and a Montague?</body></message>",
    "<message to='ромео@example.net'><body>Grüße 👋 &amp; &lt;3 &#x1F600; &#233;</body></message>",
    "<iq type='get' id='v1'><query xmlns='jabber:iq:version'/></iq>",
    "<presence/>",
    "<presence  />",
    "<message><body><![CDATA[<b>bold</b> ]] > ]]]]></body></message>",
    "<stream:features><starttls xmlns='urn:ietf:params:xml:ns:xmpp-tls'><required/></starttls></stream:features>",
    "<iq type='set' id='p1'><pubsub xmlns='http://jabber.org/protocol/pubsub'><publish node='n'><item id='i'>\
     <entry xmlns='http://www.w3.org/2005/Atom' xmlns:x='urn:x' x:attr=\"v&quot;q\"><title type=\"text\">T &gt; t</title>\
     </entry></item></publish></pubsub></iq>",
    "<x:custom xmlns:x='urn:custom' x:a='1' b='&apos;'>text<x:child/>more</x:custom>",
    "<message xml:lang='fr'><body>Ça va ?\r\n\t</body><thread>t1</thread></message>",
    "<db:result from='a.example' to='b.example' type='valid'/>",
    "<message><body>日本語&#x65E5;</body><x xmlns='urn:x' a='&#10;&#9;'>\u{10FFFF}</x></message>",
];

const WHITESPACE: &[&str] = &["", " ", "\n", "\r\n\t ", "   \n   "];

fn build_stream(declaration: bool, picks: &[(usize, usize)], close: bool) -> (String, Vec<&'static str>) {
    let mut text = String::new();
    let header = if declaration { HEADER } else { HEADER.trim_start_matches("<?xml version='1.0'?>") };
    text.push_str(header);
    let mut expected = Vec::new();
    for &(stanza, space) in picks {
        text.push_str(WHITESPACE[space % WHITESPACE.len()]);
        let stanza = STANZAS[stanza % STANZAS.len()];
        text.push_str(stanza);
        expected.push(stanza);
    }
    if close {
        text.push_str("\n</stream:stream>");
    }
    (text, expected)
}

fn byte_by_byte(limits: Limits, input: &[u8]) -> (Vec<Event>, Option<XmlError>) {
    let chunks: Vec<&[u8]> = input.chunks(1).collect();
    run_with(limits, &chunks)
}

/// Every stanza the parser accepts can be turned into a DOM, and the DOM
/// survives serialisation.
fn check_dom(events: &[Event]) {
    for event in events {
        if let Event::Stanza(raw) = event {
            let element = raw.parse_element().unwrap_or_else(|e| panic!("{e:?} for {:?}", raw.bytes()));
            let mut out = Vec::new();
            element.write_to(&mut out, "jabber:client");
            let again = Element::parse_standalone(&out, "jabber:client")
                .unwrap_or_else(|e| panic!("{e:?} for {}", String::from_utf8_lossy(&out)));
            assert_eq!(again, element);
        }
    }
}

fn small_limits() -> Limits {
    Limits { max_stanza_bytes: 96, max_header_bytes: 300, max_depth: 3, max_attributes: 3, max_namespace_decls: 2 }
}

/// Token soup: fragments that reach deep into the parser's states.
const TOKENS: &[&str] = &[
    "<",
    ">",
    "/>",
    "</",
    "a",
    "b:c",
    "message",
    "body",
    " ",
    "\n",
    "='",
    "'",
    "=\"",
    "\"",
    "&amp;",
    "&",
    "#",
    "x",
    ";",
    "&#x41;",
    "&#0;",
    "&foo;",
    "]]>",
    "]",
    "<![CDATA[",
    "xmlns='u'",
    "xmlns:p='u'",
    "p:",
    "stream:",
    "db:",
    "é",
    "😀",
    "\u{FEFF}",
    "<!--",
    "<?",
    "<!D",
    "\0",
    "</stream:stream>",
    "<?xml version='1.0'?>",
];

fn soup() -> impl Strategy<Value = Vec<u8>> {
    prop::collection::vec(
        prop_oneof![
            4 => (0..TOKENS.len()).prop_map(|i| TOKENS[i].as_bytes().to_vec()),
            1 => any::<u8>().prop_map(|b| vec![b]),
        ],
        0..80,
    )
    .prop_map(|parts| parts.concat())
}

/// Inputs whose outcome depends on bytes that a split can separate.
const TRICKY: &[&[u8]] = &[
    b"<message><body>a]]>b</body></message>",
    b"<message><body>a]]b]>c]</body></message>",
    b"<message><body><![CDATA[x]]]]></body></message>",
    b"<message><body><![CDATX[x]]></body></message>",
    b"<message><body>&amp;&#x1F600;&#128512;&lt</body></message>",
    b"<message><body>&nbsp;</body></message>",
    b"<message><body>&#xFFFE;</body></message>",
    "<message to='\u{e9}\u{1F600}'><body>\u{20AC}\u{10FFFF}</body></message>".as_bytes(),
    b"<message><body>\xf0\x9f\x98</body></message>",
    b"<message><!-- x --></message>",
    b"<message><!-x></message>",
    b"<message><?pi?></message>",
    b"<message><!DOCTYPE x></message>",
    b" \n<presence/>\t<presence/>x",
    b"<presence/><![CDATA[x]]>",
    b"<presence/>\xc3\xa9",
    b"<presence/>\xc3",
    b"</stream:stream>  ",
    b"</stream:stream> x",
    b"</stream:streamx>",
    b"<message a='1' b=\"2\" a='3'/>",
    b"<message xmlns:p='u'><p:a p:b='1'/></message>",
];

#[test]
fn every_two_and_three_way_split_gives_the_same_result() {
    for tail in TRICKY {
        let mut input = HEADER.as_bytes().to_vec();
        input.extend_from_slice(tail);
        for limits in [Limits::default(), small_limits()] {
            let whole = run_with(limits.clone(), &[&input]);
            let start = HEADER.len().saturating_sub(8);
            for first in start..input.len() {
                let two = run_with(limits.clone(), &[&input[..first], &input[first..]]);
                assert_eq!(two, whole, "split at {first} of {:?}", String::from_utf8_lossy(tail));
                for second in first..input.len().min(first + 12) {
                    let three = run_with(limits.clone(), &[&input[..first], &input[first..second], &input[second..]]);
                    assert_eq!(three, whole, "split at {first}/{second} of {:?}", String::from_utf8_lossy(tail));
                }
            }
            assert_eq!(byte_by_byte(limits, &input), whole);
        }
    }
    // The prolog, too.
    for input in [
        HEADER.as_bytes(),
        b"<?xml version='1.0' encoding='UTF-16'?><stream:stream>",
        b"\xfe\xff\x00<",
        b" <?xml version='1.0'?>",
        b"<?xml-stylesheet?>",
        b"\xef\xbb\xbf<stream:stream>",
    ] {
        let whole = run_with(Limits::default(), &[input]);
        for first in 0..input.len() {
            assert_eq!(run_with(Limits::default(), &[&input[..first], &input[first..]]), whole);
        }
    }
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(512))]

    #[test]
    fn valid_streams_parse_identically_under_any_split(
        declaration in any::<bool>(),
        picks in prop::collection::vec((0..STANZAS.len(), 0..WHITESPACE.len()), 0..10),
        close in any::<bool>(),
        sizes in prop::collection::vec(1usize..40, 1..10),
    ) {
        let (text, expected) = build_stream(declaration, &picks, close);
        let (whole, error) = run_with(Limits::default(), &[text.as_bytes()]);
        prop_assert_eq!(error, None);
        prop_assert_eq!(whole.len(), 1 + expected.len() + usize::from(close));
        let raw: Vec<&[u8]> = whole.iter().filter_map(|e| match e {
            Event::Stanza(raw) => Some(&raw.bytes()[..]),
            _ => None,
        }).collect();
        let expected_bytes: Vec<&[u8]> = expected.iter().map(|s| s.as_bytes()).collect();
        prop_assert_eq!(raw, expected_bytes, "stanza bytes are the source slices");
        let split = run_split(Limits::default(), text.as_bytes(), &sizes);
        prop_assert_eq!(&split.0, &whole);
        prop_assert_eq!(split.1, None);
        let single = byte_by_byte(Limits::default(), text.as_bytes());
        prop_assert_eq!(&single.0, &whole);
        check_dom(&whole);
    }

    #[test]
    fn restarts_parse_identically_under_any_split(
        first in prop::collection::vec((0..STANZAS.len(), 0..WHITESPACE.len()), 0..4),
        second in prop::collection::vec((0..STANZAS.len(), 0..WHITESPACE.len()), 0..4),
        sizes in prop::collection::vec(1usize..30, 1..6),
    ) {
        let (mut stream_a, _) = build_stream(true, &first, false);
        stream_a.push_str("<success xmlns='urn:ietf:params:xml:ns:xmpp-sasl'/>");
        let (stream_b, _) = build_stream(true, &second, true);
        let drive = |chunk_sizes: &[usize]| {
            let mut parser = StreamParser::new(Limits::default());
            let mut events = Vec::new();
            for (index, stream) in [&stream_a, &stream_b].into_iter().enumerate() {
                if index == 1 {
                    parser.reset();
                }
                let mut rest = stream.as_bytes();
                let mut turn = 0;
                while !rest.is_empty() {
                    let size = chunk_sizes[turn % chunk_sizes.len()].min(rest.len());
                    let (chunk, tail) = rest.split_at(size);
                    parser.feed(chunk);
                    while let Some(event) = parser.next_event().unwrap() {
                        events.push(event);
                    }
                    rest = tail;
                    turn += 1;
                }
            }
            events
        };
        let whole = drive(&[usize::MAX]);
        prop_assert_eq!(whole.len(), 2 + first.len() + 1 + second.len() + 1);
        prop_assert_eq!(drive(&sizes), whole.clone());
        prop_assert_eq!(drive(&[1]), whole);
    }

    #[test]
    fn random_bytes_never_panic_and_split_independently(
        with_header in any::<bool>(),
        noise in prop::collection::vec(any::<u8>(), 0..300),
        sizes in prop::collection::vec(1usize..20, 1..6),
    ) {
        let mut input = if with_header { HEADER.as_bytes().to_vec() } else { Vec::new() };
        input.extend_from_slice(&noise);
        for limits in [Limits::default(), small_limits()] {
            let whole = run_with(limits.clone(), &[&input]);
            let split = run_split(limits.clone(), &input, &sizes);
            prop_assert_eq!(&split, &whole);
            check_dom(&whole.0);
        }
    }

    #[test]
    fn token_soup_splits_independently(
        inside in any::<bool>(),
        soup in soup(),
        sizes in prop::collection::vec(1usize..12, 1..6),
    ) {
        let mut input = HEADER.as_bytes().to_vec();
        if inside {
            input.extend_from_slice(b"<message><body>");
        }
        input.extend_from_slice(&soup);
        for limits in [Limits::default(), small_limits()] {
            let whole = run_with(limits.clone(), &[&input]);
            prop_assert_eq!(&run_split(limits.clone(), &input, &sizes), &whole);
            prop_assert_eq!(&byte_by_byte(limits.clone(), &input), &whole);
            check_dom(&whole.0);
        }
    }

    #[test]
    fn mutated_streams_split_independently(
        picks in prop::collection::vec((0..STANZAS.len(), 0..WHITESPACE.len()), 1..6),
        mutations in prop::collection::vec((any::<prop::sample::Index>(), any::<u8>(), 0u8..3), 1..4),
        sizes in prop::collection::vec(1usize..25, 1..6),
    ) {
        let (text, _) = build_stream(true, &picks, true);
        let mut input = text.into_bytes();
        for (at, byte, kind) in mutations {
            let index = at.index(input.len());
            match kind {
                0 => input[index] = byte,
                1 => input.insert(index, byte),
                _ => { input.remove(index); }
            }
        }
        for limits in [Limits::default(), small_limits()] {
            let whole = run_with(limits.clone(), &[&input]);
            prop_assert_eq!(&run_split(limits.clone(), &input, &sizes), &whole);
            check_dom(&whole.0);
        }
    }
}
