//! XEP-0049: Private XML Storage — a user keeps arbitrary XML fragments on
//! the server, each addressed by its root element's name and namespace.
//!
//! Fragments live in the key-value store `"private"` of the account, one
//! entry per fragment, under the key `"{name} {namespace}"` (XML names
//! cannot contain a space, so the key is unambiguous).
//!
//! Choices where XEP-0049 leaves room, and why:
//!
//! * A get without a child element is refused with `<not-acceptable/>`. §2.3
//!   says the server MUST answer "Not Acceptable" when no child is present
//!   and SHOULD answer "Bad Format" to a get without one; `bad-format` is a
//!   stream error, not a stanza error condition in RFC 6120 §8.3.3, and the
//!   XEP notes that existing servers answer `not-acceptable`.
//! * A get with more than one child is `<bad-request/>`: §2.3 says a client
//!   MUST NOT query more than one namespace in a single get.
//! * A set may carry several fragments (§2.3: "an IQ set … MAY contain
//!   multiple elements"); each is stored under its own key. Two fragments
//!   with the same name and namespace in one set are `<bad-request/>`.
//! * Children in no namespace, in `jabber:iq:private` itself (a child
//!   without its own `xmlns` inherits it) and in the stanza namespaces
//!   `jabber:client` / `jabber:server` are refused with
//!   `<not-acceptable/>`, the condition §2.3 gives for reserved namespaces.
//!   The other namespaces §2.3 calls reserved (`jabber:…`,
//!   `http://jabber.org/…`, `vcard-temp`) are accepted: refusing them is
//!   OPTIONAL and would break clients that store data there.
//! * Requests addressed to another account are `<forbidden/>` (§2.3: MUST
//!   be "Forbidden" or "Service Unavailable", the former preferable).
//! * Storing an empty fragment deletes the entry: a later get returns the
//!   same empty element either way, and the entry stops counting against
//!   the quota.
//! * A per-account quota (bytes and number of fragments) bounds storage;
//!   a set that would exceed it is `<not-acceptable/>` (RFC 6120
//!   §8.3.3.12: the request does not meet criteria defined by the server;
//!   its type `modify` tells the client that retrying unchanged will fail,
//!   where `<resource-constraint/>` would invite a retry). Concurrent sets
//!   of one account may overshoot the quota by one request.

use std::collections::HashSet;

use async_trait::async_trait;
use serde::Deserialize;
use xmppd_core::module::IqOutcome;
use xmppd_core::{IqHandler, IqRequest, IqType, ModuleContext, ModuleDef, Protocol, Scope, Support};
use xmppd_proto::{StanzaErrorCondition, ns};
use xmppd_storage::KeyValueStore;
use xmppd_xml::Element;

/// XEP-0049 §2.1: the protocol namespace.
pub const NS: &str = "jabber:iq:private";

/// The key-value store holding the fragments (one entry per fragment,
/// under [`storage_key`]); `xmppd import`/`export` use it too.
pub const STORE: &str = "private";

/// Namespaces a fragment may not have (see the module documentation).
const REFUSED_NAMESPACES: &[&str] = &["", NS, ns::CLIENT, ns::SERVER];

/// The module declaration.
pub static MODULE: ModuleDef = ModuleDef {
    name: "private",
    protocols: &[Protocol { spec: "XEP-0049", version: "1.2", support: Support::Complete }],
    start,
};

/// `[modules.settings.private]`
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct PrivateConfig {
    /// Most bytes of serialised XML one account may store, all fragments
    /// together.
    pub max_bytes: usize,
    /// Most fragments (distinct name and namespace pairs) one account may
    /// store.
    pub max_elements: usize,
}

impl Default for PrivateConfig {
    fn default() -> Self {
        PrivateConfig { max_bytes: 64 * 1024, max_elements: 100 }
    }
}

fn start(ctx: &mut ModuleContext<'_>) -> Result<(), String> {
    let config: PrivateConfig = ctx.config()?;
    // XEP-0049 defines no disco feature; clients simply try it.
    ctx.iq_handler(IqType::Get, Scope::Account, NS, "query", Retrieve);
    ctx.iq_handler(IqType::Set, Scope::Account, NS, "query", Store { config });
    Ok(())
}

/// The account an account-scoped IQ is addressed to, if it is the sender's
/// own (no `to`, or `to` equal to the sender's bare JID, RFC 6120 §8.1.1.1),
/// as (host, username). XEP-0049 §2.3 and XEP-0054 §3.2 both restrict
/// writes (and XEP-0049 reads) to the account's own resources.
pub(crate) fn own_account(request: &IqRequest<'_>) -> Option<(String, String)> {
    let account = request.own_account().ok()?;
    Some((account.domain().to_owned(), account.node()?.to_owned()))
}

/// Storage failures are the server's problem, not the requester's.
pub(crate) fn internal<E>(_error: E) -> StanzaErrorCondition {
    StanzaErrorCondition::InternalServerError
}

/// Stores `value` under `key` in the account's `store`, or deletes the key
/// when there is no value.
pub(crate) async fn set_or_delete(
    kv: &dyn KeyValueStore,
    host: &str,
    user: &str,
    store: &str,
    key: &str,
    value: Option<&[u8]>,
) -> Result<(), StanzaErrorCondition> {
    match value {
        Some(value) => kv.set(host, user, store, key, value).await.map_err(internal),
        None => kv.delete(host, user, store, key).await.map(drop).map_err(internal),
    }
}

/// The key of a fragment: its element name and namespace.
pub fn storage_key(fragment: &Element) -> String {
    format!("{} {}", fragment.name(), fragment.ns())
}

/// Refuses fragments in reserved namespaces (XEP-0049 §2.3).
fn check_namespace(fragment: &Element) -> Result<(), StanzaErrorCondition> {
    if REFUSED_NAMESPACES.contains(&fragment.ns()) { Err(StanzaErrorCondition::NotAcceptable) } else { Ok(()) }
}

/// The one fragment a get asks for.
fn requested_fragment(query: &Element) -> Result<&Element, StanzaErrorCondition> {
    let mut children = query.children();
    match (children.next(), children.next()) {
        (None, _) => Err(StanzaErrorCondition::NotAcceptable),
        (Some(_), Some(_)) => Err(StanzaErrorCondition::BadRequest),
        (Some(fragment), None) => check_namespace(fragment).map(|()| fragment),
    }
}

/// The fragments a set stores, each with its key.
fn fragments_to_store(query: &Element) -> Result<Vec<(String, &Element)>, StanzaErrorCondition> {
    let mut seen = HashSet::new();
    let mut fragments = Vec::new();
    for fragment in query.children() {
        check_namespace(fragment)?;
        let key = storage_key(fragment);
        if !seen.insert(key.clone()) {
            return Err(StanzaErrorCondition::BadRequest);
        }
        fragments.push((key, fragment));
    }
    if fragments.is_empty() {
        return Err(StanzaErrorCondition::NotAcceptable);
    }
    Ok(fragments)
}

/// Whether a fragment carries nothing (storing it is the same as deleting).
fn is_empty(fragment: &Element) -> bool {
    fragment.nodes().is_empty() && fragment.attrs().iter().all(|(name, _)| name == "xmlns")
}

/// Checks an account's would-be totals against the quota.
fn check_quota(config: &PrivateConfig, elements: usize, bytes: usize) -> Result<(), StanzaErrorCondition> {
    if elements > config.max_elements || bytes > config.max_bytes {
        return Err(StanzaErrorCondition::NotAcceptable);
    }
    Ok(())
}

struct Retrieve;

#[async_trait]
impl IqHandler for Retrieve {
    /// XEP-0049 §2.3: returns the stored fragment, or the requested element
    /// empty when nothing is stored.
    async fn handle(&self, request: IqRequest<'_>) -> IqOutcome {
        let (host, user) = own_account(&request).ok_or(StanzaErrorCondition::Forbidden)?;
        let requested = requested_fragment(&request.payload)?;
        let stored = request.server.kv().get(&host, &user, STORE, &storage_key(requested)).await.map_err(internal)?;
        let fragment = match stored {
            // The bytes were serialised by `Store` with an explicit xmlns.
            Some(bytes) => Element::parse_standalone(&bytes, NS).map_err(internal)?,
            None => Element::new(requested.name(), requested.ns()),
        };
        Ok(Some(Element::builder("query", NS).append(fragment).build()))
    }
}

struct Store {
    config: PrivateConfig,
}

#[async_trait]
impl IqHandler for Store {
    /// XEP-0049 §2.3: stores every fragment of the query, replacing what
    /// was stored under the same name and namespace.
    async fn handle(&self, request: IqRequest<'_>) -> IqOutcome {
        let (host, user) = own_account(&request).ok_or(StanzaErrorCondition::Forbidden)?;
        let fragments = fragments_to_store(&request.payload)?;
        let kv = request.server.kv();
        let updates: Vec<(String, Option<Vec<u8>>)> = fragments
            .into_iter()
            .map(|(key, fragment)| (key, (!is_empty(fragment)).then(|| fragment.to_bytes())))
            .collect();
        let replaced: HashSet<&str> = updates.iter().map(|(key, _)| key.as_str()).collect();
        let mut elements = updates.iter().filter(|(_, value)| value.is_some()).count();
        let mut bytes: usize = updates.iter().filter_map(|(_, value)| value.as_ref().map(Vec::len)).sum();
        check_quota(&self.config, elements, bytes)?;
        for key in kv.list_keys(&host, &user, STORE).await.map_err(internal)? {
            if replaced.contains(key.as_str()) {
                continue;
            }
            let size = kv.get(&host, &user, STORE, &key).await.map_err(internal)?.map_or(0, |value| value.len());
            elements += 1;
            bytes = bytes.saturating_add(size);
            check_quota(&self.config, elements, bytes)?;
        }
        for (key, value) in &updates {
            set_or_delete(kv.as_ref(), &host, &user, STORE, key, value.as_deref()).await?;
        }
        Ok(None)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn query(children: &str) -> Element {
        let xml = format!("<query xmlns='{NS}'>{children}</query>");
        Element::parse_standalone(xml.as_bytes(), ns::CLIENT).unwrap_or_default()
    }

    #[test]
    fn get_needs_exactly_one_proper_child() {
        assert_eq!(requested_fragment(&query("")), Err(StanzaErrorCondition::NotAcceptable));
        assert_eq!(
            requested_fragment(&query("<a xmlns='urn:a'/><b xmlns='urn:b'/>")),
            Err(StanzaErrorCondition::BadRequest)
        );
        let q = query("<prefs xmlns='urn:example:prefs'/>");
        let fragment = requested_fragment(&q).map(storage_key);
        assert_eq!(fragment.as_deref(), Ok("prefs urn:example:prefs"));
    }

    #[test]
    fn reserved_namespaces_are_refused() {
        // No xmlns: the child inherits jabber:iq:private.
        assert_eq!(requested_fragment(&query("<prefs/>")), Err(StanzaErrorCondition::NotAcceptable));
        assert_eq!(requested_fragment(&query("<prefs xmlns=''/>")), Err(StanzaErrorCondition::NotAcceptable));
        for reserved in ["jabber:client", "jabber:server", "jabber:iq:private"] {
            let q = query(&format!("<x xmlns='{reserved}'/>"));
            assert_eq!(fragments_to_store(&q).map(|f| f.len()), Err(StanzaErrorCondition::NotAcceptable));
        }
        // XEP-0048 bookmarks and other jabber: namespaces are fine.
        assert!(fragments_to_store(&query("<storage xmlns='storage:bookmarks'/>")).is_ok());
        assert!(fragments_to_store(&query("<x xmlns='jabber:x:foo'/>")).is_ok());
    }

    #[test]
    fn set_takes_several_distinct_fragments() {
        assert_eq!(fragments_to_store(&query("")).map(|f| f.len()), Err(StanzaErrorCondition::NotAcceptable));
        let q = query("<a xmlns='urn:x'>1</a><b xmlns='urn:x'/>");
        let keys: Vec<String> = fragments_to_store(&q).unwrap_or_default().into_iter().map(|(k, _)| k).collect();
        assert_eq!(keys, ["a urn:x", "b urn:x"]);
        let duplicate = query("<a xmlns='urn:x'>1</a><a xmlns='urn:x'>2</a>");
        assert_eq!(fragments_to_store(&duplicate).map(|f| f.len()), Err(StanzaErrorCondition::BadRequest));
    }

    #[test]
    fn emptiness() {
        let q = query("<a xmlns='urn:x'/><b xmlns='urn:x' v='1'/><c xmlns='urn:x'> </c>");
        let empty: Vec<bool> = q.children().map(is_empty).collect();
        assert_eq!(empty, [true, false, false]);
    }

    #[test]
    fn stored_bytes_parse_back() {
        let q = query("<prefs xmlns='urn:example:prefs' a='1'><color>red &amp; blue</color></prefs>");
        let fragment = requested_fragment(&q).cloned().unwrap_or_default();
        let parsed = Element::parse_standalone(&fragment.to_bytes(), NS).ok();
        assert_eq!(parsed, Some(fragment));
    }

    #[test]
    fn quota() {
        let config = PrivateConfig { max_bytes: 100, max_elements: 2 };
        assert_eq!(check_quota(&config, 2, 100), Ok(()));
        assert_eq!(check_quota(&config, 3, 10), Err(StanzaErrorCondition::NotAcceptable));
        assert_eq!(check_quota(&config, 1, 101), Err(StanzaErrorCondition::NotAcceptable));
    }
}
