//! XEP-0160: Best Practices for Handling Offline Messages, with XEP-0203
//! delay stamps. A message that no available resource can take (RFC 6121
//! §8.5.2.2.1) is stored, up to a per-user quota; over it the sender gets
//! `resource-constraint`, never silence. Stored messages go out when the
//! user next sends initial presence with a non-negative priority
//! (XEP-0160 §3), and leave the store only after they were queued.

use std::sync::Arc;
use std::time::SystemTime;

use async_trait::async_trait;
use xmppd_core::{
    HookFlow, KindSet, ModuleContext, ModuleDef, Protocol, Server, SessionEntry, SessionHook, SessionHookPoint, Stanza,
    StanzaHook, StanzaHookPoint, Support,
};
use xmppd_proto::datetime::format_unix_ms;
use xmppd_proto::{StanzaErrorCondition, ns};
use xmppd_storage::StorageError;
use xmppd_xml::Element;

/// The module declaration.
pub static MODULE: ModuleDef = ModuleDef {
    name: "offline",
    protocols: &[
        Protocol { spec: "XEP-0160", version: "1.0.1", support: Support::Complete },
        Protocol { spec: "XEP-0203", version: "2.0", support: Support::Complete },
    ],
    start,
};

/// `[modules.offline]`
#[derive(Debug, Clone, serde::Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct OfflineConfig {
    /// Messages kept per user; one more is refused with `resource-constraint`.
    pub max_messages_per_user: u64,
}

impl Default for OfflineConfig {
    fn default() -> Self {
        OfflineConfig { max_messages_per_user: 1000 }
    }
}

/// Messages read from the store per round trip on delivery.
const BATCH: u32 = 100;
/// XEP-0085 chat states: a message carrying only these is not worth keeping
/// (XEP-0160 §3).
const CHATSTATES: &str = "http://jabber.org/protocol/chatstates";

fn start(ctx: &mut ModuleContext<'_>) -> Result<(), String> {
    let config: OfflineConfig = ctx.config()?;
    if config.max_messages_per_user == 0 {
        return Err("modules.offline.max_messages_per_user: must be at least 1 (disable the module instead)".into());
    }
    ctx.disco_feature(ns::MSGOFFLINE);
    ctx.stanza_hook(StanzaHookPoint::Undeliverable, KindSet::MESSAGE, 0, Store { limit: config.max_messages_per_user });
    // After the presence module's probes, so contacts' presence arrives first.
    ctx.session_hook(SessionHookPoint::InitialPresence, -10, Deliver);
    Ok(())
}

/// Whether XEP-0160 §3 wants this message kept: `normal` and `chat` (and
/// unknown types, which count as normal), not when it carries nothing but
/// a chat state.
fn worth_storing(stanza: &Stanza, element: &Element) -> bool {
    // RFC 6121 §5.2.2: an unknown type counts as normal.
    if matches!(stanza.stanza_type(), Some("groupchat" | "headline" | "error")) {
        return false;
    }
    let mut children = element.children().peekable();
    if children.peek().is_none() {
        return false;
    }
    !children.all(|child| child.ns() == CHATSTATES)
}

struct Store {
    limit: u64,
}

#[async_trait]
impl StanzaHook for Store {
    async fn on_stanza(&self, server: &Arc<Server>, stanza: &Stanza) -> HookFlow {
        let Some(to) = stanza.to() else { return HookFlow::Continue };
        let Some(user) = to.node() else { return HookFlow::Continue };
        let Ok(element) = stanza.element() else { return HookFlow::Continue };
        if !worth_storing(stanza, &element) {
            // A chat state to nobody: dropped without an error.
            return HookFlow::Handled;
        }
        let now = SystemTime::now().duration_since(SystemTime::UNIX_EPOCH).map(|d| d.as_millis()).unwrap_or(0);
        let stamp = i64::try_from(now).unwrap_or(i64::MAX);
        match server.offline().push(to.domain(), user, stamp, stanza.bytes(), self.limit).await {
            Ok(_) => {}
            Err(StorageError::LimitExceeded) => {
                server.reply_error(stanza, StanzaErrorCondition::ResourceConstraint, Some("offline storage is full"));
            }
            Err(error) => {
                tracing::warn!(%error, "offline storage failed");
                server.reply_error(stanza, StanzaErrorCondition::InternalServerError, None);
            }
        }
        HookFlow::Handled
    }
}

struct Deliver;

#[async_trait]
impl SessionHook for Deliver {
    async fn on_session(&self, server: &Arc<Server>, session: &Arc<SessionEntry>) {
        if session.priority() < 0 {
            return;
        }
        let jid = session.jid();
        let Some(user) = jid.node() else { return };
        loop {
            let batch = match server.offline().peek(jid.domain(), user, BATCH).await {
                Ok(batch) => batch,
                Err(error) => {
                    tracing::warn!(%error, "reading offline messages failed");
                    return;
                }
            };
            let Some(last) = batch.last().map(|m| m.id) else { return };
            let full = batch.len() == BATCH as usize;
            for message in batch {
                if let Some(stanza) = with_delay(&message.stanza, jid.domain(), message.stamp_ms) {
                    server.deliver_to(session, &stanza);
                }
            }
            if let Err(error) = server.offline().remove_through(jid.domain(), user, last).await {
                tracing::warn!(%error, "removing delivered offline messages failed");
                return;
            }
            if !full {
                return;
            }
        }
    }
}

/// Adds the XEP-0203 `<delay/>` element (§4) to a stored message.
fn with_delay(stored: &[u8], domain: &str, stamp_ms: i64) -> Option<Stanza> {
    let mut element = Element::parse_standalone(stored, ns::CLIENT).ok()?;
    element.push_child(
        Element::builder("delay", ns::DELAY)
            .attr("from", domain)
            .attr("stamp", format_unix_ms(stamp_ms))
            .text("Offline Storage")
            .build(),
    );
    Stanza::from_element(&element)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn delay_is_added() {
        let stanza =
            with_delay(b"<message from='a@x/r' to='b@x' type='chat'><body>hi</body></message>", "x", 1_033_902_750_000);
        let text = String::from_utf8(stanza.map(|s| s.bytes().to_vec()).unwrap_or_default()).unwrap_or_default();
        assert!(text.contains("<delay xmlns='urn:xmpp:delay' from='x' stamp='2002-10-06T11:12:30.000Z'>"), "{text}");
        assert!(text.contains("<body>hi</body>"), "{text}");
    }
}
