//! Interpretation of one `<user/>` element (XEP-0227 §4.2–§4.11) into
//! [`UserData`]. Pure: no I/O, no locations (the reader adds those).

use std::collections::HashSet;

use base64::Engine as _;
use base64::engine::DecodePaddingMode;
use base64::engine::general_purpose::{GeneralPurpose, GeneralPurposeConfig};
use xmppd_jid::{BareJid, DomainJid, Jid, nodeprep};
use xmppd_proto::data_form::DataForm;
use xmppd_xml::{Element, Node, StreamHeader};

use crate::model::{
    OfflineEntry, Password, PendingSubscription, PepItem, PepNode, RosterEntry, ScramEntry, ScramHash, Subscription,
    UserData,
};
use crate::ns;
use crate::reader::NodeConfigCheck;
use crate::timestamp::Timestamp;

/// Standard base64 that accepts missing padding too.
const BASE64: GeneralPurpose = GeneralPurpose::new(
    &base64::alphabet::STANDARD,
    GeneralPurposeConfig::new().with_decode_padding_mode(DecodePaddingMode::Indifferent),
);

/// Why a user record cannot be imported, with a value to look for in its
/// bytes so that the reader can point at it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct Invalid {
    pub(crate) message: String,
    /// The offending text as written, if there is one.
    pub(crate) hint: Option<String>,
}

fn invalid(message: impl Into<String>, hint: Option<&str>) -> Invalid {
    Invalid { message: message.into(), hint: hint.map(str::to_owned) }
}

/// One attribute of `<user/>`, with its namespace resolved.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct UserAttr {
    /// The namespace of a prefixed attribute; `None` for unprefixed ones.
    pub(crate) ns: Option<String>,
    /// The local name.
    pub(crate) local: String,
    /// The value, unescaped.
    pub(crate) value: String,
}

impl UserAttr {
    fn split(qname: &str, value: &str, resolve: impl Fn(&str) -> Option<String>) -> Option<UserAttr> {
        if qname == "xmlns" || qname.starts_with("xmlns:") {
            return None;
        }
        let (ns, local) = match qname.split_once(':') {
            Some((prefix, local)) => (resolve(prefix), local),
            None => (None, qname),
        };
        Some(UserAttr { ns, local: local.to_owned(), value: value.to_owned() })
    }

    /// The attributes of a parsed `<user/>` element. The DOM keeps an
    /// `xmlns:p` attribute next to every attribute prefixed `p`.
    pub(crate) fn of_element(element: &Element) -> Vec<UserAttr> {
        let resolve = |prefix: &str| {
            if prefix == "xml" {
                Some(xmppd_xml::XML_NS.to_owned())
            } else {
                element.attr(&format!("xmlns:{prefix}")).map(str::to_owned)
            }
        };
        element.attrs().iter().filter_map(|(qname, value)| UserAttr::split(qname, value, resolve)).collect()
    }

    /// The attributes of a `<user/>` that is the root of a file (XEP-0227 §5).
    pub(crate) fn of_header(header: &StreamHeader) -> Vec<UserAttr> {
        let resolve = |prefix: &str| {
            if prefix == "xml" {
                Some(xmppd_xml::XML_NS.to_owned())
            } else {
                header.prefix_namespace(prefix).map(str::to_owned)
            }
        };
        header.attributes().iter().filter_map(|(qname, value)| UserAttr::split(qname, value, resolve)).collect()
    }
}

/// The unprefixed attribute `name`.
fn plain<'a>(attrs: &'a [UserAttr], name: &str) -> Option<&'a str> {
    attrs.iter().find(|attr| attr.ns.is_none() && attr.local == name).map(|attr| attr.value.as_str())
}

/// The `name` attribute as written, for error messages.
pub(crate) fn raw_name(attrs: &[UserAttr]) -> String {
    plain(attrs, "name").unwrap_or_default().to_owned()
}

/// Interprets a `<user/>` given its attributes and child elements: the
/// user and the records of it that were skipped (PEP nodes and items,
/// XEP-0227 §4.10), or why the whole user is unusable.
pub(crate) fn interpret<'e>(
    attrs: &[UserAttr],
    children: impl IntoIterator<Item = &'e Element>,
    host: &DomainJid,
    check: Option<NodeConfigCheck>,
) -> Result<(UserData, Vec<Invalid>), Invalid> {
    // XEP-0227 §4.2: "MUST have a 'name' attribute".
    let name = plain(attrs, "name").ok_or_else(|| invalid("the <user/> has no 'name' attribute", None))?;
    let username = nodeprep(name).map_err(|error| invalid(format!("invalid name: {error}"), Some(name)))?;
    let mut user = UserData { username: username.into_owned(), ..UserData::default() };

    let mut plain_password = None;
    let mut legacy_scram = None;
    if let Some(password) = plain(attrs, "password") {
        if let Some(data) = password.strip_prefix("scram:") {
            legacy_scram = Some(ejabberd_scram(data)?);
        } else if !password.is_empty() {
            // COMPAT: ejabberd before 22.05 wrote password='' for accounts
            // without a stored password (commit 91c9b0446, "it's invalid").
            plain_password = Some(password.to_owned());
        }
    }
    let prosody_scram = prosody_scram(attrs)?;

    let mut scram: Vec<ScramEntry> = Vec::new();
    let mut roster_seen = HashSet::new();
    let mut pep = Pep::default();
    for child in children {
        let child_ns = child.ns();
        match child.name() {
            "scram-credentials" if child_ns == ns::PIE_SCRAM => match scram_credentials(child)? {
                Some(entry) => {
                    // §4.3: "they MUST all have a unique 'mechanism' attribute".
                    if scram.iter().any(|other| other.mechanism_hash == entry.mechanism_hash) {
                        let mechanism = entry.mechanism_hash.mechanism();
                        return Err(invalid(format!("two <scram-credentials/> for {mechanism}"), Some(mechanism)));
                    }
                    scram.push(entry);
                }
                None => user.unsupported.push(child.clone()),
            },
            "query" if child_ns == ns::ROSTER => roster(child, &mut user.roster, &mut roster_seen)?,
            // COMPAT: Prosody's mod_storage_xep0227 writes the request
            // without an xmlns, so it inherits urn:xmpp:pie:0.
            "presence" if child_ns == ns::CLIENT || ns::is_pie(child_ns) => match pending(child)? {
                Some(request) => user.pending_in.push(request),
                None => user.unsupported.push(child.clone()),
            },
            "vCard" if child_ns == ns::VCARD => {
                if user.vcard.is_some() {
                    return Err(invalid("more than one <vCard xmlns='vcard-temp'/>", None));
                }
                user.vcard = Some(child.clone());
            }
            "query" if child_ns == ns::PRIVATE => user.private.extend(child.children().cloned()),
            "offline-messages" if ns::is_pie(child_ns) => offline(child, host, &mut user)?,
            "pubsub" if child_ns == ns::PUBSUB_OWNER => pep.owner(child, check, &mut user.unsupported),
            "pubsub" if child_ns == ns::PUBSUB => pep.items(child, &mut user.unsupported),
            _ => user.unsupported.push(child.clone()),
        }
    }
    user.pep = pep.nodes;

    user.password = if !scram.is_empty() {
        Some(Password::Scram(scram))
    } else if let Some(entry) = legacy_scram.or(prosody_scram) {
        Some(Password::Scram(vec![entry]))
    } else {
        plain_password.map(Password::Plain)
    };
    Ok((user, pep.skipped))
}

/// The PEP data of one user being read (XEP-0227 §4.10).
#[derive(Default)]
struct Pep {
    nodes: Vec<PepNode>,
    /// Nodes that have a `<configure/>`, and nodes skipped as bad records
    /// (whose items are skipped too).
    configured: HashSet<String>,
    refused: HashSet<String>,
    skipped: Vec<Invalid>,
}

impl Pep {
    fn node(&mut self, name: &str) -> Option<&mut PepNode> {
        if self.refused.contains(name) {
            return None;
        }
        let index = match self.nodes.iter().position(|node| node.name == name) {
            Some(index) => index,
            None => {
                self.nodes.push(PepNode { name: name.to_owned(), config: None, items: Vec::new() });
                self.nodes.len() - 1
            }
        };
        self.nodes.get_mut(index)
    }

    fn refuse(&mut self, name: &str, message: String) {
        self.nodes.retain(|node| node.name != name);
        self.refused.insert(name.to_owned());
        self.skipped.push(invalid(message, Some(&tag_hint("configure", name))));
    }

    /// `<pubsub xmlns='…#owner'/>` (§4.10.1): one `<configure/>` per node.
    /// `<affiliations/>` and `<subscriptions/>` are not interpreted; they are
    /// kept, in a `<pubsub/>` of their own, with the unsupported data.
    fn owner(&mut self, pubsub: &Element, check: Option<NodeConfigCheck>, unsupported: &mut Vec<Element>) {
        let mut rest = Element::new("pubsub", ns::PUBSUB_OWNER);
        for child in pubsub.children() {
            if !child.is("configure", ns::PUBSUB_OWNER) {
                rest.push_child(child.clone());
                continue;
            }
            let Some(name) = child.attr("node").filter(|name| !name.is_empty()) else {
                self.skipped.push(invalid("PEP <configure/> without a 'node' attribute", None));
                continue;
            };
            if !self.configured.insert(name.to_owned()) {
                self.skipped.push(invalid(format!("PEP node '{name}' has a second <configure/>"), Some(name)));
                continue;
            }
            let config = match DataForm::find_in(child) {
                None => None,
                Some(Ok(form)) => Some(form),
                Some(Err(error)) => {
                    self.refuse(name, format!("PEP node '{name}': invalid configuration form: {error}"));
                    continue;
                }
            };
            if let (Some(form), Some(check)) = (&config, check)
                && let Err(reason) = check(form)
            {
                self.refuse(name, format!("PEP node '{name}': {reason}"));
                continue;
            }
            if let Some(node) = self.node(name) {
                node.config = config;
            }
        }
        if rest.children().next().is_some() {
            unsupported.push(rest);
        }
    }

    /// `<pubsub xmlns='…/pubsub'/>` (§4.10.2): one `<items/>` per node.
    fn items(&mut self, pubsub: &Element, unsupported: &mut Vec<Element>) {
        let mut rest = Element::new("pubsub", ns::PUBSUB);
        for items in pubsub.children() {
            if !items.is("items", ns::PUBSUB) {
                rest.push_child(items.clone());
                continue;
            }
            let Some(name) = items.attr("node").filter(|name| !name.is_empty()) else {
                self.skipped.push(invalid("PEP <items/> without a 'node' attribute", None));
                continue;
            };
            let mut problems = Vec::new();
            if let Some(node) = self.node(name) {
                for item in items.children().filter(|child| child.is("item", ns::PUBSUB)) {
                    let Some(id) = item.attr("id").filter(|id| !id.is_empty()) else {
                        let message = format!("PEP node '{name}': an <item/> without an 'id'");
                        problems.push(invalid(message, Some(&tag_hint("items", name))));
                        continue;
                    };
                    if node.items.iter().any(|other| other.id == id) {
                        problems.push(invalid(format!("PEP node '{name}': a second item '{id}'"), Some(id)));
                        continue;
                    }
                    node.items.push(PepItem {
                        id: id.to_owned(),
                        publisher: item.attr("publisher").map(str::to_owned),
                        published: None,
                        payload: item.children().next().cloned(),
                    });
                }
            }
            self.skipped.extend(problems);
        }
        if rest.children().next().is_some() {
            unsupported.push(rest);
        }
    }
}

/// A hint that finds `<{element} node='{node}'` as most files write it
/// (the reader falls back to the user's start tag otherwise).
fn tag_hint(element: &str, node: &str) -> String {
    format!("<{element} node='{}'", xmppd_xml::escape_attr(node))
}

/// `<scram-credentials/>` (XEP-0227 §4.3); `None` for a mechanism this
/// model does not know.
fn scram_credentials(element: &Element) -> Result<Option<ScramEntry>, Invalid> {
    let mechanism = element
        .attr("mechanism")
        .ok_or_else(|| invalid("<scram-credentials/> without a 'mechanism' attribute", None))?;
    let Some(hash) = ScramHash::from_mechanism(mechanism) else {
        return Ok(None);
    };
    // "The element MUST contain a single occurrence of each of the following
    // child elements".
    let field = |name: &str| -> Result<String, Invalid> {
        let mut found = element.children().filter(|child| child.is(name, ns::PIE_SCRAM));
        let first = found.next().ok_or_else(|| invalid(format!("{mechanism} credentials lack <{name}/>"), None))?;
        if found.next().is_some() {
            return Err(invalid(format!("{mechanism} credentials have more than one <{name}/>"), None));
        }
        Ok(first.text())
    };
    let iterations = iteration_count(&field("iter-count")?, mechanism)?;
    let (salt_text, server_text, stored_text) = (field("salt")?, field("server-key")?, field("stored-key")?);
    let (salt, server_key, stored_key) =
        match (double_base64_key(&server_text, hash), double_base64_key(&stored_text, hash)) {
            // COMPAT: ejabberd (checked with 24.12) keeps SCRAM salt and keys
            // as base64 text and its XEP-0227 export base64-encodes that text
            // once more: each field is base64 of base64. The key lengths tell
            // the two apart (base64 text of a key is never as long as the key).
            (Some(server_key), Some(stored_key)) => {
                let once = decode_base64(&salt_text, &format!("{mechanism} salt"))?;
                let salt =
                    std::str::from_utf8(&once).ok().and_then(|text| decode_base64(text, "").ok()).ok_or_else(|| {
                        invalid(
                            format!("{mechanism} salt is not base64 of base64 like its keys"),
                            Some(salt_text.trim()),
                        )
                    })?;
                (salt, server_key, stored_key)
            }
            _ => (
                decode_base64(&salt_text, &format!("{mechanism} salt"))?,
                decode_key(&server_text, hash, "server key")?,
                decode_key(&stored_text, hash, "stored key")?,
            ),
        };
    if salt.is_empty() {
        return Err(invalid(format!("{mechanism} salt is empty"), None));
    }
    Ok(Some(ScramEntry { mechanism_hash: hash, iterations, salt, stored_key, server_key }))
}

fn iteration_count(text: &str, what: &str) -> Result<u32, Invalid> {
    let trimmed = text.trim();
    match trimmed.parse::<u32>() {
        Ok(count) if count > 0 && trimmed.bytes().all(|b| b.is_ascii_digit()) => Ok(count),
        _ => Err(invalid(format!("{what} iteration count '{trimmed}' is not a positive integer"), Some(trimmed))),
    }
}

fn decode_base64(text: &str, what: &str) -> Result<Vec<u8>, Invalid> {
    let compact: String = text.chars().filter(|c| !c.is_ascii_whitespace()).collect();
    BASE64
        .decode(compact.as_bytes())
        .map_err(|error| invalid(format!("{what} is not base64: {error}"), Some(text.trim())))
}

/// The key in `text` when `text` is base64 of the base64 of a key of
/// `hash`'s length (ejabberd's export), `None` otherwise.
fn double_base64_key(text: &str, hash: ScramHash) -> Option<Vec<u8>> {
    let once = decode_base64(text, "").ok()?;
    if once.len() == hash.output_len() {
        return None;
    }
    let key = decode_base64(std::str::from_utf8(&once).ok()?, "").ok()?;
    (key.len() == hash.output_len()).then_some(key)
}

fn decode_key(text: &str, hash: ScramHash, what: &str) -> Result<Vec<u8>, Invalid> {
    let mechanism = hash.mechanism();
    let key = decode_base64(text, &format!("{mechanism} {what}"))?;
    if key.len() != hash.output_len() {
        return Err(invalid(
            format!("{mechanism} {what} is {} bytes long, expected {}", key.len(), hash.output_len()),
            Some(text.trim()),
        ));
    }
    Ok(key)
}

/// COMPAT: ejabberd 15.04 to 21.10 exported SCRAM credentials in the
/// `password` attribute as `scram:StoredKey,ServerKey,Salt,IterationCount`
/// (base64 fields, SCRAM-SHA-1), and from 20.12 as
/// `scram:sha256,…` / `scram:sha512,…` for the other hashes
/// (`format_scram_password/1` in `src/ejabberd_piefxis.erl`, commits
/// eb52c118d and 1dc0ecd1e; replaced by the XEP-0227 1.1 form in 21.12,
/// commit af4b49f72). Its importer still reads this form.
fn ejabberd_scram(data: &str) -> Result<ScramEntry, Invalid> {
    let fields: Vec<&str> = data.split(',').collect();
    let (hash, fields) = match fields.as_slice() {
        [stored, server, salt, count] => (ScramHash::Sha1, [*stored, *server, *salt, *count]),
        ["sha256", stored, server, salt, count] => (ScramHash::Sha256, [*stored, *server, *salt, *count]),
        ["sha512", stored, server, salt, count] => (ScramHash::Sha512, [*stored, *server, *salt, *count]),
        _ => return Err(invalid("the 'password' attribute holds malformed ejabberd 'scram:' data", None)),
    };
    let [stored, server, salt, count] = fields;
    let mechanism = hash.mechanism();
    let salt = decode_base64(salt, &format!("{mechanism} salt"))?;
    if salt.is_empty() {
        return Err(invalid(format!("{mechanism} salt is empty"), None));
    }
    Ok(ScramEntry {
        mechanism_hash: hash,
        iterations: iteration_count(count, mechanism)?,
        salt,
        stored_key: decode_key(stored, hash, "stored key")?,
        server_key: decode_key(server, hash, "server key")?,
    })
}

/// COMPAT: Prosody up to 0.11 kept the SCRAM-SHA-1 credentials of
/// `mod_auth_internal_hashed` as attributes of `<user/>` in its own
/// namespace: `stored_key` and `server_key` in hex, `salt` as raw text,
/// `iteration_count` (`plugins/mod_storage_xep0227.lua`, `extended`, before
/// Prosody 0.12 added `<scram-credentials/>`).
fn prosody_scram(attrs: &[UserAttr]) -> Result<Option<ScramEntry>, Invalid> {
    let get = |name: &str| {
        attrs
            .iter()
            .find(|attr| attr.ns.as_deref() == Some(ns::PROSODY_EXTENDED) && attr.local == name)
            .map(|attr| attr.value.as_str())
    };
    let (Some(stored), Some(server), Some(salt), Some(count)) =
        (get("stored_key"), get("server_key"), get("salt"), get("iteration_count"))
    else {
        return Ok(None);
    };
    let hash = ScramHash::Sha1;
    let hex_key = |text: &str, what: &str| -> Result<Vec<u8>, Invalid> {
        let key = decode_hex(text).ok_or_else(|| invalid(format!("Prosody {what} is not hex"), Some(text)))?;
        if key.len() != hash.output_len() {
            return Err(invalid(format!("Prosody {what} is {} bytes long, expected 20", key.len()), Some(text)));
        }
        Ok(key)
    };
    if salt.is_empty() {
        return Err(invalid("Prosody salt is empty", None));
    }
    Ok(Some(ScramEntry {
        mechanism_hash: hash,
        iterations: iteration_count(count, "Prosody")?,
        salt: salt.as_bytes().to_vec(),
        stored_key: hex_key(stored, "stored_key")?,
        server_key: hex_key(server, "server_key")?,
    }))
}

fn decode_hex(text: &str) -> Option<Vec<u8>> {
    let digits = text.as_bytes();
    if !digits.len().is_multiple_of(2) {
        return None;
    }
    digits
        .chunks(2)
        .map(|pair| {
            let high = char::from(*pair.first()?).to_digit(16)?;
            let low = char::from(*pair.get(1)?).to_digit(16)?;
            u8::try_from(high * 16 + low).ok()
        })
        .collect()
}

/// `<query xmlns='jabber:iq:roster'/>` (XEP-0227 §4.4, RFC 6121 §2.1.2).
fn roster(query: &Element, entries: &mut Vec<RosterEntry>, seen: &mut HashSet<BareJid>) -> Result<(), Invalid> {
    for item in query.children().filter(|child| child.is("item", ns::ROSTER)) {
        let text = item.attr("jid").ok_or_else(|| invalid("roster item without a 'jid' attribute", None))?;
        let jid: BareJid = text
            .parse()
            .map_err(|error| invalid(format!("roster item JID '{text}' is invalid: {error}"), Some(text)))?;
        let subscription = match item.attr("subscription") {
            None => Subscription::None,
            Some(value) => Subscription::parse(value).ok_or_else(|| {
                invalid(format!("roster item '{jid}' has an unknown subscription '{value}'"), Some(value))
            })?,
        };
        let ask = match item.attr("ask") {
            None => false,
            Some("subscribe") => true,
            Some(value) => {
                return Err(invalid(format!("roster item '{jid}' has an unknown ask value '{value}'"), Some(value)));
            }
        };
        let approved = match item.attr("approved") {
            None | Some("false" | "0") => false,
            Some("true" | "1") => true,
            Some(value) => {
                return Err(invalid(
                    format!("roster item '{jid}' has an invalid approved value '{value}'"),
                    Some(value),
                ));
            }
        };
        let mut groups: Vec<String> = Vec::new();
        for group in item.children().filter(|child| child.is("group", ns::ROSTER)) {
            let name = group.text();
            // RFC 6121 §2.1.2.4 forbids empty group names; some servers
            // write them anyway, and they carry no information.
            if !name.is_empty() && !groups.contains(&name) {
                groups.push(name);
            }
        }
        if !seen.insert(jid.clone()) {
            return Err(invalid(format!("two roster items for '{jid}'"), Some(text)));
        }
        let name = item.attr("name").filter(|name| !name.is_empty()).map(str::to_owned);
        entries.push(RosterEntry { jid, name, subscription, ask, approved, groups });
    }
    Ok(())
}

/// `<presence type='subscribe'/>` (XEP-0227 §4.9); `None` for other
/// presence types.
fn pending(presence: &Element) -> Result<Option<PendingSubscription>, Invalid> {
    if presence.attr("type") != Some("subscribe") {
        return Ok(None);
    }
    let text = presence.attr("from").ok_or_else(|| invalid("subscription request without a 'from' attribute", None))?;
    let from: Jid = text
        .parse()
        .map_err(|error| invalid(format!("subscription request from '{text}' is invalid: {error}"), Some(text)))?;
    let status = presence.get_child("status", presence.ns()).map(Element::text);
    let mut stanza = Vec::new();
    in_client_namespace(presence).write_to(&mut stanza, ns::CLIENT);
    Ok(Some(PendingSubscription { from: from.to_bare(), status, stanza }))
}

/// `<offline-messages/>` (XEP-0227 §4.5).
fn offline(container: &Element, host: &DomainJid, user: &mut UserData) -> Result<(), Invalid> {
    for message in container.children() {
        // COMPAT: ejabberd's importer decodes messages in the namespace of
        // <offline-messages/> itself, so accept ones that inherit it.
        if message.name() != "message" || !(message.ns() == ns::CLIENT || ns::is_pie(message.ns())) {
            user.unsupported.push(message.clone());
            continue;
        }
        let (stamp, message) = take_server_delay(message, host)?;
        let mut stanza = Vec::new();
        in_client_namespace(&message).write_to(&mut stanza, ns::CLIENT);
        user.offline.push(OfflineEntry { stamp, stanza });
    }
    Ok(())
}

/// Finds the `<delay/>` the exporting server added (the one from the
/// host), removes it and returns its stamp. Without one, the stamp of the
/// first delay is used and the message is kept whole.
fn take_server_delay(message: &Element, host: &DomainJid) -> Result<(Option<Timestamp>, Element), Invalid> {
    // COMPAT: XEP-0091 <x xmlns='jabber:x:delay'/> from servers of its era.
    let is_delay = |element: &Element| element.is("delay", ns::DELAY) || element.is("x", ns::LEGACY_DELAY);
    let from_host = |element: &Element| {
        element
            .attr("from")
            .and_then(|from| from.parse::<Jid>().ok())
            .is_some_and(|from| from.node().is_none() && from.resource().is_none() && from.domain() == host.as_str())
    };
    let server_delay = message.nodes().iter().position(|node| match node {
        Node::Element(element) => is_delay(element) && from_host(element),
        Node::Text(_) => false,
    });
    let Some(index) = server_delay else {
        let stamp = message
            .children()
            .filter(|child| is_delay(child))
            .find_map(|delay| delay.attr("stamp").and_then(Timestamp::parse));
        return Ok((stamp, message.clone()));
    };
    let stamp =
        match message.nodes().get(index) {
            Some(Node::Element(delay)) => {
                let text = delay.attr("stamp").unwrap_or_default();
                Some(Timestamp::parse(text).ok_or_else(|| {
                    invalid(format!("offline message has an invalid delay stamp '{text}'"), Some(text))
                })?)
            }
            _ => None,
        };
    let mut stripped = Element::new(message.name(), message.ns());
    for (name, value) in message.attrs() {
        stripped.set_attr(name.as_str(), value.as_str());
    }
    for (position, node) in message.nodes().iter().enumerate() {
        if position != index {
            stripped.push_node(node.clone());
        }
    }
    Ok((stamp, stripped))
}

/// A stanza moved into `jabber:client` if it (COMPAT) inherited the
/// PIEFXIS namespace, together with the descendants that inherited it.
fn in_client_namespace(stanza: &Element) -> Element {
    if stanza.ns() == ns::CLIENT { stanza.clone() } else { renamespace(stanza, stanza.ns(), ns::CLIENT) }
}

fn renamespace(element: &Element, from: &str, to: &str) -> Element {
    let ns = if element.ns() == from { to } else { element.ns() };
    let mut copy = Element::new(element.name(), ns);
    for (name, value) in element.attrs() {
        copy.set_attr(name.as_str(), value.as_str());
    }
    for node in element.nodes() {
        match node {
            Node::Element(child) => copy.push_child(renamespace(child, from, to)),
            Node::Text(text) => copy.push_text(text),
        }
    }
    copy
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use base64::engine::general_purpose;

    use super::*;

    fn user(xml: &str) -> Result<UserData, Invalid> {
        interpreted(xml, None).map(|(user, _)| user)
    }

    fn interpreted(xml: &str, check: Option<NodeConfigCheck>) -> Result<(UserData, Vec<Invalid>), Invalid> {
        let element = Element::parse_standalone(xml.as_bytes(), ns::PIE).unwrap();
        interpret(&UserAttr::of_element(&element), element.children(), &"example.com".parse().unwrap(), check)
    }

    #[test]
    fn pep_nodes_items_and_bad_records() {
        let xml = "<user name='a'>\
            <pubsub xmlns='http://jabber.org/protocol/pubsub'><items node='only-items'><item id='1'/></items>\
            <items node='n'><item id='old' publisher='a@example.com'><p xmlns='urn:p'>1</p></item><item><p/></item>\
            <item id='new'/><item id='old'/></items><items node='bad'><item id='x'/></items></pubsub>\
            <pubsub xmlns='http://jabber.org/protocol/pubsub#owner'>\
            <configure node='n'><x xmlns='jabber:x:data' type='submit'><field var='pubsub#access_model'>\
            <value>open</value></field></x></configure>\
            <affiliations node='n'><affiliation jid='b@x' affiliation='member'/></affiliations>\
            <configure node='empty'/><configure node='n'/><configure/>\
            <configure node='bad'><x xmlns='jabber:x:data' type='submit'><field var='pubsub#access_model'>\
            <value>bogus</value></field></x></configure></pubsub></user>";
        let check: NodeConfigCheck = |form| match form.value("pubsub#access_model") {
            Some("bogus") => Err("invalid value \"bogus\" for pubsub#access_model".to_owned()),
            _ => Ok(()),
        };
        let (data, skipped) = interpreted(xml, Some(check)).unwrap();
        let names: Vec<&str> = data.pep.iter().map(|node| node.name.as_str()).collect();
        assert_eq!(names, ["only-items", "n", "empty"]);
        let n = &data.pep[1];
        assert_eq!(n.config.as_ref().and_then(|form| form.value("pubsub#access_model")), Some("open"));
        let ids: Vec<&str> = n.items.iter().map(|item| item.id.as_str()).collect();
        assert_eq!(ids, ["old", "new"]);
        assert_eq!(n.items[0].publisher.as_deref(), Some("a@example.com"));
        assert!(n.items[0].payload.as_ref().unwrap().is("p", "urn:p"));
        assert_eq!(n.items[1].payload, None);
        assert_eq!(data.pep[0].config, None);
        let messages: Vec<&str> = skipped.iter().map(|problem| problem.message.as_str()).collect();
        assert_eq!(
            messages,
            [
                "PEP node 'n': an <item/> without an 'id'",
                "PEP node 'n': a second item 'old'",
                "PEP node 'n' has a second <configure/>",
                "PEP <configure/> without a 'node' attribute",
                "PEP node 'bad': invalid value \"bogus\" for pubsub#access_model",
            ]
        );
        // Affiliations are kept aside, unread.
        assert!(data.unsupported[0].is("pubsub", "http://jabber.org/protocol/pubsub#owner"));
        assert_eq!(data.unsupported[0].children().count(), 1);
    }

    #[test]
    fn ejabberd_legacy_scram() {
        let key20 = general_purpose::STANDARD.encode([7u8; 20]);
        let key32 = general_purpose::STANDARD.encode([9u8; 32]);
        let sha1 = user(&format!("<user name='a' password='scram:{key20},{key20},c2FsdA==,4096'/>")).unwrap();
        let Some(Password::Scram(entries)) = sha1.password else { panic!("no scram") };
        assert_eq!(entries[0].mechanism_hash, ScramHash::Sha1);
        assert_eq!(entries[0].iterations, 4096);
        assert_eq!(entries[0].salt, b"salt");
        let sha256 = user(&format!("<user name='a' password='scram:sha256,{key32},{key32},c2FsdA,4096'/>")).unwrap();
        let Some(Password::Scram(entries)) = sha256.password else { panic!("no scram") };
        assert_eq!(entries[0].mechanism_hash, ScramHash::Sha256);
        let wrong = user(&format!("<user name='a' password='scram:sha256,{key20},{key20},c2FsdA,4096'/>"));
        assert!(wrong.unwrap_err().message.contains("20 bytes long, expected 32"));
        assert!(user("<user name='a' password='scram:x,y'/>").is_err());
        // COMPAT: an empty password attribute is no password.
        assert_eq!(user("<user name='a' password=''/>").unwrap().password, None);
    }

    #[test]
    fn ejabberd_double_base64_scram_credentials() {
        // As ejabberd 24.12's export_piefxis writes them.
        let b64 = |bytes: &[u8]| general_purpose::STANDARD.encode(bytes);
        let twice = |bytes: &[u8]| b64(b64(bytes).as_bytes());
        let scram = |salt: &str, key: &str| {
            format!(
                "<user name='a'><scram-credentials xmlns='urn:xmpp:pie:0#scram' mechanism='SCRAM-SHA-256'>\
                 <iter-count>4096</iter-count><salt>{salt}</salt><server-key>{key}</server-key>\
                 <stored-key>{key}</stored-key></scram-credentials></user>"
            )
        };
        let parsed = user(&scram(&twice(b"salt"), &twice(&[9u8; 32]))).unwrap();
        let Some(Password::Scram(entries)) = parsed.password else { panic!("no scram") };
        assert_eq!(entries[0].salt, b"salt");
        assert_eq!(entries[0].stored_key, [9u8; 32]);
        assert_eq!(entries[0].server_key, [9u8; 32]);
        // XEP-0227's own single encoding is unchanged.
        let plain = user(&scram(&b64(b"salt"), &b64(&[9u8; 32]))).unwrap();
        let Some(Password::Scram(entries)) = plain.password else { panic!("no scram") };
        assert_eq!(entries[0].salt, b"salt");
        assert_eq!(entries[0].stored_key, [9u8; 32]);
        // Double-encoded keys with a salt that is not.
        let odd = user(&scram("////", &twice(&[9u8; 32])));
        assert!(odd.unwrap_err().message.contains("not base64 of base64"));
    }

    #[test]
    fn prosody_extended_attributes() {
        let hex = "0102030405060708090a0b0c0d0e0f1011121314";
        let xml = format!(
            "<user name='a' xmlns:ns1='{ext}' ns1:stored_key='{hex}' xmlns:ns2='{ext}' ns2:server_key='{hex}' \
             xmlns:ns3='{ext}' ns3:salt='6f0a-uuid' xmlns:ns4='{ext}' ns4:iteration_count='4096' \
             xmlns:ns5='{ext}' ns5:created='1600000000'/>",
            ext = ns::PROSODY_EXTENDED
        );
        let Some(Password::Scram(entries)) = user(&xml).unwrap().password else { panic!("no scram") };
        assert_eq!(entries[0].salt, b"6f0a-uuid");
        assert_eq!(entries[0].stored_key, (1..=20).collect::<Vec<u8>>());
        let bad = xml.replace("0102", "zz02");
        assert!(user(&bad).unwrap_err().message.contains("not hex"));
    }

    #[test]
    fn roster_values() {
        let bad_sub = user(
            "<user name='a'><query xmlns='jabber:iq:roster'><item jid='b@x' subscription='remove'/></query></user>",
        );
        assert_eq!(bad_sub.unwrap_err().hint.as_deref(), Some("remove"));
        let dup =
            user("<user name='a'><query xmlns='jabber:iq:roster'><item jid='B@x'/><item jid='b@x'/></query></user>");
        assert!(dup.unwrap_err().message.contains("two roster items"));
        let ok = user(
            "<user name='a'><query xmlns='jabber:iq:roster'><item jid='b@x' name='' approved='1' ask='subscribe'>\
             <group>g</group><group>g</group><group/></item></query></user>",
        )
        .unwrap();
        assert_eq!(ok.roster[0].groups, ["g"]);
        assert_eq!(ok.roster[0].name, None);
        assert!(ok.roster[0].approved && ok.roster[0].ask);
    }

    #[test]
    fn offline_delay_selection() {
        let xml = "<user name='a'><offline-messages>\
            <message xmlns='jabber:client' from='b@x/r' to='a@example.com'><body>1</body>\
            <delay xmlns='urn:xmpp:delay' from='x' stamp='2001-01-01T00:00:00Z'/>\
            <delay xmlns='urn:xmpp:delay' from='example.com' stamp='2002-02-02T00:00:00Z'>Offline</delay></message>\
            <message from='b@x/r'><body>2</body><x xmlns='jabber:x:delay' stamp='20030303T00:00:00'/></message>\
            </offline-messages></user>";
        let data = user(xml).unwrap();
        assert_eq!(data.offline[0].stamp.map(|s| s.to_string()).as_deref(), Some("2002-02-02T00:00:00Z"));
        let first = String::from_utf8(data.offline[0].stanza.clone()).unwrap();
        assert!(first.starts_with("<message from='b@x/r'"), "{first}");
        assert!(first.contains("from='x'") && !first.contains("example.com' stamp"), "{first}");
        // COMPAT: a message inheriting the PIE namespace moves to jabber:client.
        assert_eq!(data.offline[1].stamp.map(|s| s.to_string()).as_deref(), Some("2003-03-03T00:00:00Z"));
        let second = String::from_utf8(data.offline[1].stanza.clone()).unwrap();
        assert_eq!(
            second,
            "<message from='b@x/r'><body>2</body><x xmlns='jabber:x:delay' stamp='20030303T00:00:00'/></message>"
        );
    }
}
