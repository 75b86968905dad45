//! XEP-0012: Last Activity.
//!
//! Implemented: the server-and-component query (XEP-0012 §5). A
//! `jabber:iq:last` get addressed to a host is answered with the number of
//! seconds since this module started on that host, i.e. since the server
//! was last (re-)started; the `<query/>` carries no character data (§5:
//! SHOULD NOT).
//!
//! Not yet implemented: the offline-user query (§3), where the server
//! answers for an account's bare JID with the seconds since its last
//! logout (0 while a resource is connected) and the status of its last
//! unavailable presence, and only to requesters allowed to see its
//! presence (otherwise `<forbidden/>`). Until then such queries get
//! `<service-unavailable/>` from the router, as for any unhandled IQ.
//! Queries to a full JID (§4) are delivered to the client.

use std::time::Instant;

use async_trait::async_trait;
use serde::Deserialize;
use xmppd_core::module::IqOutcome;
use xmppd_core::{IqHandler, IqRequest, IqType, ModuleContext, ModuleDef, Protocol, Scope, Support};
use xmppd_xml::Element;

/// XEP-0012 §2: the protocol namespace, also the disco feature (§6).
pub const NS: &str = "jabber:iq:last";

/// The module declaration.
pub static MODULE: ModuleDef = ModuleDef {
    name: "last",
    // Partial: the account queries of §3 are missing (see the module docs).
    protocols: &[Protocol { spec: "XEP-0012", version: "2.0", support: Support::Partial }],
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
    // FIXME(issue 6): account last activity needs the session_closed hook
    // (record the logout time and status per account in the key-value
    // store, then register a Scope::Account handler answering §3 with
    // `last_query`, gated on presence subscription).
    Ok(())
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
