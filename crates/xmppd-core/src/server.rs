//! The server kernel and its one routing entry point, [`Server::route`].
//!
//! The decision table follows RFC 6120 §10 and RFC 6121 §8.5; it is written
//! up in `docs/design/routing.md`.

use std::collections::HashMap;
use std::sync::Arc;

use xmppd_jid::{BareJid, DomainJid, FullJid, Jid};
use xmppd_proto::{StanzaErrorCondition, StreamErrorCondition};
use xmppd_storage::{AuthStore, KeyValueStore};

use crate::CoreError;
use crate::config::Config;
use crate::module::{HostRegistrations, IqRequest, ModuleContext, ModuleDef, Scope};
use crate::queue::{Outbound, PushError};
use crate::registry::{SessionEntry, SessionRegistry};
use crate::stanza::{IqType, Stanza, StanzaKind};

/// Shared server state: hosts, sessions, storage, module registrations.
pub struct Server {
    config: Arc<Config>,
    hosts: HashMap<DomainJid, HostRegistrations>,
    sessions: SessionRegistry,
    accounts: Arc<dyn AuthStore>,
    kv: Arc<dyn KeyValueStore>,
}

/// Assembles a [`Server`].
pub struct ServerBuilder {
    config: Arc<Config>,
    accounts: Arc<dyn AuthStore>,
    kv: Arc<dyn KeyValueStore>,
    modules: Vec<&'static ModuleDef>,
}

impl ServerBuilder {
    /// Starts a builder with the validated config and storage.
    pub fn new(config: Arc<Config>, accounts: Arc<dyn AuthStore>, kv: Arc<dyn KeyValueStore>) -> Self {
        ServerBuilder { config, accounts, kv, modules: Vec::new() }
    }

    /// Makes modules available; `[modules] enabled` picks which ones run.
    pub fn modules(mut self, modules: &[&'static ModuleDef]) -> Self {
        self.modules.extend_from_slice(modules);
        self
    }

    /// Starts every enabled module on every host and returns the server.
    /// All module errors are collected, not just the first.
    pub fn build(self) -> Result<Arc<Server>, Vec<CoreError>> {
        let mut errors = Vec::new();
        let enabled = &self.config.modules.enabled;
        for name in enabled {
            if !self.modules.iter().any(|m| m.name == name) {
                errors.push(CoreError::UnknownModule(name.clone()));
            }
        }
        let mut hosts = HashMap::new();
        for host in &self.config.server.hosts {
            let Ok(domain) = host.parse::<DomainJid>() else { continue };
            let mut registrations = HostRegistrations::default();
            for module in self.modules.iter().filter(|m| enabled.iter().any(|e| e == m.name)) {
                let mut ctx = ModuleContext {
                    module: module.name,
                    host: &domain,
                    config: self.config.modules.settings.get(module.name),
                    registrations: &mut registrations,
                };
                if let Err(reason) = (module.start)(&mut ctx) {
                    errors.push(CoreError::ModuleStart { module: module.name, reason });
                }
            }
            hosts.insert(domain, registrations);
        }
        if !errors.is_empty() {
            return Err(errors);
        }
        let limits = &self.config.c2s;
        Ok(Arc::new(Server {
            sessions: SessionRegistry::new(limits.max_queued_stanzas, limits.max_resources_per_account),
            config: self.config,
            hosts,
            accounts: self.accounts,
            kv: self.kv,
        }))
    }
}

impl Server {
    /// The validated configuration.
    pub fn config(&self) -> &Config {
        &self.config
    }

    /// Whether `domain` is one of our virtual hosts.
    pub fn serves(&self, domain: &DomainJid) -> bool {
        self.hosts.contains_key(domain)
    }

    /// Whether a domain string names one of our hosts.
    pub fn serves_domain(&self, domain: &str) -> bool {
        self.hosts.keys().any(|d| d.as_str() == domain)
    }

    /// The session registry.
    pub fn sessions(&self) -> &SessionRegistry {
        &self.sessions
    }

    /// Account storage.
    pub fn accounts(&self) -> &Arc<dyn AuthStore> {
        &self.accounts
    }

    /// Generic per-user key/value storage for modules.
    pub fn kv(&self) -> &Arc<dyn KeyValueStore> {
        &self.kv
    }

    /// The disco#info features registered on a host, sorted.
    pub fn disco_features(&self, host: &DomainJid) -> Vec<&'static str> {
        self.hosts.get(host).map(|h| h.disco_features.iter().copied().collect()).unwrap_or_default()
    }

    /// The single routing entry point: every stanza, from any session or
    /// module, goes through here (RFC 6120 §10, RFC 6121 §8).
    pub async fn route(self: &Arc<Self>, stanza: Stanza) {
        let to = match stanza.to() {
            // §10.3: no 'to' means the sender's own account.
            None => Jid::from(stanza.from().to_bare()),
            Some(to) => to.clone(),
        };
        let domain = to.to_domain_jid();
        if !self.hosts.contains_key(&domain) {
            // Federation is not available yet: RFC 6120 §8.3.3.16.
            self.bounce(&stanza, StanzaErrorCondition::RemoteServerNotFound, Some("no route to that domain"));
            return;
        }
        match to.node() {
            None => self.route_to_host(&domain, stanza, &to).await,
            Some(_) => match to.clone().try_into_full() {
                Ok(full) => self.route_to_full(stanza, &full).await,
                Err(bare) => self.route_to_bare(stanza, &bare).await,
            },
        }
    }

    /// RFC 6120 §10.4: stanzas addressed to the server itself.
    async fn route_to_host(self: &Arc<Self>, domain: &DomainJid, stanza: Stanza, to: &Jid) {
        if to.resource().is_some() {
            // A domain/resource JID: no such entity on a plain host.
            self.unroutable(&stanza);
            return;
        }
        match stanza.kind() {
            StanzaKind::Iq => self.dispatch_iq(domain, Scope::Host, stanza).await,
            // Presence and messages to the bare host are consumed (§10.4.1/2).
            StanzaKind::Message | StanzaKind::Presence => {}
        }
    }

    /// RFC 6121 §8.5.2: local bare JID.
    async fn route_to_bare(self: &Arc<Self>, stanza: Stanza, bare: &BareJid) {
        let domain = bare.to_domain_jid();
        if stanza.kind() == StanzaKind::Iq {
            if !self.account_exists(bare).await {
                self.unroutable(&stanza);
                return;
            }
            self.dispatch_iq(&domain, Scope::Account, stanza).await;
            return;
        }
        if stanza.kind() == StanzaKind::Presence && stanza.to().is_none() {
            self.update_own_presence(&stanza);
            return;
        }
        let sessions = self.sessions.sessions_of(bare);
        let available: Vec<&Arc<SessionEntry>> = sessions.iter().filter(|s| s.is_available()).collect();
        match stanza.kind() {
            StanzaKind::Presence => {
                // §8.5.2.1.2/§8.5.2.2.2 (simplified until RFC 6121 presence
                // handling lands): deliver to every available resource.
                for session in available {
                    self.push(session, &stanza);
                }
            }
            StanzaKind::Message => {
                let message_type = stanza.stanza_type().unwrap_or("normal");
                // §8.5.2.1.1: normal/chat/headline go to the non-negative
                // highest-priority resources; groupchat is refused; errors
                // are dropped.
                let top = available.iter().map(|s| s.priority()).filter(|p| *p >= 0).max();
                match (message_type, top) {
                    ("error", _) => {}
                    ("groupchat", _) => {
                        self.bounce(&stanza, StanzaErrorCondition::ServiceUnavailable, None);
                    }
                    (_, Some(top)) => {
                        for session in available.iter().filter(|s| s.priority() == top) {
                            self.push(session, &stanza);
                        }
                    }
                    ("headline", None) => {}
                    (_, None) => {
                        // §8.5.2.2.1: no available resource (offline storage
                        // is a module's job) or §8.5.1: no such user.
                        self.unroutable(&stanza);
                    }
                }
            }
            StanzaKind::Iq => {}
        }
    }

    /// RFC 6121 §8.5.3: local full JID.
    async fn route_to_full(self: &Arc<Self>, stanza: Stanza, full: &FullJid) {
        if let Some(session) = self.sessions.get(full) {
            self.push(&session, &stanza);
            return;
        }
        // §8.5.3.2: no such resource.
        match (stanza.kind(), stanza.stanza_type().unwrap_or("")) {
            (StanzaKind::Message, "groupchat" | "error") => {
                if stanza.stanza_type() == Some("groupchat") {
                    self.bounce(&stanza, StanzaErrorCondition::ServiceUnavailable, None);
                }
            }
            (StanzaKind::Message, _) => {
                // §8.5.3.2.1: treat as addressed to the bare JID.
                self.route_to_bare(stanza, &full.to_bare()).await;
            }
            (StanzaKind::Presence, _) => {}
            (StanzaKind::Iq, _) => self.unroutable(&stanza),
        }
    }

    /// Handles an IQ addressed to a host or an account (RFC 6120 §8.2.3,
    /// §8.4): exactly one payload; unhandled get/set → service-unavailable.
    async fn dispatch_iq(self: &Arc<Self>, domain: &DomainJid, scope: Scope, stanza: Stanza) {
        let Some(iq_type) = stanza.iq_type() else { return };
        if matches!(iq_type, IqType::Result | IqType::Error) {
            return; // Responses to the server are consumed, never answered.
        }
        let element = match stanza.element() {
            Ok(element) => element,
            Err(_) => {
                self.bounce(&stanza, StanzaErrorCondition::BadRequest, None);
                return;
            }
        };
        let mut children = element.children();
        let (Some(payload), None) = (children.next(), children.next()) else {
            self.bounce(&stanza, StanzaErrorCondition::BadRequest, Some("an iq get/set carries exactly one payload"));
            return;
        };
        let handler =
            self.hosts.get(domain).and_then(|h| h.iq_handler(iq_type, scope, payload.ns(), payload.name())).cloned();
        let Some(handler) = handler else {
            self.bounce(&stanza, StanzaErrorCondition::ServiceUnavailable, None);
            return;
        };
        let request = IqRequest { server: self, stanza: &stanza, payload: payload.clone() };
        match handler.handle(request).await {
            Ok(payload) => {
                let reply = stanza.iq_result(payload.as_ref());
                self.deliver_reply(reply);
            }
            Err(condition) => self.bounce(&stanza, condition, None),
        }
    }

    /// Presence without 'to' from a session: records availability and
    /// priority (RFC 6121 §4.2, §4.7.2.3). Broadcast is the presence module's.
    fn update_own_presence(&self, stanza: &Stanza) {
        let Ok(full) = stanza.from().clone().try_into_full() else { return };
        let Some(session) = self.sessions.get(&full) else { return };
        match stanza.stanza_type() {
            None => {
                let priority = stanza
                    .element()
                    .ok()
                    .and_then(|el| el.get_child("priority", xmppd_proto::ns::CLIENT).map(|p| p.text()))
                    .and_then(|text| text.trim().parse::<i8>().ok())
                    .unwrap_or(0);
                session.set_presence(true, i32::from(priority));
            }
            Some("unavailable") => session.set_presence(false, 0),
            Some(_) => {}
        }
    }

    async fn account_exists(&self, bare: &BareJid) -> bool {
        let Some(node) = bare.node() else { return false };
        if !self.sessions.sessions_of(bare).is_empty() {
            return true;
        }
        self.accounts.account_exists(bare.domain(), node).await.unwrap_or(false)
    }

    /// The stanza has nowhere to go: §8.5.1 / §8.5.2.2 / §8.5.3.2 say
    /// `service-unavailable` for iq and message; presence is dropped.
    fn unroutable(&self, stanza: &Stanza) {
        if stanza.kind() != StanzaKind::Presence {
            self.bounce(stanza, StanzaErrorCondition::ServiceUnavailable, None);
        }
    }

    /// Returns an error to the sender (never for error stanzas, §8.3.1).
    fn bounce(&self, stanza: &Stanza, condition: StanzaErrorCondition, text: Option<&str>) {
        if let Some(reply) = stanza.error_reply(condition, text) {
            self.deliver_reply(reply);
        }
    }

    /// Delivers a server-generated reply to a local full JID.
    fn deliver_reply(&self, reply: Stanza) {
        let Some(Ok(full)) = reply.to().map(|to| to.clone().try_into_full()) else { return };
        if let Some(session) = self.sessions.get(&full) {
            self.push(&session, &reply);
        }
    }

    /// Pushes onto a session queue; a session that cannot keep up is closed
    /// (bounded memory beats unbounded buffering).
    fn push(&self, session: &SessionEntry, stanza: &Stanza) {
        match session.queue.push(Outbound::Stanza(stanza.bytes().clone())) {
            Ok(()) | Err(PushError::Closed) => {}
            Err(PushError::Full) => {
                tracing::warn!(jid = %session.jid(), "outbound queue full, closing session");
                session
                    .queue
                    .push(Outbound::Close(StreamErrorCondition::PolicyViolation, Some("too many queued stanzas")))
                    .ok();
            }
        }
    }

    /// Asks every session to close (graceful shutdown).
    pub fn shutdown_sessions(&self) {
        self.sessions.close_all(StreamErrorCondition::SystemShutdown, "the server is shutting down");
    }
}
