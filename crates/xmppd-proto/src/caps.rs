//! XEP-0115 Entity Capabilities: the verification string of a disco#info
//! answer (§5.1), so the server can advertise its own caps in the stream
//! features (§6.3) and clients can cache its features.

use base64::Engine as _;
use sha1::{Digest, Sha1};
use xmppd_xml::Element;

use crate::ns;

/// One disco#info identity (XEP-0030 §3.1).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Identity {
    /// `category`, e.g. `server`.
    pub category: String,
    /// `type`, e.g. `im`.
    pub kind: String,
    /// `xml:lang`, if any.
    pub lang: Option<String>,
    /// `name`, if any.
    pub name: Option<String>,
}

/// The XEP-0115 §5.1 verification string with SHA-1, Base64-encoded.
/// `forms` are XEP-0128 `jabber:x:data` result forms.
pub fn verification_string(identities: &[Identity], features: &[&str], forms: &[Element]) -> String {
    let mut s = String::new();
    let mut identities: Vec<&Identity> = identities.iter().collect();
    identities.sort_by(|a, b| {
        (a.category.as_bytes(), a.kind.as_bytes(), a.lang.as_deref().unwrap_or("").as_bytes()).cmp(&(
            b.category.as_bytes(),
            b.kind.as_bytes(),
            b.lang.as_deref().unwrap_or("").as_bytes(),
        ))
    });
    for identity in identities {
        s.push_str(&identity.category);
        s.push('/');
        s.push_str(&identity.kind);
        s.push('/');
        s.push_str(identity.lang.as_deref().unwrap_or(""));
        s.push('/');
        s.push_str(identity.name.as_deref().unwrap_or(""));
        s.push('<');
    }
    let mut features: Vec<&str> = features.to_vec();
    features.sort_unstable();
    features.dedup();
    for feature in features {
        s.push_str(feature);
        s.push('<');
    }
    let mut forms: Vec<(String, &Element)> = forms.iter().map(|f| (form_type(f), f)).collect();
    forms.sort_by(|a, b| a.0.as_bytes().cmp(b.0.as_bytes()));
    for (form_type, form) in forms {
        s.push_str(&form_type);
        s.push('<');
        let mut fields: Vec<&Element> =
            form.children().filter(|f| f.is("field", ns::DATA_FORMS) && f.attr("var") != Some("FORM_TYPE")).collect();
        fields.sort_by(|a, b| a.attr("var").unwrap_or("").as_bytes().cmp(b.attr("var").unwrap_or("").as_bytes()));
        for field in fields {
            s.push_str(field.attr("var").unwrap_or(""));
            s.push('<');
            let mut values: Vec<String> =
                field.children().filter(|v| v.is("value", ns::DATA_FORMS)).map(Element::text).collect();
            values.sort_unstable();
            for value in values {
                s.push_str(&value);
                s.push('<');
            }
        }
    }
    base64::engine::general_purpose::STANDARD.encode(Sha1::digest(s.as_bytes()))
}

fn form_type(form: &Element) -> String {
    form.children()
        .find(|f| f.is("field", ns::DATA_FORMS) && f.attr("var") == Some("FORM_TYPE"))
        .and_then(|f| f.get_child("value", ns::DATA_FORMS).map(Element::text))
        .unwrap_or_default()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn identity(category: &str, kind: &str, lang: Option<&str>, name: &str) -> Identity {
        Identity { category: category.into(), kind: kind.into(), lang: lang.map(Into::into), name: Some(name.into()) }
    }

    /// XEP-0115 §5.2.
    #[test]
    fn simple_example() {
        let ver = verification_string(
            &[identity("client", "pc", None, "Exodus 0.9.1")],
            &[
                "http://jabber.org/protocol/disco#info",
                "http://jabber.org/protocol/disco#items",
                "http://jabber.org/protocol/muc",
                "http://jabber.org/protocol/caps",
            ],
            &[],
        );
        assert_eq!(ver, "QgayPKawpkPSDYmwT/WM94uAlu0=");
    }

    /// XEP-0115 §5.3.
    #[test]
    fn complex_example() {
        let field = |var: &str, values: &[&str]| {
            Element::builder("field", ns::DATA_FORMS)
                .attr("var", var)
                .append_all(values.iter().map(|v| Element::builder("value", ns::DATA_FORMS).text(v).build()))
                .build()
        };
        let form = Element::builder("x", ns::DATA_FORMS)
            .attr("type", "result")
            .append(field("FORM_TYPE", &["urn:xmpp:dataforms:softwareinfo"]))
            .append(field("ip_version", &["ipv6", "ipv4"]))
            .append(field("os", &["Mac"]))
            .append(field("os_version", &["10.5.1"]))
            .append(field("software", &["Psi"]))
            .append(field("software_version", &["0.11"]))
            .build();
        let ver = verification_string(
            &[identity("client", "pc", Some("en"), "Psi 0.11"), identity("client", "pc", Some("el"), "Ψ 0.11")],
            &[
                "http://jabber.org/protocol/caps",
                "http://jabber.org/protocol/disco#info",
                "http://jabber.org/protocol/disco#items",
                "http://jabber.org/protocol/muc",
            ],
            &[form],
        );
        assert_eq!(ver, "q07IKJEyjvHSyhy//CH0CxmKi8w=");
    }
}
