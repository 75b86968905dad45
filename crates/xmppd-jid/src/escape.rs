//! XEP-0106 JID escaping: how a gateway (the SIP gateway of RFC 7247, an
//! importer of foreign addresses) turns a non-XMPP localpart that contains
//! characters RFC 7622 forbids into a valid localpart, and back.
//!
//! Escaping applies to localparts only (§3). Escaped and native JIDs are
//! compared in escaped form, never unescaped (§7).

/// The disallowed characters and their escapes (XEP-0106 §4.2).
const TABLE: [(char, &str); 10] = [
    (' ', "\\20"),
    ('"', "\\22"),
    ('&', "\\26"),
    ('\'', "\\27"),
    ('/', "\\2f"),
    (':', "\\3a"),
    ('<', "\\3c"),
    ('>', "\\3e"),
    ('@', "\\40"),
    ('\\', "\\5c"),
];

fn escape_of(c: char) -> Option<&'static str> {
    TABLE.iter().find(|(ch, _)| *ch == c).map(|(_, esc)| *esc)
}

fn unescape_of(seq: &str) -> Option<char> {
    TABLE.iter().find(|(_, esc)| *esc == seq).map(|(ch, _)| *ch)
}

/// Escapes a source localpart (XEP-0106 §4.2, §5.1): every disallowed
/// character becomes `\hexhex`; a backslash is escaped only where it starts
/// a sequence that would otherwise unescape (§5.1 rule 3). Leading and
/// trailing spaces are trimmed, since `\20` may not start or end a
/// localpart (§4.2 note).
pub fn escape_localpart(source: &str) -> String {
    let source = source.trim_matches(' ');
    let mut out = String::with_capacity(source.len() + 8);
    for (index, c) in source.char_indices() {
        if c == '\\' {
            let rest = &source[index..];
            let looks_escaped = rest.get(..3).is_some_and(|seq| unescape_of(seq).is_some());
            out.push_str(if looks_escaped { "\\5c" } else { "\\" });
        } else if let Some(escaped) = escape_of(c) {
            out.push_str(escaped);
        } else {
            out.push(c);
        }
    }
    out
}

/// Unescapes a localpart for presentation or gatewaying (§4.3): only the
/// ten defined sequences are replaced; anything else stays as it is (§5.2).
pub fn unescape_localpart(escaped: &str) -> String {
    let mut out = String::with_capacity(escaped.len());
    let mut rest = escaped;
    while let Some(at) = rest.find('\\') {
        out.push_str(&rest[..at]);
        let candidate = &rest[at..];
        match candidate.get(..3).and_then(unescape_of) {
            Some(c) => {
                out.push(c);
                rest = &candidate[3..];
            }
            None => {
                out.push('\\');
                rest = &candidate[1..];
            }
        }
    }
    out.push_str(rest);
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    /// XEP-0106 §6 examples (source address localparts).
    #[test]
    fn spec_examples() {
        let cases = [
            ("space cadet", "space\\20cadet"),
            ("call me \"ishmael\"", "call\\20me\\20\\22ishmael\\22"),
            ("at&t guy", "at\\26t\\20guy"),
            ("d'artagnan", "d\\27artagnan"),
            ("/.fanboy", "\\2f.fanboy"),
            ("::foo::", "\\3a\\3afoo\\3a\\3a"),
            ("<foo>", "\\3cfoo\\3e"),
            ("user@host", "user\\40host"),
            ("c:\\net", "c\\3a\\net"),
            ("c:\\\\net", "c\\3a\\\\net"),
            ("c:\\cool stuff", "c\\3a\\cool\\20stuff"),
            ("c:\\5commas", "c\\3a\\5c5commas"),
        ];
        for (source, escaped) in cases {
            assert_eq!(escape_localpart(source), escaped, "{source}");
            assert_eq!(unescape_localpart(escaped), source, "{escaped}");
        }
    }

    #[test]
    fn unknown_sequences_stay() {
        assert_eq!(unescape_localpart("\\2plus\\2is\\4"), "\\2plus\\2is\\4");
        assert_eq!(unescape_localpart("foo\\bar"), "foo\\bar");
        assert_eq!(unescape_localpart("trailing\\"), "trailing\\");
        assert_eq!(escape_localpart("  padded "), "padded");
    }

    #[test]
    fn escaped_localparts_are_valid_jids() {
        for source in ["d'artagnan", "at&t guy", "user@host", "<>:/\"'"] {
            let escaped = escape_localpart(source);
            let jid = format!("{escaped}@example.com");
            assert!(jid.parse::<crate::Jid>().is_ok(), "{jid}");
        }
    }
}
