//! Escaping for serialisation (XML 1.0 §2.4, §3.1).
//!
//! Characters that XML 1.0 cannot carry at all (control characters other than
//! tab, LF and CR, U+FFFE, U+FFFF) are replaced by U+FFFD, so output is always
//! well-formed whatever the input string holds.

use std::borrow::Cow;

use crate::chars::is_xml_char;

/// The replacement for each character that needs one, or `None`.
fn replacement(c: char, attribute: bool) -> Option<&'static str> {
    Some(match c {
        '&' => "&amp;",
        '<' => "&lt;",
        // Escaping '>' everywhere keeps "]]>" out of character data.
        '>' => "&gt;",
        '\'' if attribute => "&apos;",
        '"' if attribute => "&quot;",
        // Escaped so that attribute-value normalisation keeps them (§3.3.3).
        '\t' if attribute => "&#9;",
        '\n' if attribute => "&#10;",
        // Escaped so that line-end normalisation keeps it (§2.11).
        '\r' => "&#13;",
        c if !is_xml_char(u32::from(c)) => "\u{FFFD}",
        _ => return None,
    })
}

fn escape_with(text: &str, attribute: bool, mut emit: impl FnMut(&str)) {
    let mut run_start = 0;
    for (index, c) in text.char_indices() {
        if let Some(replacement) = replacement(c, attribute) {
            emit(text.get(run_start..index).unwrap_or_default());
            emit(replacement);
            run_start = index + c.len_utf8();
        }
    }
    emit(text.get(run_start..).unwrap_or_default());
}

fn escape_cow(text: &str, attribute: bool) -> Cow<'_, str> {
    if !text.chars().any(|c| replacement(c, attribute).is_some()) {
        return Cow::Borrowed(text);
    }
    let mut out = String::with_capacity(text.len() + 16);
    escape_with(text, attribute, |piece| out.push_str(piece));
    Cow::Owned(out)
}

/// Escapes character data (`&`, `<`, `>`, CR).
pub fn escape_text(text: &str) -> Cow<'_, str> {
    escape_cow(text, false)
}

/// Escapes an attribute value for either quote style (`&`, `<`, `>`, `'`,
/// `"`, tab, LF, CR).
pub fn escape_attr(value: &str) -> Cow<'_, str> {
    escape_cow(value, true)
}

/// Appends `text` escaped as character data to `out`.
pub fn escape_text_into(text: &str, out: &mut Vec<u8>) {
    escape_with(text, false, |piece| out.extend_from_slice(piece.as_bytes()));
}

/// Appends `value` escaped as an attribute value to `out` (without quotes).
pub fn escape_attr_into(value: &str, out: &mut Vec<u8>) {
    escape_with(value, true, |piece| out.extend_from_slice(piece.as_bytes()));
}

/// Writes a start tag `<qname a='v' …>` (or `<qname …/>` if `self_closing`).
/// Names are written as given (they are trusted, not peer input); values are
/// escaped. Namespace declarations are passed as ordinary attributes
/// (`("xmlns", "jabber:client")`).
pub fn write_start_tag(out: &mut Vec<u8>, qname: &str, attrs: &[(&str, &str)], self_closing: bool) {
    out.push(b'<');
    out.extend_from_slice(qname.as_bytes());
    for (name, value) in attrs {
        out.push(b' ');
        out.extend_from_slice(name.as_bytes());
        out.extend_from_slice(b"='");
        escape_attr_into(value, out);
        out.push(b'\'');
    }
    out.extend_from_slice(if self_closing { b"/>" } else { b">" });
}

/// Writes an end tag `</qname>`.
pub fn write_end_tag(out: &mut Vec<u8>, qname: &str) {
    out.extend_from_slice(b"</");
    out.extend_from_slice(qname.as_bytes());
    out.push(b'>');
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn escapes() {
        assert_eq!(escape_text("a<b>&c]]>\r"), "a&lt;b&gt;&amp;c]]&gt;&#13;");
        assert_eq!(escape_attr("'\"\t\n"), "&apos;&quot;&#9;&#10;");
        assert_eq!(escape_text("x\u{0}y\u{FFFE}"), "x\u{FFFD}y\u{FFFD}");
        assert!(matches!(escape_text("plain 'text'"), Cow::Borrowed(_)));
        let mut out = Vec::new();
        write_start_tag(&mut out, "stream:stream", &[("xmlns", "jabber:client"), ("to", "a'b")], false);
        write_end_tag(&mut out, "stream:stream");
        assert_eq!(out, b"<stream:stream xmlns='jabber:client' to='a&apos;b'></stream:stream>");
    }
}
