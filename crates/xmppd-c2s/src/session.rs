//! One client session from accept to close.
//!
//! The loop: parse what arrived, act on each event (negotiation through the
//! sans-I/O [`Phase`] rules, stanzas through [`Server::route`]), write the
//! batch of replies, then wait for the next input, a queued delivery, a
//! deadline or shutdown. Between those, the session holds no read buffer,
//! an empty write buffer and an empty parser buffer.

use std::sync::Arc;
use std::time::Duration;

use rand::Rng as _;
use tokio::net::TcpStream;
use tokio::time::{Instant, sleep_until, timeout};
use tokio_util::sync::CancellationToken;
use xmppd_core::registry::BindError;
use xmppd_core::{Outbound, Server, SessionEntry, Stanza, StanzaReject};
use xmppd_jid::{BareJid, DomainJid};
use xmppd_proto::{StanzaErrorCondition, StreamErrorCondition as Cond};
use xmppd_sasl::{
    ChannelBindingData, DowngradeInfo, HashAlg, Mechanism, SaslFailure, ScramCredentials, ServerSession, Step,
    advertised_channel_binding_types,
};
use xmppd_stream::negotiation::{self, Command, FeatureSet, Phase};
use xmppd_stream::{check_c2s_header, response_header};
use xmppd_xml::{Event, Limits, RawElement, StreamHeader, StreamParser};

use crate::C2sContext;
use crate::transport::Transport;

/// What the loop does after a batch of events.
enum Flow {
    Continue,
    StartTls,
    Close,
}

/// Serves one accepted TCP connection until it closes.
/// `direct_tls` selects XEP-0368 direct TLS instead of STARTTLS.
pub async fn run(
    server: Arc<Server>,
    context: Arc<C2sContext>,
    socket: TcpStream,
    direct_tls: bool,
    shutdown: CancellationToken,
) {
    socket.set_nodelay(true).ok();
    let config = &server.config().c2s;
    let handshake = Duration::from_secs(config.handshake_timeout_secs);
    let mut transport = Transport::Plain(socket);
    if direct_tls {
        match Box::pin(timeout(handshake, transport.start_tls(&context.tls.direct, &context.tls.exporter_secrets)))
            .await
        {
            Ok(Ok(())) => {}
            Ok(Err(e)) => {
                tracing::debug!(error = %e, "direct TLS handshake failed");
                return;
            }
            Err(_) => return,
        }
    }
    let limits = Limits {
        max_stanza_bytes: config.max_stanza_bytes,
        max_depth: config.max_depth,
        max_attributes: config.max_attributes,
        max_namespace_decls: config.max_namespace_declarations,
        ..Limits::default()
    };
    let phase = if transport.is_tls() || !config.require_encryption { Phase::Sasl } else { Phase::Tls };
    let mut session = Session {
        deadline: Instant::now() + handshake,
        server,
        context,
        transport,
        parser: StreamParser::new(limits),
        out: Vec::new(),
        phase,
        header_sent: false,
        host: None,
        username: None,
        sasl: None,
        offered: Vec::new(),
        auth_failures: 0,
        pre_auth_bytes: 0,
        entry: None,
        ping_outstanding: false,
    };
    session.run(shutdown).await;
    if let Some(entry) = session.entry.take() {
        // RFC 6121 §4.5.2: however the session ended (even an abrupt TCP
        // loss), modules send unavailable presence on its behalf.
        let server = session.server.clone();
        drop(session);
        Box::pin(server.session_closed(&entry)).await;
    }
}

struct Session {
    server: Arc<Server>,
    context: Arc<C2sContext>,
    transport: Transport,
    parser: StreamParser,
    /// Replies produced by one batch of events, written together.
    out: Vec<u8>,
    phase: Phase,
    /// Whether our response header for the current stream went out.
    header_sent: bool,
    host: Option<DomainJid>,
    /// The authenticated localpart.
    username: Option<String>,
    /// Boxed: only present during authentication, so an idle session does
    /// not carry its size.
    sasl: Option<Box<ServerSession>>,
    /// Mechanisms advertised on this stream (XEP-0474 needs the list).
    offered: Vec<Mechanism>,
    auth_failures: u32,
    pre_auth_bytes: usize,
    entry: Option<Arc<SessionEntry>>,
    /// Handshake deadline, then idle deadline, then ping deadline.
    deadline: Instant,
    /// The server pinged the idle client and waits for any sign of life.
    ping_outstanding: bool,
}

impl Session {
    async fn run(&mut self, shutdown: CancellationToken) {
        let mut drained = Vec::new();
        loop {
            // Boxed so that the (large) state of stanza processing and
            // routing is allocated only while it runs, not carried by every
            // idle session's task.
            let flow = Box::pin(self.process_input()).await;
            if !self.flush().await {
                break;
            }
            match flow {
                Flow::Continue => {}
                Flow::Close => break,
                Flow::StartTls => {
                    let context = self.context.clone();
                    let limit = Duration::from_secs(self.server.config().c2s.handshake_timeout_secs);
                    match Box::pin(timeout(
                        limit,
                        self.transport.start_tls(&context.tls.starttls, &context.tls.exporter_secrets),
                    ))
                    .await
                    {
                        Ok(Ok(())) => {
                            // RFC 6120 §5.4.3.3: a fresh stream over TLS.
                            self.parser.reset();
                            self.header_sent = false;
                            self.phase = Phase::Sasl;
                            continue;
                        }
                        _ => break,
                    }
                }
            }
            self.parser.release_idle();
            // Idle sessions keep no write buffer: the next batch allocates
            // exactly what it needs.
            if self.out.capacity() > 0 {
                self.out = Vec::new();
            }
            let entry = self.entry.clone();
            tokio::select! {
                read = self.transport.read_into(&mut self.parser) => match read {
                    Ok(0) | Err(_) => break,
                    Ok(n) => {
                        if self.phase == Phase::Established {
                            let idle = self.server.config().c2s.idle_timeout_secs;
                            self.deadline = Instant::now() + Duration::from_secs(idle);
                            self.ping_outstanding = false;
                        } else {
                            self.pre_auth_bytes += n;
                        }
                    }
                },
                () = wait_queue(entry.as_deref()) => {
                    if let Some(entry) = &entry {
                        entry.queue.drain_into(&mut drained);
                        let mut close = false;
                        for item in drained.drain(..) {
                            match item {
                                Outbound::Stanza(bytes) => self.out.extend_from_slice(&bytes),
                                Outbound::Close(condition, text) => {
                                    self.stream_error(condition, text.unwrap_or(""));
                                    close = true;
                                    break;
                                }
                            }
                        }
                        drained = Vec::new();
                        if close {
                            self.flush().await;
                            break;
                        }
                    }
                }
                () = sleep_until(self.deadline) => {
                    if self.phase == Phase::Established && !self.ping_outstanding {
                        // XEP-0199 §4.1: is the idle client still there?
                        self.send_ping();
                        continue;
                    }
                    self.stream_error(Cond::ConnectionTimeout, "the connection was idle for too long");
                    self.flush().await;
                    break;
                }
                () = shutdown.cancelled() => {
                    self.stream_error(Cond::SystemShutdown, "the server is shutting down");
                    self.flush().await;
                    break;
                }
            }
        }
        if let Some(entry) = &self.entry {
            entry.queue.close();
        }
        timeout(Duration::from_secs(2), self.transport.shutdown()).await.ok();
    }

    /// Pings the idle client (XEP-0199 §4.1) and gives it
    /// `ping_timeout_secs` to show a sign of life.
    fn send_ping(&mut self) {
        let (Some(entry), Some(host)) = (&self.entry, &self.host) else { return };
        let mut ping = Vec::with_capacity(160);
        ping.extend_from_slice(b"<iq type='get' id='xmppd-ping' from='");
        xmppd_xml::escape_attr_into(host.as_str(), &mut ping);
        ping.extend_from_slice(b"' to='");
        xmppd_xml::escape_attr_into(entry.jid().as_str(), &mut ping);
        ping.extend_from_slice(b"'><ping xmlns='urn:xmpp:ping'/></iq>");
        self.out.extend_from_slice(&ping);
        self.ping_outstanding = true;
        let limit = self.server.config().c2s.ping_timeout_secs;
        self.deadline = Instant::now() + Duration::from_secs(limit);
    }

    /// Writes the pending batch; false when the peer is gone.
    async fn flush(&mut self) -> bool {
        if self.out.is_empty() {
            return true;
        }
        let ok = self.transport.send(&self.out).await.is_ok();
        self.out.clear();
        ok
    }

    /// Acts on every complete event the parser holds.
    async fn process_input(&mut self) -> Flow {
        if self.phase != Phase::Established {
            let limit = self.server.config().c2s.max_pre_auth_bytes;
            if self.pre_auth_bytes > limit {
                return self.stream_error(Cond::PolicyViolation, "too much data before authentication");
            }
        }
        loop {
            let event = match self.parser.next_event() {
                Ok(Some(event)) => event,
                Ok(None) => return Flow::Continue,
                Err(error) => {
                    let condition = Cond::from_name(error.condition()).unwrap_or(Cond::NotWellFormed);
                    return self.stream_error(condition, error.text());
                }
            };
            let flow = match event {
                Event::StreamOpen(header) => self.on_header(&header),
                Event::Stanza(raw) => self.on_element(raw).await,
                Event::StreamClose => {
                    // RFC 6120 §4.4: answer with our closing tag, then close.
                    self.out.extend_from_slice(b"</stream:stream>");
                    Flow::Close
                }
            };
            if !matches!(flow, Flow::Continue) {
                return flow;
            }
        }
    }

    /// Sends `<stream:error/>` (RFC 6120 §4.9), preceded by our stream
    /// header if none was sent on this stream yet (§4.9.1.2).
    fn stream_error(&mut self, condition: Cond, text: &str) -> Flow {
        if !self.header_sent {
            let from = self.host.as_ref().map(DomainJid::as_str);
            self.out.extend_from_slice(&response_header(&stream_id(), from, None, true));
            self.header_sent = true;
        }
        let text = (!text.is_empty()).then_some(text);
        self.out.extend_from_slice(&condition.to_closing_bytes(text));
        Flow::Close
    }

    fn on_header(&mut self, header: &StreamHeader) -> Flow {
        let server = self.server.clone();
        let info = match check_c2s_header(header, |domain| server.serves(domain)) {
            Ok(info) => info,
            Err(error) => return self.stream_error(error.condition, error.text),
        };
        if self.host.as_ref().is_some_and(|host| *host != info.to) {
            // A restarted stream must stay on the same host (§4.3.3).
            return self.stream_error(Cond::HostUnknown, "the host changed on a restarted stream");
        }
        // §4.7.2: echo the client's 'from' as our 'to'.
        let to = info.from.as_ref().map(|from| from.as_str());
        self.out.extend_from_slice(&response_header(&stream_id(), Some(info.to.as_str()), to, true));
        self.header_sent = true;
        self.host = Some(info.to);
        let features = self.features();
        self.out.extend_from_slice(&features.to_bytes());
        Flow::Continue
    }

    /// The features for the current phase (RFC 6120 §4.3.2).
    fn features(&mut self) -> FeatureSet {
        let config = &self.server.config().c2s;
        let tls_active = self.transport.is_tls();
        let mut features = FeatureSet::default();
        match self.phase {
            Phase::Tls => {
                features.starttls = true;
                features.starttls_required = true;
            }
            Phase::Sasl => {
                features.starttls = !tls_active;
                let cb = self.channel_binding();
                let mut mechanisms = Vec::new();
                if tls_active && (cb.tls_exporter.is_some() || cb.tls_server_end_point.is_some()) {
                    mechanisms.extend([
                        Mechanism::ScramSha512Plus,
                        Mechanism::ScramSha256Plus,
                        Mechanism::ScramSha1Plus,
                    ]);
                }
                mechanisms.extend([Mechanism::ScramSha512, Mechanism::ScramSha256, Mechanism::ScramSha1]);
                if tls_active && config.allow_plain {
                    mechanisms.push(Mechanism::Plain);
                }
                features.channel_bindings = advertised_channel_binding_types(&cb);
                features.mechanisms = mechanisms.clone();
                self.offered = mechanisms;
                // Pre-authentication services (XEP-0077 in-band
                // registration) only over TLS: XEP-0077 §11 calls them
                // insecure on an unprotected channel.
                if let (true, Some(host)) = (tls_active, &self.host) {
                    features.extra = self.server.pre_auth_stream_features(host).to_vec();
                }
            }
            Phase::Bind => {
                features.bind = true;
                if let Some(host) = &self.host {
                    features.extra = self.server.stream_features(host).to_vec();
                }
            }
            Phase::Established => {}
        }
        features
    }

    fn channel_binding(&self) -> ChannelBindingData {
        self.transport.channel_binding(&self.context.tls.server_end_point)
    }

    async fn on_element(&mut self, raw: RawElement) -> Flow {
        if self.phase == Phase::Established {
            return self.on_stanza(&raw).await;
        }
        let element = match raw.parse_element() {
            Ok(element) => element,
            Err(error) => {
                let condition = Cond::from_name(error.condition()).unwrap_or(Cond::NotWellFormed);
                return self.stream_error(condition, error.text());
            }
        };
        // An IQ before authentication, over TLS: a module may serve it
        // (XEP-0077 §3.1 registration); otherwise it stays a stanza before
        // authentication, which `classify` refuses.
        if self.phase == Phase::Sasl
            && self.transport.is_tls()
            && element.is("iq", xmppd_proto::ns::CLIENT)
            && let Some(host) = self.host.clone()
        {
            let peer_ip = self.transport.peer_ip();
            if let Some(reply) = self.server.pre_auth_iq(&host, peer_ip, &element).await {
                reply.write_to(&mut self.out, xmppd_proto::ns::CLIENT);
                return Flow::Continue;
            }
        }
        let command = match self.phase.classify(&element, !self.transport.is_tls()) {
            Ok(command) => command,
            Err(error) => return self.stream_error(error.condition, error.text),
        };
        match command {
            Command::StartTls => {
                // RFC 6120 §5.4.2.3: <proceed/>, then TLS. Anything the
                // client pipelined after <starttls/> would be plaintext
                // injected into the TLS session: refuse it.
                if self.parser.buffered_len() > 0 {
                    return self.stream_error(Cond::PolicyViolation, "data after <starttls/>");
                }
                self.out.extend_from_slice(b"<proceed xmlns='urn:ietf:params:xml:ns:xmpp-tls'/>");
                Flow::StartTls
            }
            Command::SaslAuth { mechanism, initial_response } => self.on_auth(mechanism, initial_response).await,
            Command::SaslResponse(data) => match self.sasl.take() {
                Some(mut sasl) => {
                    let step = sasl.step(&data);
                    self.on_sasl_step(sasl, step).await
                }
                None => self.sasl_failed(SaslFailure::MalformedRequest, Some("no authentication in progress")),
            },
            Command::SaslAbort => {
                self.sasl = None;
                self.sasl_failed(SaslFailure::Aborted, None)
            }
            Command::SaslBadEncoding => {
                self.sasl = None;
                self.sasl_failed(SaslFailure::IncorrectEncoding, None)
            }
            Command::Bind { id, request } => {
                let flow = self.on_bind(&id, request.resource);
                if let Some(entry) = self.entry.clone() {
                    self.server.session_bound(&entry).await;
                }
                flow
            }
            Command::LegacySession { id } => {
                self.out.extend_from_slice(&negotiation::iq_result(&id));
                Flow::Continue
            }
            Command::UnexpectedIq { id } => {
                self.out.extend_from_slice(&negotiation::iq_error(
                    &id,
                    StanzaErrorCondition::NotAllowed,
                    Some("bind a resource first"),
                ));
                Flow::Continue
            }
        }
    }

    async fn on_auth(&mut self, mechanism: Option<Mechanism>, initial_response: Option<Vec<u8>>) -> Flow {
        if self.phase == Phase::Tls {
            // RFC 6120 §6.4.? / §5.3.1: TLS is mandatory here.
            return self.sasl_failed(SaslFailure::EncryptionRequired, None);
        }
        let Some(mechanism) = mechanism.filter(|m| self.offered.contains(m)) else {
            return self.sasl_failed(SaslFailure::InvalidMechanism, None);
        };
        let channel_binding = self.channel_binding();
        let downgrade =
            DowngradeInfo::from_advertised(&self.offered, &advertised_channel_binding_types(&channel_binding));
        let (sasl, step) = ServerSession::start(
            &self.context.sasl,
            mechanism,
            channel_binding,
            downgrade,
            initial_response.as_deref(),
        );
        self.on_sasl_step(Box::new(sasl), step).await
    }

    /// Drives SASL steps until one needs the client again (RFC 6120 §6.4).
    async fn on_sasl_step(&mut self, mut sasl: Box<ServerSession>, mut step: Step) -> Flow {
        loop {
            match step {
                Step::NeedCredentials { authcid, .. } => {
                    let credentials = self.lookup_credentials(&authcid, sasl.mechanism()).await;
                    step = sasl.provide_credentials(credentials);
                }
                Step::Challenge(data) => {
                    self.out.extend_from_slice(&negotiation::sasl_challenge(&data));
                    self.sasl = Some(sasl);
                    return Flow::Continue;
                }
                Step::Success { authcid, authzid, additional_data } => {
                    return self.on_authenticated(&authcid, authzid.as_deref(), &additional_data);
                }
                Step::Failure(failure) => return self.sasl_failed(failure, None),
            }
        }
    }

    async fn lookup_credentials(&self, authcid: &str, mechanism: Mechanism) -> Option<ScramCredentials> {
        let host = self.host.as_ref()?;
        let username = xmppd_jid::nodeprep(authcid).ok()?;
        // PLAIN is verified against the SCRAM-SHA-256 credential.
        let hash = mechanism.hash().unwrap_or(HashAlg::Sha256);
        let stored = self.server.accounts().get_credential(host.as_str(), &username, hash.name()).await.ok()??;
        Some(ScramCredentials {
            hash,
            salt: stored.salt,
            iterations: stored.iterations,
            stored_key: stored.stored_key,
            server_key: stored.server_key,
        })
    }

    /// RFC 6120 §6.4.6: success; the authzid, if any, must be the account's
    /// own bare JID (§6.4.6 / invalid-authzid).
    fn on_authenticated(&mut self, authcid: &str, authzid: Option<&str>, additional: &[u8]) -> Flow {
        let (Some(host), Ok(username)) = (self.host.clone(), xmppd_jid::nodeprep(authcid)) else {
            return self.sasl_failed(SaslFailure::NotAuthorized, None);
        };
        let Ok(bare) = BareJid::from_parts(Some(&username), host.as_str()) else {
            return self.sasl_failed(SaslFailure::NotAuthorized, None);
        };
        if let Some(authzid) = authzid.filter(|a| !a.is_empty())
            && authzid.parse::<BareJid>().ok().as_ref() != Some(&bare)
        {
            return self.sasl_failed(SaslFailure::InvalidAuthzid, None);
        }
        self.out.extend_from_slice(&negotiation::sasl_success(additional));
        tracing::info!(jid = %bare, "authenticated");
        self.username = Some(username.into_owned());
        // §6.4.6: the client restarts the stream; the parser keeps any
        // bytes the client pipelined after our <success/>.
        self.parser.reset_keep_buffered();
        self.header_sent = false;
        self.phase = Phase::Bind;
        self.offered = Vec::new();
        Flow::Continue
    }

    fn sasl_failed(&mut self, failure: SaslFailure, text: Option<&str>) -> Flow {
        self.sasl = None;
        self.out.extend_from_slice(&negotiation::sasl_failure(failure, text));
        if failure == SaslFailure::Aborted {
            return Flow::Continue;
        }
        self.auth_failures += 1;
        // RFC 6120 §6.4.5: a configurable number of retries, then close.
        if self.auth_failures >= self.server.config().c2s.max_auth_failures {
            return self.stream_error(Cond::PolicyViolation, "too many failed authentication attempts");
        }
        Flow::Continue
    }

    /// RFC 6120 §7.6: bind the requested or a generated resource.
    fn on_bind(&mut self, id: &str, resource: Option<String>) -> Flow {
        let (Some(host), Some(username)) = (&self.host, &self.username) else {
            return self.stream_error(Cond::NotAuthorized, "not authenticated");
        };
        let Ok(bare) = BareJid::from_parts(Some(username), host.as_str()) else {
            return self.stream_error(Cond::InternalServerError, "invalid account JID");
        };
        let resource = match resource.as_deref().map(xmppd_jid::resourceprep) {
            None => None,
            Some(Ok(prepared)) => Some(prepared.into_owned()),
            Some(Err(_)) => {
                // §7.7.2.1: a resource that violates the profile.
                self.out.extend_from_slice(&negotiation::iq_error(id, StanzaErrorCondition::BadRequest, None));
                return Flow::Continue;
            }
        };
        let policy = self.server.config().c2s.resource_conflict;
        match self.server.sessions().bind(&bare, resource.as_deref(), policy) {
            Ok(entry) => {
                self.out.extend_from_slice(&negotiation::bind_result(id, entry.jid().as_str()));
                tracing::debug!(jid = %entry.jid(), "bound");
                self.entry = Some(entry);
                self.phase = Phase::Established;
                let idle = self.server.config().c2s.idle_timeout_secs;
                self.deadline = Instant::now() + Duration::from_secs(idle);
                Flow::Continue
            }
            Err(BindError::Conflict) => {
                self.out.extend_from_slice(&negotiation::iq_error(id, StanzaErrorCondition::Conflict, None));
                Flow::Continue
            }
            Err(_) => {
                self.out.extend_from_slice(&negotiation::iq_error(id, StanzaErrorCondition::ResourceConstraint, None));
                Flow::Continue
            }
        }
    }

    /// A stanza from a bound client (RFC 6120 §8): stamp, check, route.
    async fn on_stanza(&mut self, raw: &RawElement) -> Flow {
        let Some(entry) = self.entry.clone() else {
            return self.stream_error(Cond::NotAuthorized, "no bound resource");
        };
        match Stanza::from_client(raw, entry.jid()) {
            Ok(stanza) => {
                self.server.submit(stanza).await;
                Flow::Continue
            }
            Err(StanzaReject::InvalidFrom) => {
                self.stream_error(Cond::InvalidFrom, "the 'from' address is not this session's")
            }
            Err(StanzaReject::UnsupportedStanzaType) => {
                self.stream_error(Cond::UnsupportedStanzaType, "only message, presence and iq are accepted")
            }
            Err(StanzaReject::Bounce(reply)) => {
                if let Some(reply) = reply {
                    self.out.extend_from_slice(&reply);
                }
                Flow::Continue
            }
        }
    }
}

async fn wait_queue(entry: Option<&SessionEntry>) {
    match entry {
        Some(entry) => entry.queue.wait().await,
        None => std::future::pending().await,
    }
}

/// A fresh stream id (RFC 6120 §4.7.3: unique and unpredictable).
fn stream_id() -> String {
    let value: u128 = rand::rng().random();
    format!("{value:032x}")
}
