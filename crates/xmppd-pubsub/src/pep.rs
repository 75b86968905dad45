//! XEP-0163 Personal Eventing Protocol: every account is a pubsub service
//! (XEP-0060) at its bare JID, answered by the server.
//!
//! * Publish with auto-create (XEP-0163 §3), publish-options (XEP-0060
//!   §7.1.5; XEP-0222/XEP-0223 profiles), retract (§7.2), item retrieval
//!   (§6.5, with `max_items` and item ids), node creation with a
//!   configuration (§8.1.3), configuration (§8.2), default options (§8.3),
//!   deletion (§8.4) and purge (§8.5). Only the account itself publishes
//!   and owns its nodes.
//! * Access models open, presence (the default), roster and whitelist
//!   (§4.5), checked on every retrieval and notification.
//! * Notifications (XEP-0163 §4.3) go to the owner's resources and to
//!   contacts with a presence subscription whose entity capabilities
//!   announce `node+notify` (see [`crate::interest`]); the last item of each
//!   such node is sent when a resource becomes available (§4.3.3).
//! * No explicit subscriptions (XEP-0060 §6.1): PEP subscriptions are
//!   implicit, from presence (XEP-0163 §4.3.1).

use std::sync::Arc;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use async_trait::async_trait;
use serde::Deserialize;
use xmppd_core::module::IqOutcome;
use xmppd_core::{
    HookFlow, IqHandler, IqRequest, IqType, KindSet, ModuleContext, ModuleDef, Protocol, Scope, Server, SessionEntry,
    SessionHook, SessionHookPoint, Stanza, StanzaHook, StanzaHookPoint, Support,
};
use xmppd_jid::{BareJid, FullJid, Jid};
use xmppd_proto::data_form::{DataForm, FormType};
use xmppd_proto::{StanzaErrorCondition, ns};
use xmppd_storage::{AccessModel, NodeConfig, PubsubItem, SendLastPublished, StorageError};
use xmppd_xml::Element;

use crate::config::{self, Strictness};
use crate::interest::{Interest, Noted, NotifySet, Resolution, SessionCaps, caps_of, notify_set};

/// XEP-0060: the protocol namespace.
pub const NS_PUBSUB: &str = "http://jabber.org/protocol/pubsub";
/// XEP-0060: owner use cases.
pub const NS_OWNER: &str = "http://jabber.org/protocol/pubsub#owner";
/// XEP-0060: event notifications.
pub const NS_EVENT: &str = "http://jabber.org/protocol/pubsub#event";
/// XEP-0060: application-specific error conditions.
pub const NS_ERRORS: &str = "http://jabber.org/protocol/pubsub#errors";

/// The module declaration.
pub static MODULE: ModuleDef = ModuleDef {
    name: "pep",
    protocols: &[
        Protocol { spec: "XEP-0163", version: "1.2.2", support: Support::Complete },
        // The PEP subset: no explicit subscriptions, affiliations or
        // collection nodes.
        Protocol { spec: "XEP-0060", version: "1.26.0", support: Support::Partial },
        Protocol { spec: "XEP-0222", version: "1.0.1", support: Support::Complete },
        Protocol { spec: "XEP-0223", version: "1.1.1", support: Support::Complete },
        // With `vcard_conversion` (the default): see `vcard_avatar`.
        Protocol { spec: "XEP-0398", version: "0.2.1", support: Support::Complete },
        Protocol { spec: "XEP-0153", version: "1.1", support: Support::Complete },
    ],
    start,
};

/// `[modules.settings.pep]`
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct PepConfig {
    /// Most items a node keeps, also what `pubsub#max_items=max` means
    /// (Prosody's `pep_max_items` default).
    pub max_items: u32,
    /// Most nodes per account.
    pub max_nodes: usize,
    /// Largest item payload accepted, in bytes of serialised XML; larger
    /// ones get `not-acceptable` with `<payload-too-big/>` (XEP-0060
    /// §7.1.3.5). The default leaves room for XEP-0084 avatar data.
    pub max_payload_bytes: usize,
    /// Convert avatars between PEP and vCard and put the avatar hash into
    /// presence (XEP-0398, XEP-0153).
    pub vcard_conversion: bool,
}

impl Default for PepConfig {
    fn default() -> Self {
        PepConfig { max_items: 256, max_nodes: 256, max_payload_bytes: 192 * 1024, vcard_conversion: true }
    }
}

/// The features of every account's PEP service (XEP-0060 §10, XEP-0163
/// §6.1).
const FEATURES: &[&str] = &[
    NS_PUBSUB,
    "http://jabber.org/protocol/pubsub#access-open",
    "http://jabber.org/protocol/pubsub#access-presence",
    "http://jabber.org/protocol/pubsub#access-roster",
    "http://jabber.org/protocol/pubsub#access-whitelist",
    "http://jabber.org/protocol/pubsub#auto-create",
    "http://jabber.org/protocol/pubsub#auto-subscribe",
    "http://jabber.org/protocol/pubsub#config-node",
    "http://jabber.org/protocol/pubsub#config-node-max",
    "http://jabber.org/protocol/pubsub#create-and-configure",
    "http://jabber.org/protocol/pubsub#create-nodes",
    "http://jabber.org/protocol/pubsub#delete-items",
    "http://jabber.org/protocol/pubsub#delete-nodes",
    "http://jabber.org/protocol/pubsub#filtered-notifications",
    "http://jabber.org/protocol/pubsub#item-ids",
    "http://jabber.org/protocol/pubsub#last-published",
    "http://jabber.org/protocol/pubsub#persistent-items",
    "http://jabber.org/protocol/pubsub#presence-notifications",
    "http://jabber.org/protocol/pubsub#publish",
    "http://jabber.org/protocol/pubsub#publish-options",
    "http://jabber.org/protocol/pubsub#purge-nodes",
    "http://jabber.org/protocol/pubsub#retract-items",
    "http://jabber.org/protocol/pubsub#retrieve-default",
    "http://jabber.org/protocol/pubsub#retrieve-items",
];

/// How long a disco#info query for unknown capabilities may take.
const CAPS_QUERY_TIMEOUT: Duration = Duration::from_secs(10);

fn start(ctx: &mut ModuleContext<'_>) -> Result<(), String> {
    let config: PepConfig = ctx.config()?;
    if config.max_items == 0 {
        return Err("modules.settings.pep.max_items: must be at least 1".into());
    }
    let conversion = config.vcard_conversion;
    let service = Arc::new(Pep { config, interest: Interest::default() });
    if conversion {
        crate::vcard_avatar::start(ctx, service.clone());
    }
    // XEP-0163 §6.1: the account's bare JID is a pubsub/pep service; the
    // host says so too (as ejabberd does) for clients that look there.
    ctx.account_disco_identity("pubsub", "pep");
    ctx.disco_identity("pubsub", "pep", None);
    for feature in FEATURES {
        ctx.account_disco_feature(feature);
        ctx.disco_feature(feature);
    }
    let handler = Handler(service.clone());
    ctx.iq_handler(IqType::Set, Scope::Account, NS_PUBSUB, "pubsub", handler.clone());
    ctx.iq_handler(IqType::Get, Scope::Account, NS_PUBSUB, "pubsub", handler.clone());
    ctx.iq_handler(IqType::Set, Scope::Account, NS_OWNER, "pubsub", handler.clone());
    ctx.iq_handler(IqType::Get, Scope::Account, NS_OWNER, "pubsub", handler.clone());
    // Replaces the disco module's empty answer for accounts (this module
    // starts after it): the nodes the requester may see (XEP-0060 §5.2).
    ctx.iq_handler(IqType::Get, Scope::Account, ns::DISCO_ITEMS, "query", handler);
    // Before the presence module broadcasts (priority 0), so that the
    // contacts' inbound hook finds the sender's caps.
    ctx.stanza_hook(StanzaHookPoint::Outbound, KindSet::PRESENCE, 10, OwnPresence(service.clone()));
    ctx.stanza_hook(StanzaHookPoint::Inbound, KindSet::PRESENCE, -10, ContactPresence(service.clone()));
    ctx.session_hook(SessionHookPoint::Closed, -10, SessionGone(service.clone()));
    // After the roster write: a new `from` subscription makes the
    // contact a subscriber (XEP-0163 §4.3.5), a cancelled one ends it.
    ctx.roster_hook(0, SubscriptionChanged(service));
    Ok(())
}

/// The PEP service of one host.
pub(crate) struct Pep {
    config: PepConfig,
    interest: Interest,
}

/// A failed request: the defined condition and the XEP-0060
/// application-specific one (in [`NS_ERRORS`]), if any.
pub(crate) type Failure = (StanzaErrorCondition, Option<&'static str>);

fn fail(condition: StanzaErrorCondition) -> Failure {
    (condition, None)
}

fn fail_with(condition: StanzaErrorCondition, application: &'static str) -> Failure {
    (condition, Some(application))
}

fn internal(error: StorageError) -> Failure {
    tracing::warn!(%error, "PEP storage failed");
    fail(StanzaErrorCondition::InternalServerError)
}

/// Milliseconds since the Unix epoch.
fn now_ms() -> i64 {
    SystemTime::now().duration_since(UNIX_EPOCH).map_or(0, |d| i64::try_from(d.as_millis()).unwrap_or(i64::MAX))
}

/// A fresh item id (XEP-0060 §7.1.1: the service generates one when the
/// publisher gives none).
fn new_item_id() -> String {
    format!("{:016x}{:08x}", rand::random::<u64>(), rand::random::<u32>())
}

#[derive(Clone)]
struct Handler(Arc<Pep>);

#[async_trait]
impl IqHandler for Handler {
    async fn handle(&self, request: IqRequest<'_>) -> IqOutcome {
        let outcome = if request.payload.ns() == ns::DISCO_ITEMS {
            self.0.disco_items(&request).await
        } else {
            self.0.dispatch(&request).await
        };
        outcome.or_else(|(condition, application)| match application {
            Some(name) => request.fail_with(condition, Element::new(name, NS_ERRORS)),
            None => Err(condition),
        })
    }
}

/// The owner addressed by a request (its `to`, or the sender's own account,
/// RFC 6120 §8.1.1.1).
fn owner_of(request: &IqRequest<'_>) -> BareJid {
    request.stanza.to().unwrap_or(request.stanza.from()).to_bare()
}

impl Pep {
    async fn dispatch(self: &Arc<Self>, request: &IqRequest<'_>) -> Result<Option<Element>, Failure> {
        let owner = owner_of(request);
        let requester = request.stanza.from().clone();
        let is_owner = requester.to_bare() == owner;
        let is_set = request.stanza.iq_type() == Some(IqType::Set);
        let owner_ns = request.payload.ns() == NS_OWNER;
        let children: Vec<&Element> = request.payload.children().collect();
        let Some(action) = children.first().copied() else { return Err(fail(StanzaErrorCondition::BadRequest)) };
        let server = request.server;
        match (owner_ns, is_set, action.name()) {
            (false, true, "publish") => {
                self.require_owner(is_owner)?;
                let options = request.payload.get_child("publish-options", NS_PUBSUB);
                self.publish(server, &owner, &requester, action, options).await
            }
            (false, true, "retract") => {
                self.require_owner(is_owner)?;
                self.retract(server, &owner, action).await
            }
            (false, true, "create") => {
                self.require_owner(is_owner)?;
                let configure = request.payload.get_child("configure", NS_PUBSUB);
                self.create(server, &owner, action, configure).await
            }
            (false, false, "items") => self.items(server, &owner, &requester, action).await,
            (false, _, "subscribe" | "unsubscribe" | "options" | "subscriptions" | "affiliations") => {
                // XEP-0163 §4.3.1: PEP subscriptions come from presence.
                // XEP-0060 §6.1.3.x: <unsupported feature='…'/>.
                let feature = match action.name() {
                    "subscriptions" => "retrieve-subscriptions",
                    "affiliations" => "retrieve-affiliations",
                    "options" => "subscription-options",
                    _ => "subscribe",
                };
                let unsupported = Element::builder("unsupported", NS_ERRORS).attr("feature", feature).build();
                request.set_application_condition(unsupported);
                Err(fail(StanzaErrorCondition::FeatureNotImplemented))
            }
            (true, _, _) => {
                self.require_owner(is_owner)?;
                self.owner_request(server, &owner, is_set, action).await
            }
            _ => Err(fail(StanzaErrorCondition::FeatureNotImplemented)),
        }
    }

    fn require_owner(&self, is_owner: bool) -> Result<(), Failure> {
        // XEP-0163 §3: only the account owner publishes to and manages its
        // nodes.
        if is_owner { Ok(()) } else { Err(fail(StanzaErrorCondition::Forbidden)) }
    }

    /// XEP-0060 §7.1, XEP-0163 §3: publish one item, creating the node if
    /// needed with the publish-options as its configuration.
    async fn publish(
        self: &Arc<Self>,
        server: &Arc<Server>,
        owner: &BareJid,
        publisher: &Jid,
        publish: &Element,
        options: Option<&Element>,
    ) -> Result<Option<Element>, Failure> {
        let node = node_attr(publish)?;
        let mut items = publish.children().filter(|child| child.name() == "item" && child.ns() == NS_PUBSUB);
        let (Some(item), None) = (items.next(), items.next()) else {
            // §7.1.3.6: exactly one item per publish here.
            return Err(fail_with(StanzaErrorCondition::BadRequest, "invalid-payload"));
        };
        let mut payloads = item.children();
        let payload = match (payloads.next(), payloads.next()) {
            (Some(payload), None) => payload,
            // §7.1.3.6: persistent PEP items need exactly one payload.
            (None, _) => return Err(fail_with(StanzaErrorCondition::BadRequest, "payload-required")),
            (Some(_), Some(_)) => return Err(fail_with(StanzaErrorCondition::BadRequest, "invalid-payload")),
        };
        let payload_bytes = payload.to_bytes();
        if payload_bytes.len() > self.config.max_payload_bytes {
            return Err(fail_with(StanzaErrorCondition::NotAcceptable, "payload-too-big"));
        }
        let options = match options.and_then(DataForm::find_in) {
            Some(Ok(form)) => Some(form),
            Some(Err(_)) => return Err(fail(StanzaErrorCondition::BadRequest)),
            None => None,
        };
        // Publish-options that do not parse can never be met.
        let wanted = match &options {
            Some(form) => config::apply_form(&NodeConfig::default(), form, self.config.max_items, Strictness::Strict)
                .map_err(|_| fail_with(StanzaErrorCondition::Conflict, "precondition-not-met"))?,
            None => NodeConfig::default(),
        };
        let (config, created) = self.node_or_create(server, owner, node, &wanted).await?;
        // §7.1.5: an existing node must already be configured as asked.
        if !created
            && let Some(form) = &options
            && !config::preconditions_hold(&config, form, self.config.max_items)
        {
            return Err(fail_with(StanzaErrorCondition::Conflict, "precondition-not-met"));
        }
        let id = item.attr("id").filter(|id| !id.is_empty()).map_or_else(new_item_id, str::to_owned);
        let stored = PubsubItem {
            id: id.clone(),
            publisher: Some(publisher.as_str().to_owned()),
            published_ms: now_ms(),
            payload: payload_bytes,
        };
        self.store_and_notify(server, owner, node, &config, &stored).await?;
        Ok(Some(
            Element::builder("pubsub", NS_PUBSUB)
                .append(
                    Element::builder("publish", NS_PUBSUB)
                        .attr("node", node)
                        .append(Element::builder("item", NS_PUBSUB).attr("id", id).build())
                        .build(),
                )
                .build(),
        ))
    }

    /// Publishes an item on the owner's behalf (XEP-0398 conversions):
    /// creates the node with `create_config` if needed, stores the item and
    /// notifies.
    pub(crate) async fn publish_internal(
        &self,
        server: &Arc<Server>,
        owner: &BareJid,
        node: &str,
        id: &str,
        payload: &Element,
        create_config: &NodeConfig,
    ) -> Result<(), Failure> {
        let (config, _) = self.node_or_create(server, owner, node, create_config).await?;
        let item = PubsubItem {
            id: id.to_owned(),
            publisher: Some(owner.as_str().to_owned()),
            published_ms: now_ms(),
            payload: payload.to_bytes(),
        };
        self.store_and_notify(server, owner, node, &config, &item).await
    }

    /// The configuration of the node to publish to, and whether it was
    /// created now (with `create`, XEP-0163 §3 auto-create). When a
    /// concurrent publish created it first, that node's configuration counts.
    async fn node_or_create(
        &self,
        server: &Arc<Server>,
        owner: &BareJid,
        node: &str,
        create: &NodeConfig,
    ) -> Result<(NodeConfig, bool), Failure> {
        let (host, user) = parts(owner)?;
        let store = server.pubsub();
        if let Some(existing) = store.node(host, user, node).await.map_err(internal)? {
            return Ok((existing, false));
        }
        match self.create_node(server, owner, node, create).await {
            Ok(()) => Ok((create.clone(), true)),
            Err((StanzaErrorCondition::Conflict, None)) => {
                let existing = store.node(host, user, node).await.map_err(internal)?;
                Ok((existing.ok_or_else(|| fail(StanzaErrorCondition::InternalServerError))?, false))
            }
            Err(failure) => Err(failure),
        }
    }

    /// Stores a published item (keeping at most the configured items) and
    /// notifies (XEP-0060 §7.1.2).
    async fn store_and_notify(
        &self,
        server: &Arc<Server>,
        owner: &BareJid,
        node: &str,
        config: &NodeConfig,
        item: &PubsubItem,
    ) -> Result<(), Failure> {
        let (host, user) = parts(owner)?;
        server.pubsub().publish(host, user, node, item, self.config.max_items).await.map_err(internal)?;
        self.notify(server, owner, node, config, event_items(node, item, config)).await;
        Ok(())
    }

    /// Creates a node, within the per-account node limit.
    async fn create_node(
        &self,
        server: &Arc<Server>,
        owner: &BareJid,
        node: &str,
        config: &NodeConfig,
    ) -> Result<(), Failure> {
        let (host, user) = parts(owner)?;
        let store = server.pubsub();
        if store.nodes(host, user).await.map_err(internal)?.len() >= self.config.max_nodes {
            return Err(fail_with(StanzaErrorCondition::NotAllowed, "max-nodes-exceeded"));
        }
        match store.create_node(host, user, node, config).await {
            Ok(()) => Ok(()),
            Err(StorageError::AlreadyExists) => Err(fail(StanzaErrorCondition::Conflict)),
            Err(StorageError::InvalidInput(_)) => Err(fail(StanzaErrorCondition::NotAcceptable)),
            Err(error) => Err(internal(error)),
        }
    }

    /// XEP-0060 §7.2: delete an item, notifying if asked (§7.2.2.1).
    async fn retract(
        self: &Arc<Self>,
        server: &Arc<Server>,
        owner: &BareJid,
        retract: &Element,
    ) -> Result<Option<Element>, Failure> {
        let node = node_attr(retract)?;
        let ids: Vec<&str> =
            retract.children().filter(|child| child.name() == "item").filter_map(|item| item.attr("id")).collect();
        if ids.is_empty() {
            return Err(fail_with(StanzaErrorCondition::BadRequest, "item-required"));
        }
        let (host, user) = parts(owner)?;
        let store = server.pubsub();
        let config = store.node(host, user, node).await.map_err(internal)?;
        let config = config.ok_or_else(|| fail(StanzaErrorCondition::ItemNotFound))?;
        let mut retracted = Vec::new();
        for id in ids {
            if store.retract(host, user, node, id).await.map_err(internal)? {
                retracted.push(id);
            }
        }
        if retracted.is_empty() {
            return Err(fail(StanzaErrorCondition::ItemNotFound));
        }
        if matches!(retract.attr("notify"), Some("true" | "1")) {
            let items = Element::builder("items", NS_EVENT)
                .attr("node", node)
                .append_all(retracted.iter().map(|id| Element::builder("retract", NS_EVENT).attr("id", *id).build()))
                .build();
            self.notify(server, owner, node, &config, items).await;
        }
        Ok(None)
    }

    /// XEP-0060 §8.1.2/§8.1.3: create a node, with a configuration.
    async fn create(
        &self,
        server: &Arc<Server>,
        owner: &BareJid,
        create: &Element,
        configure: Option<&Element>,
    ) -> Result<Option<Element>, Failure> {
        // §8.1.2: instant nodes (no name) are not offered by PEP.
        let node = create.attr("node").filter(|n| !n.is_empty());
        let node = node.ok_or_else(|| fail_with(StanzaErrorCondition::NotAcceptable, "nodeid-required"))?;
        let config = match configure.and_then(DataForm::find_in) {
            Some(Ok(form)) => {
                config::apply_form(&NodeConfig::default(), &form, self.config.max_items, Strictness::Strict)
                    .map_err(|_| fail(StanzaErrorCondition::NotAcceptable))?
            }
            Some(Err(_)) => return Err(fail(StanzaErrorCondition::BadRequest)),
            None => NodeConfig::default(),
        };
        self.create_node(server, owner, node, &config).await?;
        Ok(None)
    }

    /// XEP-0060 §6.5: retrieve items (all, the `max_items` newest, or by
    /// id), oldest first.
    async fn items(
        &self,
        server: &Arc<Server>,
        owner: &BareJid,
        requester: &Jid,
        items: &Element,
    ) -> Result<Option<Element>, Failure> {
        let node = node_attr(items)?;
        let (host, user) = parts(owner)?;
        let store = server.pubsub();
        let config = store.node(host, user, node).await.map_err(internal)?;
        let config = config.ok_or_else(|| fail(StanzaErrorCondition::ItemNotFound))?;
        may_access(server, owner, &requester.to_bare(), &config).await?;
        let wanted: Vec<&str> = items.children().filter(|c| c.name() == "item").filter_map(|c| c.attr("id")).collect();
        let mut found = Vec::new();
        if wanted.is_empty() {
            let limit = match items.attr("max_items") {
                Some(value) => Some(value.parse::<u32>().map_err(|_| fail(StanzaErrorCondition::BadRequest))?),
                None => None,
            };
            found = store.items(host, user, node, limit).await.map_err(internal)?;
            found.reverse();
        } else {
            for id in wanted {
                if let Some(item) = store.item(host, user, node, id).await.map_err(internal)? {
                    found.push(item);
                }
            }
        }
        let children: Vec<Element> = found.iter().map(|item| item_element(NS_PUBSUB, item, true)).collect();
        Ok(Some(
            Element::builder("pubsub", NS_PUBSUB)
                .append(Element::builder("items", NS_PUBSUB).attr("node", node).append_all(children).build())
                .build(),
        ))
    }

    /// XEP-0060 §8: the owner's configure, default, delete and purge.
    async fn owner_request(
        self: &Arc<Self>,
        server: &Arc<Server>,
        owner: &BareJid,
        is_set: bool,
        action: &Element,
    ) -> Result<Option<Element>, Failure> {
        let (host, user) = parts(owner)?;
        let store = server.pubsub();
        match (is_set, action.name()) {
            // §8.3: the default configuration.
            (false, "default") => {
                let form = config::to_form(&NodeConfig::default(), FormType::Form).to_element();
                let default = Element::builder("default", NS_OWNER).append(form).build();
                Ok(Some(Element::builder("pubsub", NS_OWNER).append(default).build()))
            }
            // §8.2.1: the configuration form.
            (false, "configure") => {
                let node = node_attr(action)?;
                let config = store.node(host, user, node).await.map_err(internal)?;
                let config = config.ok_or_else(|| fail(StanzaErrorCondition::ItemNotFound))?;
                let form = config::to_form(&config, FormType::Form).to_element();
                let configure = Element::builder("configure", NS_OWNER).attr("node", node).append(form).build();
                Ok(Some(Element::builder("pubsub", NS_OWNER).append(configure).build()))
            }
            // §8.2.4: a submitted (or cancelled, §8.2.3) configuration.
            (true, "configure") => {
                let node = node_attr(action)?;
                let config = store.node(host, user, node).await.map_err(internal)?;
                let config = config.ok_or_else(|| fail(StanzaErrorCondition::ItemNotFound))?;
                let form = match DataForm::find_in(action) {
                    Some(Ok(form)) => form,
                    _ => return Err(fail(StanzaErrorCondition::BadRequest)),
                };
                if form.form_type == FormType::Cancel {
                    return Ok(None);
                }
                let updated = config::apply_form(&config, &form, self.config.max_items, Strictness::Strict)
                    .map_err(|_| fail(StanzaErrorCondition::NotAcceptable))?;
                store.configure_node(host, user, node, &updated).await.map_err(internal)?;
                if updated.notify_config {
                    let event = Element::builder("configuration", NS_EVENT).attr("node", node).build();
                    self.notify(server, owner, node, &updated, event).await;
                }
                Ok(None)
            }
            // §8.4: delete the node, telling those who could see it.
            (true, "delete") => {
                let node = node_attr(action)?;
                let config = store.node(host, user, node).await.map_err(internal)?;
                let config = config.ok_or_else(|| fail(StanzaErrorCondition::ItemNotFound))?;
                store.delete_node(host, user, node).await.map_err(internal)?;
                if config.notify_delete {
                    let event = Element::builder("delete", NS_EVENT).attr("node", node).build();
                    self.notify(server, owner, node, &config, event).await;
                }
                Ok(None)
            }
            // §8.5: remove every item.
            (true, "purge") => {
                let node = node_attr(action)?;
                let config = store.node(host, user, node).await.map_err(internal)?;
                let config = config.ok_or_else(|| fail(StanzaErrorCondition::ItemNotFound))?;
                store.purge(host, user, node).await.map_err(internal)?;
                if config.notify_retract {
                    let event = Element::builder("purge", NS_EVENT).attr("node", node).build();
                    self.notify(server, owner, node, &config, event).await;
                }
                Ok(None)
            }
            _ => Err(fail(StanzaErrorCondition::FeatureNotImplemented)),
        }
    }

    /// XEP-0060 §5.2: the nodes of the account the requester may see.
    async fn disco_items(&self, request: &IqRequest<'_>) -> Result<Option<Element>, Failure> {
        if request.payload.attr("node").is_some() {
            return Err(fail(StanzaErrorCondition::ItemNotFound));
        }
        let owner = owner_of(request);
        let (host, user) = parts(&owner)?;
        let requester = request.stanza.from().to_bare();
        let nodes = request.server.pubsub().nodes(host, user).await.map_err(internal)?;
        let mut items = Vec::new();
        for node in nodes {
            if may_access(request.server, &owner, &requester, &node.config).await.is_ok() {
                items.push(
                    Element::builder("item", ns::DISCO_ITEMS)
                        .attr("jid", owner.as_str())
                        .attr("node", node.name.as_str())
                        .attr_opt("name", node.config.title.as_deref())
                        .build(),
                );
            }
        }
        Ok(Some(Element::builder("query", ns::DISCO_ITEMS).append_all(items).build()))
    }

    /// Sends `event_child` in a notification (XEP-0060 §7.1.2.1) to every
    /// interested recipient of `owner` that may see the node.
    pub(crate) async fn notify(
        &self,
        server: &Arc<Server>,
        owner: &BareJid,
        node: &str,
        config: &NodeConfig,
        event_child: Element,
    ) {
        if !config.deliver_notifications {
            return;
        }
        let event = Element::builder("event", NS_EVENT).append(event_child).build();
        for recipient in self.interest.interested(owner, node) {
            if may_access(server, owner, &recipient.to_bare(), config).await.is_ok() {
                send_event(server, owner, &Jid::from(recipient), event.clone(), None).await;
            }
        }
    }

    /// XEP-0163 §4.3.3: the last item of each node of `owner` that
    /// `resource` is interested in and may see.
    async fn send_last_items(&self, server: &Arc<Server>, owner: &BareJid, resource: &FullJid, notify: &NotifySet) {
        if notify.is_empty() {
            return;
        }
        let Ok((host, user)) = parts(owner) else { return };
        let store = server.pubsub();
        let nodes = match store.nodes(host, user).await {
            Ok(nodes) => nodes,
            Err(error) => {
                tracing::warn!(%error, "PEP storage failed");
                return;
            }
        };
        let requester = resource.to_bare();
        for node in nodes {
            if !notify.contains(&node.name)
                || node.config.send_last_published_item == SendLastPublished::Never
                || !node.config.deliver_notifications
                || may_access(server, owner, &requester, &node.config).await.is_err()
            {
                continue;
            }
            let Ok(mut last) = store.items(host, user, &node.name, Some(1)).await else { continue };
            let Some(item) = last.pop() else { continue };
            let event =
                Element::builder("event", NS_EVENT).append(event_items(&node.name, &item, &node.config)).build();
            send_event(server, owner, &Jid::from(resource.clone()), event, Some(item.published_ms)).await;
        }
    }

    /// `resource` (with caps `ver`) may now receive `owner`'s
    /// notifications: send the last items, resolving the caps first if
    /// needed.
    async fn recipient_available(
        self: &Arc<Self>,
        server: &Arc<Server>,
        owner: &BareJid,
        resource: &FullJid,
        (ver, caps_node): SessionCaps,
    ) {
        match self.interest.note_recipient(owner, resource, ver.clone()) {
            Noted::Unchanged | Noted::Waiting => {}
            Noted::Known { new, old } => {
                // Only nodes the resource was not interested in before, and
                // off the presence path (storage reads).
                let fresh: NotifySet = match old {
                    Some(old) => Arc::new(new.difference(&old).cloned().collect()),
                    None => new,
                };
                if !fresh.is_empty() {
                    let (service, server, owner, resource) =
                        (self.clone(), server.clone(), owner.clone(), resource.clone());
                    tokio::spawn(async move { service.send_last_items(&server, &owner, &resource, &fresh).await });
                }
            }
            Noted::Resolve => {
                let service = self.clone();
                let server = server.clone();
                let resource = resource.clone();
                tokio::spawn(async move { service.resolve_caps(&server, resource, ver, caps_node).await });
            }
        }
    }

    /// XEP-0115 §6.2: asks `entity` what `node#ver` stands for, verifies
    /// the answer and sends the last items to everyone who waited; after a
    /// bad or missing answer, asks the next announcer of the same `ver`.
    async fn resolve_caps(&self, server: &Arc<Server>, mut entity: FullJid, ver: Arc<str>, caps_node: Arc<str>) {
        loop {
            let query = Element::builder("query", ns::DISCO_INFO).attr("node", format!("{caps_node}#{ver}")).build();
            let from = Jid::from(entity.to_domain_jid());
            let to = Jid::from(entity.clone());
            let answer = server.request_iq(&from, &to, IqType::Get, query, CAPS_QUERY_TIMEOUT).await;
            let notify = answer
                .filter(|stanza| stanza.iq_type() == Some(IqType::Result))
                .and_then(|stanza| stanza.element().ok())
                .and_then(|iq| iq.get_child("query", ns::DISCO_INFO).and_then(|query| notify_set(query, &ver)));
            match self.interest.resolved(&ver, notify) {
                Resolution::Known(notify, waiting) => {
                    for (owner, resource) in waiting {
                        self.send_last_items(server, &owner, &resource, &notify).await;
                    }
                    return;
                }
                Resolution::AskNext(next) => {
                    tracing::debug!(entity = %entity.as_str(), "capabilities not resolved; asking another announcer");
                    entity = next;
                }
                Resolution::Failed => {
                    tracing::debug!(entity = %entity.as_str(), "capabilities not resolved");
                    return;
                }
            }
        }
    }
}

/// The owner's host and localpart.
fn parts(owner: &BareJid) -> Result<(&str, &str), Failure> {
    let user = owner.node().ok_or_else(|| fail(StanzaErrorCondition::ItemNotFound))?;
    Ok((owner.domain(), user))
}

/// The `node` attribute of an action (XEP-0060 §7.1.3.3 etc.: required).
fn node_attr(action: &Element) -> Result<&str, Failure> {
    action
        .attr("node")
        .filter(|node| !node.is_empty())
        .ok_or_else(|| fail_with(StanzaErrorCondition::BadRequest, "nodeid-required"))
}

/// XEP-0060 §6.1.1 (access models as in §4.5): may `requester` see the
/// node of `owner` configured as `config`?
async fn may_access(
    server: &Arc<Server>,
    owner: &BareJid,
    requester: &BareJid,
    config: &NodeConfig,
) -> Result<(), Failure> {
    if requester == owner {
        return Ok(());
    }
    let item = || async { server.roster_item(owner, requester).await.map_err(internal) };
    match config.access_model {
        AccessModel::Open => Ok(()),
        AccessModel::Presence => match item().await? {
            Some(item) if item.subscription.has_from() => Ok(()),
            // §6.1.3.2: presence subscription required.
            _ => Err(fail_with(StanzaErrorCondition::NotAuthorized, "presence-subscription-required")),
        },
        AccessModel::Roster => match item().await? {
            Some(item) if item.groups.iter().any(|group| config.roster_groups_allowed.contains(group)) => Ok(()),
            // §6.1.3.3: not in an allowed roster group.
            _ => Err(fail_with(StanzaErrorCondition::NotAuthorized, "not-in-roster-group")),
        },
        // §6.1.3.4: whitelist (PEP keeps no list besides the owner).
        AccessModel::Whitelist | AccessModel::Authorize => {
            Err(fail_with(StanzaErrorCondition::NotAllowed, "closed-node"))
        }
    }
}

/// An `<item/>` in namespace `namespace` with its payload (unless
/// `with_payload` is false, `pubsub#deliver_payloads`).
fn item_element(namespace: &str, item: &PubsubItem, with_payload: bool) -> Element {
    let mut element = Element::builder("item", namespace).attr("id", item.id.as_str()).build();
    if with_payload {
        match Element::parse_standalone(&item.payload, namespace) {
            Ok(payload) => element.push_child(payload),
            Err(error) => tracing::warn!(%error, id = %item.id, "stored PEP payload does not parse"),
        }
    }
    element
}

/// The `<items/>` of a publish notification (XEP-0060 §7.1.2.1).
fn event_items(node: &str, item: &PubsubItem, config: &NodeConfig) -> Element {
    Element::builder("items", NS_EVENT)
        .attr("node", node)
        .append(item_element(NS_EVENT, item, config.deliver_payloads))
        .build()
}

/// Sends a notification message from the owner's bare JID (XEP-0163 §4.3:
/// type `headline`, XEP-0060 `pubsub#notification_type` default).
async fn send_event(server: &Arc<Server>, owner: &BareJid, to: &Jid, event: Element, published_ms: Option<i64>) {
    let mut message = Element::builder("message", ns::CLIENT)
        .attr("from", owner.as_str())
        .attr("to", to.as_str())
        .attr("type", "headline")
        .attr("id", new_item_id())
        .append(event)
        .build();
    // XEP-0060 §6.1.7: a last published item carries its publication time
    // (XEP-0203).
    if let Some(ms) = published_ms.filter(|ms| *ms > 0) {
        let stamp = xmppd_proto::datetime::format_unix_ms(ms);
        message
            .push_child(Element::builder("delay", ns::DELAY).attr("from", owner.as_str()).attr("stamp", stamp).build());
    }
    if let Some(stanza) = Stanza::from_element(&message) {
        server.route(stanza).await;
    }
}

/// The caps `ver` and node of a presence stanza, parsed only when it
/// mentions the caps namespace.
fn presence_caps(stanza: &Stanza) -> Option<SessionCaps> {
    if !mentions(stanza, ns::CAPS) {
        return None;
    }
    caps_of(&stanza.element().ok()?)
}

/// Whether the bytes of a stanza mention `needle` (a cheap filter before
/// parsing it).
pub(crate) fn mentions(stanza: &Stanza, needle: &str) -> bool {
    let needle = needle.as_bytes();
    stanza.bytes().windows(needle.len()).any(|window| window == needle)
}

/// A local session's own presence broadcast (RFC 6121 §4.2, §4.4): its
/// caps are read once here, and the session becomes a recipient of its own
/// account's notifications (XEP-0163 §4.3.3 "the account owner's
/// resources") and of every local account it is subscribed to (§4.3.1).
struct OwnPresence(Arc<Pep>);

#[async_trait]
impl StanzaHook for OwnPresence {
    async fn on_stanza(&self, server: &Arc<Server>, stanza: &Stanza) -> HookFlow {
        let Ok(session) = stanza.from().clone().try_into_full() else { return HookFlow::Continue };
        if stanza.to().is_some() {
            return HookFlow::Continue;
        }
        match stanza.stanza_type() {
            None => {
                let caps = presence_caps(stanza);
                self.0.interest.set_session_caps(&session, caps.clone());
                match caps {
                    Some(caps) => {
                        for owner in self.0.local_owners_of(server, &session).await {
                            self.0.recipient_available(server, &owner, &session, caps.clone()).await;
                        }
                    }
                    // No caps (any more): no interests; the roster need not
                    // be read.
                    None => self.0.interest.forget_resource(&session),
                }
            }
            Some("unavailable") => self.0.session_unavailable(&session),
            Some(_) => {}
        }
        HookFlow::Continue
    }
}

impl Pep {
    /// The local accounts whose notifications `session` may receive: its
    /// own, and those it has a presence subscription to.
    async fn local_owners_of(&self, server: &Arc<Server>, session: &FullJid) -> Vec<BareJid> {
        let user = session.to_bare();
        let mut owners = vec![user.clone()];
        if let Ok(roster) = server.roster(&user).await {
            owners.extend(
                roster
                    .items
                    .iter()
                    .filter(|item| item.subscription.has_to())
                    .filter_map(|item| item.contact.parse::<BareJid>().ok())
                    .filter(|contact| contact.node().is_some() && server.serves_domain(contact.domain())),
            );
        }
        owners
    }

    /// A session went away: it receives nothing more.
    fn session_unavailable(&self, session: &FullJid) {
        self.interest.set_session_caps(session, None);
        self.interest.forget_resource(session);
    }

    /// `owner` approved `contact`'s subscription (RFC 6121 §3.1.5): the
    /// contact's available local sessions receive `owner`'s notifications
    /// from now on, starting with the last items (XEP-0163 §4.3.5: "MUST
    /// send the last published item to all new subscribers").
    async fn subscription_approved(self: &Arc<Self>, server: &Arc<Server>, owner: &BareJid, contact: &BareJid) {
        for session in server.sessions().sessions_of(contact) {
            if session.is_available()
                && let Some(caps) = self.interest.session_caps(session.jid())
            {
                self.recipient_available(server, owner, session.jid(), caps).await;
            }
        }
    }
}

/// Presence to a local account from a remote contact's resource: if the
/// contact may see the account's nodes (a presence subscription, XEP-0163
/// §4.3.1) it becomes a recipient, and gets the last items (§4.3.3).
struct ContactPresence(Arc<Pep>);

#[async_trait]
impl StanzaHook for ContactPresence {
    async fn on_stanza(&self, server: &Arc<Server>, stanza: &Stanza) -> HookFlow {
        let (Some(to), Ok(contact)) = (stanza.to(), stanza.from().clone().try_into_full()) else {
            return HookFlow::Continue;
        };
        let owner = to.to_bare();
        if contact.to_bare() == owner {
            return HookFlow::Continue; // Own resources: see OwnPresence.
        }
        match stanza.stanza_type() {
            None => {
                // Local resources were handled at their own broadcast.
                if server.serves_domain(contact.domain()) {
                    return HookFlow::Continue;
                }
                let Some(caps) = presence_caps(stanza) else { return HookFlow::Continue };
                let subscribed = matches!(
                    server.roster_item(&owner, &contact.to_bare()).await,
                    Ok(Some(item)) if item.subscription.has_from()
                );
                if subscribed {
                    self.0.recipient_available(server, &owner, &contact, caps).await;
                }
            }
            Some("unavailable") => self.0.interest.forget_recipient(&owner, &contact),
            Some(_) => {}
        }
        HookFlow::Continue
    }
}

/// Subscriptions to an account's presence are PEP subscriptions.
struct SubscriptionChanged(Arc<Pep>);

#[async_trait]
impl xmppd_core::RosterHook for SubscriptionChanged {
    async fn on_roster_change(
        &self,
        server: &Arc<Server>,
        owner: &BareJid,
        contact: &str,
        item: Option<&xmppd_storage::RosterItem>,
    ) {
        let Ok(contact) = contact.parse::<BareJid>() else { return };
        if item.is_some_and(|item| item.subscription.has_from()) {
            self.0.subscription_approved(server, owner, &contact).await;
        } else {
            for session in server.sessions().sessions_of(&contact) {
                self.0.interest.forget_recipient(owner, session.jid());
            }
        }
    }
}

/// A session ended without unavailable presence of its own.
struct SessionGone(Arc<Pep>);

#[async_trait]
impl SessionHook for SessionGone {
    async fn on_session(&self, _server: &Arc<Server>, session: &Arc<SessionEntry>) {
        self.0.session_unavailable(session.jid());
    }
}
