//! The feature table and DOAP file, generated from what the code declares:
//! the client session's [`xmppd_c2s::PROTOCOLS`] and every module's
//! [`xmppd_core::ModuleDef`]. What the server claims is exactly what its
//! parts declare; `tests/generated.rs` fails when README.md or xmppd.doap
//! drift from this.

use std::collections::BTreeMap;
use std::fmt::Write as _;

use xmppd_core::{ModuleDef, Protocol, Support};

/// What the command-line tools implement: XEP-0227 import and export
/// (partial: PEP nodes and items are carried, §4.10; privacy lists, message
/// archives and PEP affiliations and subscriptions are reported, not
/// imported).
static TOOLS: &[Protocol] = &[Protocol { spec: "XEP-0227", version: "1.1", support: Support::Partial }];

/// One line of the table: a specification and who implements it.
struct Row {
    version: String,
    support: Support,
    implemented_by: Vec<String>,
}

/// Specifications sorted RFCs first, then XEPs, by number.
fn rows(modules: &[&ModuleDef]) -> BTreeMap<(u8, u32), (String, Row)> {
    let mut rows: BTreeMap<(u8, u32), (String, Row)> = BTreeMap::new();
    let mut add = |protocol: &Protocol, by: String| {
        let key = sort_key(protocol.spec);
        let entry = rows.entry(key).or_insert_with(|| {
            (
                protocol.spec.to_owned(),
                Row { version: String::new(), support: protocol.support, implemented_by: Vec::new() },
            )
        });
        let row = &mut entry.1;
        if !row.version.is_empty() {
            row.version.push_str(", ");
        }
        row.version.push_str(protocol.version);
        if protocol.support == Support::Partial {
            row.support = Support::Partial;
        }
        row.implemented_by.push(by);
    };
    for protocol in xmppd_c2s::PROTOCOLS {
        add(protocol, "c2s".to_owned());
    }
    for protocol in TOOLS {
        add(protocol, "`xmppd import`/`export`".to_owned());
    }
    for module in modules {
        for protocol in module.protocols {
            add(protocol, format!("`{}`", module.name));
        }
    }
    rows
}

fn sort_key(spec: &str) -> (u8, u32) {
    let (kind, number) = spec.split_once(['-', ' ']).unwrap_or((spec, "0"));
    let number = number.trim().parse().unwrap_or(u32::MAX);
    (u8::from(kind != "RFC"), number)
}

fn support_name(support: Support) -> &'static str {
    match support {
        Support::Complete => "complete",
        Support::Partial => "partial",
    }
}

/// The README's feature table (markdown).
pub fn markdown_table(modules: &[&ModuleDef]) -> String {
    let mut out = String::from("| spec | version / scope | status | implemented by |\n|---|---|---|---|\n");
    for (spec, row) in rows(modules).values() {
        let _ = writeln!(
            out,
            "| {spec} | {} | {} | {} |",
            row.version,
            support_name(row.support),
            row.implemented_by.join(", ")
        );
    }
    out
}

/// A DOAP description (RDF/XML) with the `xmpp:SupportedXep` vocabulary
/// used by xmpp.org's software list.
pub fn doap(modules: &[&ModuleDef]) -> String {
    let mut out = String::from(
        "<?xml version='1.0' encoding='UTF-8'?>\n\
         <!-- Generated from the module declarations; do not edit (see tests/generated.rs). -->\n\
         <rdf:RDF xmlns:rdf='http://www.w3.org/1999/02/22-rdf-syntax-ns#'\n\
         \x20        xmlns='http://usefulinc.com/ns/doap#'\n\
         \x20        xmlns:xmpp='https://linkmauve.fr/ns/xmpp-doap#'>\n\
         \x20 <Project>\n\
         \x20   <name>xmppd</name>\n\
         \x20   <shortdesc xml:lang='en'>An XMPP server written in Rust.</shortdesc>\n\
         \x20   <programming-language>Rust</programming-language>\n\
         \x20   <category rdf:resource='https://linkmauve.fr/ns/xmpp-doap#category-server'/>\n",
    );
    for (spec, row) in rows(modules).values() {
        if let Some(number) = spec.strip_prefix("RFC ") {
            let _ = writeln!(out, "    <implements rdf:resource='https://www.rfc-editor.org/info/rfc{number}'/>");
        } else if let Some(number) = spec.strip_prefix("XEP-") {
            let version = row.version.split(", ").next().unwrap_or_default();
            let _ = write!(
                out,
                "    <implements>\n      <xmpp:SupportedXep>\n\
                 \x20       <xmpp:xep rdf:resource='https://xmpp.org/extensions/xep-{number}.html'/>\n\
                 \x20       <xmpp:version>{version}</xmpp:version>\n\
                 \x20       <xmpp:status>{}</xmpp:status>\n\
                 \x20     </xmpp:SupportedXep>\n    </implements>\n",
                support_name(row.support)
            );
        }
    }
    out.push_str("  </Project>\n</rdf:RDF>\n");
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn rfcs_before_xeps_by_number() {
        assert!(sort_key("RFC 6120") < sort_key("RFC 7622"));
        assert!(sort_key("RFC 9266") < sort_key("XEP-0012"));
        assert!(sort_key("XEP-0012") < sort_key("XEP-0115"));
    }
}
