//! Raw-socket tests: every stream error of RFC 6120 §4.9.3 that the server
//! raises, with the exact error element, followed by the stream close.
#![allow(clippy::unwrap_used)]

mod common;

use common::{RawClient, TestServer, header};

const NS: &str = "xmlns='jabber:client' xmlns:stream='http://etherx.jabber.org/streams'";

fn error_element(condition: &str) -> String {
    format!("<stream:error><{condition} xmlns='urn:ietf:params:xml:ns:xmpp-streams'/>")
}

/// Sends `input` on a fresh connection and asserts the exact stream error
/// and that the server closes the stream and the connection.
async fn assert_stream_error(server: &TestServer, input: &[u8], condition: &str) {
    let mut client = RawClient::connect(server.starttls_port).await;
    client.send(input).await;
    let received = client.read_until_closed().await;
    assert!(
        received.contains(&error_element(condition)),
        "input {:?}: expected <{condition}/>, got {received:?}",
        String::from_utf8_lossy(input)
    );
    assert!(received.trim_end().ends_with("</stream:stream>"), "stream not closed: {received:?}");
    assert!(client.closed, "connection left open after <{condition}/>");
    // The server always sends its own header before the error (§4.9.1.2).
    assert!(received.contains("<stream:stream "), "no response header: {received:?}");
}

fn with_header(rest: &str) -> Vec<u8> {
    format!("{}{rest}", header("localhost")).into_bytes()
}

#[tokio::test]
async fn restricted_xml() {
    let server = TestServer::start("", &[]);
    let cases: [&[u8]; 6] = [
        b"<?xml version='1.0'?><!DOCTYPE stream:stream>",
        &with_header("<!-- a comment -->"),
        &with_header("<?php echo 1; ?>"),
        &with_header("<?xml version='1.0'?>"),
        &with_header("<!ENTITY lol 'lol'>"),
        &with_header("<message>&lol;</message>"),
    ];
    for input in cases {
        assert_stream_error(&server, input, "restricted-xml").await;
    }
}

#[tokio::test]
async fn not_well_formed() {
    let server = TestServer::start("", &[]);
    let mut invalid_utf8 = with_header("<message><body>");
    invalid_utf8.extend_from_slice(&[0xff, 0xfe, 0xc3]);
    invalid_utf8.extend_from_slice(b"</body></message>");
    let cases: Vec<Vec<u8>> = vec![
        invalid_utf8,
        with_header("<foo:bar/>"),
        with_header("<message><a></b></message>"),
        with_header("<message a='1' a='2'/>"),
        format!("<stream:stream {NS} to='localhost' version='1.0' x:y='z'>").into_bytes(),
    ];
    for input in &cases {
        assert_stream_error(&server, input, "not-well-formed").await;
    }
}

#[tokio::test]
async fn bad_stream_headers() {
    let server = TestServer::start("", &[]);
    let cases = [
        (
            "<stream:stream xmlns='jabber:client' xmlns:stream='http://example.com/streams' to='localhost' version='1.0'>".to_owned(),
            "invalid-namespace",
        ),
        (
            "<stream:stream xmlns='jabber:server' xmlns:stream='http://etherx.jabber.org/streams' to='localhost' version='1.0'>".to_owned(),
            "invalid-namespace",
        ),
        (format!("<stream:stream {NS} to='localhost' version='2.0'>"), "unsupported-version"),
        (format!("<stream:stream {NS} to='unknown.example' version='1.0'>"), "host-unknown"),
        (format!("<stream:stream {NS} version='1.0'>"), "improper-addressing"),
        (format!("<stream:stream {NS} to='not a domain' version='1.0'>"), "improper-addressing"),
        (
            "<stream xmlns='http://etherx.jabber.org/streams' to='localhost' version='1.0'>".to_owned(),
            "bad-namespace-prefix",
        ),
    ];
    for (input, condition) in cases {
        assert_stream_error(&server, input.as_bytes(), condition).await;
    }
}

#[tokio::test]
async fn stanzas_before_authentication() {
    let server = TestServer::start("", &[]);
    assert_stream_error(&server, &with_header("<message to='a@localhost'><body>hi</body></message>"), "not-authorized")
        .await;
}

#[tokio::test]
async fn pre_auth_byte_limit() {
    let server = TestServer::start("max_pre_auth_bytes = 4096", &[]);
    let mut input = with_header("");
    input.extend(std::iter::repeat_n(b' ', 8192));
    assert_stream_error(&server, &input, "policy-violation").await;
}

#[tokio::test]
async fn handshake_timeout_is_connection_timeout() {
    let server = TestServer::start("handshake_timeout_secs = 1", &[]);
    let mut client = RawClient::connect(server.starttls_port).await;
    client.send(header("localhost")).await;
    let received = client.read_until_closed().await;
    assert!(received.contains(&error_element("connection-timeout")), "{received}");
    assert!(client.closed);
}

/// Limits on authenticated streams: stanza size, depth, attributes.
#[tokio::test]
async fn stanza_limits_are_policy_violations() {
    let server = TestServer::start("max_stanza_bytes = 10000\nmax_depth = 8\nmax_attributes = 8", &["romeo"]);
    let huge = format!("<message to='romeo@localhost'><body>{}</body></message>", "x".repeat(20_000));
    let deep = format!("<message>{}{}</message>", "<a>".repeat(20), "</a>".repeat(20));
    let attrs = format!("<message {}/>", (0..20).map(|i| format!("a{i}='v'")).collect::<Vec<_>>().join(" "));
    for input in [huge, deep, attrs] {
        let mut client = RawClient::connect(server.starttls_port).await;
        client.login("romeo", "localhost", Some("limits")).await;
        client.send(&input).await;
        let received = client.read_until_closed().await;
        assert!(received.contains(&error_element("policy-violation")), "{received}");
        assert!(client.closed);
    }
}

#[tokio::test]
async fn spoofed_from_is_invalid_from() {
    let server = TestServer::start("", &["romeo", "juliet"]);
    let mut client = RawClient::connect(server.starttls_port).await;
    client.login("romeo", "localhost", Some("orchard")).await;
    client.send("<message from='juliet@localhost/balcony' to='juliet@localhost'><body>x</body></message>").await;
    let received = client.read_until_closed().await;
    assert!(received.contains(&error_element("invalid-from")), "{received}");
    assert!(client.closed);
}

#[tokio::test]
async fn unknown_top_level_element_is_unsupported_stanza_type() {
    let server = TestServer::start("", &["romeo"]);
    let mut client = RawClient::connect(server.starttls_port).await;
    client.login("romeo", "localhost", None).await;
    client.send("<foo xmlns='urn:example:foo'/>").await;
    let received = client.read_until_closed().await;
    assert!(received.contains(&error_element("unsupported-stanza-type")), "{received}");
}

#[tokio::test]
async fn resource_conflict_replaces_the_old_session() {
    let server = TestServer::start("", &["romeo"]);
    let mut first = RawClient::connect(server.starttls_port).await;
    first.login("romeo", "localhost", Some("orchard")).await;
    let mut second = RawClient::connect_direct_tls(server.direct_tls_port).await;
    assert_eq!(second.login("romeo", "localhost", Some("orchard")).await, "romeo@localhost/orchard");
    let received = first.read_until_closed().await;
    assert!(received.contains(&error_element("conflict")), "{received}");
    assert!(first.closed);
}

#[tokio::test]
async fn sigterm_sends_system_shutdown() {
    let mut server = TestServer::start("", &["romeo"]);
    let mut client = RawClient::connect(server.starttls_port).await;
    client.login("romeo", "localhost", None).await;
    let status = tokio::task::spawn_blocking(move || {
        let status = server.terminate();
        (status, server)
    });
    let received = client.read_until_closed().await;
    let (status, _server) = status.await.unwrap();
    assert!(received.contains(&error_element("system-shutdown")), "{received}");
    assert!(status.success(), "exit status {status}");
}

#[tokio::test]
async fn closing_the_stream_is_answered() {
    let server = TestServer::start("", &["romeo"]);
    let mut client = RawClient::connect(server.starttls_port).await;
    client.login("romeo", "localhost", None).await;
    client.send("</stream:stream>").await;
    let received = client.read_until_closed().await;
    assert_eq!(received.trim(), "</stream:stream>");
    assert!(client.closed);
}
