//! XEP-0398 User Avatar to vCard-Based Avatars Conversion, the server side
//! of XEP-0153 vCard-Based Avatars, run by the PEP module.
//!
//! * PEP → vCard (§3, MUST): when a client publishes to
//!   `urn:xmpp:avatar:metadata` (XEP-0084), the image of the `info`
//!   without `url` is read from the `urn:xmpp:avatar:data` node, its SHA-1
//!   checked against the id, and stored as the vCard's `PHOTO`; an empty
//!   `<metadata/>` (avatar disabled, XEP-0084 §4.5) removes it. Only when
//!   the data node is world-readable (§6: access model `open`).
//! * vCard → PEP (§3, MAY): a vCard set with a `PHOTO` publishes the image
//!   to the data node and one `info` to the metadata node (both created
//!   `open`, like the vCard itself), with notifications.
//! * Presence (§4, MUST): every available presence the user sends gets
//!   `<x xmlns='vcard-temp:x:update'><photo>hash</photo></x>` unless it
//!   carries an empty `<photo/>`; an `<x/>` without photo is overwritten, a
//!   different hash replaced. Users without an avatar are left alone.
//! * The account's bare JID announces `urn:xmpp:pep-vcard-conversion:0`.

use std::collections::HashMap;
use std::sync::{Arc, Mutex, PoisonError};

use async_trait::async_trait;
use base64::Engine as _;
use sha1::{Digest, Sha1};
use xmppd_core::{
    HookFlow, IqType, KindSet, ModuleContext, Server, SessionEntry, SessionHook, SessionHookPoint, Stanza, StanzaHook,
    StanzaHookPoint, StanzaRewriter,
};
use xmppd_jid::BareJid;
use xmppd_storage::{AccessModel, NodeConfig};
use xmppd_xml::Element;

use crate::pep::{NS_PUBSUB, Pep, mentions};

/// XEP-0398 §2: the feature announced on accounts.
pub const NS_CONVERSION: &str = "urn:xmpp:pep-vcard-conversion:0";
/// XEP-0084: the avatar data node and payload namespace.
pub const NS_AVATAR_DATA: &str = "urn:xmpp:avatar:data";
/// XEP-0084: the avatar metadata node and payload namespace.
pub const NS_AVATAR_METADATA: &str = "urn:xmpp:avatar:metadata";
/// XEP-0054.
const NS_VCARD: &str = xmppd_mods::vcard::NS;
/// XEP-0153: the presence element.
const NS_VCARD_UPDATE: &str = "vcard-temp:x:update";

/// The conversion's state: each online account's current avatar hash.
pub(crate) struct Conversion {
    pep: Arc<Pep>,
    /// `None`: known to have no vCard avatar.
    hashes: Mutex<HashMap<BareJid, Option<Arc<str>>>>,
}

/// Registers the conversion on a host (from the PEP module's start).
pub(crate) fn start(ctx: &mut ModuleContext<'_>, pep: Arc<Pep>) {
    let conversion = Arc::new(Conversion { pep, hashes: Mutex::new(HashMap::new()) });
    ctx.account_disco_feature(NS_CONVERSION);
    ctx.stanza_hook(StanzaHookPoint::Outbound, KindSet::IQ, 50, Uploads(conversion.clone()));
    ctx.outbound_rewriter(KindSet::PRESENCE, 0, PresenceHash(conversion.clone()));
    ctx.session_hook(SessionHookPoint::Closed, -20, Forget(conversion));
}

/// An image: its bytes (as base64) and MIME type.
struct Image {
    base64: String,
    mime: String,
    hash: String,
    bytes: usize,
}

impl Image {
    /// Decodes base64 text (XEP-0153 allows line breaks in `BINVAL`).
    fn from_base64(text: &str, mime: &str) -> Option<Image> {
        let compact: String = text.chars().filter(|c| !c.is_ascii_whitespace()).collect();
        let data = base64::engine::general_purpose::STANDARD.decode(&compact).ok()?;
        if data.is_empty() {
            return None;
        }
        let hash = hex(&Sha1::digest(&data));
        Some(Image { base64: compact, mime: mime.to_owned(), hash, bytes: data.len() })
    }
}

fn hex(bytes: &[u8]) -> String {
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}

impl Conversion {
    fn lock(&self) -> std::sync::MutexGuard<'_, HashMap<BareJid, Option<Arc<str>>>> {
        self.hashes.lock().unwrap_or_else(PoisonError::into_inner)
    }

    fn set_hash(&self, user: &BareJid, hash: Option<&str>) {
        self.lock().insert(user.clone(), hash.map(Arc::from));
    }

    /// The account's avatar hash, read from its vCard once and cached.
    async fn hash(&self, server: &Arc<Server>, user: &BareJid) -> Option<Arc<str>> {
        if let Some(known) = self.lock().get(user) {
            return known.clone();
        }
        let hash = load_vcard(server, user).await.as_ref().and_then(vcard_photo).map(|image| Arc::from(image.hash));
        self.lock().insert(user.clone(), hash.clone());
        hash
    }

    /// A vCard set by the user (XEP-0054 §3.2): its photo goes to PEP.
    async fn vcard_set(&self, server: &Arc<Server>, user: &BareJid, vcard: &Element) {
        let Some(image) = vcard_photo(vcard) else {
            self.set_hash(user, None);
            return;
        };
        self.set_hash(user, Some(&image.hash));
        let open = NodeConfig { access_model: AccessModel::Open, ..NodeConfig::default() };
        let data = Element::builder("data", NS_AVATAR_DATA).text(&image.base64).build();
        let info = Element::builder("info", NS_AVATAR_METADATA)
            .attr("bytes", image.bytes.to_string())
            .attr("id", image.hash.as_str())
            .attr("type", image.mime.as_str())
            .build();
        let metadata = Element::builder("metadata", NS_AVATAR_METADATA).append(info).build();
        let published = match self.pep.publish_internal(server, user, NS_AVATAR_DATA, &image.hash, &data, &open).await {
            Ok(()) => self.pep.publish_internal(server, user, NS_AVATAR_METADATA, &image.hash, &metadata, &open).await,
            Err(failure) => Err(failure),
        };
        if let Err((condition, _)) = published {
            tracing::info!(user = %user.as_str(), ?condition, "vCard avatar not converted to PEP");
        }
    }

    /// A metadata publish by the user (XEP-0084 §4.2): the image goes into
    /// the vCard.
    async fn metadata_published(&self, server: &Arc<Server>, user: &BareJid, metadata: &Element) {
        let infos: Vec<&Element> = metadata.children().filter(|c| c.name() == "info").collect();
        if infos.is_empty() {
            // XEP-0084 §4.5: avatar disabled.
            self.set_hash(user, None);
            self.store_photo(server, user, None).await;
            return;
        }
        // XEP-0398 §3: the info that does not point to an external URL.
        let Some(info) = infos.iter().find(|info| info.attr("url").is_none_or(str::is_empty)) else { return };
        let (Some(id), Some(mime)) = (info.attr("id"), info.attr("type")) else { return };
        let Some((host, node)) = user.node().map(|node| (user.domain(), node)) else { return };
        let store = server.pubsub();
        // §6: only a world-readable avatar is copied into the vCard; a
        // non-public one also takes the old public photo out of it.
        match store.node(host, node, NS_AVATAR_DATA).await {
            Ok(Some(config)) if config.access_model == AccessModel::Open => {}
            Ok(_) => {
                self.set_hash(user, None);
                self.store_photo(server, user, None).await;
                return;
            }
            Err(_) => return,
        }
        let Ok(Some(item)) = store.item(host, node, NS_AVATAR_DATA, id).await else { return };
        let Ok(data) = Element::parse_standalone(&item.payload, NS_AVATAR_DATA) else { return };
        let Some(image) = Image::from_base64(&data.text(), mime) else { return };
        // §3: the SHA-1 of the image SHOULD match the id.
        if image.hash != id {
            tracing::info!(user = %user.as_str(), "avatar data does not match its id; vCard left alone");
            return;
        }
        self.set_hash(user, Some(&image.hash));
        self.store_photo(server, user, Some(&image)).await;
    }

    /// Replaces (or removes) the `PHOTO` of the stored vCard.
    async fn store_photo(&self, server: &Arc<Server>, user: &BareJid, image: Option<&Image>) {
        let Some(node) = user.node() else { return };
        let mut vcard = load_vcard(server, user).await.unwrap_or_else(|| Element::new("vCard", NS_VCARD));
        vcard.remove_children("PHOTO", NS_VCARD);
        if let Some(image) = image {
            let photo = Element::builder("PHOTO", NS_VCARD)
                .append(Element::builder("TYPE", NS_VCARD).text(&image.mime).build())
                .append(Element::builder("BINVAL", NS_VCARD).text(&image.base64).build())
                .build();
            vcard.push_child(photo);
        }
        let kv = server.kv();
        let result = if vcard.children().next().is_none() {
            kv.delete(user.domain(), node, xmppd_mods::vcard::STORE, "").await.map(drop)
        } else {
            kv.set(user.domain(), node, xmppd_mods::vcard::STORE, "", &vcard.to_bytes()).await
        };
        if let Err(error) = result {
            tracing::warn!(%error, "storing the converted vCard failed");
        }
    }
}

/// The stored vCard of an account.
async fn load_vcard(server: &Arc<Server>, user: &BareJid) -> Option<Element> {
    let bytes = server.kv().get(user.domain(), user.node()?, xmppd_mods::vcard::STORE, "").await.ok()??;
    Element::parse_standalone(&bytes, NS_VCARD).ok()
}

/// The photo of a vCard (XEP-0153 §3.1: `PHOTO` with `TYPE` and `BINVAL`).
fn vcard_photo(vcard: &Element) -> Option<Image> {
    let photo = vcard.get_child("PHOTO", NS_VCARD)?;
    let binval = photo.get_child("BINVAL", NS_VCARD)?.text();
    let mime = photo.get_child("TYPE", NS_VCARD).map(Element::text).filter(|t| !t.is_empty());
    Image::from_base64(&binval, mime.as_deref().unwrap_or("image/png"))
}

/// Avatar uploads the user sends: vCard sets and metadata publishes to the
/// user's own account.
struct Uploads(Arc<Conversion>);

#[async_trait]
impl StanzaHook for Uploads {
    async fn on_stanza(&self, server: &Arc<Server>, stanza: &Stanza) -> HookFlow {
        let user = stanza.from().to_bare();
        if stanza.iq_type() != Some(IqType::Set) || stanza.to().is_some_and(|to| to.to_bare() != user) {
            return HookFlow::Continue;
        }
        let is_vcard = mentions(stanza, NS_VCARD);
        if !is_vcard && !mentions(stanza, NS_AVATAR_METADATA) {
            return HookFlow::Continue;
        }
        let Ok(iq) = stanza.element() else { return HookFlow::Continue };
        if let Some(vcard) = iq.get_child("vCard", NS_VCARD) {
            // The vcard module refuses a vCard over its limit; so do we.
            let max_bytes = server
                .config()
                .modules
                .settings
                .get(xmppd_mods::vcard::MODULE.name)
                .and_then(|table| table.clone().try_into::<xmppd_mods::vcard::VcardConfig>().ok())
                .unwrap_or_default()
                .max_bytes;
            if vcard.to_bytes().len() <= max_bytes {
                self.0.vcard_set(server, &user, vcard).await;
            }
        } else if let Some(publish) = iq.get_child("pubsub", NS_PUBSUB).and_then(|p| p.get_child("publish", NS_PUBSUB))
            && publish.attr("node") == Some(NS_AVATAR_METADATA)
            && let Some(metadata) =
                publish.get_child("item", NS_PUBSUB).and_then(|item| item.get_child("metadata", NS_AVATAR_METADATA))
        {
            self.0.metadata_published(server, &user, metadata).await;
        } else if avatar_withdrawn(&iq) {
            // The avatar is gone from PEP: from the vCard too.
            self.0.set_hash(&user, None);
            self.0.store_photo(server, &user, None).await;
        }
        HookFlow::Continue
    }
}

/// Whether an IQ retracts from, purges or deletes the avatar metadata node
/// (XEP-0060 §7.2, §8.5, §8.4).
fn avatar_withdrawn(iq: &Element) -> bool {
    let on_metadata = |action: Option<&Element>| action.is_some_and(|a| a.attr("node") == Some(NS_AVATAR_METADATA));
    let pubsub = iq.get_child("pubsub", NS_PUBSUB);
    let owner = iq.get_child("pubsub", crate::pep::NS_OWNER);
    on_metadata(pubsub.and_then(|p| p.get_child("retract", NS_PUBSUB)))
        || on_metadata(owner.and_then(|p| p.get_child("purge", crate::pep::NS_OWNER)))
        || on_metadata(owner.and_then(|p| p.get_child("delete", crate::pep::NS_OWNER)))
}

/// XEP-0398 §4: the avatar hash in the user's available presence.
struct PresenceHash(Arc<Conversion>);

#[async_trait]
impl StanzaRewriter for PresenceHash {
    async fn rewrite(&self, server: &Arc<Server>, stanza: &Stanza) -> Option<Stanza> {
        if stanza.stanza_type().is_some() {
            return None;
        }
        let hash = self.0.hash(server, &stanza.from().to_bare()).await?;
        let mut presence = stanza.element().ok()?;
        if let Some(x) = presence.get_child("x", NS_VCARD_UPDATE) {
            match x.get_child("photo", NS_VCARD_UPDATE).map(Element::text) {
                // An empty photo: the client says it is not ready.
                Some(text) if text.trim().is_empty() => return None,
                Some(text) if text.trim() == &*hash => return None,
                _ => {}
            }
            presence.remove_children("x", NS_VCARD_UPDATE);
        }
        let photo = Element::builder("photo", NS_VCARD_UPDATE).text(&hash).build();
        presence.push_child(Element::builder("x", NS_VCARD_UPDATE).append(photo).build());
        Stanza::from_element(&presence)
    }
}

/// Drops the cached hash when the user's last session ends.
struct Forget(Arc<Conversion>);

#[async_trait]
impl SessionHook for Forget {
    async fn on_session(&self, server: &Arc<Server>, session: &Arc<SessionEntry>) {
        let user = session.jid().to_bare();
        if !server.sessions().is_online(&user) {
            self.0.lock().remove(&user);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn withdrawals_of_the_avatar_are_recognised() {
        let iq = |xml: &str| Element::parse_standalone(xml.as_bytes(), "jabber:client").unwrap_or_default();
        let retract = "<iq type='set'><pubsub xmlns='http://jabber.org/protocol/pubsub'>\
            <retract node='urn:xmpp:avatar:metadata'><item id='x'/></retract></pubsub></iq>";
        let delete = "<iq type='set'><pubsub xmlns='http://jabber.org/protocol/pubsub#owner'>\
            <delete node='urn:xmpp:avatar:metadata'/></pubsub></iq>";
        let other = "<iq type='set'><pubsub xmlns='http://jabber.org/protocol/pubsub#owner'>\
            <delete node='urn:xmpp:avatar:data'/></pubsub></iq>";
        assert!(avatar_withdrawn(&iq(retract)));
        assert!(avatar_withdrawn(&iq(delete)));
        assert!(!avatar_withdrawn(&iq(other)));
    }

    #[test]
    fn photo_hash_is_sha1_of_the_image() {
        // "abc" → SHA-1 a9993e36…
        let vcard = Element::parse_standalone(
            b"<vCard xmlns='vcard-temp'><PHOTO><TYPE>image/png</TYPE><BINVAL>YW\nJj</BINVAL></PHOTO></vCard>",
            NS_VCARD,
        )
        .ok();
        let image = vcard.as_ref().and_then(vcard_photo);
        assert_eq!(image.as_ref().map(|i| i.hash.as_str()), Some("a9993e364706816aba3e25717850c26c9cd0d89d"));
        assert_eq!(
            image.as_ref().map(|i| (i.bytes, i.base64.as_str(), i.mime.as_str())),
            Some((3, "YWJj", "image/png"))
        );
        let no_photo = Element::parse_standalone(b"<vCard xmlns='vcard-temp'><FN>A</FN></vCard>", NS_VCARD).ok();
        assert!(no_photo.as_ref().and_then(vcard_photo).is_none());
        assert!(Image::from_base64("!!!", "image/png").is_none());
    }
}
