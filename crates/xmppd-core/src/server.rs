//! The server kernel and its one routing entry point, [`Server::route`].
//!
//! The decision table follows RFC 6120 §10 and RFC 6121 §8.5; it is written
//! up in `docs/design/routing.md`.

use std::collections::HashMap;
use std::net::IpAddr;
use std::sync::Arc;

use xmppd_jid::{BareJid, DomainJid, FullJid, Jid};
use xmppd_proto::{StanzaErrorCondition, StreamErrorCondition, ns};
use xmppd_storage::{
    AuthStore, KeyValueStore, OfflineStore, PendingIn, PubsubStore, Roster, RosterItem, RosterStore, Storage,
    StorageError,
};
use xmppd_xml::Element;

use crate::CoreError;
use crate::adhoc::AdhocCommandEntry;
use crate::config::Config;
use crate::hooks::{HookFlow, SessionHookPoint, StanzaHookPoint};
use crate::module::{
    FollowUps, HostRegistrations, IqRequest, ModuleContext, ModuleDef, PreAuthError, PreAuthIqRequest, Scope,
};
use crate::queue::{Outbound, PushError};
use crate::registry::{SessionEntry, SessionRegistry};
use crate::roster::{RosterService, RosterWrite};
use crate::stanza::{IqType, Stanza, StanzaKind};

/// The stores the kernel hands to modules, taken from one [`Storage`].
#[derive(Clone)]
pub struct Stores {
    /// Accounts and credentials.
    pub auth: Arc<dyn AuthStore>,
    /// Generic per-user key/value data.
    pub kv: Arc<dyn KeyValueStore>,
    /// Rosters and subscription requests.
    pub roster: Arc<dyn RosterStore>,
    /// Offline messages.
    pub offline: Arc<dyn OfflineStore>,
    /// Personal eventing nodes.
    pub pubsub: Arc<dyn PubsubStore>,
}

impl Stores {
    /// Every store of one backend.
    pub fn of(storage: &dyn Storage) -> Self {
        Stores {
            auth: storage.auth(),
            kv: storage.kv(),
            roster: storage.roster(),
            offline: storage.offline(),
            pubsub: storage.pubsub(),
        }
    }
}

/// Shared server state: hosts, sessions, storage, module registrations.
pub struct Server {
    config: Arc<Config>,
    hosts: HashMap<DomainJid, HostRegistrations>,
    sessions: SessionRegistry,
    accounts: Arc<dyn AuthStore>,
    kv: Arc<dyn KeyValueStore>,
    offline: Arc<dyn OfflineStore>,
    pubsub: Arc<dyn PubsubStore>,
    rosters: RosterService,
    /// IQs the server sent and waits for ([`Server::request_iq`]).
    pending_iqs: crate::requests::PendingIqs,
}

/// Assembles a [`Server`].
pub struct ServerBuilder {
    config: Arc<Config>,
    stores: Stores,
    modules: Vec<&'static ModuleDef>,
}

impl ServerBuilder {
    /// Starts a builder with the validated config and storage.
    pub fn new(config: Arc<Config>, stores: Stores) -> Self {
        ServerBuilder { config, stores, modules: Vec::new() }
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
        let modules_config = &self.config.modules;
        for name in modules_config.enabled.iter().chain(&modules_config.disabled) {
            if !self.modules.iter().any(|m| m.name == name) {
                errors.push(CoreError::UnknownModule(name.clone()));
            }
        }
        let mut hosts = HashMap::new();
        for host in &self.config.server.hosts {
            let Ok(domain) = host.parse::<DomainJid>() else { continue };
            let mut registrations = HostRegistrations::default();
            for module in self.modules.iter().filter(|m| modules_config.is_enabled(m.name)) {
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
            // XEP-0115 §6.3: a server that announces caps puts its own
            // in the stream features, hashed over its final disco#info.
            if registrations.disco_features.contains(ns::CAPS) {
                let features: Vec<&str> = registrations.disco_features.iter().copied().collect();
                let ver = xmppd_proto::caps::verification_string(
                    &registrations.disco_identities,
                    &features,
                    &registrations.disco_extensions,
                );
                let c = Element::builder("c", ns::CAPS)
                    .attr("hash", "sha-1")
                    .attr("node", ns::CAPS_NODE)
                    .attr("ver", ver.as_str())
                    .build();
                c.write_to(&mut registrations.stream_features, ns::STREAM);
                registrations.caps_ver = Some(ver);
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
            accounts: self.stores.auth,
            kv: self.stores.kv,
            offline: self.stores.offline,
            pubsub: self.stores.pubsub,
            rosters: RosterService::new(self.stores.roster),
            pending_iqs: crate::requests::PendingIqs::default(),
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

    /// Offline message storage (XEP-0160).
    pub fn offline(&self) -> &Arc<dyn OfflineStore> {
        &self.offline
    }

    /// Personal eventing storage (XEP-0163).
    pub fn pubsub(&self) -> &Arc<dyn PubsubStore> {
        &self.pubsub
    }

    /// The disco#info answer for an account's bare JID (XEP-0030 §3.1):
    /// `account/registered` plus what modules registered for accounts.
    pub fn account_disco_info(&self, host: &DomainJid) -> Element {
        let mut query = Element::builder("query", ns::DISCO_INFO)
            .append(
                Element::builder("identity", ns::DISCO_INFO)
                    .attr("category", "account")
                    .attr("type", "registered")
                    .build(),
            )
            .build();
        let Some(registrations) = self.hosts.get(host) else { return query };
        for identity in &registrations.account_identities {
            query.push_child(
                Element::builder("identity", ns::DISCO_INFO)
                    .attr("category", identity.category.as_str())
                    .attr("type", identity.kind.as_str())
                    .build(),
            );
        }
        let mut features: std::collections::BTreeSet<&str> = registrations.account_features.clone();
        features.insert(ns::DISCO_INFO);
        for feature in features {
            query.push_child(Element::builder("feature", ns::DISCO_INFO).attr("var", feature).build());
        }
        query
    }

    /// Sends an IQ get or set from `from` (a local account's bare JID or a
    /// host) to `to` and waits up to `timeout` for the answer: the result
    /// or error stanza, or `None` on timeout (RFC 6120 §8.2.3: every get
    /// and set gets exactly one answer, but the peer may be gone). Only an
    /// answer from the addressee counts.
    pub async fn request_iq(
        self: &Arc<Self>,
        from: &Jid,
        to: &Jid,
        iq_type: IqType,
        payload: Element,
        timeout: std::time::Duration,
    ) -> Option<Stanza> {
        let (id, answer) = self.pending_iqs.register(to.clone());
        // Forgotten however this ends: answered, timed out, or dropped.
        let _pending = crate::requests::Forget { pending: &self.pending_iqs, id: &id };
        let element = Element::builder("iq", ns::CLIENT)
            .attr("from", from.as_str())
            .attr("to", to.as_str())
            .attr("type", if iq_type == IqType::Set { "set" } else { "get" })
            .attr("id", id.as_str())
            .append(payload)
            .build();
        let stanza = Stanza::from_element(&element)?;
        self.route(stanza).await;
        tokio::time::timeout(timeout, answer).await.ok()?.ok()
    }

    /// The serialised extra stream features of a host (post-authentication).
    pub fn stream_features(&self, host: &DomainJid) -> &[u8] {
        self.hosts.get(host).map(|h| h.stream_features.as_slice()).unwrap_or_default()
    }

    /// `(hook point, module, priority)` of every hook on a host.
    pub fn describe_hooks(&self, host: &DomainJid) -> Vec<(String, &'static str, i32)> {
        self.hosts.get(host).map(|h| h.hooks.describe()).unwrap_or_default()
    }

    /// The host's whole disco#info answer (XEP-0030 §3.1, XEP-0128), as
    /// every module registered it; `None` for an unknown host.
    pub fn disco_info(&self, host: &DomainJid) -> Option<Element> {
        let registrations = self.hosts.get(host)?;
        let identities = registrations.disco_identities.iter().map(|identity| {
            Element::builder("identity", ns::DISCO_INFO)
                .attr("category", identity.category.as_str())
                .attr("type", identity.kind.as_str())
                .attr_opt("name", identity.name.as_deref())
                .build()
        });
        let features = registrations
            .disco_features
            .iter()
            .map(|feature| Element::builder("feature", ns::DISCO_INFO).attr("var", *feature).build());
        Some(
            Element::builder("query", ns::DISCO_INFO)
                .append_all(identities)
                .append_all(features)
                .append_all(registrations.disco_extensions.iter().cloned())
                .build(),
        )
    }

    /// The host's XEP-0115 verification string, when caps are announced.
    pub fn caps_ver(&self, host: &DomainJid) -> Option<&str> {
        self.hosts.get(host)?.caps_ver.as_deref()
    }

    /// The disco#info features registered on a host, sorted.
    pub fn disco_features(&self, host: &DomainJid) -> Vec<&'static str> {
        self.hosts.get(host).map(|h| h.disco_features.iter().copied().collect()).unwrap_or_default()
    }

    /// The XEP-0128 disco#info extension forms registered on a host.
    pub fn disco_extensions(&self, host: &DomainJid) -> Vec<xmppd_xml::Element> {
        self.hosts.get(host).map(|h| h.disco_extensions.clone()).unwrap_or_default()
    }

    /// The serialised extra stream features a host offers before
    /// authentication ([`ModuleContext::pre_auth_stream_feature`]).
    pub fn pre_auth_stream_features(&self, host: &DomainJid) -> &[u8] {
        self.hosts.get(host).map(|h| h.pre_auth_stream_features.as_slice()).unwrap_or_default()
    }

    /// Answers an IQ a client sent before authenticating (e.g. XEP-0077
    /// §3.1 registration), when a module registered a pre-authentication
    /// handler for its payload namespace; `None` otherwise, and for
    /// anything but a get or set, so that the caller keeps treating it as
    /// a stanza before authentication (RFC 6120 §4.9.3.12 `not-authorized`).
    ///
    /// The reply has no `from`/`to`: the client has no address yet. An IQ
    /// addressed to another entity than the stream's host is refused with
    /// `service-unavailable`; one without exactly one payload with
    /// `bad-request` (RFC 6120 §8.2.3).
    pub async fn pre_auth_iq(
        self: &Arc<Self>,
        host: &DomainJid,
        peer_ip: Option<IpAddr>,
        iq: &Element,
    ) -> Option<Element> {
        let iq_type = IqType::from_attr(iq.attr("type")?)?;
        if matches!(iq_type, IqType::Result | IqType::Error) {
            return None;
        }
        let mut children = iq.children();
        let payload = children.next()?;
        let handler = self.hosts.get(host)?.pre_auth_iq_handlers.get(payload.ns())?.clone();
        let id = iq.attr("id").unwrap_or_default();
        if children.next().is_some() {
            return Some(pre_auth_error_reply(id, &StanzaErrorCondition::BadRequest.into()));
        }
        if let Some(to) = iq.attr("to")
            && to.parse::<DomainJid>().ok().as_ref() != Some(host)
        {
            return Some(pre_auth_error_reply(id, &StanzaErrorCondition::ServiceUnavailable.into()));
        }
        let request = PreAuthIqRequest { server: self, host, peer_ip, iq_type, payload: payload.clone() };
        Some(match handler.handle(request).await {
            Ok(payload) => {
                Element::builder("iq", ns::CLIENT).attr("type", "result").attr("id", id).append_all(payload).build()
            }
            Err(error) => pre_auth_error_reply(id, &error),
        })
    }

    /// The ad-hoc commands (XEP-0050) declared on a host.
    pub fn adhoc_commands(&self, host: &DomainJid) -> &[AdhocCommandEntry] {
        self.hosts.get(host).map(|h| h.adhoc_commands.as_slice()).unwrap_or_default()
    }

    /// The disco#info children of `node` on `host` as `requester` sees it,
    /// from the first provider that knows the node; `None` if none does.
    pub async fn disco_node_info(
        self: &Arc<Self>,
        host: &DomainJid,
        requester: &Jid,
        node: &str,
    ) -> Option<Result<Vec<Element>, StanzaErrorCondition>> {
        self.disco_node(host, requester, node, NodeQuery::Info).await
    }

    /// The disco#items children of `node` on `host` as `requester` sees
    /// it, from the first provider that knows the node; `None` if none does.
    pub async fn disco_node_items(
        self: &Arc<Self>,
        host: &DomainJid,
        requester: &Jid,
        node: &str,
    ) -> Option<Result<Vec<Element>, StanzaErrorCondition>> {
        self.disco_node(host, requester, node, NodeQuery::Items).await
    }

    /// The `query` answer for `node` from the first provider on `host`
    /// that knows the node.
    async fn disco_node(
        self: &Arc<Self>,
        host: &DomainJid,
        requester: &Jid,
        node: &str,
        query: NodeQuery,
    ) -> Option<Result<Vec<Element>, StanzaErrorCondition>> {
        for provider in self.hosts.get(host)?.disco_nodes.iter() {
            let answer = match query {
                NodeQuery::Info => provider.info(self, host, requester, node).await,
                NodeQuery::Items => provider.items(self, host, requester, node).await,
            };
            if answer.is_some() {
                return answer;
            }
        }
        None
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
            Some(_) => {
                if self.run_stanza_hooks(&domain, StanzaHookPoint::Inbound, &stanza).await == HookFlow::Handled {
                    return;
                }
                match to.clone().try_into_full() {
                    Ok(full) => self.route_to_full(stanza, &full).await,
                    Err(bare) => self.route_to_bare(stanza, &bare).await,
                }
            }
        }
    }

    /// Accepts a stanza from a local client session (its `from` already
    /// stamped): records the session's own presence (RFC 6121 §4.2, §4.7.2.3),
    /// runs the outbound hooks of the sender's host, then routes it.
    pub async fn submit(self: &Arc<Self>, mut stanza: Stanza) {
        let initial = if stanza.kind() == StanzaKind::Presence && stanza.to().is_none() {
            let (initial, corrected) = self.update_own_presence(&stanza);
            if let Some(corrected) = corrected {
                stanza = corrected;
            }
            initial
        } else {
            None
        };
        let domain = stanza.from().to_domain_jid();
        if let Some(host) = self.hosts.get(&domain) {
            for rewriter in host.hooks.rewriters(stanza.kind()) {
                if let Some(rewritten) = rewriter.rewrite(self, &stanza).await {
                    stanza = rewritten;
                }
            }
        }
        if self.run_stanza_hooks(&domain, StanzaHookPoint::Outbound, &stanza).await != HookFlow::Handled {
            self.route(stanza).await;
        }
        if let Some(session) = initial {
            self.run_session_hooks(&session, SessionHookPoint::InitialPresence).await;
        }
    }

    /// Runs the hooks of `point` registered on `domain` for this stanza.
    async fn run_stanza_hooks(
        self: &Arc<Self>,
        domain: &DomainJid,
        point: StanzaHookPoint,
        stanza: &Stanza,
    ) -> HookFlow {
        let Some(host) = self.hosts.get(domain) else { return HookFlow::Continue };
        if !host.hooks.has_stanza_hooks(point, stanza.kind()) {
            return HookFlow::Continue;
        }
        for hook in host.hooks.stanza_hooks(point, stanza.kind()) {
            if hook.on_stanza(self, stanza).await == HookFlow::Handled {
                return HookFlow::Handled;
            }
        }
        HookFlow::Continue
    }

    /// Tells modules that a session was bound (RFC 6120 §7).
    pub async fn session_bound(self: &Arc<Self>, session: &Arc<SessionEntry>) {
        self.run_session_hooks(session, SessionHookPoint::Bound).await;
    }

    /// Removes an ending session from the registry and tells modules, which
    /// send unavailable presence on its behalf (RFC 6121 §4.5.2 "the server
    /// MUST ... as if the client had sent unavailable presence").
    pub async fn session_closed(self: &Arc<Self>, session: &Arc<SessionEntry>) {
        let last = self.sessions.unbind(session);
        self.run_session_hooks(session, SessionHookPoint::Closed).await;
        if last && !self.sessions.is_online(&session.jid().to_bare()) {
            self.rosters.evict(&session.jid().to_bare());
        }
    }

    async fn run_session_hooks(self: &Arc<Self>, session: &Arc<SessionEntry>, point: SessionHookPoint) {
        let domain = session.jid().to_domain_jid();
        let Some(host) = self.hosts.get(&domain) else { return };
        for hook in host.hooks.session_hooks(point) {
            hook.on_session(self, session).await;
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
                    // §8.5.2.1.1: a headline goes to every non-negative
                    // resource.
                    ("headline", Some(_)) => {
                        for session in available.iter().filter(|s| s.priority() >= 0) {
                            self.push(session, &stanza);
                        }
                    }
                    (_, Some(top)) => {
                        for session in available.iter().filter(|s| s.priority() == top) {
                            self.push(session, &stanza);
                        }
                    }
                    ("headline", None) => {}
                    (_, None) => {
                        // §8.5.2.2.1: no available resource; offline storage
                        // is a module's job. §8.5.1: no such user.
                        if self.account_exists(bare).await
                            && self.run_stanza_hooks(&domain, StanzaHookPoint::Undeliverable, &stanza).await
                                == HookFlow::Handled
                        {
                            return;
                        }
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
            // §8.5.3.1: an IQ get/set from an entity that does not share
            // presence with the user SHOULD NOT be delivered; the answer is
            // the one for an absent resource, so that nobody without
            // authorization learns which resources are online (§11).
            if matches!(stanza.iq_type(), Some(IqType::Get | IqType::Set))
                && !self.shares_presence(&session, stanza.from()).await
            {
                self.unroutable(&stanza);
                return;
            }
            self.push(&session, &stanza);
            return;
        }
        // §8.5.3.2: no such resource.
        match (stanza.kind(), stanza.stanza_type().unwrap_or("")) {
            (StanzaKind::Message, "groupchat" | "error" | "headline") => {
                // §8.5.3.2.1: groupchat → service-unavailable; headline and
                // error are silently ignored.
                if stanza.stanza_type() == Some("groupchat") {
                    self.bounce(&stanza, StanzaErrorCondition::ServiceUnavailable, None);
                }
            }
            (StanzaKind::Message, _) => {
                // §8.5.3.2.1: normal and chat are treated as addressed to
                // the bare JID (as Prosody and ejabberd do for normal too),
                // which may store them offline.
                self.route_to_bare(stanza, &full.to_bare()).await;
            }
            (StanzaKind::Presence, _) => {}
            (StanzaKind::Iq, _) => self.unroutable(&stanza),
        }
    }

    /// Whether `sender` may reach `session` with IQ requests (RFC 6121
    /// §8.5.3.1): the user's own resources, this server's hosts, contacts with a subscription to the user's presence, and
    /// entities the session sent directed presence to (at their bare JID,
    /// so that a MUC room's occupants count once the user joined).
    async fn shares_presence(&self, session: &SessionEntry, sender: &Jid) -> bool {
        let user = session.jid().to_bare();
        let sender_bare = sender.to_bare();
        // Our own hosts (e.g. the PEP service's caps queries); remote
        // services will need directed presence or a subscription.
        let own_host = sender.node().is_none() && self.serves(&sender.to_domain_jid());
        if own_host || sender_bare == user || session.has_directed_to_bare(&sender_bare) {
            return true;
        }
        matches!(self.roster_item(&user, &sender_bare).await, Ok(Some(item)) if item.subscription.has_from())
    }

    /// Handles an IQ addressed to a host or an account (RFC 6120 §8.2.3,
    /// §8.4): exactly one payload; unhandled get/set → service-unavailable.
    async fn dispatch_iq(self: &Arc<Self>, domain: &DomainJid, scope: Scope, stanza: Stanza) {
        let Some(iq_type) = stanza.iq_type() else { return };
        if matches!(iq_type, IqType::Result | IqType::Error) {
            // Answers to the server's own requests go to the waiting
            // caller; others are consumed, never answered (§8.2.3).
            self.pending_iqs.answer(stanza);
            return;
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
        let application_condition = std::sync::Mutex::new(None);
        let follow_ups = std::sync::Mutex::new(FollowUps::default());
        let request = IqRequest {
            server: self,
            stanza: &stanza,
            payload: payload.clone(),
            application_condition: &application_condition,
            follow_ups: &follow_ups,
        };
        match handler.handle(request).await {
            Ok(payload) => {
                let reply = stanza.iq_result(payload.as_ref());
                self.deliver_reply(reply);
                let follow_ups = follow_ups.into_inner().unwrap_or_else(std::sync::PoisonError::into_inner);
                for stanza in follow_ups.stanzas {
                    self.deliver_reply(stanza);
                }
            }
            Err(condition) => {
                match application_condition.into_inner().unwrap_or_else(std::sync::PoisonError::into_inner) {
                    Some(application) => self.reply_error_with(&stanza, condition, &application),
                    None => self.bounce(&stanza, condition, None),
                }
            }
        }
    }

    /// Presence without 'to' from a session: records availability and
    /// priority (RFC 6121 §4.2, §4.7.2.3). Broadcast is the presence module's.
    /// A priority outside -128..=127 counts as 0 (§5.2.2.1.3 says the value
    /// MUST be in that range; clients get the benefit of the doubt).
    /// Returns the session when this was its initial presence.
    fn update_own_presence(&self, stanza: &Stanza) -> (Option<Arc<SessionEntry>>, Option<Stanza>) {
        let Ok(full) = stanza.from().clone().try_into_full() else { return (None, None) };
        let Some(session) = self.sessions.get(&full) else { return (None, None) };
        match stanza.stanza_type() {
            None => {
                let element = stanza.element().ok();
                let given =
                    element.as_ref().and_then(|el| el.get_child("priority", xmppd_proto::ns::CLIENT).map(|p| p.text()));
                let parsed = given.as_deref().map(|text| text.trim().parse::<i8>());
                // §4.7.2.3: a value outside -128..=127 (or not a number) is
                // overridden with the default 0, and the override is what
                // the echo and the broadcast must show: the element goes.
                let corrected = match (&parsed, element) {
                    (Some(Err(_)), Some(mut element)) => {
                        element.remove_children("priority", xmppd_proto::ns::CLIENT);
                        Stanza::from_element(&element)
                    }
                    _ => None,
                };
                let priority = parsed.and_then(Result::ok).unwrap_or(0);
                // A session that becomes available (again) starts a new
                // presence session: probes, pending requests and offline
                // messages follow (RFC 6121 §3.1.3, §4.3.1).
                let was_available = session.is_available();
                session.set_presence(true, i32::from(priority));
                session.mark_initial_presence();
                ((!was_available).then_some(session), corrected)
            }
            Some("unavailable") => {
                session.set_presence(false, 0);
                (None, None)
            }
            Some(_) => (None, None),
        }
    }

    /// Whether a local account exists (an online session proves it).
    pub async fn account_exists(&self, bare: &BareJid) -> bool {
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
    /// A reply to a bare JID (e.g. an error for a subscription request,
    /// which carries the user's bare JID, RFC 6121 §3.1.2) goes to the
    /// user's available resources.
    fn deliver_reply(&self, reply: Stanza) {
        let Some(to) = reply.to() else { return };
        match to.clone().try_into_full() {
            Ok(full) => {
                if let Some(session) = self.sessions.get(&full) {
                    self.push(&session, &reply);
                }
            }
            Err(bare) => {
                for session in self.sessions.sessions_of(&bare) {
                    if session.is_available() {
                        self.push(&session, &reply);
                    }
                }
            }
        }
    }

    /// Delivers a stanza straight to one session, bypassing routing (for
    /// modules that already decided, e.g. presence broadcast to resources).
    pub fn deliver_to(&self, session: &SessionEntry, stanza: &Stanza) {
        self.push(session, stanza);
    }

    /// Returns an error to the stanza's sender (nothing for error stanzas,
    /// RFC 6120 §8.3.1).
    pub fn reply_error(&self, stanza: &Stanza, condition: StanzaErrorCondition, text: Option<&str>) {
        self.bounce(stanza, condition, text);
    }

    /// Returns an error with an application-specific condition element.
    pub fn reply_error_with(&self, stanza: &Stanza, condition: StanzaErrorCondition, application: &Element) {
        if let Some(reply) = stanza.error_reply_with(condition, None, Some(application)) {
            self.deliver_reply(reply);
        }
    }

    // ---- Roster service (RFC 6121 §2) -------------------------------------

    /// The user's roster (cached while the user is online).
    pub async fn roster(&self, user: &BareJid) -> Result<Arc<Roster>, StorageError> {
        self.rosters.roster(user, self.sessions.is_online(user)).await
    }

    /// One roster item.
    pub async fn roster_item(&self, user: &BareJid, contact: &BareJid) -> Result<Option<RosterItem>, StorageError> {
        let roster = self.roster(user).await?;
        let contact = contact.as_str();
        Ok(roster
            .items
            .binary_search_by(|i| i.contact.as_str().cmp(contact))
            .ok()
            .and_then(|index| roster.items.get(index).cloned()))
    }

    /// Writes an item and pushes it to the user's interested resources
    /// (RFC 6121 §2.1.6, §2.3.2). Fails with `LimitExceeded` when a new
    /// contact would exceed `max_items`.
    pub async fn put_roster_item(
        self: &Arc<Self>,
        user: &BareJid,
        item: &RosterItem,
        max_items: Option<u64>,
    ) -> Result<u64, StorageError> {
        let write = self.rosters.put_ordered(user, item, max_items).await?;
        let version = write.version;
        self.push_roster_item(user, item, write).await;
        Ok(version)
    }

    /// Writes an item without pushing it, for callers that must deliver
    /// something first (RFC 6121 §3.1.6: the inbound stanza goes out
    /// before the roster push); they hand the result to
    /// [`Server::push_roster_item`]. Until then, the user's other roster
    /// writes wait, so pushes keep the order of the changes (§2.6.3).
    pub async fn write_roster_item(&self, user: &BareJid, item: &RosterItem) -> Result<RosterWrite, StorageError> {
        self.rosters.put_ordered(user, item, None).await
    }

    /// Pushes an item to the user's interested resources (RFC 6121 §2.1.6),
    /// then tells the roster hooks.
    pub async fn push_roster_item(self: &Arc<Self>, user: &BareJid, item: &RosterItem, write: RosterWrite) {
        self.push_roster(user, crate::roster::item_element(item), write.version);
        drop(write);
        self.run_roster_hooks(user, &item.contact, Some(item)).await;
    }

    /// Runs the roster hooks of the user's host.
    async fn run_roster_hooks(self: &Arc<Self>, user: &BareJid, contact: &str, item: Option<&RosterItem>) {
        let Some(host) = self.hosts.get(&user.to_domain_jid()) else { return };
        if !host.hooks.has_roster_hooks() {
            return;
        }
        for hook in host.hooks.roster_hooks() {
            hook.on_roster_change(self, user, contact, item).await;
        }
    }

    /// Sends unavailable presence from each of the user's available
    /// resources to `contact` (RFC 6121 §3.2.2, §3.3.3: a subscription to
    /// the user's presence ended).
    pub async fn send_unavailable_to(self: &Arc<Self>, user: &BareJid, contact: &Jid) {
        for session in self.sessions.sessions_of(user) {
            if session.is_available() {
                let from = Jid::from(session.jid().clone());
                self.route(Stanza::presence(&from, contact, Some("unavailable"))).await;
            }
        }
    }

    /// Removes an item and pushes the removal (RFC 6121 §2.5.2); `None` if
    /// there was no such item.
    pub async fn remove_roster_item(
        self: &Arc<Self>,
        user: &BareJid,
        contact: &BareJid,
    ) -> Result<Option<u64>, StorageError> {
        let order = self.rosters.write_order(user).await;
        let version = self.rosters.remove(user, contact.as_str()).await?;
        if let Some(version) = version {
            self.push_roster(user, crate::roster::removed_item_element(contact.as_str()), version);
            drop(order);
            self.run_roster_hooks(user, contact.as_str(), None).await;
        }
        Ok(version)
    }

    /// Drops the cached roster of a user (its account is gone).
    pub(crate) fn forget_roster(&self, user: &BareJid) {
        self.rosters.evict(user);
    }

    /// Unanswered inbound subscription requests of a user (§3.1.3).
    pub async fn pending_subscriptions(&self, user: &BareJid) -> Result<Vec<PendingIn>, StorageError> {
        self.rosters.pending_in(user).await
    }

    /// Records an inbound subscription request (§3.1.3).
    pub async fn add_pending_subscription(&self, user: &BareJid, pending: &PendingIn) -> Result<(), StorageError> {
        self.rosters.add_pending_in(user, pending).await
    }

    /// Forgets an inbound subscription request; returns whether it existed.
    pub async fn remove_pending_subscription(&self, user: &BareJid, contact: &BareJid) -> Result<bool, StorageError> {
        self.rosters.remove_pending_in(user, contact.as_str()).await
    }

    /// Sends a roster push to every interested resource (RFC 6121 §2.1.6).
    fn push_roster(&self, user: &BareJid, item: Element, version: u64) {
        for session in self.sessions.sessions_of(user) {
            if !session.is_interested() {
                continue;
            }
            if let Some(stanza) = roster_push(session.jid(), item.clone(), version) {
                self.push(&session, &stanza);
            }
        }
    }

    /// The roster changes after version `since` (RFC 6121 §2.6.3 interim
    /// pushes): the current version and the changes in version order, or
    /// `None` when the store cannot tell.
    pub async fn roster_changes_since(
        &self,
        user: &BareJid,
        since: u64,
    ) -> Result<Option<(u64, Vec<xmppd_storage::RosterChange>)>, StorageError> {
        self.rosters.changes_since(user, since).await
    }

    /// Waits until the user's roster writes in progress have been pushed,
    /// and keeps further ones waiting while the result lives (RFC 6121
    /// §2.6.3: pushes in the order of the changes).
    pub async fn hold_roster_writes(&self, user: &BareJid) -> impl Send + 'static {
        self.rosters.write_order(user).await
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

/// Which service discovery query a [`crate::module::DiscoNodes`] provider answers.
#[derive(Clone, Copy)]
enum NodeQuery {
    /// disco#info (XEP-0030 §3.2).
    Info,
    /// disco#items (XEP-0030 §4.2).
    Items,
}

/// `<iq type='error'/>` for a pre-authentication request (RFC 6120 §8.3).
fn pre_auth_error_reply(id: &str, error: &PreAuthError) -> Element {
    let error_type = error.error_type.unwrap_or_else(|| error.condition.default_type());
    let mut error_element = Element::builder("error", ns::CLIENT)
        .attr("type", error_type.as_str())
        .append(Element::new(error.condition.name(), ns::STANZAS))
        .build();
    if let Some(text) = error.text {
        error_element.push_child(Element::builder("text", ns::STANZAS).attr("xml:lang", "en").text(text).build());
    }
    Element::builder("iq", ns::CLIENT).attr("type", "error").attr("id", id).append(error_element).build()
}

/// A roster push of `item` at `version` to one session (RFC 6121 §2.1.6).
pub fn roster_push(session: &FullJid, item: Element, version: u64) -> Option<Stanza> {
    let query = Element::builder("query", ns::ROSTER).attr("ver", version.to_string()).append(item).build();
    let iq = Element::builder("iq", ns::CLIENT)
        .attr("type", "set")
        .attr("id", format!("push{version}"))
        .attr("from", session.to_bare().as_str())
        .attr("to", session.as_str())
        .append(query)
        .build();
    Stanza::from_element(&iq)
}
