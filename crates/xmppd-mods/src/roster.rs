//! RFC 6121 §2: roster get, set and remove, with pushes to interested
//! resources and versioning (§2.6, XEP-0237).

use std::collections::HashSet;

use async_trait::async_trait;
use xmppd_core::module::IqOutcome;
use xmppd_core::{IqHandler, IqRequest, IqType, ModuleContext, ModuleDef, Protocol, Scope, Stanza, Support};
use xmppd_jid::{BareJid, Jid};
use xmppd_proto::{StanzaErrorCondition, ns};
use xmppd_storage::{RosterChange, RosterItem, StorageError};
use xmppd_xml::Element;

/// The module declaration.
pub static MODULE: ModuleDef = ModuleDef {
    name: "roster",
    protocols: &[
        Protocol { spec: "RFC 6121", version: "§2", support: Support::Complete },
        Protocol { spec: "XEP-0237", version: "1.3", support: Support::Complete },
    ],
    start,
};

/// `[modules.roster]`
#[derive(Debug, Clone, serde::Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct RosterConfig {
    /// Most items a roster may hold; adding one more is refused with
    /// `resource-constraint` (RFC 6121 §2.3.3).
    pub max_items: u64,
    /// Longest item name and group name, in bytes (`not-acceptable` above).
    pub max_name_bytes: usize,
    /// Most groups on one item.
    pub max_groups: usize,
}

impl Default for RosterConfig {
    fn default() -> Self {
        RosterConfig { max_items: 1000, max_name_bytes: 1023, max_groups: 64 }
    }
}

fn start(ctx: &mut ModuleContext<'_>) -> Result<(), String> {
    let config: RosterConfig = ctx.config()?;
    if config.max_items == 0 {
        return Err("modules.roster.max_items: must be at least 1".into());
    }
    // §2.6.1: roster versioning is offered as a stream feature.
    ctx.stream_feature(&Element::builder("ver", ns::ROSTER_VER).build());
    ctx.iq_handler(IqType::Get, Scope::Account, ns::ROSTER, "query", Get);
    ctx.iq_handler(IqType::Set, Scope::Account, ns::ROSTER, "query", Set { config });
    Ok(())
}

fn storage_error(error: &StorageError) -> StanzaErrorCondition {
    match error {
        StorageError::LimitExceeded => StanzaErrorCondition::ResourceConstraint,
        _ => StanzaErrorCondition::InternalServerError,
    }
}

struct Get;

#[async_trait]
impl IqHandler for Get {
    /// §2.1.3 and §2.6.3: the whole roster; an empty result when the
    /// client's version is current; an empty result followed by one push
    /// per change when the client's version is older and the changes are
    /// fewer than the items.
    async fn handle(&self, request: IqRequest<'_>) -> IqOutcome {
        let user = request.own_account()?;
        if request.payload.children().next().is_some() {
            return Err(StanzaErrorCondition::BadRequest);
        }
        // §2.1.6: this resource now gets roster pushes.
        if let Ok(full) = request.stanza.from().clone().try_into_full()
            && let Some(session) = request.server.sessions().get(&full)
        {
            session.set_interested();
        }
        // No push may overtake the answer or the interim pushes.
        request.hold_until_answered(request.server.hold_roster_writes(&user).await);
        let roster = request.server.roster(&user).await.map_err(|e| storage_error(&e))?;
        let version = roster.version.to_string();
        let client_version = request.payload.attr("ver");
        if client_version == Some(version.as_str()) {
            return Ok(None);
        }
        // §2.6.3: an empty result plus one push per change since the
        // client's version, unless the whole roster is smaller.
        if let (Some(since), Ok(session)) =
            (client_version.and_then(|v| v.parse::<u64>().ok()), request.stanza.from().clone().try_into_full())
            && let Ok(Some((current, changes))) = request.server.roster_changes_since(&user, since).await
            && current == roster.version
            && changes.len() < roster.items.len()
        {
            for change in changes {
                let item = match &change {
                    RosterChange::Put { item, .. } => xmppd_core::roster::item_element(item),
                    RosterChange::Removed { contact, .. } => xmppd_core::roster::removed_item_element(contact),
                };
                if let Some(push) = xmppd_core::roster_push(&session, item, change.version()) {
                    request.send_after_answer(push);
                }
            }
            return Ok(None);
        }
        let query = Element::builder("query", ns::ROSTER)
            .attr("ver", version)
            .append_all(roster.items.iter().map(xmppd_core::roster::item_element));
        Ok(Some(query.build()))
    }
}

struct Set {
    config: RosterConfig,
}

#[async_trait]
impl IqHandler for Set {
    /// §2.3 (add or update) and §2.5 (remove).
    async fn handle(&self, request: IqRequest<'_>) -> IqOutcome {
        let user = request.own_account()?;
        let mut items = request.payload.children();
        // §2.3.3: exactly one item.
        let (Some(item), None) = (items.next(), items.next()) else {
            return Err(StanzaErrorCondition::BadRequest);
        };
        if !item.is("item", ns::ROSTER) {
            return Err(StanzaErrorCondition::BadRequest);
        }
        let contact: BareJid = match item.attr("jid").map(str::parse::<Jid>) {
            Some(Ok(jid)) if jid.resource().is_none() => jid.to_bare(),
            Some(Ok(_)) | Some(Err(_)) => return Err(StanzaErrorCondition::JidMalformed),
            None => return Err(StanzaErrorCondition::BadRequest),
        };
        if item.attr("subscription") == Some("remove") {
            return remove(&request, &user, &contact).await;
        }
        let name = item.attr("name").filter(|n| !n.is_empty()).map(str::to_owned);
        if name.as_ref().is_some_and(|n| n.len() > self.config.max_name_bytes) {
            return Err(StanzaErrorCondition::NotAcceptable);
        }
        let mut groups = Vec::new();
        let mut seen = HashSet::new();
        for group in item.children().filter(|c| c.is("group", ns::ROSTER)) {
            let group = group.text();
            // §2.3.3: an empty group name is not-acceptable; a duplicate
            // is bad-request.
            if group.is_empty() || group.len() > self.config.max_name_bytes {
                return Err(StanzaErrorCondition::NotAcceptable);
            }
            if !seen.insert(group.clone()) {
                return Err(StanzaErrorCondition::BadRequest);
            }
            groups.push(group);
        }
        if groups.len() > self.config.max_groups {
            return Err(StanzaErrorCondition::NotAcceptable);
        }
        let server = request.server;
        let existing = server.roster_item(&user, &contact).await.map_err(|e| storage_error(&e))?;
        // §2.1.2.5: 'subscription' and 'ask' from the client are ignored;
        // the state stays the server's.
        let next = RosterItem {
            name,
            groups,
            ..existing.unwrap_or(RosterItem { contact: contact.as_str().to_owned(), ..RosterItem::default() })
        };
        server.put_roster_item(&user, &next, Some(self.config.max_items)).await.map_err(|e| storage_error(&e))?;
        Ok(None)
    }
}

/// §2.5.2: removal cancels the subscriptions both ways and any pending
/// request, then the item goes.
async fn remove(request: &IqRequest<'_>, user: &BareJid, contact: &BareJid) -> IqOutcome {
    let server = request.server;
    let existing = server.roster_item(user, contact).await.map_err(|e| storage_error(&e))?;
    let Some(existing) = existing else {
        return Err(StanzaErrorCondition::ItemNotFound);
    };
    let me = Jid::from(user.clone());
    let them = Jid::from(contact.clone());
    server.remove_pending_subscription(user, contact).await.ok();
    server.remove_roster_item(user, contact).await.map_err(|e| storage_error(&e))?;
    if existing.subscription.has_to() || existing.ask {
        server.route(Stanza::presence(&me, &them, Some("unsubscribe"))).await;
    }
    if existing.subscription.has_from() {
        // §3.2.2: the former subscriber sees the user go away first.
        server.send_unavailable_to(user, &them).await;
        server.route(Stanza::presence(&me, &them, Some("unsubscribed"))).await;
    }
    Ok(None)
}
