//! XEP-0030: Service Discovery — the server's identity and features.

use async_trait::async_trait;
use xmppd_core::module::IqOutcome;
use xmppd_core::{IqHandler, IqRequest, IqType, ModuleContext, ModuleDef, Protocol, Scope, Support};
use xmppd_proto::{StanzaErrorCondition, ns};
use xmppd_xml::Element;

/// The module declaration.
pub static MODULE: ModuleDef = ModuleDef {
    name: "disco",
    protocols: &[Protocol { spec: "XEP-0030", version: "2.5rc3", support: Support::Partial }],
    start,
};

fn start(ctx: &mut ModuleContext<'_>) -> Result<(), String> {
    ctx.disco_feature(ns::DISCO_INFO);
    ctx.disco_feature(ns::DISCO_ITEMS);
    ctx.iq_handler(IqType::Get, Scope::Host, ns::DISCO_INFO, "query", HostInfo);
    ctx.iq_handler(IqType::Get, Scope::Host, ns::DISCO_ITEMS, "query", NoItems);
    Ok(())
}

struct HostInfo;

#[async_trait]
impl IqHandler for HostInfo {
    /// XEP-0030 §3.1: identity `server/im` plus every registered feature.
    async fn handle(&self, request: IqRequest<'_>) -> IqOutcome {
        if request.payload.attr("node").is_some() {
            return Err(StanzaErrorCondition::ItemNotFound);
        }
        let Some(host) = request.stanza.to().map(|to| to.to_domain_jid()) else {
            return Err(StanzaErrorCondition::BadRequest);
        };
        let mut query = Element::builder("query", ns::DISCO_INFO).append(
            Element::builder("identity", ns::DISCO_INFO)
                .attr("category", "server")
                .attr("type", "im")
                .attr("name", "xmppd")
                .build(),
        );
        for feature in request.server.disco_features(&host) {
            query = query.append(Element::builder("feature", ns::DISCO_INFO).attr("var", feature).build());
        }
        Ok(Some(query.build()))
    }
}

struct NoItems;

#[async_trait]
impl IqHandler for NoItems {
    /// XEP-0030 §4.1: no items yet (components will appear here).
    async fn handle(&self, _request: IqRequest<'_>) -> IqOutcome {
        Ok(Some(Element::builder("query", ns::DISCO_ITEMS).build()))
    }
}
