//! RFC 6121 §3 and §4: presence subscriptions and presence broadcast.
//!
//! * Outbound (from a local client): broadcast of available and
//!   unavailable presence to subscribers and the user's other resources
//!   (§4.2.2, §4.4.2, §4.5.2), directed presence (§4.6), and the user's
//!   side of the subscription state machine (§3, Appendix A.3), stamped
//!   with the bare JID (§3.1.2).
//! * Inbound (to a local account): the contact's side of the state machine
//!   (Appendix A.2), pending-in requests kept until answered (§3.1.3),
//!   pre-approvals (§3.4), and probe answers that honour the subscription
//!   (§4.3.2).
//! * Initial presence: probes to the user's contacts, redelivery of
//!   pending requests, presence of the user's other resources (§4.2.2).
//! * Session end, however it ends: unavailable to subscribers and to every
//!   entity that got directed presence (§4.5.2, §4.6.3).

use std::sync::Arc;

use async_trait::async_trait;
use xmppd_core::{
    HookFlow, KindSet, ModuleContext, ModuleDef, Protocol, Server, SessionEntry, SessionHook, SessionHookPoint, Stanza,
    StanzaHook, StanzaHookPoint, Support,
};
use xmppd_jid::{BareJid, Jid};
use xmppd_proto::ns;
use xmppd_storage::{PendingIn, RosterItem, Subscription};
use xmppd_xml::Element;

/// The module declaration.
pub static MODULE: ModuleDef = ModuleDef {
    name: "presence",
    protocols: &[Protocol { spec: "RFC 6121", version: "§3, §4", support: Support::Complete }],
    start,
};

/// `[modules.presence]`
#[derive(Debug, Clone, serde::Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct PresenceConfig {
    /// Maximum roster size used when a subscription creates a roster item
    /// (RFC 6121 §3.1.2); the roster module's limit should match.
    pub max_roster_items: u64,
}

impl Default for PresenceConfig {
    fn default() -> Self {
        PresenceConfig { max_roster_items: 1000 }
    }
}

fn start(ctx: &mut ModuleContext<'_>) -> Result<(), String> {
    let config: PresenceConfig = ctx.config()?;
    let limit = Some(config.max_roster_items);
    // RFC 6121 §3.4.1: pre-approvals are supported.
    ctx.stream_feature(&Element::builder("sub", ns::PRE_APPROVAL).build());
    ctx.stanza_hook(StanzaHookPoint::Outbound, KindSet::PRESENCE, 0, Outbound { limit });
    ctx.stanza_hook(StanzaHookPoint::Inbound, KindSet::PRESENCE, 0, Inbound { limit });
    ctx.session_hook(SessionHookPoint::InitialPresence, 0, Initial);
    ctx.session_hook(SessionHookPoint::Closed, 0, Closed);
    Ok(())
}

// ---- the subscription state machine (RFC 6121 Appendix A) -----------------

/// The user's outbound subscription stanzas (Appendix A.3): the new item, if
/// the user's roster changes.
pub fn outbound_transition(
    item: Option<&RosterItem>,
    contact: &str,
    kind: &str,
    pending_in: bool,
) -> Option<RosterItem> {
    let mut next = item.cloned().unwrap_or_else(|| RosterItem { contact: contact.to_owned(), ..RosterItem::default() });
    let sub = next.subscription;
    match kind {
        // A.3.1: subscribe sets pending-out unless already subscribed.
        "subscribe" => {
            if sub.has_to() || next.ask {
                return None;
            }
            next.ask = true;
        }
        // A.3.2: unsubscribe clears "to" and pending-out.
        "unsubscribe" => {
            if !sub.has_to() && !next.ask {
                return None;
            }
            next.subscription = Subscription::from_flags(false, sub.has_from());
            next.ask = false;
        }
        // A.3.3: subscribed approves a pending-in request (§3.1.5), or
        // pre-approves one (§3.4).
        "subscribed" => {
            if sub.has_from() {
                return None;
            }
            if pending_in {
                next.subscription = Subscription::from_flags(sub.has_to(), true);
                next.approved = false;
            } else if next.approved {
                return None;
            } else {
                next.approved = true;
            }
        }
        // A.3.4: unsubscribed cancels "from", a pre-approval or denies a
        // pending request.
        "unsubscribed" => {
            if !sub.has_from() && !next.approved {
                return None;
            }
            next.subscription = Subscription::from_flags(sub.has_to(), false);
            next.approved = false;
        }
        _ => return None,
    }
    Some(next)
}

/// The contact's inbound subscription stanzas (Appendix A.2) for the types
/// that change an existing item: the new item, if it changes.
pub fn inbound_transition(item: Option<&RosterItem>, kind: &str) -> Option<RosterItem> {
    let mut next = item?.clone();
    let sub = next.subscription;
    match kind {
        // A.2.2: unsubscribe removes "from".
        "unsubscribe" => {
            if !sub.has_from() {
                return None;
            }
            next.subscription = Subscription::from_flags(sub.has_to(), false);
        }
        // A.2.3: subscribed answers our pending-out.
        "subscribed" => {
            if !next.ask {
                return None;
            }
            next.ask = false;
            next.subscription = Subscription::from_flags(true, sub.has_from());
        }
        // A.2.4: unsubscribed removes "to" or denies pending-out.
        "unsubscribed" => {
            if !sub.has_to() && !next.ask {
                return None;
            }
            next.ask = false;
            next.subscription = Subscription::from_flags(false, sub.has_from());
        }
        _ => return None,
    }
    Some(next)
}

fn is_subscription_type(kind: Option<&str>) -> bool {
    matches!(kind, Some("subscribe" | "subscribed" | "unsubscribe" | "unsubscribed"))
}

// ---- outbound ---------------------------------------------------------------

struct Outbound {
    limit: Option<u64>,
}

#[async_trait]
impl StanzaHook for Outbound {
    async fn on_stanza(&self, server: &Arc<Server>, stanza: &Stanza) -> HookFlow {
        let user = stanza.from().to_bare();
        if !matches!(
            stanza.stanza_type(),
            None | Some(
                "unavailable" | "subscribe" | "subscribed" | "unsubscribe" | "unsubscribed" | "probe" | "error"
            )
        ) {
            // §4.7.1: an unknown presence type is a bad request.
            server.reply_error(stanza, xmppd_proto::StanzaErrorCondition::BadRequest, Some("unknown presence type"));
            return HookFlow::Handled;
        }
        match (stanza.to(), stanza.stanza_type()) {
            (None, None | Some("unavailable")) => {
                let session = stanza.from().clone().try_into_full().ok().and_then(|full| server.sessions().get(&full));
                broadcast(server, stanza, &user, session.as_ref()).await;
                HookFlow::Handled
            }
            // Presence of other types without 'to' means nothing (§4.7.1).
            (None, _) => HookFlow::Handled,
            (Some(to), kind) if is_subscription_type(kind) => {
                outbound_subscription(server, stanza, &user, &to.to_bare(), self.limit).await;
                HookFlow::Handled
            }
            (Some(to), Some("probe")) => {
                // §4.3.1: probes carry the bare JID.
                let probe =
                    Stanza::presence(&Jid::from(user), &Jid::from(to.to_bare()), Some("probe")).with_id(stanza.id());
                server.route(probe).await;
                HookFlow::Handled
            }
            (Some(to), None | Some("unavailable")) => {
                // §4.6: directed presence; remembered so that unavailable
                // follows when the session ends (§4.6.3).
                if let Ok(full) = stanza.from().clone().try_into_full()
                    && let Some(session) = server.sessions().get(&full)
                {
                    if stanza.stanza_type().is_none() {
                        session.add_directed(to);
                    } else {
                        session.remove_directed(to);
                    }
                }
                HookFlow::Continue
            }
            _ => HookFlow::Continue,
        }
    }
}

/// §4.2.2 / §4.4.2 / §4.5.2: presence to every subscriber and to the user's
/// other available resources; unavailable also to directed recipients.
async fn broadcast(server: &Arc<Server>, stanza: &Stanza, user: &BareJid, session: Option<&Arc<SessionEntry>>) {
    let available = stanza.stanza_type().is_none();
    let mut directed = Vec::new();
    if let Some(session) = session {
        if available {
            session.set_last_presence(Some(stanza.bytes().clone()));
        } else {
            session.set_last_presence(None);
            directed = session.take_directed();
        }
    }
    let roster = server.roster(user).await.ok();
    let mut sent_to: Vec<Jid> = Vec::new();
    if let Some(roster) = &roster {
        for item in roster.items.iter().filter(|i| i.subscription.has_from()) {
            let Ok(contact) = item.contact.parse::<Jid>() else { continue };
            server.route(stanza.readdressed(&contact)).await;
            sent_to.push(contact);
        }
    }
    // Every available resource of the user, the sender included, sees it
    // (§4.2.2, §4.4.2, §4.5.2).
    let own = Jid::from(user.clone());
    for other in server.sessions().sessions_of(user) {
        let is_sender = session.is_some_and(|s| s.id() == other.id());
        if is_sender || (other.is_available() && other.sent_initial_presence()) {
            server.deliver_to(&other, &stanza.readdressed(&own));
        }
    }
    // §4.6.3: entities that got directed presence learn of the logout.
    for target in directed {
        if !sent_to.iter().any(|j| j.as_str() == target.bare_str()) {
            server.route(stanza.readdressed(&target)).await;
        }
    }
}

async fn outbound_subscription(
    server: &Arc<Server>,
    stanza: &Stanza,
    user: &BareJid,
    contact: &BareJid,
    limit: Option<u64>,
) {
    let kind = stanza.stanza_type().unwrap_or_default();
    if contact == user {
        return; // §3.1.1 note: subscribing to oneself is meaningless.
    }
    if kind == "subscribe"
        && contact.node().is_some()
        && server.serves_domain(contact.domain())
        && !server.account_exists(contact).await
    {
        // §3.1.2: no such local contact: an error, and no roster change.
        server.reply_error(stanza, xmppd_proto::StanzaErrorCondition::ServiceUnavailable, None);
        return;
    }
    let item = server.roster_item(user, contact).await.ok().flatten();
    let pending = server.pending_subscriptions(user).await.unwrap_or_default();
    let pending_in = pending.iter().any(|p| p.contact == contact.as_str());
    let next = outbound_transition(item.as_ref(), contact.as_str(), kind, pending_in);
    let changed = next.is_some();
    if let Some(next) = &next
        && server.put_roster_item(user, next, limit).await.is_err()
    {
        server.reply_error(stanza, xmppd_proto::StanzaErrorCondition::ResourceConstraint, None);
        return;
    }
    let from = Jid::from(user.clone());
    let to = Jid::from(contact.clone());
    let had_from = item.as_ref().is_some_and(|i| i.subscription.has_from());
    match kind {
        "subscribed" => {
            if pending_in {
                server.remove_pending_subscription(user, contact).await.ok();
            } else {
                // §3.4.2: a pre-approval is not sent to the contact.
                return;
            }
            if !changed {
                return;
            }
            server.route(Stanza::presence(&from, &to, Some("subscribed"))).await;
            // §3.1.5: the new subscriber gets the user's current presence.
            for session in server.sessions().sessions_of(user) {
                if let Some(last) = session.last_presence()
                    && let Some(presence) = presence_from_bytes(&last, session.jid())
                {
                    server.route(presence.readdressed(&to)).await;
                }
            }
        }
        "unsubscribed" => {
            let had_request = server.remove_pending_subscription(user, contact).await.unwrap_or(false);
            // §3.2.2: routed only when it cancels a subscription or denies
            // a request, not when it merely withdraws a pre-approval.
            if !had_from && !had_request {
                return;
            }
            // §3.2.2: unavailable from each available resource first.
            if had_from {
                server.send_unavailable_to(user, &to).await;
            }
            server.route(Stanza::presence(&from, &to, Some("unsubscribed"))).await;
        }
        // §3.1.2, §3.3.2: route with the bare JIDs, even when the state did
        // not change (the contact's server may have lost it).
        _ => server.route(stanza.with_from(&from).readdressed(&to)).await,
    }
}

fn presence_from_bytes(bytes: &bytes::Bytes, from: &xmppd_jid::FullJid) -> Option<Stanza> {
    let element = Element::parse_standalone(bytes, ns::CLIENT).ok()?;
    let mut element = element;
    element.set_attr("from", from.as_str());
    Stanza::from_element(&element)
}

// ---- inbound ----------------------------------------------------------------

struct Inbound {
    limit: Option<u64>,
}

#[async_trait]
impl StanzaHook for Inbound {
    async fn on_stanza(&self, server: &Arc<Server>, stanza: &Stanza) -> HookFlow {
        let kind = stanza.stanza_type();
        let Some(to) = stanza.to() else { return HookFlow::Continue };
        if kind == Some("unavailable") {
            // §4.6.1: an entity that went away needs no unavailable from us
            // later.
            for session in server.sessions().sessions_of(&to.to_bare()) {
                session.remove_directed(stanza.from());
            }
            return HookFlow::Continue;
        }
        if !is_subscription_type(kind) && kind != Some("probe") {
            return HookFlow::Continue;
        }
        // §8.5.3.2.2: subscription answers to a resource that is not there
        // are ignored.
        if let Some(full) = to.as_full()
            && matches!(kind, Some("subscribed" | "unsubscribe" | "unsubscribed"))
            && server.sessions().get(full).is_none()
        {
            return HookFlow::Handled;
        }
        let user = to.to_bare();
        let contact = stanza.from().to_bare();
        if contact == user {
            return HookFlow::Handled;
        }
        if !server.account_exists(&user).await {
            // §4.3.2: a probe for no such user gets "unsubscribed"; other
            // subscription stanzas are ignored (§8.5.1).
            if kind == Some("probe") {
                let reply =
                    Stanza::presence(&Jid::from(user), &Jid::from(contact), Some("unsubscribed")).with_id(stanza.id());
                server.route(reply).await;
            }
            return HookFlow::Handled;
        }
        match kind.unwrap_or_default() {
            "probe" => answer_probe(server, &user, stanza).await,
            "subscribe" => inbound_subscribe(server, stanza, &user, &contact, self.limit).await,
            other => {
                let item = server.roster_item(&user, &contact).await.ok().flatten();
                let bare_to = Jid::from(user.clone());
                if other == "unsubscribe" {
                    // A.3.2 also withdraws an unanswered request.
                    let had_request = server.remove_pending_subscription(&user, &contact).await.unwrap_or(false);
                    if had_request && inbound_transition(item.as_ref(), other).is_none() {
                        deliver_to_interested(server, &user, &stanza.readdressed(&bare_to));
                        // A.3.2: the auto-reply also when only a request
                        // was withdrawn.
                        let them = Jid::from(contact.clone());
                        server.route(Stanza::presence(&bare_to, &them, Some("unsubscribed"))).await;
                        return HookFlow::Handled;
                    }
                }
                let Some(next) = inbound_transition(item.as_ref(), other) else {
                    // No state change: silently dropped (Appendix A.3).
                    return HookFlow::Handled;
                };
                let Ok(write) = server.write_roster_item(&user, &next).await else {
                    return HookFlow::Handled;
                };
                // §3.1.6, §3.2.3, §3.3.3: the stanza first, then the push.
                deliver_to_interested(server, &user, &stanza.readdressed(&bare_to));
                server.push_roster_item(&user, &next, write).await;
                if other == "unsubscribe" {
                    // §3.3.3: the former subscriber stops seeing the user;
                    // A.3.2: and gets "unsubscribed" on the user's behalf.
                    let them = Jid::from(contact.clone());
                    server.send_unavailable_to(&user, &them).await;
                    server.route(Stanza::presence(&bare_to, &them, Some("unsubscribed"))).await;
                }
            }
        }
        HookFlow::Handled
    }
}

/// §4.3.2: the last presence of each available resource, if the prober is
/// subscribed (or got directed presence); "unsubscribed" if not subscribed.
async fn answer_probe(server: &Arc<Server>, user: &BareJid, probe: &Stanza) {
    let prober = probe.from().to_bare();
    let item = server.roster_item(user, &prober).await.ok().flatten();
    let subscribed = item.as_ref().is_some_and(|i| i.subscription.has_from());
    let sessions = server.sessions().sessions_of(user);
    let directed = sessions.iter().any(|s| s.has_directed(probe.from()) || s.has_directed(&Jid::from(prober.clone())));
    if !subscribed && !directed {
        // §4.3.2 rule 1: not subscribed: "unsubscribed", nothing else,
        // mirroring the probe's id (§4.3.2.1).
        let reply =
            Stanza::presence(&Jid::from(user.clone()), &Jid::from(prober), Some("unsubscribed")).with_id(probe.id());
        server.route(reply).await;
        return;
    }
    // §4.6.6: a prober that only got directed presence learns whether the
    // resources that sent it are available, and nothing else.
    if !subscribed {
        let prober_bare = Jid::from(prober.clone());
        for session in sessions.iter().filter(|s| s.has_directed(probe.from()) || s.has_directed(&prober_bare)) {
            let kind = if session.is_available() { None } else { Some("unavailable") };
            let answer = Stanza::presence(&Jid::from(session.jid().clone()), probe.from(), kind).with_id(probe.id());
            server.route(answer).await;
        }
        return;
    }
    // §4.3.2: a probe to a full JID learns about that resource only, and
    // only that it is available (no show, status or extensions).
    if let Some(Ok(full)) = probe.to().map(|to| to.clone().try_into_full()) {
        let available = sessions.iter().any(|s| s.jid() == &full && s.is_available());
        let kind = if available { None } else { Some("unavailable") };
        server.route(Stanza::presence(&Jid::from(full), probe.from(), kind).with_id(probe.id())).await;
        return;
    }
    let mut answered = false;
    for session in sessions {
        if let Some(last) = session.last_presence()
            && let Some(presence) = presence_from_bytes(&last, session.jid())
        {
            server.route(presence.readdressed(probe.from())).await;
            answered = true;
        }
    }
    if !answered {
        // §4.3.2: no available resource: unavailable from the bare JID,
        // with the status and time of the last logout (XEP-0203) when the
        // `last` module recorded one.
        server.route(unavailable_answer(user, probe, crate::last::load(server, user).await)).await;
    }
}

/// The unavailable answer to a probe when no resource is available
/// (RFC 6121 §4.3.2: "SHOULD include ... a delay element (XEP-0203)
/// stamped with the time of the last unavailable presence").
fn unavailable_answer(user: &BareJid, probe: &Stanza, last: Option<(u64, String)>) -> Stanza {
    let plain = || Stanza::presence(&Jid::from(user.clone()), probe.from(), Some("unavailable")).with_id(probe.id());
    let Some((secs, status)) = last else { return plain() };
    let stamp = xmppd_proto::datetime::format_unix_ms(i64::try_from(secs).unwrap_or(i64::MAX).saturating_mul(1000));
    let mut presence = Element::builder("presence", ns::CLIENT)
        .attr("from", user.as_str())
        .attr("to", probe.from().as_str())
        .attr("type", "unavailable")
        .attr_opt("id", probe.id())
        .build();
    if !status.is_empty() {
        presence.push_child(Element::builder("status", ns::CLIENT).text(&status).build());
    }
    presence.push_child(Element::builder("delay", ns::DELAY).attr("from", user.domain()).attr("stamp", stamp).build());
    Stanza::from_element(&presence).unwrap_or_else(plain)
}

/// §3.1.3: an inbound subscription request.
async fn inbound_subscribe(
    server: &Arc<Server>,
    stanza: &Stanza,
    user: &BareJid,
    contact: &BareJid,
    limit: Option<u64>,
) {
    let item = server.roster_item(user, contact).await.ok().flatten();
    let me = Jid::from(user.clone());
    let them = Jid::from(contact.clone());
    if item.as_ref().is_some_and(|i| i.subscription.has_from()) {
        // Already subscribed: auto-reply (§3.1.3 point 2).
        server.route(Stanza::presence(&me, &them, Some("subscribed"))).await;
        return;
    }
    if let Some(item) = item.as_ref().filter(|i| i.approved) {
        // §3.4: pre-approved: approve on the user's behalf.
        let next = RosterItem {
            subscription: Subscription::from_flags(item.subscription.has_to(), true),
            approved: false,
            ..item.clone()
        };
        if server.put_roster_item(user, &next, limit).await.is_ok() {
            server.route(Stanza::presence(&me, &them, Some("subscribed"))).await;
            for session in server.sessions().sessions_of(user) {
                if let Some(last) = session.last_presence()
                    && let Some(presence) = presence_from_bytes(&last, session.jid())
                {
                    server.route(presence.readdressed(&them)).await;
                }
            }
        }
        return;
    }
    let status = stanza
        .element()
        .ok()
        .and_then(|el| el.get_child("status", ns::CLIENT).map(Element::text))
        .filter(|s| !s.is_empty())
        .map(|mut s| {
            // The store keeps at most 4 KiB of request text.
            while s.len() > 1024 {
                s.pop();
            }
            s
        });
    let already_pending =
        server.pending_subscriptions(user).await.unwrap_or_default().iter().any(|p| p.contact == contact.as_str());
    // §3.1.3: the complete stanza is kept, addressed bare JID to bare JID.
    let normalized = stanza.with_from(&Jid::from(contact.clone())).readdressed(&Jid::from(user.clone()));
    let kept = (normalized.bytes().len() <= xmppd_storage::validate::MAX_PENDING_STANZA_BYTES)
        .then(|| normalized.bytes().to_vec());
    let pending = PendingIn { contact: contact.as_str().to_owned(), status, stanza: kept };
    // §3.1.3: kept until answered; a repeated request is not shown again
    // (Appendix A.3.1), and the 'to' carries the bare JID.
    if server.add_pending_subscription(user, &pending).await.is_ok() && !already_pending {
        deliver_to_interested(server, user, &stanza.readdressed(&Jid::from(user.clone())));
    }
}

/// Delivers to every interested or available resource of the user
/// (§3.1.3, §3.1.6); nothing if there is none (requests are kept as
/// pending-in instead).
fn deliver_to_interested(server: &Arc<Server>, user: &BareJid, stanza: &Stanza) {
    for session in server.sessions().sessions_of(user) {
        if session.is_available() || session.is_interested() {
            server.deliver_to(&session, stanza);
        }
    }
}

// ---- session events ---------------------------------------------------------

struct Initial;

#[async_trait]
impl SessionHook for Initial {
    /// §4.2.2: probe the contacts the user is subscribed to, redeliver
    /// pending requests (§3.1.3), show the user's other resources.
    async fn on_session(&self, server: &Arc<Server>, session: &Arc<SessionEntry>) {
        let user = session.jid().to_bare();
        let me = Jid::from(user.clone());
        if let Ok(roster) = server.roster(&user).await {
            for item in roster.items.iter().filter(|i| i.subscription.has_to()) {
                if let Ok(contact) = item.contact.parse::<Jid>() {
                    server.route(Stanza::presence(&me, &contact, Some("probe"))).await;
                }
            }
        }
        let own_full = Jid::from(session.jid().clone());
        for pending in server.pending_subscriptions(&user).await.unwrap_or_default() {
            let stored = pending
                .stanza
                .as_deref()
                .and_then(|bytes| Element::parse_standalone(bytes, ns::CLIENT).ok())
                .and_then(|element| Stanza::from_element(&element));
            if let Some(stanza) = stored {
                server.deliver_to(session, &stanza);
                continue;
            }
            if let Ok(contact) = pending.contact.parse::<Jid>() {
                let mut request = Element::builder("presence", ns::CLIENT)
                    .attr("type", "subscribe")
                    .attr("from", contact.as_str())
                    .attr("to", own_full.as_str());
                if let Some(status) = &pending.status {
                    request = request.append(Element::builder("status", ns::CLIENT).text(status).build());
                }
                if let Some(stanza) = Stanza::from_element(&request.build()) {
                    server.deliver_to(session, &stanza);
                }
            }
        }
        for other in server.sessions().sessions_of(&user) {
            if other.id() == session.id() {
                continue;
            }
            if let Some(last) = other.last_presence()
                && let Some(presence) = presence_from_bytes(&last, other.jid())
            {
                server.deliver_to(session, &presence.readdressed(&own_full));
            }
        }
    }
}

struct Closed;

#[async_trait]
impl SessionHook for Closed {
    /// §4.5.2 (and §4.6.3): a session that ends without saying goodbye is
    /// announced unavailable on its behalf.
    async fn on_session(&self, server: &Arc<Server>, session: &Arc<SessionEntry>) {
        if session.last_presence().is_none() && !session.is_available() {
            let directed = session.take_directed();
            if directed.is_empty() {
                return;
            }
            let from = Jid::from(session.jid().clone());
            for target in directed {
                server.route(Stanza::presence(&from, &target, Some("unavailable"))).await;
            }
            return;
        }
        // A session replaced by a new one for the same resource that is
        // already available must not be announced as gone.
        if server.sessions().get(session.jid()).is_some_and(|s| s.id() != session.id() && s.is_available()) {
            return;
        }
        session.set_presence(false, 0);
        let element = Element::builder("presence", ns::CLIENT)
            .attr("type", "unavailable")
            .attr("from", session.jid().as_str())
            .build();
        let Some(unavailable) = Stanza::from_element(&element) else { return };
        broadcast(server, &unavailable, &session.jid().to_bare(), Some(session)).await;
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn unavailable_probe_answer_has_delay_and_status() {
        let user: BareJid = "bob@example.org".parse().expect("valid");
        let prober: Jid = "alice@example.org".parse().expect("valid");
        let probe = Stanza::presence(&prober, &Jid::from(user.clone()), Some("probe")).with_id(Some("p1"));
        let answer = unavailable_answer(&user, &probe, Some((1_033_902_750, "gone fishing".into())));
        let text = String::from_utf8_lossy(answer.bytes()).into_owned();
        assert!(text.contains("type='unavailable'") && text.contains("id='p1'"), "{text}");
        assert!(text.contains("<status>gone fishing</status>"), "{text}");
        assert!(
            text.contains("<delay xmlns='urn:xmpp:delay' from='example.org' stamp='2002-10-06T11:12:30.000Z'/>"),
            "{text}"
        );
        let plain = unavailable_answer(&user, &probe, None);
        assert!(!String::from_utf8_lossy(plain.bytes()).contains("delay"));
    }

    fn item(sub: Subscription, ask: bool, approved: bool) -> RosterItem {
        RosterItem { contact: "c@x".into(), subscription: sub, ask, approved, ..RosterItem::default() }
    }

    fn state(i: &RosterItem) -> (Subscription, bool, bool) {
        (i.subscription, i.ask, i.approved)
    }

    /// RFC 6121 Appendix A.3: every state × outbound stanza.
    #[test]
    fn outbound_table() {
        use Subscription::*;
        let sub = |s, a| item(s, a, false);
        // subscribe
        assert_eq!(
            outbound_transition(Option::None, "c@x", "subscribe", false).map(|i| state(&i)),
            Some((None, true, false))
        );
        assert_eq!(outbound_transition(Some(&sub(None, true)), "c@x", "subscribe", false), Option::None);
        assert_eq!(outbound_transition(Some(&sub(To, false)), "c@x", "subscribe", false), Option::None);
        assert_eq!(
            outbound_transition(Some(&sub(From, false)), "c@x", "subscribe", false).map(|i| state(&i)),
            Some((From, true, false))
        );
        // unsubscribe
        assert_eq!(
            outbound_transition(Some(&sub(Both, false)), "c@x", "unsubscribe", false).map(|i| state(&i)),
            Some((From, false, false))
        );
        assert_eq!(
            outbound_transition(Some(&sub(None, true)), "c@x", "unsubscribe", false).map(|i| state(&i)),
            Some((None, false, false))
        );
        assert_eq!(outbound_transition(Some(&sub(From, false)), "c@x", "unsubscribe", false), Option::None);
        // subscribed with a pending request
        assert_eq!(
            outbound_transition(Option::None, "c@x", "subscribed", true).map(|i| state(&i)),
            Some((From, false, false))
        );
        assert_eq!(
            outbound_transition(Some(&sub(To, false)), "c@x", "subscribed", true).map(|i| state(&i)),
            Some((Both, false, false))
        );
        // subscribed without: pre-approval (§3.4)
        assert_eq!(
            outbound_transition(Some(&sub(To, false)), "c@x", "subscribed", false).map(|i| state(&i)),
            Some((To, false, true))
        );
        assert_eq!(outbound_transition(Some(&sub(Both, false)), "c@x", "subscribed", false), Option::None);
        // unsubscribed
        assert_eq!(
            outbound_transition(Some(&sub(Both, false)), "c@x", "unsubscribed", false).map(|i| state(&i)),
            Some((To, false, false))
        );
        assert_eq!(
            outbound_transition(Some(&item(None, false, true)), "c@x", "unsubscribed", false).map(|i| state(&i)),
            Some((None, false, false))
        );
        assert_eq!(outbound_transition(Some(&sub(To, false)), "c@x", "unsubscribed", false), Option::None);
    }

    /// RFC 6121 Appendix A.2: every state × inbound stanza that edits an item.
    #[test]
    fn inbound_table() {
        use Subscription::*;
        let sub = |s, a| item(s, a, false);
        assert_eq!(inbound_transition(Option::None, "subscribed"), Option::None);
        assert_eq!(
            inbound_transition(Some(&sub(None, true)), "subscribed").map(|i| state(&i)),
            Some((To, false, false))
        );
        assert_eq!(
            inbound_transition(Some(&sub(From, true)), "subscribed").map(|i| state(&i)),
            Some((Both, false, false))
        );
        assert_eq!(inbound_transition(Some(&sub(None, false)), "subscribed"), Option::None);
        assert_eq!(
            inbound_transition(Some(&sub(Both, false)), "unsubscribe").map(|i| state(&i)),
            Some((To, false, false))
        );
        assert_eq!(inbound_transition(Some(&sub(To, false)), "unsubscribe"), Option::None);
        assert_eq!(
            inbound_transition(Some(&sub(Both, false)), "unsubscribed").map(|i| state(&i)),
            Some((From, false, false))
        );
        assert_eq!(
            inbound_transition(Some(&sub(None, true)), "unsubscribed").map(|i| state(&i)),
            Some((None, false, false))
        );
        assert_eq!(inbound_transition(Some(&sub(From, false)), "unsubscribed"), Option::None);
    }
}
