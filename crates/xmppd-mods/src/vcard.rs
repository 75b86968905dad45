//! XEP-0054: vcard-temp — users publish a vCard that anyone may read; the
//! server answers on the account's behalf.
//!
//! The vCard is kept whole in the key-value store `"vcard"` of the account
//! (empty key): XEP-0054 §3.2 has no partial updates.
//!
//! Behaviour, with the XEP-0054 (1.3.0) text it follows:
//!
//! * Get of one's own vCard (no `to`, or `to` = own bare JID) when none is
//!   stored: an empty `<vCard xmlns='vcard-temp'/>` result, one of the two
//!   answers §3.1 allows ("a stanza error (which SHOULD be item-not-found)
//!   or an IQ-result containing an empty `<vCard/>`"); clients handle an
//!   empty result more gracefully than an error.
//! * Get of another local account's vCard when none is stored:
//!   `<service-unavailable/>`. §3.3 requires a stanza error here, and the
//!   same one as for an account that does not exist (against directory
//!   harvesting); the router already answers `service-unavailable` for
//!   those (RFC 6121 §8.5.1), so this must match.
//! * Set on another account: `<forbidden/>` (§3.2: SHOULD be forbidden or
//!   not-allowed).
//! * A vCard larger than `max_bytes` (serialised) is `<not-acceptable/>`
//!   (RFC 6120 §8.3.3.12, type `modify`: send a smaller one). XEP-0054
//!   defines no size error.
//! * Setting an empty vCard deletes the stored one.
//!
//! vCards of the server itself (§3.3 note) are not offered.

use async_trait::async_trait;
use serde::Deserialize;
use xmppd_core::module::IqOutcome;
use xmppd_core::{IqHandler, IqRequest, IqType, ModuleContext, ModuleDef, Protocol, Scope, Support};
use xmppd_proto::StanzaErrorCondition;
use xmppd_xml::Element;

use crate::private::{internal, own_account, set_or_delete};

/// XEP-0054 §1: the protocol namespace, also the disco feature (§4).
pub const NS: &str = "vcard-temp";

/// The key-value store holding vCards (one value per account, empty key);
/// XEP-0398 conversion and `xmppd import`/`export` use it too.
pub const STORE: &str = "vcard";

/// The module declaration.
pub static MODULE: ModuleDef = ModuleDef {
    name: "vcard",
    protocols: &[Protocol { spec: "XEP-0054", version: "1.3.0", support: Support::Complete }],
    start,
};

/// `[modules.settings.vcard]`
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct VcardConfig {
    /// Largest vCard accepted, in bytes of serialised XML. The default
    /// leaves room for an embedded avatar photo (XEP-0153) while staying
    /// well under the default stanza size limit.
    pub max_bytes: usize,
}

impl Default for VcardConfig {
    fn default() -> Self {
        VcardConfig { max_bytes: 128 * 1024 }
    }
}

fn start(ctx: &mut ModuleContext<'_>) -> Result<(), String> {
    let config: VcardConfig = ctx.config()?;
    ctx.disco_feature(NS);
    ctx.iq_handler(IqType::Get, Scope::Account, NS, "vCard", Retrieve);
    ctx.iq_handler(IqType::Set, Scope::Account, NS, "vCard", Publish { config });
    Ok(())
}

/// What a set stores: `None` deletes (an empty vCard), else the bytes.
fn vcard_to_store(vcard: &Element, config: &VcardConfig) -> Result<Option<Vec<u8>>, StanzaErrorCondition> {
    if vcard.nodes().iter().all(|node| matches!(node, xmppd_xml::Node::Text(text) if text.trim().is_empty())) {
        return Ok(None);
    }
    let bytes = vcard.to_bytes();
    if bytes.len() > config.max_bytes {
        return Err(StanzaErrorCondition::NotAcceptable);
    }
    Ok(Some(bytes))
}

struct Retrieve;

#[async_trait]
impl IqHandler for Retrieve {
    /// XEP-0054 §3.1 (own vCard) and §3.3 (another user's).
    async fn handle(&self, request: IqRequest<'_>) -> IqOutcome {
        let own = own_account(&request);
        let owner = match (&own, request.stanza.to()) {
            (Some(account), _) => account.clone(),
            (None, Some(to)) => {
                let Some(node) = to.node() else { return Err(StanzaErrorCondition::ServiceUnavailable) };
                (to.domain().to_owned(), node.to_owned())
            }
            (None, None) => return Err(StanzaErrorCondition::ServiceUnavailable),
        };
        match request.server.kv().get(&owner.0, &owner.1, STORE, "").await.map_err(internal)? {
            // The bytes were serialised by `Publish` with an explicit xmlns.
            Some(bytes) => Ok(Some(Element::parse_standalone(&bytes, NS).map_err(internal)?)),
            None if own.is_some() => Ok(Some(Element::new("vCard", NS))),
            None => Err(StanzaErrorCondition::ServiceUnavailable),
        }
    }
}

struct Publish {
    config: VcardConfig,
}

#[async_trait]
impl IqHandler for Publish {
    /// XEP-0054 §3.2: replaces the whole vCard of one's own account.
    async fn handle(&self, request: IqRequest<'_>) -> IqOutcome {
        let (host, user) = own_account(&request).ok_or(StanzaErrorCondition::Forbidden)?;
        let vcard = vcard_to_store(&request.payload, &self.config)?;
        set_or_delete(request.server.kv().as_ref(), &host, &user, STORE, "", vcard.as_deref()).await?;
        Ok(None)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn vcard(inner: &str) -> Element {
        let xml = format!("<vCard xmlns='{NS}'>{inner}</vCard>");
        Element::parse_standalone(xml.as_bytes(), "jabber:client").unwrap_or_default()
    }

    #[test]
    fn empty_vcards_delete() {
        let config = VcardConfig::default();
        assert_eq!(vcard_to_store(&vcard(""), &config), Ok(None));
        assert_eq!(vcard_to_store(&vcard("\n  "), &config), Ok(None));
        let stored = vcard_to_store(&vcard("<FN>Alice</FN>"), &config);
        assert!(matches!(stored, Ok(Some(_))), "{stored:?}");
    }

    #[test]
    fn size_limit() {
        let config = VcardConfig { max_bytes: 64 };
        let small = vcard("<FN>Al</FN>");
        assert!(matches!(vcard_to_store(&small, &config), Ok(Some(_))));
        let big = vcard(&format!("<DESC>{}</DESC>", "x".repeat(64)));
        assert_eq!(vcard_to_store(&big, &config), Err(StanzaErrorCondition::NotAcceptable));
    }

    #[test]
    fn stored_vcard_round_trips() {
        let original = vcard("<N><GIVEN>Alice</GIVEN><MIDDLE/></N><TEL><WORK/><NUMBER>1</NUMBER></TEL>");
        let bytes = vcard_to_store(&original, &VcardConfig::default()).ok().flatten().unwrap_or_default();
        assert_eq!(Element::parse_standalone(&bytes, NS).ok(), Some(original));
    }
}
