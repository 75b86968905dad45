//! Memory budget checks for idle sessions: the size of a client session's
//! task future is what every connection pays for as long as it lives.
#![allow(clippy::unwrap_used)]

use std::sync::Arc;

use xmppd_c2s::{C2sContext, TlsContext};
use xmppd_core::{Config, ServerBuilder};

#[tokio::test]
async fn session_future_size() {
    xmppd_server::install_crypto_provider();
    let generated = rcgen::generate_simple_self_signed(vec!["localhost".to_owned()]).unwrap();
    let chain = vec![generated.cert.der().clone()];
    let key = rustls_pki_types::PrivateKeyDer::Pkcs8(generated.signing_key.serialize_der().into());
    let tls = TlsContext::new(chain, key, false).unwrap();
    let context = Arc::new(C2sContext { tls, sasl: xmppd_sasl::SaslConfig::with_random_secret() });
    let storage = xmppd_storage::memory::MemoryStorage::new();
    let server = ServerBuilder::new(Arc::new(Config::default()), xmppd_core::Stores::of(&storage))
        .modules(&xmppd_server::modules())
        .build()
        .ok()
        .unwrap();
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let socket = tokio::net::TcpStream::connect(listener.local_addr().unwrap()).await.unwrap();
    let future = xmppd_c2s::run(server, context, socket, false, tokio_util::sync::CancellationToken::new());
    let size = std::mem::size_of_val(&future);
    println!("c2s session future: {size} bytes");
    // Budget: stanza processing, SASL and the TLS handshake are boxed while
    // they run, so the idle task is little more than the session state.
    assert!(size <= 1536, "the c2s session future grew to {size} bytes");
}

/// Per-session structures that stay allocated while a session is idle.
#[test]
fn idle_session_structures_stay_small() {
    let parser = std::mem::size_of::<xmppd_xml::StreamParser>();
    let entry = std::mem::size_of::<xmppd_core::SessionEntry>();
    let transport = std::mem::size_of::<xmppd_c2s::transport::Transport>();
    println!("StreamParser {parser}, SessionEntry {entry}, Transport {transport}");
    assert!(parser <= 384, "StreamParser is {parser} bytes");
    assert!(entry <= 160, "SessionEntry is {entry} bytes");
    assert!(transport <= 40, "Transport is {transport} bytes (TLS state must stay boxed)");
}
