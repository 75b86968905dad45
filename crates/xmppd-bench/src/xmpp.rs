//! One XMPP client connection: TCP, STARTTLS or direct TLS, SCRAM, resource
//! binding (RFC 6120 §5–§7, XEP-0368), then stanza I/O.
//!
//! Reading is split so that scenario loops can `select!` on it: [`Conn::read_more`]
//! is one cancel-safe socket read fed into the [`StreamParser`];
//! [`Conn::poll_stanza`] hands out complete stanzas without awaiting and
//! answers what the server asks on the way (`<iq type='get'/'set'/>`, e.g.
//! XEP-0199 pings and roster pushes), so servers never wait on us.

use std::collections::HashMap;
use std::net::SocketAddr;
use std::pin::Pin;
use std::sync::Mutex;
use std::task::{Context, Poll};
use std::time::Duration;

use base64::Engine as _;
use base64::engine::general_purpose::STANDARD;
use rustls::pki_types::ServerName;
use tokio::io::{AsyncRead, AsyncReadExt as _, AsyncWrite, AsyncWriteExt as _, ReadBuf};
use tokio::net::TcpStream;
use tokio_rustls::TlsConnector;
use tokio_rustls::client::TlsStream;
use xmppd_sasl::{ClientKeys, HashAlg, ScramClient, decode_payload};
use xmppd_xml::{Element, Event, Limits, RawElement, StreamParser, escape_attr};

use crate::cli::TlsMode;
use crate::error::Error;
use crate::tls::TlsConfigs;

/// RFC 6120 namespaces.
pub const NS_CLIENT: &str = "jabber:client";
/// Stream namespace (RFC 6120 §4.8.1).
pub const NS_STREAM: &str = "http://etherx.jabber.org/streams";
const NS_TLS: &str = "urn:ietf:params:xml:ns:xmpp-tls";
const NS_SASL: &str = "urn:ietf:params:xml:ns:xmpp-sasl";
const NS_BIND: &str = "urn:ietf:params:xml:ns:xmpp-bind";
const NS_SESSION: &str = "urn:ietf:params:xml:ns:xmpp-session";
const NS_STREAMS_ERRORS: &str = "urn:ietf:params:xml:ns:xmpp-streams";
const NS_ROSTER: &str = "jabber:iq:roster";
/// XEP-0199 namespace.
pub const NS_PING: &str = "urn:xmpp:ping";

/// Bytes read per socket read.
const READ_CHUNK: usize = 4096;
/// Write buffers above this size are released after use.
const KEEP_WRITE_BUFFER: usize = 4096;

/// Derived SCRAM keys per account index, so that an account that logs in
/// again skips PBKDF2 like a real client that caches them (RFC 5802 §5.1).
#[derive(Default)]
pub struct KeyCache(Mutex<HashMap<u32, ClientKeys>>);

impl KeyCache {
    fn get(&self, account: u32) -> Option<ClientKeys> {
        self.0.lock().ok()?.get(&account).cloned()
    }

    fn put(&self, account: u32, keys: ClientKeys) {
        if let Ok(mut map) = self.0.lock() {
            map.insert(account, keys);
        }
    }
}

/// Where and how to connect, shared by every connection of a run.
pub struct Target {
    /// Server address (loopback, checked by the CLI).
    pub addr: SocketAddr,
    /// XMPP domain.
    pub domain: String,
    /// STARTTLS or direct TLS.
    pub tls: TlsMode,
    /// TLS client configurations.
    pub tls_configs: TlsConfigs,
    /// SCRAM hash.
    pub hash: HashAlg,
    /// Localpart prefix; account i is `<prefix><i>`.
    pub user_prefix: String,
    /// Password of every account.
    pub password: String,
    /// Cached SCRAM keys.
    pub keys: KeyCache,
}

impl Target {
    /// The localpart of account `index`.
    pub fn username(&self, index: u32) -> String {
        format!("{}{index}", self.user_prefix)
    }

    /// The account index of a JID `<prefix><i>@<domain>[/resource]`, if it
    /// is one of ours.
    pub fn account_of(&self, jid: &str) -> Option<u32> {
        let (bare, _) = jid.split_once('/').unwrap_or((jid, ""));
        let (local, domain) = bare.split_once('@')?;
        if !domain.eq_ignore_ascii_case(&self.domain) {
            return None;
        }
        let digits = local.strip_prefix(self.user_prefix.as_str())?;
        if digits.is_empty() || !digits.bytes().all(|byte| byte.is_ascii_digit()) {
            return None;
        }
        digits.parse().ok()
    }
}

/// Plain TCP or TLS.
enum Io {
    Plain(TcpStream),
    Tls(Box<TlsStream<TcpStream>>),
    /// Only while upgrading to TLS.
    Gone,
}

impl AsyncRead for Io {
    fn poll_read(self: Pin<&mut Self>, cx: &mut Context<'_>, buf: &mut ReadBuf<'_>) -> Poll<std::io::Result<()>> {
        match self.get_mut() {
            Io::Plain(tcp) => Pin::new(tcp).poll_read(cx, buf),
            Io::Tls(tls) => Pin::new(tls.as_mut()).poll_read(cx, buf),
            Io::Gone => Poll::Ready(Err(std::io::ErrorKind::NotConnected.into())),
        }
    }
}

impl AsyncWrite for Io {
    fn poll_write(self: Pin<&mut Self>, cx: &mut Context<'_>, buf: &[u8]) -> Poll<std::io::Result<usize>> {
        match self.get_mut() {
            Io::Plain(tcp) => Pin::new(tcp).poll_write(cx, buf),
            Io::Tls(tls) => Pin::new(tls.as_mut()).poll_write(cx, buf),
            Io::Gone => Poll::Ready(Err(std::io::ErrorKind::NotConnected.into())),
        }
    }

    fn poll_flush(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<std::io::Result<()>> {
        match self.get_mut() {
            Io::Plain(tcp) => Pin::new(tcp).poll_flush(cx),
            Io::Tls(tls) => Pin::new(tls.as_mut()).poll_flush(cx),
            Io::Gone => Poll::Ready(Ok(())),
        }
    }

    fn poll_shutdown(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<std::io::Result<()>> {
        match self.get_mut() {
            Io::Plain(tcp) => Pin::new(tcp).poll_shutdown(cx),
            Io::Tls(tls) => Pin::new(tls.as_mut()).poll_shutdown(cx),
            Io::Gone => Poll::Ready(Ok(())),
        }
    }
}

/// What a login should do after binding.
#[derive(Debug, Clone, Copy, Default)]
pub struct AfterBind {
    /// Request the roster (RFC 6121 §2.2); the outcome is returned.
    pub roster: bool,
    /// Send initial presence (RFC 6121 §4.2).
    pub presence: bool,
}

/// The result of a roster get: the item count, or the error condition.
pub type RosterOutcome = Result<usize, String>;

/// An authenticated, bound client stream.
pub struct Conn {
    io: Io,
    parser: StreamParser,
    out: Vec<u8>,
    /// The full JID the server bound (RFC 6120 §7.6.1).
    pub jid: String,
    /// Account index.
    pub account: u32,
    /// The roster get outcome, when [`AfterBind::roster`] was asked for.
    pub roster: Option<RosterOutcome>,
    next_id: u32,
}

impl Conn {
    /// Connects and logs account `account` in (RFC 6120 §5–§7), then does
    /// what `after` asks. The caller bounds the time.
    pub async fn login(target: &Target, account: u32, after: AfterBind) -> Result<Conn, Error> {
        let tcp = TcpStream::connect(target.addr).await?;
        tcp.set_nodelay(true)?;
        let mut conn = Conn {
            io: Io::Plain(tcp),
            parser: StreamParser::new(Limits::default()),
            out: Vec::new(),
            jid: String::new(),
            account,
            roster: None,
            next_id: 0,
        };
        if target.tls == TlsMode::Direct {
            conn.start_tls(target, true).await?;
        }
        let mut features = conn.open_stream(&target.domain).await?;
        if target.tls == TlsMode::Starttls {
            if features.get_child("starttls", NS_TLS).is_none() {
                return Err(Error::Protocol("the server offers no STARTTLS (RFC 6120 §5.3.1)".into()));
            }
            conn.out.extend_from_slice(b"<starttls xmlns='urn:ietf:params:xml:ns:xmpp-tls'/>");
            let reply = conn.next_element().await?;
            if reply.name() != "proceed" || reply.namespace() != NS_TLS {
                return Err(Error::Protocol(format!("STARTTLS refused: <{}/>", reply.name())));
            }
            conn.start_tls(target, false).await?;
            features = conn.open_stream(&target.domain).await?;
        }
        conn.authenticate(target, &features).await?;
        let features = conn.open_stream(&target.domain).await?;
        conn.bind(&features).await?;
        if after.roster {
            let id = conn.new_id();
            conn.out.extend_from_slice(
                format!("<iq type='get' id='{id}'><query xmlns='jabber:iq:roster'/></iq>").as_bytes(),
            );
            let reply = conn.wait_iq(&id).await?;
            conn.roster = Some(roster_outcome(&reply));
        }
        if after.presence {
            conn.out.extend_from_slice(b"<presence/>");
        }
        conn.flush().await?;
        Ok(conn)
    }

    fn new_id(&mut self) -> String {
        self.next_id += 1;
        format!("b{}", self.next_id)
    }

    async fn start_tls(&mut self, target: &Target, direct: bool) -> Result<(), Error> {
        self.flush().await?;
        let Io::Plain(tcp) = std::mem::replace(&mut self.io, Io::Gone) else {
            return Err(Error::Protocol("TLS is already active".into()));
        };
        let config = if direct { &target.tls_configs.direct } else { &target.tls_configs.starttls };
        let name = ServerName::try_from(target.domain.clone())
            .map_err(|_| Error::Setup(format!("`{}` is not a valid TLS server name", target.domain)))?;
        let tls = TlsConnector::from(config.clone()).connect(name, tcp).await?;
        self.io = Io::Tls(Box::new(tls));
        // RFC 6120 §5.4.3.3: a fresh stream over TLS.
        self.parser.reset();
        Ok(())
    }

    /// Sends a stream header and returns the `<stream:features/>` that
    /// follows the server's (RFC 6120 §4.3).
    async fn open_stream(&mut self, domain: &str) -> Result<Element, Error> {
        self.parser.reset();
        self.out.extend_from_slice(
            format!(
                "<?xml version='1.0'?><stream:stream xmlns='jabber:client' \
                 xmlns:stream='http://etherx.jabber.org/streams' to='{}' version='1.0' xml:lang='en'>",
                escape_attr(domain)
            )
            .as_bytes(),
        );
        self.flush().await?;
        loop {
            match self.next_event().await? {
                Event::StreamOpen(_) => {}
                Event::Stanza(raw) if raw.name() == "features" && raw.namespace() == NS_STREAM => {
                    return Ok(raw.parse_element()?);
                }
                Event::Stanza(raw) => return Err(unexpected(&raw, "stream features")),
                Event::StreamClose => return Err(Error::Closed),
            }
        }
    }

    /// SCRAM over SASL (RFC 6120 §6.4, RFC 5802).
    async fn authenticate(&mut self, target: &Target, features: &Element) -> Result<(), Error> {
        let mut client = ScramClient::new(target.hash, &target.username(self.account), &target.password);
        let mechanism = client.mechanism().name();
        let offered = features
            .get_child("mechanisms", NS_SASL)
            .is_some_and(|list| list.children().any(|m| m.is("mechanism", NS_SASL) && m.text().trim() == mechanism));
        if !offered {
            return Err(Error::Protocol(format!("the server does not offer {mechanism}")));
        }
        if let Some(keys) = target.keys.get(self.account) {
            client = client.with_cached_keys(keys);
        }
        let first = client.client_first()?;
        self.out.extend_from_slice(
            format!("<auth xmlns='{NS_SASL}' mechanism='{mechanism}'>{}</auth>", STANDARD.encode(first)).as_bytes(),
        );
        let mut final_sent = false;
        let mut verified = false;
        loop {
            let element = self.next_element().await?;
            if element.namespace() != NS_SASL {
                return Err(unexpected(&element, "a SASL reply"));
            }
            let payload = || -> Result<Vec<u8>, Error> {
                let element = element.parse_element()?;
                let data = decode_payload(&element.text()).map_err(|e| Error::Protocol(format!("SASL data: {e}")))?;
                Ok(data.unwrap_or_default())
            };
            match element.name() {
                "challenge" if !final_sent => {
                    let response = client.handle_server_first(&payload()?)?;
                    self.out.extend_from_slice(
                        format!("<response xmlns='{NS_SASL}'>{}</response>", STANDARD.encode(response)).as_bytes(),
                    );
                    final_sent = true;
                }
                // Servers that send the server-final-message in a challenge
                // expect an empty response (RFC 6120 §6.4.3).
                "challenge" if !verified => {
                    client.verify_server_final(&payload()?)?;
                    verified = true;
                    self.out.extend_from_slice(format!("<response xmlns='{NS_SASL}'/>").as_bytes());
                }
                "success" => {
                    let data = payload()?;
                    if !verified {
                        if data.is_empty() {
                            return Err(Error::Protocol("<success/> without the SCRAM server signature".into()));
                        }
                        client.verify_server_final(&data)?;
                    }
                    if let Some(keys) = client.keys() {
                        target.keys.put(self.account, keys.clone());
                    }
                    return Ok(());
                }
                "failure" => {
                    let element = element.parse_element()?;
                    let condition = element.children().next().map(|c| c.name().to_owned()).unwrap_or_default();
                    return Err(Error::Sasl(condition));
                }
                _ => return Err(unexpected(&element, "a SASL reply")),
            }
        }
    }

    /// Resource binding with a server-generated resource (RFC 6120 §7.6),
    /// plus the legacy session if the server insists (RFC 3921 §3, optional
    /// per RFC 6121 Appendix E).
    async fn bind(&mut self, features: &Element) -> Result<(), Error> {
        if features.get_child("bind", NS_BIND).is_none() {
            return Err(Error::Protocol("no resource binding offered after authentication".into()));
        }
        let id = self.new_id();
        self.out.extend_from_slice(format!("<iq type='set' id='{id}'><bind xmlns='{NS_BIND}'/></iq>").as_bytes());
        let reply = self.wait_iq(&id).await?.parse_element()?;
        if reply.attr("type") != Some("result") {
            return Err(Error::Protocol(format!("bind failed: {}", stanza_error_condition(&reply))));
        }
        self.jid = reply
            .get_child("bind", NS_BIND)
            .and_then(|bind| bind.get_child("jid", NS_BIND))
            .map(|jid| jid.text())
            .unwrap_or_default();
        if !self.jid.contains('/') {
            return Err(Error::Protocol("bind result without a full JID".into()));
        }
        let session_required =
            features.get_child("session", NS_SESSION).is_some_and(|session| !session.has_child("optional", NS_SESSION));
        if session_required {
            let id = self.new_id();
            self.out
                .extend_from_slice(format!("<iq type='set' id='{id}'><session xmlns='{NS_SESSION}'/></iq>").as_bytes());
            let reply = self.wait_iq(&id).await?;
            if reply.attr("type") != Some("result") {
                return Err(Error::Protocol("session establishment failed".into()));
            }
        }
        Ok(())
    }

    /// Waits for the reply to iq `id`; other stanzas are dropped.
    pub async fn wait_iq(&mut self, id: &str) -> Result<RawElement, Error> {
        loop {
            let stanza = self.next_stanza().await?;
            if stanza.name() == "iq" && stanza.attr("id") == Some(id) {
                return Ok(stanza);
            }
        }
    }

    /// Appends bytes to the write buffer (sent by [`Conn::flush`]).
    pub fn queue(&mut self, bytes: &[u8]) {
        self.out.extend_from_slice(bytes);
    }

    /// Writes the buffered output.
    pub async fn flush(&mut self) -> Result<(), Error> {
        if self.out.is_empty() {
            return Ok(());
        }
        self.io.write_all(&self.out).await?;
        self.io.flush().await?;
        self.out.clear();
        if self.out.capacity() > KEEP_WRITE_BUFFER {
            self.out = Vec::new();
        }
        Ok(())
    }

    /// One socket read into the parser. Cancel-safe: nothing is lost if the
    /// future is dropped before it completes.
    pub async fn read_more(&mut self) -> Result<(), Error> {
        let mut buf = [0u8; READ_CHUNK];
        let n = self.io.read(&mut buf).await?;
        if n == 0 {
            return Err(Error::Closed);
        }
        self.parser.feed(buf.get(..n).unwrap_or_default());
        Ok(())
    }

    /// Frees parser memory between bursts (for many idle connections).
    pub fn release_idle(&mut self) {
        self.parser.release_idle();
    }

    /// The next parsed event, reading as needed (negotiation only).
    async fn next_event(&mut self) -> Result<Event, Error> {
        loop {
            if let Some(event) = self.parser.next_event()? {
                return Ok(event);
            }
            self.flush().await?;
            self.read_more().await?;
        }
    }

    /// The next depth-1 element during negotiation; a stream error or
    /// close is an error.
    async fn next_element(&mut self) -> Result<RawElement, Error> {
        self.flush().await?;
        match self.next_event().await? {
            Event::Stanza(raw) => {
                check_stream_error(&raw)?;
                Ok(raw)
            }
            Event::StreamClose => Err(Error::Closed),
            Event::StreamOpen(_) => Err(Error::Protocol("unexpected stream header".into())),
        }
    }

    /// The next stanza already received, without waiting: messages,
    /// presence and iq results/errors. Server requests (`<iq type='get'/>`
    /// or `'set'`) are answered into the write buffer and not returned.
    pub fn poll_stanza(&mut self) -> Result<Option<RawElement>, Error> {
        loop {
            let Some(event) = self.parser.next_event()? else { return Ok(None) };
            let raw = match event {
                Event::Stanza(raw) => raw,
                Event::StreamClose => return Err(Error::Closed),
                Event::StreamOpen(_) => return Err(Error::Protocol("unexpected stream header".into())),
            };
            check_stream_error(&raw)?;
            if raw.name() == "iq" && matches!(raw.attr("type"), Some("get" | "set")) {
                self.answer_iq(&raw);
                continue;
            }
            return Ok(Some(raw));
        }
    }

    /// The next stanza, reading as needed.
    pub async fn next_stanza(&mut self) -> Result<RawElement, Error> {
        loop {
            if let Some(stanza) = self.poll_stanza()? {
                return Ok(stanza);
            }
            self.flush().await?;
            self.read_more().await?;
        }
    }

    /// Answers a request from the server: a result for XEP-0199 pings and
    /// roster pushes (RFC 6121 §2.1.6), `service-unavailable` otherwise
    /// (RFC 6120 §8.4).
    fn answer_iq(&mut self, iq: &RawElement) {
        let id = escape_attr(iq.attr("id").unwrap_or_default()).into_owned();
        let to = iq.attr("from").map(|from| format!(" to='{}'", escape_attr(from))).unwrap_or_default();
        let payload_ns = iq.parse_element().ok().and_then(|e| e.children().next().map(|c| c.ns().to_owned()));
        let known = matches!(payload_ns.as_deref(), Some(NS_PING | NS_ROSTER));
        let reply = if known {
            format!("<iq type='result' id='{id}'{to}/>")
        } else {
            format!(
                "<iq type='error' id='{id}'{to}><error type='cancel'>\
                 <service-unavailable xmlns='urn:ietf:params:xml:ns:xmpp-stanzas'/></error></iq>"
            )
        };
        self.out.extend_from_slice(reply.as_bytes());
    }

    /// Closes the stream (RFC 6120 §4.4): our `</stream:stream>`, then wait
    /// (at most `limit`) for the server's, then close the transport.
    pub async fn close(mut self, limit: Duration) {
        self.out.extend_from_slice(b"</stream:stream>");
        let closing = async {
            self.flush().await?;
            loop {
                match self.poll_stanza() {
                    Ok(Some(_)) => continue,
                    Ok(None) => {}
                    Err(_) => break,
                }
                // Answers to server requests are not needed any more.
                self.out.clear();
                self.read_more().await?;
            }
            self.io.shutdown().await?;
            Ok::<(), Error>(())
        };
        let _ = tokio::time::timeout(limit, closing).await;
    }
}

/// `Err` for `<stream:error/>` (RFC 6120 §4.9.3).
fn check_stream_error(raw: &RawElement) -> Result<(), Error> {
    if raw.name() != "error" || raw.namespace() != NS_STREAM {
        return Ok(());
    }
    let element = raw.parse_element()?;
    let condition = element
        .children()
        .find(|child| child.ns() == NS_STREAMS_ERRORS && child.name() != "text")
        .map(|child| child.name().to_owned())
        .unwrap_or_else(|| "undefined-condition".into());
    let text = element.get_child("text", NS_STREAMS_ERRORS).map(|text| text.text());
    Err(Error::Stream { condition, text })
}

fn unexpected(raw: &RawElement, wanted: &str) -> Error {
    Error::Protocol(format!("expected {wanted}, got <{} xmlns='{}'>", raw.name(), raw.namespace()))
}

/// The defined condition of a stanza error (RFC 6120 §8.3), or "?".
pub fn stanza_error_condition(stanza: &Element) -> String {
    stanza
        .get_child("error", NS_CLIENT)
        .and_then(|error| {
            error.children().find(|c| c.ns() == "urn:ietf:params:xml:ns:xmpp-stanzas" && c.name() != "text")
        })
        .map(|condition| condition.name().to_owned())
        .unwrap_or_else(|| "?".into())
}

fn roster_outcome(reply: &RawElement) -> RosterOutcome {
    let element = reply.parse_element().map_err(|e| e.to_string())?;
    if element.attr("type") != Some("result") {
        return Err(stanza_error_condition(&element));
    }
    Ok(element
        .get_child("query", NS_ROSTER)
        .map(|query| query.children().filter(|item| item.is("item", NS_ROSTER)).count())
        .unwrap_or(0))
}

/// A target for unit tests of pure helpers.
#[cfg(test)]
pub fn test_target(prefix: &str) -> std::sync::Arc<Target> {
    #[allow(clippy::unwrap_used)]
    std::sync::Arc::new(Target {
        addr: "127.0.0.1:5222".parse().unwrap(),
        domain: "localhost".into(),
        tls: TlsMode::Starttls,
        tls_configs: TlsConfigs::new().unwrap(),
        hash: HashAlg::Sha1,
        user_prefix: prefix.into(),
        password: "pw".into(),
        keys: KeyCache::default(),
    })
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;

    #[test]
    fn account_indexes_from_jids() {
        let target = test_target("fan");
        assert_eq!(target.username(7), "fan7");
        assert_eq!(target.account_of("fan7@localhost/abc"), Some(7));
        assert_eq!(target.account_of("fan2099@LOCALHOST"), Some(2099));
        assert_eq!(target.account_of("fan@localhost/x"), None);
        assert_eq!(target.account_of("fan1x@localhost/x"), None);
        assert_eq!(target.account_of("bench1@localhost/x"), None);
        assert_eq!(target.account_of("fan1@example.org/x"), None);
        assert_eq!(target.account_of("localhost"), None);
    }

    #[test]
    fn roster_results_and_errors() {
        let limits = Limits::default();
        let result = RawElement::from_fragment(
            b"<iq type='result' id='r'><query xmlns='jabber:iq:roster'><item jid='a@x'/><item jid='b@x'/></query></iq>",
            NS_CLIENT,
            &limits,
        )
        .unwrap();
        assert_eq!(roster_outcome(&result), Ok(2));
        let error = RawElement::from_fragment(
            b"<iq type='error' id='r'><error type='cancel'><service-unavailable xmlns='urn:ietf:params:xml:ns:xmpp-stanzas'/></error></iq>",
            NS_CLIENT,
            &limits,
        )
        .unwrap();
        assert_eq!(roster_outcome(&error), Err("service-unavailable".into()));
    }

    #[test]
    fn stream_errors_are_reported_with_condition_and_text() {
        let raw = RawElement::from_fragment(
            b"<error xmlns='http://etherx.jabber.org/streams'><policy-violation xmlns='urn:ietf:params:xml:ns:xmpp-streams'/><text xmlns='urn:ietf:params:xml:ns:xmpp-streams'>slow down</text></error>",
            NS_CLIENT,
            &Limits::default(),
        )
        .unwrap();
        let error = check_stream_error(&raw).unwrap_err();
        assert_eq!(error.to_string(), "stream error from the server: policy-violation (slow down)");
    }
}
