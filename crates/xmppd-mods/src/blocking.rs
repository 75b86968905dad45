//! XEP-0191: Blocking Command.
//!
//! The blocklist lives in the key-value store (store `blocklist`) and is
//! cached in memory while its owner is online, because every stanza to or
//! from an online user is checked against it. All writes go through this
//! module, so the cache is never stale.
//!
//! Effects (§3.5): stanzas from a blocked entity are not delivered
//! (presence silently, messages and IQ requests with `service-unavailable`);
//! stanzas the user sends to a blocked entity are refused with
//! `not-acceptable` plus `<blocked xmlns='urn:xmpp:blocking:errors'/>`;
//! presence the server sends on the user's behalf (broadcasts, probe
//! answers) does not reach a blocked entity.

use std::collections::HashMap;
use std::sync::{Arc, PoisonError, RwLock};

use async_trait::async_trait;
use xmppd_core::module::IqOutcome;
use xmppd_core::{
    HookFlow, IqHandler, IqRequest, IqType, KindSet, ModuleContext, ModuleDef, Protocol, Scope, Server, SessionEntry,
    SessionHook, SessionHookPoint, Stanza, StanzaHook, StanzaHookPoint, StanzaKind, Support,
};
use xmppd_jid::{BareJid, Jid};
use xmppd_proto::{StanzaErrorCondition, ns};
use xmppd_xml::Element;

/// The module declaration.
pub static MODULE: ModuleDef = ModuleDef {
    name: "blocking",
    protocols: &[Protocol { spec: "XEP-0191", version: "1.3", support: Support::Complete }],
    start,
};

/// `[modules.blocking]`
#[derive(Debug, Clone, serde::Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct BlockingConfig {
    /// Most JIDs one blocklist may hold (`resource-constraint` above).
    pub max_items: usize,
}

impl Default for BlockingConfig {
    fn default() -> Self {
        BlockingConfig { max_items: 1000 }
    }
}

const STORE: &str = "blocklist";

fn start(ctx: &mut ModuleContext<'_>) -> Result<(), String> {
    let config: BlockingConfig = ctx.config()?;
    let lists = Arc::new(Blocklists { cache: RwLock::new(HashMap::new()), max_items: config.max_items });
    ctx.disco_feature(ns::BLOCKING);
    ctx.iq_handler(IqType::Get, Scope::Account, ns::BLOCKING, "blocklist", GetList(lists.clone()));
    ctx.iq_handler(IqType::Set, Scope::Account, ns::BLOCKING, "block", Change { lists: lists.clone(), block: true });
    ctx.iq_handler(IqType::Set, Scope::Account, ns::BLOCKING, "unblock", Change { lists: lists.clone(), block: false });
    // Before the presence module (priority 0) so blocked subscription
    // requests never reach the state machine.
    ctx.stanza_hook(StanzaHookPoint::Outbound, KindSet::ALL, 100, Outbound(lists.clone()));
    ctx.stanza_hook(StanzaHookPoint::Inbound, KindSet::ALL, 100, Inbound(lists.clone()));
    ctx.session_hook(SessionHookPoint::Closed, -100, Forget(lists));
    Ok(())
}

/// Whether a blocklist item covers `address` (XEP-0191 §3.5 via XEP-0016
/// §2.1: full JID, bare JID, domain/resource or domain).
fn covers(item: &Jid, address: &Jid) -> bool {
    item == address
        || (item.resource().is_none() && item.node().is_some() && item.as_str() == address.bare_str())
        || (item.node().is_none() && item.resource().is_none() && item.domain() == address.domain())
}

struct Blocklists {
    cache: RwLock<HashMap<BareJid, Arc<Vec<Jid>>>>,
    max_items: usize,
}

impl Blocklists {
    /// The user's blocklist; cached while the user is online.
    async fn get(&self, server: &Server, user: &BareJid) -> Arc<Vec<Jid>> {
        if let Some(list) = self.cache.read().unwrap_or_else(PoisonError::into_inner).get(user) {
            return list.clone();
        }
        let Some(node) = user.node() else { return Arc::default() };
        let stored = server.kv().get(user.domain(), node, STORE, "").await.ok().flatten().unwrap_or_default();
        let list: Arc<Vec<Jid>> =
            Arc::new(String::from_utf8_lossy(&stored).lines().filter_map(|line| line.parse().ok()).collect());
        if server.sessions().is_online(user) {
            self.cache.write().unwrap_or_else(PoisonError::into_inner).insert(user.clone(), list.clone());
        }
        list
    }

    async fn blocks(&self, server: &Server, user: &BareJid, address: &Jid) -> bool {
        self.get(server, user).await.iter().any(|item| covers(item, address))
    }

    async fn store(&self, server: &Server, user: &BareJid, list: Vec<Jid>) -> Result<(), StanzaErrorCondition> {
        let node = user.node().ok_or(StanzaErrorCondition::BadRequest)?;
        let text: Vec<&str> = list.iter().map(Jid::as_str).collect();
        server
            .kv()
            .set(user.domain(), node, STORE, "", text.join("\n").as_bytes())
            .await
            .map_err(|_| StanzaErrorCondition::InternalServerError)?;
        let mut cache = self.cache.write().unwrap_or_else(PoisonError::into_inner);
        if server.sessions().is_online(user) {
            cache.insert(user.clone(), Arc::new(list));
        } else {
            cache.remove(user);
        }
        Ok(())
    }
}

fn items_element(name: &str, jids: &[Jid]) -> Element {
    Element::builder(name, ns::BLOCKING)
        .append_all(jids.iter().map(|jid| Element::builder("item", ns::BLOCKING).attr("jid", jid.as_str()).build()))
        .build()
}

struct GetList(Arc<Blocklists>);

#[async_trait]
impl IqHandler for GetList {
    /// §3.1: the blocklist; the resource now gets pushes.
    async fn handle(&self, request: IqRequest<'_>) -> IqOutcome {
        let user = request.own_account()?;
        if let Ok(full) = request.stanza.from().clone().try_into_full()
            && let Some(session) = request.server.sessions().get(&full)
        {
            session.set_blocklist_interested();
        }
        let list = self.0.get(request.server, &user).await;
        Ok(Some(items_element("blocklist", &list)))
    }
}

struct Change {
    lists: Arc<Blocklists>,
    block: bool,
}

#[async_trait]
impl IqHandler for Change {
    /// §3.3 (block) and §3.4 (unblock).
    async fn handle(&self, request: IqRequest<'_>) -> IqOutcome {
        let user = request.own_account()?;
        let mut jids = Vec::new();
        for item in request.payload.children().filter(|c| c.is("item", ns::BLOCKING)) {
            let jid: Jid = item.attr("jid").and_then(|j| j.parse().ok()).ok_or(StanzaErrorCondition::JidMalformed)?;
            if !jids.contains(&jid) {
                jids.push(jid);
            }
        }
        // §3.3: a block without items is bad-request; §3.4: an unblock
        // without items unblocks everything.
        if self.block && jids.is_empty() {
            return Err(StanzaErrorCondition::BadRequest);
        }
        let server = request.server;
        let current = self.lists.get(server, &user).await;
        let (next, changed): (Vec<Jid>, Vec<Jid>) = if self.block {
            let added: Vec<Jid> = jids.iter().filter(|j| !current.contains(j)).cloned().collect();
            let mut next = current.to_vec();
            next.extend(added.iter().cloned());
            if next.len() > self.lists.max_items {
                return Err(StanzaErrorCondition::ResourceConstraint);
            }
            (next, added)
        } else if jids.is_empty() {
            (Vec::new(), current.to_vec())
        } else {
            let removed: Vec<Jid> = current.iter().filter(|j| jids.contains(j)).cloned().collect();
            (current.iter().filter(|j| !jids.contains(j)).cloned().collect(), removed)
        };
        self.lists.store(server, &user, next).await?;
        // Pushes to interested resources (§3.3, §3.4).
        let pushed = if !self.block && jids.is_empty() {
            Element::builder("unblock", ns::BLOCKING).build()
        } else {
            items_element(if self.block { "block" } else { "unblock" }, &jids)
        };
        for session in server.sessions().sessions_of(&user) {
            if session.is_blocklist_interested() {
                let iq = Element::builder("iq", ns::CLIENT)
                    .attr("type", "set")
                    .attr("id", "blocklist-push")
                    .attr("from", user.as_str())
                    .attr("to", session.jid().as_str())
                    .append(pushed.clone())
                    .build();
                if let Some(stanza) = Stanza::from_element(&iq) {
                    server.deliver_to(&session, &stanza);
                }
            }
        }
        presence_effects(server, &user, &changed, self.block).await;
        Ok(None)
    }
}

/// §3.3: a newly blocked subscriber sees the user go unavailable; §3.4: an
/// unblocked subscriber gets the user's current presence again.
async fn presence_effects(server: &Arc<Server>, user: &BareJid, changed: &[Jid], blocked: bool) {
    let Ok(roster) = server.roster(user).await else { return };
    let sessions = server.sessions().sessions_of(user);
    for item in roster.items.iter().filter(|i| i.subscription.has_from()) {
        let Ok(contact) = item.contact.parse::<Jid>() else { continue };
        if !changed.iter().any(|c| covers(c, &contact)) {
            continue;
        }
        for session in sessions.iter().filter(|s| s.is_available()) {
            let from = Jid::from(session.jid().clone());
            let presence = if blocked {
                Some(Stanza::presence(&from, &contact, Some("unavailable")))
            } else {
                session.last_presence().and_then(|last| {
                    let mut element = Element::parse_standalone(&last, ns::CLIENT).ok()?;
                    element.set_attr("to", contact.as_str());
                    Stanza::from_element(&element)
                })
            };
            if let Some(presence) = presence {
                if blocked {
                    // Straight to the router's delivery: our own inbound
                    // hook would (rightly) stop it otherwise.
                    deliver_unchecked(server, &contact, &presence);
                } else {
                    server.route(presence).await;
                }
            }
        }
    }
}

/// Delivers to a local contact's available resources without the blocking
/// check (the final unavailable of §3.3).
fn deliver_unchecked(server: &Server, contact: &Jid, stanza: &Stanza) {
    for session in server.sessions().sessions_of(&contact.to_bare()) {
        if session.is_available() {
            server.deliver_to(&session, stanza);
        }
    }
}

struct Outbound(Arc<Blocklists>);

#[async_trait]
impl StanzaHook for Outbound {
    /// §3.5: the user's own stanzas to a blocked entity are refused.
    async fn on_stanza(&self, server: &Arc<Server>, stanza: &Stanza) -> HookFlow {
        let Some(to) = stanza.to() else { return HookFlow::Continue };
        if stanza.is_error() {
            return HookFlow::Continue;
        }
        let user = stanza.from().to_bare();
        if !self.0.blocks(server, &user, to).await {
            return HookFlow::Continue;
        }
        let blocked = Element::builder("blocked", ns::BLOCKING_ERRORS).build();
        server.reply_error_with(stanza, StanzaErrorCondition::NotAcceptable, &blocked);
        HookFlow::Handled
    }
}

struct Inbound(Arc<Blocklists>);

#[async_trait]
impl StanzaHook for Inbound {
    async fn on_stanza(&self, server: &Arc<Server>, stanza: &Stanza) -> HookFlow {
        let Some(to) = stanza.to() else { return HookFlow::Continue };
        let recipient = to.to_bare();
        let sender = stanza.from();
        if sender.to_bare() == recipient {
            return HookFlow::Continue;
        }
        if self.0.blocks(server, &recipient, sender).await {
            // §3.5: presence silently; messages and IQ requests get
            // service-unavailable (as if the user did not exist).
            match stanza.kind() {
                StanzaKind::Presence => {}
                StanzaKind::Message | StanzaKind::Iq => {
                    if !matches!(stanza.stanza_type(), Some("error" | "result")) {
                        server.reply_error(stanza, StanzaErrorCondition::ServiceUnavailable, None);
                    }
                }
            }
            return HookFlow::Handled;
        }
        // Stanzas the server sends on behalf of a local user (presence
        // broadcasts, probe answers, PEP notifications, XEP-0163 §4.3.4
        // "MUST NOT send notifications to a subscriber if the user has
        // blocked the subscriber") to someone that user blocked, also while
        // the user is offline (the list is then read, not cached).
        let sender_bare = sender.to_bare();
        if sender_bare.node().is_some()
            && server.serves_domain(sender_bare.domain())
            && self.0.blocks(server, &sender_bare, to).await
        {
            return HookFlow::Handled;
        }
        HookFlow::Continue
    }
}

struct Forget(Arc<Blocklists>);

#[async_trait]
impl SessionHook for Forget {
    /// The cached list goes when the user's last session does.
    async fn on_session(&self, server: &Arc<Server>, session: &Arc<SessionEntry>) {
        let user = session.jid().to_bare();
        if !server.sessions().is_online(&user) {
            self.0.cache.write().unwrap_or_else(PoisonError::into_inner).remove(&user);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn jid(s: &str) -> Jid {
        s.parse().unwrap_or_else(|_| panic!("{s}"))
    }

    #[test]
    fn matching_rules() {
        let full = jid("romeo@montague.lit/orchard");
        assert!(covers(&jid("romeo@montague.lit/orchard"), &full));
        assert!(covers(&jid("romeo@montague.lit"), &full));
        assert!(covers(&jid("montague.lit"), &full));
        assert!(!covers(&jid("romeo@montague.lit/garden"), &full));
        assert!(!covers(&jid("montague.lit/orchard"), &full));
        assert!(covers(&jid("montague.lit/orchard"), &jid("montague.lit/orchard")));
        assert!(!covers(&jid("juliet@capulet.lit"), &full));
        assert!(!covers(&jid("capulet.lit"), &full));
    }
}
