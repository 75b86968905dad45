//! XEP-0157: Contact Addresses for XMPP Services — publishes the host's
//! contact addresses as a XEP-0128 form in its disco#info (XEP-0157 §3).
//!
//! Only the configured (non-empty) fields are included, and when nothing is
//! configured no form is published at all. Every value must be a URI
//! (`xmpp:admin@example.org`, `mailto:abuse@example.org`,
//! `https://status.example.org`): §3 requires it for `status-addresses` and
//! recommends it for the others; a bare address such as
//! `admin@example.org` is a configuration error rather than something
//! clients would have to guess about.

use serde::Deserialize;
use xmppd_core::{ModuleContext, ModuleDef, Protocol, Support};
use xmppd_xml::Element;

/// XEP-0157 §3 / §7.1: the FORM_TYPE of the server information form.
pub const FORM_TYPE: &str = "http://jabber.org/network/serverinfo";

/// XEP-0004: data forms.
const DATA_FORMS: &str = "jabber:x:data";

/// The module declaration.
pub static MODULE: ModuleDef = ModuleDef {
    name: "contact_addresses",
    protocols: &[Protocol { spec: "XEP-0157", version: "1.1.1", support: Support::Complete }],
    start,
};

/// `[modules.settings.contact_addresses]`: lists of URIs per role
/// (XEP-0157 §7.1 field registry). Empty lists are left out of the form.
#[derive(Debug, Clone, Default, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct ContactAddressesConfig {
    /// `abuse-addresses`: reports of abusive traffic.
    pub abuse: Vec<String>,
    /// `admin-addresses`: the service administrators.
    pub admin: Vec<String>,
    /// `feedback-addresses`: customer feedback.
    pub feedback: Vec<String>,
    /// `sales-addresses`: sales and marketing.
    pub sales: Vec<String>,
    /// `security-addresses`: security concerns.
    pub security: Vec<String>,
    /// `status-addresses`: service status (e.g. a status web page).
    pub status: Vec<String>,
    /// `support-addresses`: customer support.
    pub support: Vec<String>,
}

impl ContactAddressesConfig {
    /// The form fields, in the order of the XEP-0157 registry, with their
    /// configuration key.
    fn fields(&self) -> [(&'static str, &'static str, &[String]); 7] {
        [
            ("abuse", "abuse-addresses", &self.abuse),
            ("admin", "admin-addresses", &self.admin),
            ("feedback", "feedback-addresses", &self.feedback),
            ("sales", "sales-addresses", &self.sales),
            ("security", "security-addresses", &self.security),
            ("status", "status-addresses", &self.status),
            ("support", "support-addresses", &self.support),
        ]
    }

    /// Every value that is not a URI, as `key: value` problems.
    fn problems(&self) -> Vec<String> {
        self.fields()
            .into_iter()
            .flat_map(|(key, _, values)| values.iter().map(move |value| (key, value)))
            .filter(|(_, value)| !is_uri(value))
            .map(|(key, value)| format!("{key}: `{value}` is not a URI (e.g. xmpp:…, mailto:…, https://…)"))
            .collect()
    }

    /// The XEP-0157 §3 form, or `None` when no address is configured.
    fn form(&self) -> Option<Element> {
        let fields: Vec<Element> = self
            .fields()
            .into_iter()
            .filter(|(_, _, values)| !values.is_empty())
            .map(|(_, var, values)| {
                Element::builder("field", DATA_FORMS)
                    .attr("var", var)
                    .attr("type", "list-multi")
                    .append_all(values.iter().map(|value| value_element(value)))
                    .build()
            })
            .collect();
        if fields.is_empty() {
            return None;
        }
        // XEP-0068 §3.1 / XEP-0128 §2: a hidden FORM_TYPE field names the form.
        let form_type = Element::builder("field", DATA_FORMS)
            .attr("var", "FORM_TYPE")
            .attr("type", "hidden")
            .append(value_element(FORM_TYPE))
            .build();
        Some(Element::builder("x", DATA_FORMS).attr("type", "result").append(form_type).append_all(fields).build())
    }
}

fn value_element(value: &str) -> Element {
    Element::builder("value", DATA_FORMS).text(value).build()
}

/// Whether `value` is an absolute URI: an RFC 3986 §3.1 scheme
/// (`ALPHA *( ALPHA / DIGIT / "+" / "-" / "." )`), a colon and a non-empty
/// remainder without whitespace or control characters.
fn is_uri(value: &str) -> bool {
    let Some((scheme, rest)) = value.split_once(':') else { return false };
    let mut scheme_chars = scheme.chars();
    scheme_chars.next().is_some_and(|c| c.is_ascii_alphabetic())
        && scheme_chars.all(|c| c.is_ascii_alphanumeric() || matches!(c, '+' | '-' | '.'))
        && !rest.is_empty()
        && !rest.chars().any(|c| c.is_whitespace() || c.is_control())
}

fn start(ctx: &mut ModuleContext<'_>) -> Result<(), String> {
    let config: ContactAddressesConfig = ctx.config()?;
    let problems = config.problems();
    if !problems.is_empty() {
        return Err(problems.join("; "));
    }
    if let Some(form) = config.form() {
        ctx.disco_extension(form);
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn nothing_configured_publishes_nothing() {
        assert_eq!(ContactAddressesConfig::default().form(), None);
    }

    #[test]
    fn only_configured_fields_appear() {
        let config = ContactAddressesConfig {
            admin: vec!["xmpp:admin@example.org".into(), "mailto:xmpp@example.org".into()],
            status: vec!["https://status.example.org".into()],
            ..ContactAddressesConfig::default()
        };
        let form = config.form().unwrap_or_default();
        assert!(form.is("x", DATA_FORMS));
        assert_eq!(form.attr("type"), Some("result"));
        let fields: Vec<(String, Vec<String>)> = form
            .children()
            .map(|field| {
                let var = field.attr("var").unwrap_or_default().to_owned();
                (var, field.children().map(Element::text).collect())
            })
            .collect();
        assert_eq!(
            fields,
            [
                ("FORM_TYPE".to_owned(), vec![FORM_TYPE.to_owned()]),
                (
                    "admin-addresses".to_owned(),
                    vec!["xmpp:admin@example.org".to_owned(), "mailto:xmpp@example.org".to_owned()]
                ),
                ("status-addresses".to_owned(), vec!["https://status.example.org".to_owned()]),
            ]
        );
        assert_eq!(form.children().next().and_then(|f| f.attr("type")), Some("hidden"));
    }

    #[test]
    fn uris() {
        for good in ["xmpp:admin@example.org", "mailto:a@b.c", "https://x.example/p?q=1", "xmpp:a@b?message"] {
            assert!(is_uri(good), "{good}");
        }
        for bad in ["admin@example.org", ":x", "1http://x", "http:", "mailto:a b@c", "ht tp://x", ""] {
            assert!(!is_uri(bad), "{bad}");
        }
    }

    #[test]
    fn problems_name_the_key() {
        let config = ContactAddressesConfig {
            abuse: vec!["abuse@example.org".into()],
            support: vec!["xmpp:support@example.org".into()],
            ..ContactAddressesConfig::default()
        };
        let problems = config.problems();
        assert_eq!(problems.len(), 1);
        assert!(problems[0].starts_with("abuse: `abuse@example.org`"), "{problems:?}");
    }
}
