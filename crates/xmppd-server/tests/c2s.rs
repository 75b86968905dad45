//! c2s behaviour over real sockets: login paths, routing between local
//! sessions, addressing rules and isolation of misbehaving clients.
#![allow(clippy::unwrap_used)]

mod common;

use std::time::Duration;

use common::{PASSWORD, RawClient, TestServer, b64, header};

#[tokio::test]
async fn login_over_starttls_and_direct_tls() {
    let server = TestServer::start("", &["romeo"]);
    let mut starttls = RawClient::connect(server.starttls_port).await;
    assert_eq!(starttls.login("romeo", "localhost", Some("a")).await, "romeo@localhost/a");
    let mut direct = RawClient::connect_direct_tls(server.direct_tls_port).await;
    let jid = direct.login("romeo", "localhost", None).await;
    assert!(jid.starts_with("romeo@localhost/") && jid.len() > "romeo@localhost/".len(), "{jid}");
}

#[tokio::test]
async fn features_follow_the_negotiation() {
    let server = TestServer::start("", &["romeo"]);
    let mut client = RawClient::connect(server.starttls_port).await;
    client.send(header("localhost")).await;
    let features = client.expect("</stream:features>").await;
    // TLS is required and nothing else is offered before it (RFC 6120 §5.3.1).
    assert!(
        features.contains("<starttls xmlns='urn:ietf:params:xml:ns:xmpp-tls'><required/></starttls>"),
        "{features}"
    );
    assert!(!features.contains("<mechanisms"), "{features}");
    client.send("<starttls xmlns='urn:ietf:params:xml:ns:xmpp-tls'/>").await;
    client.expect("<proceed").await;
    client.start_tls().await;
    client.send(header("localhost")).await;
    let features = client.expect("</stream:features>").await;
    for mechanism in [
        "SCRAM-SHA-512-PLUS",
        "SCRAM-SHA-256-PLUS",
        "SCRAM-SHA-1-PLUS",
        "SCRAM-SHA-512",
        "SCRAM-SHA-256",
        "SCRAM-SHA-1",
        "PLAIN",
    ] {
        assert!(features.contains(&format!("<mechanism>{mechanism}</mechanism>")), "{mechanism}: {features}");
    }
    // XEP-0440 channel-binding types.
    assert!(features.contains("<channel-binding type='tls-exporter'/>"), "{features}");
    assert!(features.contains("<channel-binding type='tls-server-end-point'/>"), "{features}");
}

#[tokio::test]
async fn scram_carries_downgrade_protection() {
    let server = TestServer::start("", &["romeo"]);
    let mut client = RawClient::connect(server.starttls_port).await;
    client.open_secure("localhost").await;
    client.scram_sha256("romeo", PASSWORD).await;
    client.expect("<success").await;
    // XEP-0474: server-first-message carries the hash of what was offered.
    assert!(client.server_first.contains(",h="), "{}", client.server_first);
}

/// SCRAM-SHA-256-PLUS with tls-exporter, over STARTTLS and direct TLS; a
/// binding from another TLS session is refused.
#[tokio::test]
async fn scram_plus_with_tls_exporter() {
    let server = TestServer::start("", &["romeo"]);
    let mut starttls = RawClient::connect(server.starttls_port).await;
    starttls.open_secure("localhost").await;
    starttls.scram_sha256_plus("romeo", PASSWORD).await;
    starttls.expect("<success").await;
    let mut direct = RawClient::connect_direct_tls(server.direct_tls_port).await;
    direct.open_secure("localhost").await;
    direct.scram_sha256_plus("romeo", PASSWORD).await;
    direct.expect("<success").await;

    // Replaying another session's exporter value must fail.
    let other = RawClient::connect_direct_tls(server.direct_tls_port).await;
    let foreign = other.tls_exporter();
    let mut victim = RawClient::connect_direct_tls(server.direct_tls_port).await;
    victim.open_secure("localhost").await;
    assert_ne!(foreign, victim.tls_exporter());
    victim.scram_sha256_with_binding("romeo", PASSWORD, foreign).await;
    victim.expect("<not-authorized/>").await;
}

#[tokio::test]
async fn whitespace_keepalives_are_accepted() {
    let server = TestServer::start("", &["romeo"]);
    let mut client = RawClient::connect(server.starttls_port).await;
    client.login("romeo", "localhost", None).await;
    for _ in 0..3 {
        client.send(" \n\t ").await;
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    let got = client.iq("get", "k1", None, "<ping xmlns='urn:xmpp:ping'/>").await;
    assert!(got.contains("id='k1'") && got.contains("type='result'"), "{got}");
    let quiet = client.read_for(Duration::from_millis(200)).await;
    assert!(quiet.is_empty() && !client.closed, "{quiet}");
}

#[tokio::test]
async fn sasl_failures_use_rfc6120_conditions() {
    let server = TestServer::start("", &["romeo"]);
    let mut client = RawClient::connect(server.starttls_port).await;
    client.open_secure("localhost").await;
    client.scram_sha256("romeo", "wrong password").await;
    client.expect("<failure xmlns='urn:ietf:params:xml:ns:xmpp-sasl'><not-authorized/>").await;
    client.scram_sha256("nobody", PASSWORD).await;
    client.expect("<failure xmlns='urn:ietf:params:xml:ns:xmpp-sasl'><not-authorized/>").await;
    client.send("<auth xmlns='urn:ietf:params:xml:ns:xmpp-sasl' mechanism='X-UNKNOWN'/>").await;
    // Third failure: the mechanism is refused, then the stream closes
    // (RFC 6120 §6.4.5, max_auth_failures = 3).
    client.expect("<invalid-mechanism/>").await;
    let rest = client.read_until_closed().await;
    assert!(rest.contains("<policy-violation"), "{rest}");
}

#[tokio::test]
async fn plain_works_over_tls_and_is_not_offered_without_it() {
    let server = TestServer::start("require_encryption = false", &["romeo"]);
    let mut plain = RawClient::connect(server.starttls_port).await;
    plain.send(header("localhost")).await;
    let features = plain.expect("</stream:features>").await;
    assert!(features.contains("<mechanism>SCRAM-SHA-256</mechanism>"), "{features}");
    assert!(!features.contains("PLAIN"), "{features}");
    plain
        .send(format!(
            "<auth xmlns='urn:ietf:params:xml:ns:xmpp-sasl' mechanism='PLAIN'>{}</auth>",
            b64(format!("\0romeo\0{PASSWORD}").as_bytes())
        ))
        .await;
    plain.expect("<invalid-mechanism/>").await;
    // STARTTLS stays available when it is optional.
    plain.send("<starttls xmlns='urn:ietf:params:xml:ns:xmpp-tls'/>").await;
    plain.expect("<proceed xmlns='urn:ietf:params:xml:ns:xmpp-tls'/>").await;
    plain.start_tls().await;
    plain.send(header("localhost")).await;
    let features = plain.expect("</stream:features>").await;
    assert!(features.contains("<mechanism>PLAIN</mechanism>"), "{features}");

    let mut tls = RawClient::connect_direct_tls(server.direct_tls_port).await;
    tls.open_secure("localhost").await;
    tls.send(format!(
        "<auth xmlns='urn:ietf:params:xml:ns:xmpp-sasl' mechanism='PLAIN'>{}</auth>",
        b64(format!("\0romeo\0{PASSWORD}").as_bytes())
    ))
    .await;
    tls.expect("<success").await;
}

#[tokio::test]
async fn messages_and_iqs_between_local_sessions() {
    let server = TestServer::start("", &["romeo", "juliet"]);
    let mut romeo = RawClient::connect(server.starttls_port).await;
    romeo.login("romeo", "localhost", Some("orchard")).await;
    let mut juliet = RawClient::connect_direct_tls(server.direct_tls_port).await;
    juliet.login("juliet", "localhost", Some("balcony")).await;
    juliet.send("<presence/>").await;
    romeo.send("<presence><priority>5</priority></presence>").await;
    tokio::time::sleep(Duration::from_millis(200)).await;

    // To a bare JID; the server stamps 'from' with the full JID.
    romeo.send("<message to='Juliet@LOCALHOST' type='chat' id='m1'><body>Art thou not Romeo?</body></message>").await;
    let got = juliet.expect("</message>").await;
    assert!(got.contains("from='romeo@localhost/orchard'"), "{got}");
    assert!(got.contains("to='juliet@localhost'"), "{got}");
    assert!(got.contains("<body>Art thou not Romeo?</body>"), "{got}");

    // To a full JID, with a payload in a foreign namespace kept verbatim.
    juliet
        .send("<message to='romeo@localhost/orchard' id='m2'><body>Neither</body><x xmlns='urn:example:x' a='&amp;'><y/></x></message>")
        .await;
    let got = romeo.expect("</message>").await;
    assert!(got.contains("from='juliet@localhost/balcony'"), "{got}");
    assert!(got.contains("<x xmlns='urn:example:x' a='&amp;'><y/></x>"), "{got}");

    // RFC 6121 §8.5.3.1: an IQ request from someone who does not share
    // presence with Juliet is answered as if her resource were absent.
    romeo.send("<iq type='get' id='q0' to='juliet@localhost/balcony'><query xmlns='urn:example:q'/></iq>").await;
    let got = romeo.expect("</iq>").await;
    assert!(got.contains("type='error'") && got.contains("<service-unavailable"), "{got}");
    // Once she sent him directed presence (§4.6), his IQs are delivered,
    // and so are their results.
    juliet.send("<presence to='romeo@localhost'/>").await;
    romeo.expect("from='juliet@localhost/balcony' to='romeo@localhost'/>").await;
    romeo.send("<iq type='get' id='q1' to='juliet@localhost/balcony'><query xmlns='urn:example:q'/></iq>").await;
    let got = juliet.expect("</iq>").await;
    assert!(got.contains("id='q1'") && got.contains("from='romeo@localhost/orchard'"), "{got}");
    juliet.send("<iq type='result' id='q1' to='romeo@localhost/orchard'/>").await;
    let got = romeo.expect("id='q1'").await;
    assert!(got.contains("type='result'"), "{got}");

    // IQ to the server: ping answered; unknown payload → service-unavailable.
    let got = romeo.iq("get", "p1", Some("localhost"), "<ping xmlns='urn:xmpp:ping'/>").await;
    assert!(got.contains("type='result'"), "{got}");
    let got = romeo.iq("get", "p2", Some("localhost"), "<nope xmlns='urn:example:nope'/>").await;
    assert!(got.contains("id='p2'") && got.contains("<service-unavailable"), "{got}");
    // IQ to a bare JID of a user with no handler → service-unavailable.
    let got = romeo.iq("get", "p3", Some("juliet@localhost"), "<nope xmlns='urn:example:nope'/>").await;
    assert!(got.contains("id='p3'") && got.contains("<service-unavailable"), "{got}");
}

#[tokio::test]
async fn rfc6121_section8_unknown_users_and_resources() {
    let server = TestServer::start("", &["romeo", "juliet"]);
    let mut romeo = RawClient::connect(server.starttls_port).await;
    romeo.login("romeo", "localhost", Some("orchard")).await;

    // §8.5.1: no such user: message and iq bounce, presence is dropped.
    romeo.send("<message to='nobody@localhost' id='u1'><body>hi</body></message>").await;
    let got = romeo.expect("</message>").await;
    assert!(got.contains("type='error'") && got.contains("<service-unavailable"), "{got}");
    assert!(got.contains("from='nobody@localhost'"), "{got}");
    let got = romeo.iq("get", "u2", Some("nobody@localhost/x"), "<ping xmlns='urn:xmpp:ping'/>").await;
    assert!(got.contains("<service-unavailable"), "{got}");
    romeo.send("<presence to='nobody@localhost' type='subscribe'/>").await;

    // §8.5.3.2.1: a full JID with no such resource is treated as bare; the
    // user exists but has no available resource → offline storage, no
    // error (§8.5.2.2.1). A groupchat message is refused instead.
    romeo.send("<message to='juliet@localhost/nowhere' type='chat' id='u3'><body>hi</body></message>").await;
    romeo.send("<message to='juliet@localhost' type='groupchat' id='u3g'><body>hi</body></message>").await;
    let got = romeo.expect("</message>").await;
    assert!(got.contains("id='u3g'") && got.contains("<service-unavailable"), "{got}");

    // A malformed 'to' gets jid-malformed (RFC 6120 §8.3.3.8).
    romeo.send("<message to='a@b@c' id='u4'><body>x</body></message>").await;
    let got = romeo.expect("</message>").await;
    assert!(got.contains("id='u4'") && got.contains("<jid-malformed"), "{got}");

    // An error stanza is never answered (§8.3.1): nothing comes back.
    romeo.send("<message to='nobody@localhost' type='error' id='u5'/>").await;
    let quiet = romeo.read_for(Duration::from_millis(300)).await;
    assert!(quiet.is_empty(), "{quiet}");
    // Remote domains have no route yet.
    romeo.send("<message to='someone@remote.example' id='u6'><body>x</body></message>").await;
    let got = romeo.expect("</message>").await;
    assert!(got.contains("<remote-server-not-found"), "{got}");
}

#[tokio::test]
async fn virtual_hosts_are_separate() {
    let server = TestServer::start("", &["romeo", "romeo@example.test"]);
    let mut local = RawClient::connect(server.starttls_port).await;
    local.login("romeo", "localhost", Some("a")).await;
    let mut other = RawClient::connect(server.starttls_port).await;
    assert_eq!(other.login("romeo", "example.test", Some("a")).await, "romeo@example.test/a");
    other.send("<presence/>").await;
    tokio::time::sleep(Duration::from_millis(100)).await;
    local.send("<message to='romeo@example.test' type='chat'><body>across hosts</body></message>").await;
    let got = other.expect("</message>").await;
    assert!(got.contains("from='romeo@localhost/a'"), "{got}");
}

#[tokio::test]
async fn garbage_from_one_client_does_not_disturb_others() {
    let server = TestServer::start("", &["romeo", "juliet", "mallory"]);
    let mut romeo = RawClient::connect(server.starttls_port).await;
    romeo.login("romeo", "localhost", Some("r")).await;
    let mut juliet = RawClient::connect(server.starttls_port).await;
    juliet.login("juliet", "localhost", Some("j")).await;
    let mut mallory = RawClient::connect(server.starttls_port).await;
    mallory.login("mallory", "localhost", Some("m")).await;

    let chat = tokio::spawn(async move {
        for i in 0..50 {
            romeo.send(format!("<message to='juliet@localhost/j' id='c{i}'><body>line {i}</body></message>")).await;
            let got = juliet.expect("</message>").await;
            assert!(got.contains(&format!("id='c{i}'")) && got.contains("from='romeo@localhost/r'"), "{got}");
            tokio::time::sleep(Duration::from_millis(5)).await;
        }
    });
    // Mallory sends garbage of several kinds, on fresh connections too.
    mallory.send(b"<message><body>\xff\xfe</body>".as_slice()).await;
    let got = mallory.read_until_closed().await;
    assert!(got.contains("<not-well-formed"), "{got}");
    for garbage in [&b"\x00\x01\x02garbage"[..], b"<<<<>>>>", b"<stream:stream>", b"\x16\x03\x01\x00\x05hello"] {
        let mut attacker = RawClient::connect(server.starttls_port).await;
        attacker.send(garbage).await;
        attacker.read_until_closed().await;
        assert!(attacker.closed);
    }
    chat.await.unwrap();
}

#[tokio::test]
async fn accounts_and_certificate_survive_a_restart() {
    let mut server = TestServer::start("", &["romeo"]);
    let err = server.cli(&["user", "add", "romeo@localhost", "--password", "x"]).unwrap_err();
    assert!(err.contains("exists"), "{err}");
    let err = server.cli(&["user", "add", "ghost@nowhere.example", "--password", "x"]).unwrap_err();
    assert!(err.contains("not a configured host"), "{err}");
    server.cli_stdin(&["user", "add", "juliet@localhost"], "from stdin\n").unwrap();
    assert_eq!(server.cli(&["user", "list"]).unwrap().trim(), "juliet@localhost\nromeo@localhost");
    let cert_before = std::fs::read(server.data_dir().join("tls/cert.pem")).unwrap();

    server.restart();
    let cert_after = std::fs::read(server.data_dir().join("tls/cert.pem")).unwrap();
    assert_eq!(cert_before, cert_after, "the generated certificate must be reused");
    let mut client = RawClient::connect(server.starttls_port).await;
    client.login("romeo", "localhost", None).await;

    server.cli_stdin(&["user", "passwd", "romeo@localhost"], "new password\n").unwrap();
    let mut client = RawClient::connect(server.starttls_port).await;
    client.open_secure("localhost").await;
    client.scram_sha256("romeo", PASSWORD).await;
    client.expect("<not-authorized/>").await;
    client.scram_sha256("romeo", "new password").await;
    client.expect("<success").await;

    server.cli(&["user", "del", "romeo@localhost"]).unwrap();
    assert_eq!(server.cli(&["user", "list"]).unwrap().trim(), "juliet@localhost");
}

/// `xmppd user import --hashed`: accounts from already derived SCRAM
/// credentials (no password involved), with errors naming the line.
#[tokio::test]
async fn import_of_hashed_credentials() {
    use base64::Engine as _;
    let server = TestServer::start("", &[]);
    let scram = xmppd_sasl::ScramCredentials::derive(xmppd_sasl::HashAlg::Sha256, PASSWORD, b"salt-for-mercutio", 4096)
        .unwrap();
    let b64 = |data: &[u8]| base64::engine::general_purpose::STANDARD.encode(data);
    let line = format!(
        "mercutio@localhost SCRAM-SHA-256:4096:{}:{}:{}\n",
        b64(&scram.salt),
        b64(&scram.stored_key),
        b64(&scram.server_key)
    );
    server.cli_stdin(&["user", "import", "--hashed"], &line).unwrap();
    let mut client = RawClient::connect(server.starttls_port).await;
    client.open_secure("localhost").await;
    client.scram_sha256("mercutio", PASSWORD).await;
    client.expect("<success").await;

    let err =
        server.cli_stdin(&["user", "import", "--hashed"], "a@localhost SCRAM-SHA-3:1:AA==:AA==:AA==\n").unwrap_err();
    assert!(err.contains("line 1") && err.contains("SCRAM-SHA-3"), "{err}");
    let err =
        server.cli_stdin(&["user", "import", "--hashed"], "\nb@localhost SCRAM-SHA-1:4096:!!:AA==:AA==\n").unwrap_err();
    assert!(err.contains("line 2") && err.contains("base64"), "{err}");
}

/// XEP-0199 §4.1: the server pings an idle client, an answer keeps the
/// session, silence closes it with `connection-timeout`.
#[tokio::test]
async fn server_pings_idle_clients_and_drops_dead_ones() {
    let server = TestServer::start("idle_timeout_secs = 1\nping_timeout_secs = 1\n", &["romeo"]);
    let mut client = RawClient::connect(server.starttls_port).await;
    client.login("romeo", "localhost", Some("idle")).await;
    let ping = client.expect("</iq>").await;
    assert!(ping.contains("<ping xmlns='urn:xmpp:ping'/>"), "{ping}");
    assert!(ping.contains("to='romeo@localhost/idle'") && ping.contains("from='localhost'"), "{ping}");
    client.send("<iq type='result' id='xmppd-ping' to='localhost'/>").await;
    // Alive: pinged again after the next idle period, not dropped.
    let again = client.expect("</iq>").await;
    assert!(again.contains("urn:xmpp:ping"), "{again}");
    // Dead: no answer, so the stream ends with connection-timeout.
    let rest = client.read_until_closed().await;
    assert!(rest.contains("<connection-timeout xmlns='urn:ietf:params:xml:ns:xmpp-streams'/>"), "{rest}");
}

/// Post-authentication stream features: roster versioning (RFC 6121
/// §2.6.1), pre-approval (§3.4.1) and the server's own caps (XEP-0115
/// §6.3), whose `node#ver` disco#info query answers the same features.
#[tokio::test]
async fn stream_features_after_auth_and_server_caps() {
    let server = TestServer::start("", &["romeo"]);
    let mut client = RawClient::connect(server.starttls_port).await;
    client.open_secure("localhost").await;
    client.scram_sha256("romeo", PASSWORD).await;
    client.expect("</success>").await;
    client.send(header("localhost")).await;
    let features = client.expect("</stream:features>").await;
    assert!(features.contains("<ver xmlns='urn:xmpp:features:rosterver'/>"), "{features}");
    assert!(features.contains("<sub xmlns='urn:xmpp:features:pre-approval'/>"), "{features}");
    let start = features.find("<c xmlns='http://jabber.org/protocol/caps'").expect(&features);
    let c = &features[start..start + features[start..].find("/>").unwrap()];
    assert!(c.contains("hash='sha-1'") && c.contains("node='urn:xmppd:server'"), "{c}");
    let ver = c.split("ver='").nth(1).and_then(|v| v.split('\'').next()).unwrap().to_owned();
    client.bind(Some("caps")).await;
    let query = format!("<query xmlns='http://jabber.org/protocol/disco#info' node='urn:xmppd:server#{ver}'/>");
    let info = client.iq("get", "c1", Some("localhost"), &query).await;
    assert!(info.contains("type='result'") && info.contains(&format!("node='urn:xmppd:server#{ver}'")), "{info}");
    for feature in ["urn:xmpp:blocking", "http://jabber.org/protocol/caps", "msgoffline", "urn:xmpp:ping"] {
        assert!(info.contains(&format!("var='{feature}'")), "{feature}: {info}");
    }
    let query = "<query xmlns='http://jabber.org/protocol/disco#info' node='nope'/>";
    let info = client.iq("get", "c2", Some("localhost"), query).await;
    assert!(info.contains("<item-not-found"), "{info}");
}

/// RFC 6121 §3.1.2 (a request to no such local user is an error, and the
/// roster is not touched), §4.7.1 (unknown presence types are bad
/// requests), §4.2.2 (the sender's own presence is echoed) and §8.5.2.1.1
/// (a headline reaches every non-negative resource).
#[tokio::test]
async fn presence_errors_echo_and_headlines() {
    let server = TestServer::start("", &["romeo", "juliet"]);
    let mut romeo = RawClient::connect(server.starttls_port).await;
    romeo.login("romeo", "localhost", Some("orchard")).await;
    romeo.iq("get", "r1", None, "<query xmlns='jabber:iq:roster'/>").await;
    romeo.send("<presence to='nobody@localhost' type='subscribe'/>").await;
    let got = romeo.expect("</presence>").await;
    assert!(got.contains("type='error'") && got.contains("<service-unavailable"), "{got}");
    // Pre-approving someone who has no account yet is allowed (§3.4).
    romeo.send("<presence to='nobody@localhost' type='subscribed'/>").await;
    let push = romeo.expect("</iq>").await;
    assert!(push.contains("jid='nobody@localhost'") && push.contains("approved='true'"), "{push}");
    romeo.send("<presence type='bogus'/>").await;
    let got = romeo.expect("</presence>").await;
    assert!(got.contains("type='error'") && got.contains("<bad-request"), "{got}");
    romeo.send("<presence><show>away</show></presence>").await;
    let echo = romeo.expect("</presence>").await;
    assert!(echo.contains("from='romeo@localhost/orchard'") && echo.contains("<show>away</show>"), "{echo}");
    // No other roster push came: the failed request changed nothing.
    assert!(!echo.contains("jabber:iq:roster"), "{echo}");

    let mut j1 = RawClient::connect(server.starttls_port).await;
    j1.login("juliet", "localhost", Some("one")).await;
    j1.send("<presence><priority>1</priority></presence>").await;
    j1.expect("</presence>").await;
    let mut j2 = RawClient::connect(server.starttls_port).await;
    j2.login("juliet", "localhost", Some("two")).await;
    j2.send("<presence><priority>0</priority></presence>").await;
    j2.expect("</presence>").await;
    romeo.send("<message to='juliet@localhost' type='headline'><body>news</body></message>").await;
    for client in [&mut j1, &mut j2] {
        let got = client.expect("</message>").await;
        assert!(got.contains("<body>news</body>"), "{got}");
    }
    // A probe from a non-subscriber reveals nothing of juliet's presence:
    // her server answers "unsubscribed" (RFC 6121 §4.3.2), which romeo's
    // server then drops as it changes no state (Appendix A.3.4).
    romeo.send("<presence to='juliet@localhost' type='probe' id='probe1'/>").await;
    let quiet = romeo.read_for(Duration::from_millis(300)).await;
    assert!(quiet.is_empty(), "{quiet}");
    // A chat message goes to the highest priority only.
    romeo.send("<message to='juliet@localhost' type='chat'><body>only one</body></message>").await;
    let got = j1.expect("</message>").await;
    assert!(got.contains("only one"), "{got}");
    let quiet = j2.read_for(Duration::from_millis(300)).await;
    assert!(!quiet.contains("only one"), "{quiet}");
}

/// XEP-0077 §3.2 with RFC 6121 §2.5.2: when an account is removed, its
/// contacts' subscriptions are cancelled as if the items were removed.
#[tokio::test]
async fn removed_account_cancels_its_subscriptions() {
    let server = TestServer::start("", &["romeo", "juliet"]);
    server
        .cli_stdin(
            &["roster", "import"],
            "romeo@localhost juliet@localhost both\njuliet@localhost romeo@localhost both\n",
        )
        .unwrap();
    let mut juliet = RawClient::connect(server.starttls_port).await;
    juliet.login("juliet", "localhost", Some("balcony")).await;
    let roster = juliet.iq("get", "r1", None, "<query xmlns='jabber:iq:roster'/>").await;
    assert!(roster.contains("jid='romeo@localhost'") && roster.contains("subscription='both'"), "{roster}");
    juliet.send("<presence/>").await;
    juliet.expect("type='unavailable'").await; // the probe answer: romeo is offline
    let mut romeo = RawClient::connect(server.starttls_port).await;
    romeo.login("romeo", "localhost", Some("orchard")).await;
    romeo.send("<iq type='set' id='rm'><query xmlns='jabber:iq:register'><remove/></query></iq>").await;
    let closed = romeo.read_until_closed().await;
    assert!(closed.contains("type='result'"), "{closed}");
    let mut seen = String::new();
    // Both directions end (unavailable and unsubscribed for romeo's
    // subscribers, unsubscribe for the contacts he was subscribed to), so
    // juliet sees both stanzas and her item ends at "none".
    while !(seen.contains("type='unsubscribe'")
        && seen.contains("type='unsubscribed'")
        && seen.contains("subscription='none'"))
    {
        seen.push_str(&juliet.expect(">").await);
    }
}

/// RFC 6121 §4.7.2.3: a priority outside -128..=127 is overridden with 0,
/// and the echo shows the override (no `<priority/>`).
#[tokio::test]
async fn invalid_priority_is_overridden_visibly() {
    let server = TestServer::start("", &["romeo"]);
    let mut romeo = RawClient::connect(server.starttls_port).await;
    romeo.login("romeo", "localhost", Some("p")).await;
    romeo.send("<presence><priority>300</priority><status>here</status></presence>").await;
    let echo = romeo.expect("</presence>").await;
    assert!(echo.contains("<status>here</status>") && !echo.contains("<priority>"), "{echo}");
    romeo.send("<presence><priority>5</priority></presence>").await;
    let echo = romeo.expect("</presence>").await;
    assert!(echo.contains("<priority>5</priority>"), "{echo}");
}
