//! The module API: every XEP is a [`ModuleDef`] that registers handlers
//! through a [`ModuleContext`]. Adding a XEP touches no core file.

use std::collections::{BTreeSet, HashMap};
use std::net::IpAddr;
use std::sync::Arc;

use async_trait::async_trait;
use serde::de::DeserializeOwned;
use xmppd_jid::{BareJid, DomainJid, Jid};
use xmppd_proto::StanzaErrorCondition;
use xmppd_xml::Element;

use crate::adhoc::{AdhocCommand, AdhocCommandEntry, CommandAccess};
use crate::hooks::{
    HookTable, KindSet, RewriterEntry, RosterHook, RosterHookEntry, SessionHook, SessionHookEntry, SessionHookPoint,
    StanzaHook, StanzaHookEntry, StanzaHookPoint, StanzaRewriter,
};
use crate::server::Server;
use crate::stanza::{IqType, Stanza};

/// How completely a module implements a specification (for the generated
/// XEP table and DOAP).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Support {
    /// Everything the server side must do.
    Complete,
    /// Some parts, listed in the module's docs.
    Partial,
}

/// One implemented specification.
#[derive(Debug, Clone, Copy)]
pub struct Protocol {
    /// `"XEP-0199"`, `"RFC 6121"`.
    pub spec: &'static str,
    /// The version implemented.
    pub version: &'static str,
    /// Completeness.
    pub support: Support,
}

/// A module: a static, self-describing declaration.
#[derive(Debug)]
pub struct ModuleDef {
    /// Unique name, also its `[modules.<name>]` config table.
    pub name: &'static str,
    /// Specifications implemented.
    pub protocols: &'static [Protocol],
    /// Registers handlers for one host.
    pub start: fn(&mut ModuleContext<'_>) -> Result<(), String>,
}

/// Which addressees an IQ handler serves (Prosody's `iq/host`, `iq/bare`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Scope {
    /// IQs addressed to the host's domain JID.
    Host,
    /// IQs addressed to a local account's bare JID (or with no `to`, which
    /// means the sender's own account, RFC 6120 §8.1.1.1).
    Account,
}

/// A request handed to an [`IqHandler`].
pub struct IqRequest<'a> {
    /// The server, for storage and routing.
    pub server: &'a Arc<Server>,
    /// The whole IQ stanza (trusted `from`).
    pub stanza: &'a Stanza,
    /// The parsed payload (the single child of a get/set, §8.2.3).
    pub payload: Element,
    /// An application-specific condition for the error answer.
    pub(crate) application_condition: &'a std::sync::Mutex<Option<Element>>,
    /// Stanzas to deliver after a successful answer, and what to hold
    /// until they are queued.
    pub(crate) follow_ups: &'a std::sync::Mutex<FollowUps>,
}

/// What an IQ handler asked to send after its answer.
#[derive(Default)]
pub(crate) struct FollowUps {
    pub(crate) stanzas: Vec<Stanza>,
    pub(crate) hold: Vec<Box<dyn std::any::Any + Send>>,
}

impl IqRequest<'_> {
    /// Makes the error answer of this request carry `condition` as its
    /// application-specific condition element next to the defined one
    /// (RFC 6120 §8.3.2), e.g. XEP-0060's `<precondition-not-met/>`. Takes
    /// effect when the handler then returns an error.
    pub fn set_application_condition(&self, condition: Element) {
        let mut slot = self.application_condition.lock().unwrap_or_else(std::sync::PoisonError::into_inner);
        *slot = Some(condition);
    }

    /// Queues `stanza` for delivery right after the successful answer to
    /// this request (e.g. RFC 6121 §2.6.3: interim roster pushes follow the
    /// empty roster result). Dropped if the handler fails.
    pub fn send_after_answer(&self, stanza: Stanza) {
        self.follow_ups.lock().unwrap_or_else(std::sync::PoisonError::into_inner).stanzas.push(stanza);
    }

    /// Keeps `guard` alive until the answer and the stanzas of
    /// [`IqRequest::send_after_answer`] are queued (e.g. the user's roster
    /// write order, so that no push overtakes them).
    pub fn hold_until_answered(&self, guard: impl Send + 'static) {
        self.follow_ups.lock().unwrap_or_else(std::sync::PoisonError::into_inner).hold.push(Box::new(guard));
    }

    /// `Err(condition)` with `application` as the application-specific
    /// condition of the answer ([`IqRequest::set_application_condition`]).
    pub fn fail_with<T>(
        &self,
        condition: StanzaErrorCondition,
        application: Element,
    ) -> Result<T, StanzaErrorCondition> {
        self.set_application_condition(application);
        Err(condition)
    }

    /// The sender's own account, which an IQ without `to` is addressed to
    /// (RFC 6120 §8.1.1.1); `forbidden` when it is addressed to another
    /// account. For payloads that only reach one's own data (the roster,
    /// RFC 6121 §2.1.5, §2.3.3; the blocklist, XEP-0191 §3.1, §3.3).
    pub fn own_account(&self) -> Result<BareJid, StanzaErrorCondition> {
        let user = self.stanza.from().to_bare();
        match self.stanza.to() {
            Some(to) if to.to_bare() != user => Err(StanzaErrorCondition::Forbidden),
            _ => Ok(user),
        }
    }
}

/// What a handler answers: a result payload (`None` = empty result) or a
/// stanza error condition.
pub type IqOutcome = Result<Option<Element>, StanzaErrorCondition>;

/// An IQ handler.
#[async_trait]
pub trait IqHandler: Send + Sync {
    /// Handles one request.
    async fn handle(&self, request: IqRequest<'_>) -> IqOutcome;
}

/// An IQ received on a client stream before authentication (in the SASL
/// phase, over TLS), handed to a [`PreAuthIqHandler`]. There is no JID yet:
/// only the stream's host and the peer's address are known.
pub struct PreAuthIqRequest<'a> {
    /// The server, for storage and account creation.
    pub server: &'a Arc<Server>,
    /// The host the stream was opened to.
    pub host: &'a DomainJid,
    /// The client's IP address, when known (for per-address limits).
    pub peer_ip: Option<IpAddr>,
    /// `get` or `set`.
    pub iq_type: IqType,
    /// The single payload of the IQ.
    pub payload: Element,
}

/// A stanza error with an optional human-readable text (RFC 6120 §8.3.2).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PreAuthError {
    /// The defined condition.
    pub condition: StanzaErrorCondition,
    /// The error `type`; `None` means the condition's usual type.
    pub error_type: Option<xmppd_proto::ErrorType>,
    /// `<text/>` for the client.
    pub text: Option<&'static str>,
}

impl From<StanzaErrorCondition> for PreAuthError {
    fn from(condition: StanzaErrorCondition) -> Self {
        PreAuthError { condition, error_type: None, text: None }
    }
}

/// What a pre-authentication IQ handler answers.
pub type PreAuthOutcome = Result<Option<Element>, PreAuthError>;

/// Handles IQs before authentication (e.g. XEP-0077 registration).
#[async_trait]
pub trait PreAuthIqHandler: Send + Sync {
    /// Handles one request.
    async fn handle(&self, request: PreAuthIqRequest<'_>) -> PreAuthOutcome;
}

/// A disco node provider: answers disco#info and disco#items queries with
/// a `node` attribute (XEP-0030 §3.2, §4.2) for the nodes it knows.
#[async_trait]
pub trait DiscoNodes: Send + Sync {
    /// The `<identity/>` and `<feature/>` children of the disco#info answer
    /// for `node` as `requester` sees it, or `None` when the node is not
    /// this provider's.
    async fn info(
        &self,
        server: &Arc<Server>,
        host: &DomainJid,
        requester: &Jid,
        node: &str,
    ) -> Option<Result<Vec<Element>, StanzaErrorCondition>>;

    /// The `<item/>` children of the disco#items answer for `node`, or
    /// `None` when the node is not this provider's.
    async fn items(
        &self,
        server: &Arc<Server>,
        host: &DomainJid,
        requester: &Jid,
        node: &str,
    ) -> Option<Result<Vec<Element>, StanzaErrorCondition>>;
}

/// One entry of the IQ dispatch table.
pub(crate) struct IqRoute {
    pub(crate) iq_type: IqType,
    pub(crate) scope: Scope,
    pub(crate) name: &'static str,
    pub(crate) handler: Arc<dyn IqHandler>,
}

/// What modules registered for one host.
#[derive(Default)]
pub(crate) struct HostRegistrations {
    /// IQ handlers by payload namespace, then (type, scope, element name).
    pub(crate) iq_handlers: HashMap<&'static str, Vec<IqRoute>>,
    pub(crate) disco_features: BTreeSet<&'static str>,
    /// XEP-0128 service discovery extensions: `jabber:x:data` forms of
    /// type `result` added to the host's disco#info, in registration order.
    pub(crate) disco_extensions: Vec<Element>,
    /// XEP-0030 identities of the host.
    pub(crate) disco_identities: Vec<xmppd_proto::caps::Identity>,
    /// XEP-0030 identities of every account's bare JID (besides
    /// `account/registered`), e.g. `pubsub/pep` (XEP-0163 §6.1).
    pub(crate) account_identities: Vec<xmppd_proto::caps::Identity>,
    /// Features of every account's bare JID in disco#info.
    pub(crate) account_features: BTreeSet<&'static str>,
    /// XEP-0115 verification string of the host's disco#info, computed
    /// once every module has started.
    pub(crate) caps_ver: Option<String>,
    pub(crate) hooks: HookTable,
    /// Extra `<stream:features/>` children offered once the client is
    /// authenticated (e.g. roster versioning, RFC 6121 §2.6.1), serialised.
    pub(crate) stream_features: Vec<u8>,
    /// Extra `<stream:features/>` children offered before authentication
    /// (next to the SASL mechanisms, over TLS), serialised.
    pub(crate) pre_auth_stream_features: Vec<u8>,
    /// Pre-authentication IQ handlers by payload namespace.
    pub(crate) pre_auth_iq_handlers: HashMap<&'static str, Arc<dyn PreAuthIqHandler>>,
    /// XEP-0050 ad-hoc commands, in registration order.
    pub(crate) adhoc_commands: Vec<AdhocCommandEntry>,
    /// Providers of disco#info / disco#items for nodes (XEP-0030 §3.2, §4.2).
    pub(crate) disco_nodes: Vec<Arc<dyn DiscoNodes>>,
}

impl HostRegistrations {
    /// The handler for a payload, if a module registered one.
    pub(crate) fn iq_handler(
        &self,
        iq_type: IqType,
        scope: Scope,
        ns: &str,
        name: &str,
    ) -> Option<&Arc<dyn IqHandler>> {
        self.iq_handlers
            .get(ns)?
            .iter()
            .find(|route| route.iq_type == iq_type && route.scope == scope && route.name == name)
            .map(|route| &route.handler)
    }
}

/// What a module sees while it starts for one host.
pub struct ModuleContext<'a> {
    pub(crate) module: &'static str,
    pub(crate) host: &'a DomainJid,
    pub(crate) config: Option<&'a toml::Value>,
    pub(crate) registrations: &'a mut HostRegistrations,
}

impl ModuleContext<'_> {
    /// The host this module instance serves.
    pub fn host(&self) -> &DomainJid {
        self.host
    }

    /// The module's `[modules.<name>]` table, deserialised (missing = default).
    pub fn config<T: DeserializeOwned + Default>(&self) -> Result<T, String> {
        match self.config {
            None => Ok(T::default()),
            Some(value) => value.clone().try_into().map_err(|e| format!("modules.settings.{}: {e}", self.module)),
        }
    }

    /// Registers an IQ handler for `<name xmlns=ns/>` payloads.
    pub fn iq_handler(
        &mut self,
        iq_type: IqType,
        scope: Scope,
        ns: &'static str,
        name: &'static str,
        handler: impl IqHandler + 'static,
    ) {
        let routes = self.registrations.iq_handlers.entry(ns).or_default();
        routes.retain(|route| !(route.iq_type == iq_type && route.scope == scope && route.name == name));
        routes.push(IqRoute { iq_type, scope, name, handler: Arc::new(handler) });
    }

    /// Adds an identity to the host's disco#info (XEP-0030 §3.1).
    pub fn disco_identity(&mut self, category: &str, kind: &str, name: Option<&str>) {
        self.registrations.disco_identities.push(xmppd_proto::caps::Identity {
            category: category.to_owned(),
            kind: kind.to_owned(),
            lang: None,
            name: name.map(str::to_owned),
        });
    }

    /// Advertises a feature in service discovery (XEP-0030).
    pub fn disco_feature(&mut self, feature: &'static str) {
        self.registrations.disco_features.insert(feature);
    }

    /// Adds an identity to the disco#info of every account's bare JID
    /// (XEP-0030 §3.1, answered by the server on the account's behalf).
    pub fn account_disco_identity(&mut self, category: &str, kind: &str) {
        self.registrations.account_identities.push(xmppd_proto::caps::Identity {
            category: category.to_owned(),
            kind: kind.to_owned(),
            lang: None,
            name: None,
        });
    }

    /// Advertises a feature in the disco#info of every account's bare JID.
    pub fn account_disco_feature(&mut self, feature: &'static str) {
        self.registrations.account_features.insert(feature);
    }

    /// Adds a XEP-0128 extension form (`<x xmlns='jabber:x:data'
    /// type='result'>` with a hidden `FORM_TYPE` field) to the host's
    /// disco#info. A form whose `FORM_TYPE` equals an earlier one's replaces
    /// it: XEP-0115 §5.4 (step 3.5) treats two forms with one `FORM_TYPE` as
    /// ill-formed.
    pub fn disco_extension(&mut self, form: Element) {
        let form_type = disco_form_type(&form);
        let extensions = &mut self.registrations.disco_extensions;
        if form_type.is_some() {
            extensions.retain(|existing| disco_form_type(existing) != form_type);
        }
        extensions.push(form);
    }

    /// Hooks into the stanza path at `point` for the stanza kinds in
    /// `kinds`; higher `priority` runs first.
    pub fn stanza_hook(
        &mut self,
        point: StanzaHookPoint,
        kinds: KindSet,
        priority: i32,
        hook: impl StanzaHook + 'static,
    ) {
        let entry = StanzaHookEntry { module: self.module, priority, kinds, hook: Arc::new(hook) };
        self.registrations.hooks.add_stanza(point, entry);
    }

    /// Rewrites stanzas of the kinds in `kinds` that local clients send,
    /// before the outbound hooks; higher `priority` runs first, each on the
    /// previous one's output.
    pub fn outbound_rewriter(&mut self, kinds: KindSet, priority: i32, rewriter: impl StanzaRewriter + 'static) {
        let entry = RewriterEntry { module: self.module, priority, kinds, rewriter: Arc::new(rewriter) };
        self.registrations.hooks.add_rewriter(entry);
    }

    /// Hooks into roster changes of this host's users; higher `priority`
    /// runs first.
    pub fn roster_hook(&mut self, priority: i32, hook: impl RosterHook + 'static) {
        let entry = RosterHookEntry { module: self.module, priority, hook: Arc::new(hook) };
        self.registrations.hooks.add_roster(entry);
    }

    /// Hooks into session lifecycle events; higher `priority` runs first.
    pub fn session_hook(&mut self, point: SessionHookPoint, priority: i32, hook: impl SessionHook + 'static) {
        let entry = SessionHookEntry { module: self.module, priority, hook: Arc::new(hook) };
        self.registrations.hooks.add_session(point, entry);
    }

    /// Offers `feature` in the stream features after authentication
    /// (RFC 6120 §4.3.2), next to resource binding.
    pub fn stream_feature(&mut self, feature: &Element) {
        feature.write_to(&mut self.registrations.stream_features, xmppd_proto::ns::STREAM);
    }

    /// Offers `feature` in the stream features before authentication, next
    /// to the SASL mechanisms (e.g. XEP-0077 §8 in-band registration). The
    /// client session offers these only over TLS.
    pub fn pre_auth_stream_feature(&mut self, feature: &Element) {
        feature.write_to(&mut self.registrations.pre_auth_stream_features, xmppd_proto::ns::STREAM);
    }

    /// Registers a handler for IQ get/set with a payload in namespace `ns`
    /// received before authentication (see [`Server::pre_auth_iq`]). One
    /// handler per namespace; a later registration replaces an earlier one.
    pub fn pre_auth_iq_handler(&mut self, ns: &'static str, handler: impl PreAuthIqHandler + 'static) {
        self.registrations.pre_auth_iq_handlers.insert(ns, Arc::new(handler));
    }

    /// Declares a XEP-0050 ad-hoc command on this host: `node` names it
    /// (unique per host; a later registration of the same node replaces the
    /// earlier one), `name` labels it in the command list, and only
    /// requesters `access` allows see or run it.
    pub fn adhoc_command(
        &mut self,
        node: &'static str,
        name: &'static str,
        access: CommandAccess,
        handler: impl AdhocCommand + 'static,
    ) {
        let commands = &mut self.registrations.adhoc_commands;
        commands.retain(|command| command.node != node);
        commands.push(AdhocCommandEntry { node, name, access, handler: Arc::new(handler) });
    }

    /// Adds a provider of disco#info / disco#items answers for nodes
    /// (XEP-0030 §3.2, §4.2); providers are asked in registration order.
    pub fn disco_nodes(&mut self, provider: impl DiscoNodes + 'static) {
        self.registrations.disco_nodes.push(Arc::new(provider));
    }
}

/// The `FORM_TYPE` value of a XEP-0128 extension form (XEP-0068 §3).
fn disco_form_type(form: &Element) -> Option<String> {
    form.children()
        .find(|field| field.name() == "field" && field.attr("var") == Some("FORM_TYPE"))
        .and_then(|field| field.children().find(|value| value.name() == "value"))
        .map(Element::text)
}

#[cfg(test)]
mod disco_extension_tests {
    use super::*;

    fn form(form_type: &str, marker: &str) -> Element {
        let field = |var: &str, value: &str| {
            Element::builder("field", "jabber:x:data")
                .attr("var", var)
                .append(Element::builder("value", "jabber:x:data").text(value).build())
                .build()
        };
        Element::builder("x", "jabber:x:data")
            .attr("type", "result")
            .append(field("FORM_TYPE", form_type))
            .append(field("marker", marker))
            .build()
    }

    #[test]
    fn one_form_per_form_type() {
        let host: DomainJid = "example.org".parse().expect("a valid domain");
        let mut registrations = HostRegistrations::default();
        let mut ctx = ModuleContext { module: "test", host: &host, config: None, registrations: &mut registrations };
        ctx.disco_extension(form("urn:a", "1"));
        ctx.disco_extension(form("urn:b", "2"));
        ctx.disco_extension(form("urn:a", "3"));
        let forms: Vec<(Option<String>, String)> = registrations
            .disco_extensions
            .iter()
            .map(|f| {
                let marker = f.children().nth(1).and_then(|field| field.children().next()).map(Element::text);
                (disco_form_type(f), marker.unwrap_or_default())
            })
            .collect();
        assert_eq!(forms, [(Some("urn:b".to_owned()), "2".to_owned()), (Some("urn:a".to_owned()), "3".to_owned())]);
    }
}
