//! vcard-temp (XEP-0054) from the PEP data of servers that keep profiles
//! as XEP-0292 vCard4 and avatars as XEP-0084 nodes — Prosody with
//! `mod_vcard_legacy` (its default since 0.11) stores no vcard-temp at all
//! and answers vcard-temp requests from these nodes. An import into a
//! server that stores vcard-temp must build it, or the users' profiles and
//! avatars would disappear for vcard-temp clients.
//!
//! The mapping follows XEP-0292 §4 (vCard4 in XML, RFC 6351) back to
//! XEP-0054's fields, as `mod_vcard_legacy` does: `fn`, `n`, `nickname`,
//! `bday`, `email`, `tel`, `url`, `note`, `title`, `role`, `org`, `adr` and
//! `impp` (xmpp: URIs); the photo is the image of the newest
//! `urn:xmpp:avatar:metadata` item (the `info` without `url`), read from
//! the `urn:xmpp:avatar:data` node.

use xmppd_xml::Element;

use crate::model::{PepNode, UserData};

/// XEP-0292: the vCard4 PEP node.
pub const NODE_VCARD4: &str = "urn:xmpp:vcard4";
/// RFC 6351: the vCard XML namespace.
const NS_VCARD4: &str = "urn:ietf:params:xml:ns:vcard-4.0";
/// XEP-0054.
const NS_VCARD_TEMP: &str = "vcard-temp";
/// XEP-0084 nodes (and payload namespaces).
const NODE_AVATAR_DATA: &str = "urn:xmpp:avatar:data";
const NODE_AVATAR_METADATA: &str = "urn:xmpp:avatar:metadata";

/// A vcard-temp `<vCard/>` built from the user's vCard4 and avatar PEP
/// nodes, when the user has no vcard-temp of its own and the nodes give
/// something to put in it.
#[must_use]
pub fn vcard_temp_from_pep(user: &UserData) -> Option<Element> {
    if user.vcard.is_some() {
        return None;
    }
    let node = |name: &str| user.pep.iter().find(|node| node.name == name);
    let mut vcard = Element::new("vCard", NS_VCARD_TEMP);
    if let Some(vcard4) = node(NODE_VCARD4).and_then(newest_payload).filter(|p| p.is("vcard", NS_VCARD4)) {
        convert_fields(vcard4, &mut vcard);
    }
    if let Some(photo) = avatar_photo(node(NODE_AVATAR_METADATA), node(NODE_AVATAR_DATA)) {
        vcard.push_child(photo);
    }
    let filled = vcard.children().next().is_some();
    filled.then_some(vcard)
}

/// The payload of a node's newest item (items are kept oldest first).
fn newest_payload(node: &PepNode) -> Option<&Element> {
    node.items.last()?.payload.as_ref()
}

fn temp(name: &str, text: &str) -> Element {
    Element::builder(name, NS_VCARD_TEMP).text(text).build()
}

/// The text of `<property><text|uri|date|…>value</…></property>`.
fn value_of(property: &Element) -> Option<String> {
    property
        .children()
        .filter(|child| child.ns() == NS_VCARD4 && child.name() != "parameters")
        .map(Element::text)
        .find(|text| !text.trim().is_empty())
}

/// The `TYPE` parameters of a property (`<parameters><type><text>…`).
fn types_of(property: &Element) -> Vec<String> {
    property
        .get_child("parameters", NS_VCARD4)
        .and_then(|parameters| parameters.get_child("type", NS_VCARD4))
        .map(|kind| kind.children().map(|t| t.text().to_ascii_uppercase()).collect())
        .unwrap_or_default()
}

/// XEP-0292 §4 field by field.
fn convert_fields(vcard4: &Element, vcard: &mut Element) {
    for property in vcard4.children().filter(|child| child.ns() == NS_VCARD4) {
        let value = value_of(property);
        match (property.name(), value.as_deref()) {
            ("fn", Some(text)) => vcard.push_child(temp("FN", text)),
            ("nickname", Some(text)) => vcard.push_child(temp("NICKNAME", text)),
            ("bday", Some(text)) => vcard.push_child(temp("BDAY", text)),
            ("note", Some(text)) => vcard.push_child(temp("DESC", text)),
            ("title", Some(text)) => vcard.push_child(temp("TITLE", text)),
            ("role", Some(text)) => vcard.push_child(temp("ROLE", text)),
            ("url", Some(text)) => vcard.push_child(temp("URL", text)),
            ("org", Some(text)) => {
                vcard.push_child(Element::builder("ORG", NS_VCARD_TEMP).append(temp("ORGNAME", text)).build());
            }
            ("impp", Some(uri)) => {
                if let Some(jid) = uri.strip_prefix("xmpp:") {
                    vcard.push_child(temp("JABBERID", jid));
                }
            }
            ("email", Some(address)) => {
                let mut email =
                    Element::builder("EMAIL", NS_VCARD_TEMP).append(Element::new("INTERNET", NS_VCARD_TEMP));
                for kind in types_of(property).iter().filter(|k| matches!(k.as_str(), "HOME" | "WORK")) {
                    email = email.append(Element::new(kind.as_str(), NS_VCARD_TEMP));
                }
                vcard.push_child(email.append(temp("USERID", address)).build());
            }
            ("tel", Some(number)) => {
                let number = number.strip_prefix("tel:").unwrap_or(number);
                let mut tel = Element::builder("TEL", NS_VCARD_TEMP);
                for kind in types_of(property) {
                    let mapped = match kind.as_str() {
                        "CELL" | "VOICE" | "FAX" | "PAGER" | "VIDEO" | "TEXT" | "HOME" | "WORK" => kind.as_str(),
                        _ => continue,
                    };
                    let mapped = if mapped == "TEXT" { "MSG" } else { mapped };
                    tel = tel.append(Element::new(mapped, NS_VCARD_TEMP));
                }
                vcard.push_child(tel.append(temp("NUMBER", number)).build());
            }
            ("n", _) => {
                let part = |name: &str| property.get_child(name, NS_VCARD4).map(Element::text).unwrap_or_default();
                let mut n = Element::builder("N", NS_VCARD_TEMP);
                for (from, to) in [
                    ("surname", "FAMILY"),
                    ("given", "GIVEN"),
                    ("additional", "MIDDLE"),
                    ("prefix", "PREFIX"),
                    ("suffix", "SUFFIX"),
                ] {
                    let text = part(from);
                    if !text.is_empty() {
                        n = n.append(temp(to, &text));
                    }
                }
                let n = n.build();
                if n.children().next().is_some() {
                    vcard.push_child(n);
                }
            }
            ("adr", _) => {
                let mut adr = Element::builder("ADR", NS_VCARD_TEMP);
                for kind in types_of(property).iter().filter(|k| matches!(k.as_str(), "HOME" | "WORK")) {
                    adr = adr.append(Element::new(kind.as_str(), NS_VCARD_TEMP));
                }
                let mut any = false;
                for (from, to) in [
                    ("pobox", "POBOX"),
                    ("ext", "EXTADD"),
                    ("street", "STREET"),
                    ("locality", "LOCALITY"),
                    ("region", "REGION"),
                    ("code", "PCODE"),
                    ("country", "CTRY"),
                ] {
                    let text = property.get_child(from, NS_VCARD4).map(Element::text).unwrap_or_default();
                    if !text.is_empty() {
                        adr = adr.append(temp(to, &text));
                        any = true;
                    }
                }
                if any {
                    vcard.push_child(adr.build());
                }
            }
            _ => {}
        }
    }
}

/// `<PHOTO>` from the newest metadata item's inline image (XEP-0084 §4.2:
/// the `info` without `url` points at the data node's item of that id).
fn avatar_photo(metadata: Option<&PepNode>, data: Option<&PepNode>) -> Option<Element> {
    let metadata = newest_payload(metadata?)?;
    let info = metadata.children().find(|info| info.name() == "info" && info.attr("url").is_none_or(str::is_empty))?;
    let id = info.attr("id")?;
    let item = data?.items.iter().find(|item| item.id == id)?;
    let base64: String = item.payload.as_ref()?.text().chars().filter(|c| !c.is_ascii_whitespace()).collect();
    if base64.is_empty() {
        return None;
    }
    let mime = info.attr("type").unwrap_or("image/png");
    Some(Element::builder("PHOTO", NS_VCARD_TEMP).append(temp("TYPE", mime)).append(temp("BINVAL", &base64)).build())
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::model::PepItem;

    fn node(name: &str, items: &[(&str, &str)]) -> PepNode {
        PepNode {
            name: name.to_owned(),
            config: None,
            items: items
                .iter()
                .map(|(id, xml)| PepItem {
                    id: (*id).to_owned(),
                    publisher: None,
                    published: None,
                    payload: Element::parse_standalone(xml.as_bytes(), "jabber:client").ok(),
                })
                .collect(),
        }
    }

    #[test]
    fn prosody_vcard_legacy_profile_becomes_vcard_temp() {
        let vcard4 = "<vcard xmlns='urn:ietf:params:xml:ns:vcard-4.0'>\
            <fn><text>Juliet Capulet</text></fn>\
            <n><surname>Capulet</surname><given>Juliet</given><additional/></n>\
            <nickname><text>Jul</text></nickname>\
            <email><parameters><type><text>work</text></type></parameters><text>juliet@example.org</text></email>\
            <tel><parameters><type><text>cell</text></type></parameters><uri>tel:+1-555-0100</uri></tel>\
            <impp><uri>xmpp:juliet@capulet.lit</uri></impp>\
            <note><text>Wherefore</text></note></vcard>";
        let user = UserData {
            username: "juliet".into(),
            pep: vec![
                node(NODE_VCARD4, &[("current", vcard4)]),
                node(NODE_AVATAR_DATA, &[("abc", "<data xmlns='urn:xmpp:avatar:data'>YWJj</data>")]),
                node(
                    NODE_AVATAR_METADATA,
                    &[(
                        "abc",
                        "<metadata xmlns='urn:xmpp:avatar:metadata'><info id='abc' type='image/jpeg' bytes='3'/></metadata>",
                    )],
                ),
            ],
            ..UserData::default()
        };
        let vcard = vcard_temp_from_pep(&user).map(|v| String::from_utf8_lossy(&v.to_bytes()).into_owned());
        let vcard = vcard.unwrap_or_default();
        for expected in [
            "<FN>Juliet Capulet</FN>",
            "<N><FAMILY>Capulet</FAMILY><GIVEN>Juliet</GIVEN></N>",
            "<NICKNAME>Jul</NICKNAME>",
            "<EMAIL><INTERNET/><WORK/><USERID>juliet@example.org</USERID></EMAIL>",
            "<TEL><CELL/><NUMBER>+1-555-0100</NUMBER></TEL>",
            "<JABBERID>juliet@capulet.lit</JABBERID>",
            "<DESC>Wherefore</DESC>",
            "<PHOTO><TYPE>image/jpeg</TYPE><BINVAL>YWJj</BINVAL></PHOTO>",
        ] {
            assert!(vcard.contains(expected), "{expected} missing in {vcard}");
        }
    }

    #[test]
    fn an_existing_vcard_temp_wins_and_nothing_gives_nothing() {
        let mut user = UserData { username: "romeo".into(), ..UserData::default() };
        assert_eq!(vcard_temp_from_pep(&user), None);
        user.pep.push(node(NODE_VCARD4, &[("current", "<vcard xmlns='urn:ietf:params:xml:ns:vcard-4.0'/>")]));
        assert_eq!(vcard_temp_from_pep(&user), None, "an empty vCard4 gives no vCard");
        user.pep[0] = node(
            NODE_VCARD4,
            &[("current", "<vcard xmlns='urn:ietf:params:xml:ns:vcard-4.0'><fn><text>R</text></fn></vcard>")],
        );
        assert!(vcard_temp_from_pep(&user).is_some());
        user.vcard = Some(Element::new("vCard", NS_VCARD_TEMP));
        assert_eq!(vcard_temp_from_pep(&user), None, "the user's own vcard-temp is kept");
    }
}
