//! XEP-0199: XMPP Ping — answers pings to the server and to accounts.

use async_trait::async_trait;
use xmppd_core::module::IqOutcome;
use xmppd_core::{IqHandler, IqRequest, IqType, ModuleContext, ModuleDef, Protocol, Scope, Support};
use xmppd_proto::ns;

/// The module declaration.
pub static MODULE: ModuleDef = ModuleDef {
    name: "ping",
    protocols: &[Protocol { spec: "XEP-0199", version: "2.0.1", support: Support::Complete }],
    start,
};

fn start(ctx: &mut ModuleContext<'_>) -> Result<(), String> {
    ctx.disco_feature(ns::PING);
    // XEP-0199 §4.2 (client-to-server ping) and §4.3-like pings to an
    // account, which the server answers on the account's behalf.
    ctx.iq_handler(IqType::Get, Scope::Host, ns::PING, "ping", Pong);
    ctx.iq_handler(IqType::Get, Scope::Account, ns::PING, "ping", Pong);
    Ok(())
}

struct Pong;

#[async_trait]
impl IqHandler for Pong {
    async fn handle(&self, _request: IqRequest<'_>) -> IqOutcome {
        Ok(None)
    }
}
