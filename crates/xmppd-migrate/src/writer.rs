//! The streaming XEP-0227 writer.

use std::io::Write;

use xmppd_jid::{DomainJid, nodeprep};
use xmppd_xml::{Element, Limits, RawElement, escape_attr_into, escape_text_into, write_end_tag, write_start_tag};

use crate::error::Error;
use crate::model::{Export, Password, PendingSubscription, PepNode, RosterEntry, ScramEntry, UserData};
use crate::ns;

/// What the writer has written so far.
#[derive(Debug)]
enum State {
    Fresh,
    Open,
    InHost(DomainJid),
}

/// Writes a XEP-0227 document (XEP-0227 §4) one user at a time.
///
/// The output is `<server-data xmlns='urn:xmpp:pie:0'>` with one line per
/// `<user/>`; SCRAM credentials are written in the §4.3 form, plaintext
/// passwords in the `password` attribute (§4.2). Each user is serialised
/// into a buffer and written with one `write_all`; wrap slow outputs in a
/// [`BufWriter`](std::io::BufWriter) all the same.
///
/// ```
/// # use xmppd_migrate::{UserData, Writer};
/// let mut writer = Writer::new(Vec::new());
/// writer.begin_host(&"example.com".parse().unwrap())?;
/// writer.write_user(&UserData { username: "juliet".into(), ..UserData::default() })?;
/// writer.end_host()?;
/// let out = writer.finish()?;
/// assert!(String::from_utf8_lossy(&out).contains("<host jid='example.com'>\n<user name='juliet'/>\n</host>"));
/// # Ok::<(), xmppd_migrate::Error>(())
/// ```
#[derive(Debug)]
pub struct Writer<W: Write> {
    out: W,
    state: State,
    buf: Vec<u8>,
}

impl<W: Write> Writer<W> {
    /// A writer to `out`. Nothing is written until the first call.
    pub fn new(out: W) -> Writer<W> {
        Writer { out, state: State::Fresh, buf: Vec::new() }
    }

    /// Opens `<host jid='…'>` (XEP-0227 §4.1).
    pub fn begin_host(&mut self, domain: &DomainJid) -> Result<(), Error> {
        if matches!(self.state, State::InHost(_)) {
            return Err(Error::Misuse("begin_host() while a host is open"));
        }
        self.open()?;
        self.buf.clear();
        write_start_tag(&mut self.buf, "host", &[("jid", domain.as_str())], false);
        self.buf.push(b'\n');
        self.flush_buf()?;
        self.state = State::InHost(domain.clone());
        Ok(())
    }

    /// Writes one `<user/>` (XEP-0227 §4.2) of the open host.
    pub fn write_user(&mut self, user: &UserData) -> Result<(), Error> {
        let State::InHost(host) = &self.state else {
            return Err(Error::Misuse("write_user() outside a host"));
        };
        self.buf.clear();
        serialize_user(user, host, &mut self.buf)?;
        self.flush_buf()
    }

    /// Closes the open `<host/>`.
    pub fn end_host(&mut self) -> Result<(), Error> {
        if !matches!(self.state, State::InHost(_)) {
            return Err(Error::Misuse("end_host() without an open host"));
        }
        self.buf.clear();
        write_end_tag(&mut self.buf, "host");
        self.buf.push(b'\n');
        self.flush_buf()?;
        self.state = State::Open;
        Ok(())
    }

    /// Closes `<server-data/>`, flushes and returns the output.
    pub fn finish(mut self) -> Result<W, Error> {
        if matches!(self.state, State::InHost(_)) {
            return Err(Error::Misuse("finish() while a host is open"));
        }
        self.open()?;
        self.buf.clear();
        write_end_tag(&mut self.buf, "server-data");
        self.buf.push(b'\n');
        self.flush_buf()?;
        self.out.flush().map_err(Error::Write)?;
        Ok(self.out)
    }

    fn open(&mut self) -> Result<(), Error> {
        if matches!(self.state, State::Fresh) {
            self.buf.clear();
            self.buf.extend_from_slice(b"<?xml version='1.0' encoding='UTF-8'?>\n");
            write_start_tag(&mut self.buf, "server-data", &[("xmlns", ns::PIE)], false);
            self.buf.push(b'\n');
            self.flush_buf()?;
            self.state = State::Open;
        }
        Ok(())
    }

    fn flush_buf(&mut self) -> Result<(), Error> {
        self.out.write_all(&self.buf).map_err(Error::Write)
    }
}

impl Export {
    /// Writes the whole export as one XEP-0227 document.
    pub fn write<W: Write>(&self, out: W) -> Result<W, Error> {
        let mut writer = Writer::new(out);
        for host in &self.hosts {
            writer.begin_host(&host.domain)?;
            for user in &host.users {
                writer.write_user(user)?;
            }
            writer.end_host()?;
        }
        writer.finish()
    }
}

fn serialize_user(user: &UserData, host: &DomainJid, out: &mut Vec<u8>) -> Result<(), Error> {
    let bad = |message: String| Error::InvalidData { user: user.username.clone(), message };
    match nodeprep(&user.username) {
        Ok(prepared) if prepared == user.username => {}
        _ => return Err(bad("the username is not a normalized localpart".to_owned())),
    }
    let mut attrs = vec![("name", user.username.as_str())];
    if let Some(Password::Plain(password)) = &user.password {
        attrs.push(("password", password.as_str()));
    }
    let empty = !matches!(user.password, Some(Password::Scram(_)))
        && user.roster.is_empty()
        && user.pending_in.is_empty()
        && user.vcard.is_none()
        && user.private.is_empty()
        && user.offline.is_empty()
        && user.pep.is_empty()
        && user.unsupported.is_empty();
    write_start_tag(out, "user", &attrs, empty);
    if empty {
        out.push(b'\n');
        return Ok(());
    }
    if let Some(Password::Scram(entries)) = &user.password {
        for entry in entries {
            scram(entry, out);
        }
    }
    if !user.roster.is_empty() {
        write_start_tag(out, "query", &[("xmlns", ns::ROSTER)], false);
        for item in &user.roster {
            roster_item(item, out);
        }
        write_end_tag(out, "query");
    }
    for request in &user.pending_in {
        pending(request, out).map_err(bad)?;
    }
    if let Some(vcard) = &user.vcard {
        vcard.write_to(out, ns::PIE);
    }
    if !user.private.is_empty() {
        write_start_tag(out, "query", &[("xmlns", ns::PRIVATE)], false);
        for item in &user.private {
            item.write_to(out, ns::PRIVATE);
        }
        write_end_tag(out, "query");
    }
    if !user.offline.is_empty() {
        write_start_tag(out, "offline-messages", &[], false);
        for entry in &user.offline {
            let mut message = stanza(&entry.stanza).map_err(|reason| bad(format!("offline message: {reason}")))?;
            if let Some(stamp) = entry.stamp {
                // XEP-0227 §4.5 example: the exporting server's XEP-0203 delay.
                message.push_child(
                    Element::builder("delay", ns::DELAY)
                        .attr("from", host.as_str())
                        .attr("stamp", stamp.to_string())
                        .text("Offline Storage")
                        .build(),
                );
            }
            message.write_to(out, ns::PIE);
        }
        write_end_tag(out, "offline-messages");
    }
    pep(&user.pep, out).map_err(bad)?;
    for element in &user.unsupported {
        element.write_to(out, ns::PIE);
    }
    write_end_tag(out, "user");
    out.push(b'\n');
    Ok(())
}

/// The PEP nodes (XEP-0227 §4.10): a `<configure/>` for every node
/// (§4.10.2: "Any node listed in this element MUST have a corresponding
/// configuration"), empty when the model has no form, then the `<items/>`
/// of the nodes that have items, oldest first (see [`PepNode::items`]).
fn pep(nodes: &[PepNode], out: &mut Vec<u8>) -> Result<(), String> {
    if nodes.is_empty() {
        return Ok(());
    }
    write_start_tag(out, "pubsub", &[("xmlns", ns::PUBSUB_OWNER)], false);
    for node in nodes {
        if node.name.is_empty() {
            return Err("a PEP node without a name".to_owned());
        }
        match &node.config {
            Some(form) => {
                write_start_tag(out, "configure", &[("node", node.name.as_str())], false);
                form.to_element().write_to(out, ns::PUBSUB_OWNER);
                write_end_tag(out, "configure");
            }
            None => write_start_tag(out, "configure", &[("node", node.name.as_str())], true),
        }
    }
    write_end_tag(out, "pubsub");
    if nodes.iter().all(|node| node.items.is_empty()) {
        return Ok(());
    }
    write_start_tag(out, "pubsub", &[("xmlns", ns::PUBSUB)], false);
    for node in nodes.iter().filter(|node| !node.items.is_empty()) {
        write_start_tag(out, "items", &[("node", node.name.as_str())], false);
        for item in &node.items {
            if item.id.is_empty() {
                return Err(format!("an item of PEP node '{}' without an id", node.name));
            }
            let mut attrs = vec![("id", item.id.as_str())];
            if let Some(publisher) = &item.publisher {
                attrs.push(("publisher", publisher.as_str()));
            }
            write_start_tag(out, "item", &attrs, item.payload.is_none());
            if let Some(payload) = &item.payload {
                payload.write_to(out, ns::PUBSUB);
                write_end_tag(out, "item");
            }
        }
        write_end_tag(out, "items");
    }
    write_end_tag(out, "pubsub");
    Ok(())
}

/// `<scram-credentials/>` (XEP-0227 §4.3).
fn scram(entry: &ScramEntry, out: &mut Vec<u8>) {
    use base64::Engine as _;
    let encode = |bytes: &[u8]| base64::engine::general_purpose::STANDARD.encode(bytes);
    write_start_tag(
        out,
        "scram-credentials",
        &[("xmlns", ns::PIE_SCRAM), ("mechanism", entry.mechanism_hash.mechanism())],
        false,
    );
    for (name, value) in [
        ("iter-count", entry.iterations.to_string()),
        ("salt", encode(&entry.salt)),
        ("server-key", encode(&entry.server_key)),
        ("stored-key", encode(&entry.stored_key)),
    ] {
        write_start_tag(out, name, &[], false);
        escape_text_into(&value, out);
        write_end_tag(out, name);
    }
    write_end_tag(out, "scram-credentials");
}

/// `<item/>` of the roster (RFC 6121 §2.1.2).
fn roster_item(item: &RosterEntry, out: &mut Vec<u8>) {
    let mut attrs = vec![("jid", item.jid.as_str())];
    if let Some(name) = &item.name {
        attrs.push(("name", name.as_str()));
    }
    attrs.push(("subscription", item.subscription.as_str()));
    if item.ask {
        attrs.push(("ask", "subscribe"));
    }
    if item.approved {
        attrs.push(("approved", "true"));
    }
    write_start_tag(out, "item", &attrs, item.groups.is_empty());
    if !item.groups.is_empty() {
        for group in &item.groups {
            out.extend_from_slice(b"<group>");
            escape_text_into(group, out);
            out.extend_from_slice(b"</group>");
        }
        write_end_tag(out, "item");
    }
}

/// `<presence type='subscribe'/>` (XEP-0227 §4.9).
fn pending(request: &PendingSubscription, out: &mut Vec<u8>) -> Result<(), String> {
    if !request.stanza.is_empty() {
        let presence = stanza(&request.stanza).map_err(|reason| format!("subscription request: {reason}"))?;
        presence.write_to(out, ns::PIE);
        return Ok(());
    }
    out.extend_from_slice(b"<presence xmlns='jabber:client' type='subscribe' from='");
    escape_attr_into(request.from.as_str(), out);
    match &request.status {
        Some(status) => {
            out.extend_from_slice(b"'><status>");
            escape_text_into(status, out);
            out.extend_from_slice(b"</status></presence>");
        }
        None => out.extend_from_slice(b"'/>"),
    }
    Ok(())
}

/// Parses stored stanza bytes (default namespace `jabber:client`).
fn stanza(bytes: &[u8]) -> Result<Element, String> {
    let limits = Limits {
        max_stanza_bytes: bytes.len().max(1),
        max_header_bytes: 0,
        max_depth: 1024,
        max_attributes: 1024,
        max_namespace_decls: 1024,
    };
    RawElement::from_fragment(bytes, ns::CLIENT, &limits)
        .and_then(|raw| raw.parse_element())
        .map_err(|error| format!("not one XML element: {error}"))
}
