//! XEP-0030: Service Discovery — the server's identity and features, plus
//! the XEP-0128 extension forms other modules register.

use async_trait::async_trait;
use xmppd_core::module::IqOutcome;
use xmppd_core::{IqHandler, IqRequest, IqType, ModuleContext, ModuleDef, Protocol, Scope, Support};
use xmppd_proto::{StanzaErrorCondition, ns};
use xmppd_xml::Element;

/// The module declaration.
pub static MODULE: ModuleDef = ModuleDef {
    name: "disco",
    protocols: &[
        Protocol { spec: "XEP-0030", version: "2.5rc3", support: Support::Complete },
        // The forms come from other modules (`ModuleContext::disco_extension`).
        Protocol { spec: "XEP-0128", version: "1.0.1", support: Support::Complete },
    ],
    start,
};

fn start(ctx: &mut ModuleContext<'_>) -> Result<(), String> {
    ctx.disco_identity("server", "im", Some("xmppd"));
    ctx.disco_feature(ns::DISCO_INFO);
    ctx.disco_feature(ns::DISCO_ITEMS);
    ctx.iq_handler(IqType::Get, Scope::Host, ns::DISCO_INFO, "query", HostInfo);
    ctx.iq_handler(IqType::Get, Scope::Host, ns::DISCO_ITEMS, "query", NoItems);
    ctx.iq_handler(IqType::Get, Scope::Account, ns::DISCO_INFO, "query", AccountInfo);
    ctx.iq_handler(IqType::Get, Scope::Account, ns::DISCO_ITEMS, "query", NoItems);
    Ok(())
}

struct HostInfo;

#[async_trait]
impl IqHandler for HostInfo {
    /// XEP-0030 §3.1: identity `server/im`, every registered feature and
    /// the XEP-0128 extension forms. The caps node `node#ver` (XEP-0115
    /// §6.2) answers the same.
    async fn handle(&self, request: IqRequest<'_>) -> IqOutcome {
        let Some(host) = request.stanza.to().map(|to| to.to_domain_jid()) else {
            return Err(StanzaErrorCondition::BadRequest);
        };
        let mut info = request.server.disco_info(&host).ok_or(StanzaErrorCondition::ItemNotFound)?;
        if let Some(node) = request.payload.attr("node") {
            let caps_node = request.server.caps_ver(&host).map(|ver| format!("{}#{ver}", ns::CAPS_NODE));
            if caps_node.as_deref() != Some(node) {
                // Other nodes (XEP-0030 §3.2) belong to the modules that
                // registered them (e.g. XEP-0050 command nodes).
                let children = request
                    .server
                    .disco_node_info(&host, request.stanza.from(), node)
                    .await
                    .ok_or(StanzaErrorCondition::ItemNotFound)??;
                return Ok(Some(
                    Element::builder("query", ns::DISCO_INFO).attr("node", node).append_all(children).build(),
                ));
            }
            info.set_attr("node", node);
        }
        Ok(Some(info))
    }
}

struct AccountInfo;

#[async_trait]
impl IqHandler for AccountInfo {
    /// XEP-0030 §3.1 for an account's bare JID, answered by the server on
    /// the account's behalf (RFC 6121 §8.5.2.1.3 keeps IQs to the bare JID
    /// on the server): identity `account/registered`.
    async fn handle(&self, request: IqRequest<'_>) -> IqOutcome {
        if request.payload.attr("node").is_some() {
            return Err(StanzaErrorCondition::ItemNotFound);
        }
        let host =
            request.stanza.to().map(|to| to.to_domain_jid()).unwrap_or_else(|| request.stanza.from().to_domain_jid());
        Ok(Some(request.server.account_disco_info(&host)))
    }
}

struct NoItems;

#[async_trait]
impl IqHandler for NoItems {
    /// XEP-0030 §4.1: no items yet (components will appear here). Items of
    /// a node (§4.2) come from the module that registered the node.
    async fn handle(&self, request: IqRequest<'_>) -> IqOutcome {
        let Some(node) = request.payload.attr("node") else {
            return Ok(Some(Element::builder("query", ns::DISCO_ITEMS).build()));
        };
        let host = request.stanza.to().map(|to| to.to_domain_jid()).ok_or(StanzaErrorCondition::BadRequest)?;
        let items = request
            .server
            .disco_node_items(&host, request.stanza.from(), node)
            .await
            .ok_or(StanzaErrorCondition::ItemNotFound)??;
        Ok(Some(Element::builder("query", ns::DISCO_ITEMS).attr("node", node).append_all(items).build()))
    }
}
