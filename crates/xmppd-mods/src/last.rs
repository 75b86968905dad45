//! XEP-0012: Last Activity.
//!
//! * Server query (§5): a `jabber:iq:last` get addressed to a host is
//!   answered with the seconds since the server started; the `<query/>`
//!   carries no character data.
//! * Offline-user query (§3): a get to an account's bare JID is answered
//!   by the server with the seconds since the user's last logout and the
//!   status of the last unavailable presence; `0` while a resource is
//!   connected; `forbidden` for requesters not allowed to see the user's
//!   presence (no `from`/`both` subscription).
//! * Queries to a full JID (§4) are delivered to the client.
//!
//! The logout time is kept in the key-value store (store `last`).

use std::sync::Arc;
use std::time::{Instant, SystemTime, UNIX_EPOCH};

use async_trait::async_trait;
use serde::Deserialize;
use xmppd_core::module::IqOutcome;
use xmppd_core::{
    HookFlow, IqHandler, IqRequest, IqType, KindSet, ModuleContext, ModuleDef, Protocol, Scope, Server, SessionEntry,
    SessionHook, SessionHookPoint, Stanza, StanzaHook, StanzaHookPoint, Support,
};
use xmppd_jid::BareJid;
use xmppd_proto::{StanzaErrorCondition, ns};
use xmppd_xml::Element;

/// XEP-0012 §2: the protocol namespace, also the disco feature (§6).
pub const NS: &str = "jabber:iq:last";

/// The module declaration.
pub static MODULE: ModuleDef = ModuleDef {
    name: "last",
    protocols: &[Protocol { spec: "XEP-0012", version: "2.0", support: Support::Complete }],
    start,
};

/// `[modules.settings.last]`: nothing to configure yet; the table exists so
/// that misspelt keys are reported.
#[derive(Debug, Clone, Default, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct LastConfig {}

fn start(ctx: &mut ModuleContext<'_>) -> Result<(), String> {
    let _config: LastConfig = ctx.config()?;
    // §6: the feature is advertised on the host, which answers (§5).
    ctx.disco_feature(NS);
    start_host_uptime(ctx);
    ctx.iq_handler(IqType::Get, Scope::Account, NS, "query", AccountLast);
    // Before the presence module clears the session's presence.
    ctx.stanza_hook(StanzaHookPoint::Outbound, KindSet::PRESENCE, 10, RecordUnavailable);
    ctx.session_hook(SessionHookPoint::Closed, 0, RecordLogout);
    Ok(())
}

const STORE: &str = "last";
/// A logout recorded this many seconds after an unavailable presence keeps
/// that presence's status (the client said goodbye, then closed).
const STATUS_GRACE_SECS: u64 = 60;

fn now_secs() -> u64 {
    SystemTime::now().duration_since(UNIX_EPOCH).map(|d| d.as_secs()).unwrap_or(0)
}

/// The stored record: `"<unix seconds>\n<status>"`. The presence module
/// reads it too, for the XEP-0203 stamp of its unavailable probe answer
/// (RFC 6121 §4.3.2).
pub(crate) async fn load(server: &Server, user: &BareJid) -> Option<(u64, String)> {
    let node = user.node()?;
    let bytes = server.kv().get(user.domain(), node, STORE, "").await.ok()??;
    let text = String::from_utf8(bytes).ok()?;
    let (secs, status) = text.split_once('\n').unwrap_or((text.as_str(), ""));
    Some((secs.parse().ok()?, status.to_owned()))
}

async fn save(server: &Server, user: &BareJid, secs: u64, status: &str) {
    let Some(node) = user.node() else { return };
    let record = format!("{secs}\n{status}");
    if let Err(error) = server.kv().set(user.domain(), node, STORE, "", record.as_bytes()).await {
        tracing::warn!(%error, "recording last activity failed");
    }
}

struct RecordUnavailable;

#[async_trait]
impl StanzaHook for RecordUnavailable {
    /// The status of the user's last unavailable presence (§3), when it is
    /// the last available resource going away.
    async fn on_stanza(&self, server: &Arc<Server>, stanza: &Stanza) -> HookFlow {
        if stanza.to().is_some() || stanza.stanza_type() != Some("unavailable") {
            return HookFlow::Continue;
        }
        let user = stanza.from().to_bare();
        if server.sessions().sessions_of(&user).iter().any(|s| s.is_available()) {
            return HookFlow::Continue;
        }
        let status = stanza
            .element()
            .ok()
            .and_then(|el| el.get_child("status", ns::CLIENT).map(Element::text))
            .unwrap_or_default();
        save(server, &user, now_secs(), &status).await;
        HookFlow::Continue
    }
}

struct RecordLogout;

#[async_trait]
impl SessionHook for RecordLogout {
    /// The moment the user's last session ended (§3).
    async fn on_session(&self, server: &Arc<Server>, session: &Arc<SessionEntry>) {
        let user = session.jid().to_bare();
        if server.sessions().is_online(&user) {
            return;
        }
        // A session closed because its account was deleted leaves no record
        // behind for a future account of the same name.
        let exists = match user.node() {
            Some(node) => server.accounts().account_exists(user.domain(), node).await.unwrap_or(false),
            None => false,
        };
        if !exists {
            return;
        }
        let now = now_secs();
        let status = match load(server, &user).await {
            Some((secs, status)) if now.saturating_sub(secs) <= STATUS_GRACE_SECS => status,
            _ => String::new(),
        };
        save(server, &user, now, &status).await;
    }
}

struct AccountLast;

#[async_trait]
impl IqHandler for AccountLast {
    /// §3: seconds since logout (0 while online), `forbidden` unless the
    /// requester may see the user's presence.
    async fn handle(&self, request: IqRequest<'_>) -> IqOutcome {
        let requester = request.stanza.from().to_bare();
        let user = request.stanza.to().map(|to| to.to_bare()).unwrap_or_else(|| requester.clone());
        let server = request.server;
        if requester != user {
            let item =
                server.roster_item(&user, &requester).await.map_err(|_| StanzaErrorCondition::InternalServerError)?;
            if !item.is_some_and(|i| i.subscription.has_from()) {
                return Err(StanzaErrorCondition::Forbidden);
            }
        }
        if server.sessions().is_online(&user) {
            return Ok(Some(last_query(0, None)));
        }
        match load(server, &user).await {
            Some((secs, status)) => Ok(Some(last_query(now_secs().saturating_sub(secs), Some(&status)))),
            // Never logged in since the account was made.
            None => Err(StanzaErrorCondition::ItemNotFound),
        }
    }
}

/// §5: uptime of the host, counted from now.
fn start_host_uptime(ctx: &mut ModuleContext<'_>) {
    ctx.iq_handler(IqType::Get, Scope::Host, NS, "query", HostUptime { started: Instant::now() });
}

/// The result payload: `<query xmlns='jabber:iq:last' seconds='…'/>` with
/// an optional status text (§3 for accounts; hosts send none, §5).
fn last_query(seconds: u64, status: Option<&str>) -> Element {
    let query = Element::builder("query", NS).attr("seconds", seconds.to_string());
    match status {
        Some(status) if !status.is_empty() => query.text(status).build(),
        _ => query.build(),
    }
}

struct HostUptime {
    started: Instant,
}

#[async_trait]
impl IqHandler for HostUptime {
    /// XEP-0012 §5: "how long the host has been running since it was last
    /// (re-)started".
    async fn handle(&self, _request: IqRequest<'_>) -> IqOutcome {
        Ok(Some(last_query(self.started.elapsed().as_secs(), None)))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn host_answer_has_seconds_and_no_text() {
        let query = last_query(123_456, None);
        assert!(query.is("query", NS));
        assert_eq!(query.attr("seconds"), Some("123456"));
        assert!(query.nodes().is_empty());
    }

    #[test]
    fn account_answer_may_carry_a_status() {
        let query = last_query(903, Some("Heading Home"));
        assert_eq!(query.attr("seconds"), Some("903"));
        assert_eq!(query.text(), "Heading Home");
        assert!(last_query(0, Some("")).nodes().is_empty());
    }
}
