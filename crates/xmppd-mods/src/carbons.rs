//! XEP-0280 Message Carbons: a user's other clients get copies of the
//! messages the user sends and receives, so conversations stay in step on
//! every device.
//!
//! * `<enable/>` and `<disable/>` (§4, §5) per session; repeated requests
//!   are no-ops (§7.1). The state goes with the session.
//! * Sent carbons (§5.2): a message a client sends is copied, wrapped in
//!   `<sent><forwarded/></sent>`, to the sender's other enabled sessions.
//! * Received carbons (§5.1): a message to the user is copied, wrapped in
//!   `<received><forwarded/></received>`, to the enabled sessions that do
//!   not get the message itself under RFC 6121 §8.5.
//! * Eligibility (§6.1): type `chat`; type `normal` with a `<body/>`; or a
//!   payload of XEP-0184 receipts, XEP-0085 chat states or XEP-0333 markers;
//!   never `groupchat` (a `headline` only with such a payload), never with `<private/>` or a XEP-0334 `<no-copy/>`
//!   hint, and never private messages from a MUC occupant. XEP-0249
//!   invitations and mediated invitations are copied. Errors are not
//!   copied (the "error to an eligible message" rule would need per-message
//!   state), so `urn:xmpp:carbons:rules:0` is not announced.
//! * Carbons are delivered straight to the sessions, never routed: a
//!   bounced carbon can never reach the original sender (§7.3).

use std::collections::HashMap;
use std::sync::{Arc, Mutex, PoisonError};

use async_trait::async_trait;
use xmppd_core::module::IqOutcome;
use xmppd_core::{
    HookFlow, IqHandler, IqRequest, IqType, KindSet, ModuleContext, ModuleDef, Protocol, Scope, Server, SessionEntry,
    SessionHook, SessionHookPoint, Stanza, StanzaHook, StanzaHookPoint, Support,
};
use xmppd_jid::{BareJid, FullJid, Jid};
use xmppd_proto::{StanzaErrorCondition, ns};
use xmppd_xml::Element;

/// XEP-0280 §2: the protocol namespace and disco feature.
pub const NS: &str = "urn:xmpp:carbons:2";
/// XEP-0297 Stanza Forwarding.
const NS_FORWARD: &str = "urn:xmpp:forward:0";
/// XEP-0334 Message Processing Hints.
const NS_HINTS: &str = "urn:xmpp:hints";
/// XEP-0184, XEP-0085 and XEP-0333 payloads (§6.1).
const IM_PAYLOADS: [&str; 3] =
    ["urn:xmpp:receipts", "http://jabber.org/protocol/chatstates", "urn:xmpp:chat-markers:0"];
/// XEP-0045 occupant data and mediated invitations.
const NS_MUC_USER: &str = "http://jabber.org/protocol/muc#user";
/// XEP-0249 direct invitations.
const NS_DIRECT_INVITE: &str = "jabber:x:conference";

/// The module declaration.
pub static MODULE: ModuleDef = ModuleDef {
    name: "carbons",
    protocols: &[
        Protocol { spec: "XEP-0280", version: "1.0.1", support: Support::Complete },
        Protocol { spec: "XEP-0297", version: "1.0", support: Support::Complete },
    ],
    start,
};

fn start(ctx: &mut ModuleContext<'_>) -> Result<(), String> {
    let carbons = Arc::new(Carbons::default());
    ctx.disco_feature(NS);
    for scope in [Scope::Host, Scope::Account] {
        for name in ["enable", "disable"] {
            ctx.iq_handler(IqType::Set, scope, NS, name, Toggle(carbons.clone()));
        }
    }
    ctx.stanza_hook(StanzaHookPoint::Outbound, KindSet::MESSAGE, -20, Sent(carbons.clone()));
    ctx.stanza_hook(StanzaHookPoint::Inbound, KindSet::MESSAGE, -20, Received(carbons.clone()));
    ctx.session_hook(SessionHookPoint::Closed, 0, Gone(carbons));
    Ok(())
}

/// The sessions with carbons enabled, per account.
#[derive(Default)]
struct Carbons {
    enabled: Mutex<HashMap<BareJid, Vec<FullJid>>>,
}

impl Carbons {
    fn lock(&self) -> std::sync::MutexGuard<'_, HashMap<BareJid, Vec<FullJid>>> {
        self.enabled.lock().unwrap_or_else(PoisonError::into_inner)
    }

    fn set(&self, session: &FullJid, on: bool) {
        let mut enabled = self.lock();
        let user = session.to_bare();
        let sessions = enabled.entry(user.clone()).or_default();
        sessions.retain(|jid| jid != session);
        if on {
            sessions.push(session.clone());
        } else if sessions.is_empty() {
            enabled.remove(&user);
        }
    }

    /// The user's enabled sessions except those in `skip`.
    fn targets(&self, user: &BareJid, skip: &[&FullJid]) -> Vec<FullJid> {
        match self.lock().get(user) {
            Some(sessions) => sessions.iter().filter(|jid| !skip.contains(jid)).cloned().collect(),
            None => Vec::new(),
        }
    }

    /// Delivers `message` wrapped in `<{direction}/>` to `targets`.
    fn deliver(&self, server: &Arc<Server>, user: &BareJid, targets: &[FullJid], direction: &str, message: Element) {
        let forwarded = Element::builder("forwarded", NS_FORWARD).append(message).build();
        let wrapper = Element::builder(direction, NS).append(forwarded).build();
        for target in targets {
            let Some(session) = server.sessions().get(target) else { continue };
            if !session.is_available() {
                continue;
            }
            let carbon = Element::builder("message", ns::CLIENT)
                .attr("from", user.as_str())
                .attr("to", target.as_str())
                .attr_opt("type", wrapper_type(&wrapper))
                .append(wrapper.clone())
                .build();
            if let Some(stanza) = Stanza::from_element(&carbon) {
                server.deliver_to(&session, &stanza);
            }
        }
    }
}

/// The carbon keeps the original's type (XEP-0280 §5 examples).
fn wrapper_type(wrapper: &Element) -> Option<String> {
    let message = wrapper.children().next()?.children().next()?;
    message.attr("type").map(str::to_owned)
}

/// XEP-0280 §6.1: whether a message is copied. `from_occupant`: it comes
/// from a full JID (a MUC private message is then not copied).
fn eligible(message: &Element, from_occupant: bool) -> bool {
    let has = |name: &str, namespace: &str| message.get_child(name, namespace).is_some();
    if has("private", NS) || has("no-copy", NS_HINTS) || has("received", NS) || has("sent", NS) {
        return false;
    }
    let is_muc = has("x", NS_MUC_USER);
    match message.attr("type").unwrap_or("normal") {
        "groupchat" | "error" => false,
        // A private message from an occupant reaches every joined client
        // through the MUC itself.
        "chat" => !(is_muc && from_occupant),
        kind => {
            (kind != "headline" && has("body", ns::CLIENT))
                || message.children().any(|child| IM_PAYLOADS.contains(&child.ns()))
                || has("x", NS_DIRECT_INVITE)
                || message.get_child("x", NS_MUC_USER).is_some_and(|x| x.get_child("invite", NS_MUC_USER).is_some())
        }
    }
}

#[derive(Clone)]
struct Toggle(Arc<Carbons>);

#[async_trait]
impl IqHandler for Toggle {
    /// XEP-0280 §4 and §5: for the requesting session only.
    async fn handle(&self, request: IqRequest<'_>) -> IqOutcome {
        // Addressed to the user's own account or to the server: either
        // way it is about the requesting session (a request for another
        // account is not-allowed, §4).
        let Ok(session) = request.stanza.from().clone().try_into_full() else {
            return Err(StanzaErrorCondition::NotAllowed);
        };
        if let Some(to) = request.stanza.to()
            && to.node().is_some()
            && to.to_bare() != session.to_bare()
        {
            return Err(StanzaErrorCondition::NotAllowed);
        }
        self.0.set(&session, request.payload.name() == "enable");
        Ok(None)
    }
}

/// §5.2: copies of what a client sends.
struct Sent(Arc<Carbons>);

#[async_trait]
impl StanzaHook for Sent {
    async fn on_stanza(&self, server: &Arc<Server>, stanza: &Stanza) -> HookFlow {
        let Ok(sender) = stanza.from().clone().try_into_full() else { return HookFlow::Continue };
        let user = sender.to_bare();
        // A message to one's own account is seen by the receiving side.
        if stanza.to().is_none_or(|to| to.to_bare() == user) {
            return HookFlow::Continue;
        }
        let targets = self.0.targets(&user, &[&sender]);
        if targets.is_empty() {
            return HookFlow::Continue;
        }
        let Ok(message) = stanza.element() else { return HookFlow::Continue };
        if eligible(&message, false) {
            self.0.deliver(server, &user, &targets, "sent", message);
        }
        HookFlow::Continue
    }
}

/// §5.1: copies of what the user receives, for the sessions that do not
/// get the message itself.
struct Received(Arc<Carbons>);

#[async_trait]
impl StanzaHook for Received {
    async fn on_stanza(&self, server: &Arc<Server>, stanza: &Stanza) -> HookFlow {
        let Some(to) = stanza.to() else { return HookFlow::Continue };
        let user = to.to_bare();
        if stanza.from().to_bare() == user && stanza.from().resource().is_some() {
            // Between the user's own clients: the Sent side decides.
            return HookFlow::Continue;
        }
        // Users without carbons cost one map lookup, no registry access.
        let enabled = self.0.targets(&user, &[]);
        if enabled.is_empty() {
            return HookFlow::Continue;
        }
        let direct = direct_recipients(server, to, &user);
        if direct.is_empty() {
            return HookFlow::Continue; // Offline storage; no carbons.
        }
        let targets: Vec<FullJid> = enabled.into_iter().filter(|jid| !direct.contains(jid)).collect();
        if targets.is_empty() {
            return HookFlow::Continue;
        }
        let Ok(message) = stanza.element() else { return HookFlow::Continue };
        if eligible(&message, stanza.from().resource().is_some()) {
            self.0.deliver(server, &user, &targets, "received", message);
        }
        HookFlow::Continue
    }
}

/// The sessions RFC 6121 §8.5 delivers a chat or normal message to: the
/// addressed resource if it exists (§8.5.3.1), else the available
/// resources of the highest non-negative priority (§8.5.2.1.1).
fn direct_recipients(server: &Arc<Server>, to: &Jid, user: &BareJid) -> Vec<FullJid> {
    if let Ok(full) = to.clone().try_into_full()
        && server.sessions().get(&full).is_some()
    {
        return vec![full];
    }
    let sessions: Vec<Arc<SessionEntry>> =
        server.sessions().sessions_of(user).into_iter().filter(|s| s.is_available()).collect();
    let Some(top) = sessions.iter().map(|s| s.priority()).filter(|p| *p >= 0).max() else { return Vec::new() };
    sessions.iter().filter(|s| s.priority() == top).map(|s| s.jid().clone()).collect()
}

/// The session's carbons end with it.
struct Gone(Arc<Carbons>);

#[async_trait]
impl SessionHook for Gone {
    async fn on_session(&self, _server: &Arc<Server>, session: &Arc<SessionEntry>) {
        self.0.set(session.jid(), false);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn message(xml: &str) -> Element {
        Element::parse_standalone(xml.as_bytes(), ns::CLIENT).unwrap_or_else(|_| Element::new("message", ns::CLIENT))
    }

    #[test]
    fn eligibility_rules() {
        assert!(eligible(&message("<message type='chat'><body>hi</body></message>"), false));
        assert!(eligible(&message("<message type='chat'/>"), false), "chat without body (chat states)");
        assert!(eligible(&message("<message><body>hi</body></message>"), false));
        assert!(!eligible(&message("<message/>"), false), "normal without body or IM payload");
        assert!(eligible(&message("<message><received xmlns='urn:xmpp:receipts' id='1'/></message>"), false));
        assert!(eligible(&message("<message><displayed xmlns='urn:xmpp:chat-markers:0' id='1'/></message>"), false));
        assert!(!eligible(&message("<message type='groupchat'><body>hi</body></message>"), false));
        assert!(!eligible(&message("<message type='headline'><body>hi</body></message>"), false));
        let receipt = "<message type='headline'><received xmlns='urn:xmpp:receipts' id='1'/></message>";
        assert!(eligible(&message(receipt), false), "IM payloads count whatever the type");
        assert!(!eligible(&message("<message type='error'><body>hi</body></message>"), false));
        let private = "<message type='chat'><body>x</body><private xmlns='urn:xmpp:carbons:2'/></message>";
        assert!(!eligible(&message(private), false));
        let no_copy = "<message type='chat'><body>x</body><no-copy xmlns='urn:xmpp:hints'/></message>";
        assert!(!eligible(&message(no_copy), false));
        let pm = "<message type='chat'><body>x</body><x xmlns='http://jabber.org/protocol/muc#user'/></message>";
        assert!(!eligible(&message(pm), true), "a PM from an occupant");
        assert!(eligible(&message(pm), false), "a PM to an occupant");
        let invite = "<message><x xmlns='jabber:x:conference' jid='room@muc.example'/></message>";
        assert!(eligible(&message(invite), false));
        let mediated = "<message><x xmlns='http://jabber.org/protocol/muc#user'><invite from='a@b'/></x></message>";
        assert!(eligible(&message(mediated), false));
    }
}
