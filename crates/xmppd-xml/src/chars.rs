//! Character classes of XML 1.0 (Fifth Edition) §2.2 and §2.3, and a UTF-8
//! decoder that distinguishes truncated sequences from invalid ones, so that a
//! multi-byte character split across two `feed()` calls is waited for rather
//! than rejected.

/// The result of decoding one UTF-8 sequence.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Decoded {
    /// A scalar value and the number of bytes it occupies.
    Char(u32, usize),
    /// The bytes so far are a valid prefix of a sequence; more are needed.
    Incomplete,
    /// Not UTF-8 (overlong, surrogate, out of range, stray continuation byte).
    Invalid,
}

/// Decodes the sequence at the start of `bytes` (RFC 3629 §4, well-formed
/// byte sequences only).
pub(crate) fn decode_utf8(bytes: &[u8]) -> Decoded {
    let Some(&lead) = bytes.first() else {
        return Decoded::Incomplete;
    };
    if lead < 0x80 {
        return Decoded::Char(u32::from(lead), 1);
    }
    // (length, allowed range of the second byte, payload bits of the lead byte)
    let (len, low, high, mut scalar) = match lead {
        0xC2..=0xDF => (2, 0x80, 0xBF, u32::from(lead & 0x1F)),
        0xE0 => (3, 0xA0, 0xBF, 0),
        0xE1..=0xEC | 0xEE..=0xEF => (3, 0x80, 0xBF, u32::from(lead & 0x0F)),
        0xED => (3, 0x80, 0x9F, 0x0D),
        0xF0 => (4, 0x90, 0xBF, 0),
        0xF1..=0xF3 => (4, 0x80, 0xBF, u32::from(lead & 0x07)),
        0xF4 => (4, 0x80, 0x8F, 4),
        _ => return Decoded::Invalid,
    };
    for index in 1..len {
        let Some(&byte) = bytes.get(index) else {
            return Decoded::Incomplete;
        };
        let (lo, hi) = if index == 1 { (low, high) } else { (0x80, 0xBF) };
        if byte < lo || byte > hi {
            return Decoded::Invalid;
        }
        scalar = (scalar << 6) | u32::from(byte & 0x3F);
    }
    Decoded::Char(scalar, len)
}

/// XML 1.0 §2.2 `Char`: tab, LF, CR and everything from U+0020 except
/// surrogates, U+FFFE and U+FFFF.
pub(crate) fn is_xml_char(c: u32) -> bool {
    matches!(c, 0x9 | 0xA | 0xD | 0x20..=0xD7FF | 0xE000..=0xFFFD | 0x10000..=0x10FFFF)
}

/// XML 1.0 §2.3 `S`.
pub(crate) fn is_whitespace(b: u8) -> bool {
    matches!(b, b' ' | b'\t' | b'\n' | b'\r')
}

/// XML 1.0 §2.3 `NameStartChar`, without `:` (Namespaces in XML §3 `NCName`).
pub(crate) fn is_name_start_char(c: u32) -> bool {
    matches!(c,
        0x41..=0x5A | 0x5F | 0x61..=0x7A
        | 0xC0..=0xD6 | 0xD8..=0xF6 | 0xF8..=0x2FF | 0x370..=0x37D | 0x37F..=0x1FFF
        | 0x200C..=0x200D | 0x2070..=0x218F | 0x2C00..=0x2FEF | 0x3001..=0xD7FF
        | 0xF900..=0xFDCF | 0xFDF0..=0xFFFD | 0x10000..=0xEFFFF)
}

/// XML 1.0 §2.3 `NameChar`, without `:`.
pub(crate) fn is_name_char(c: u32) -> bool {
    is_name_start_char(c) || matches!(c, 0x2D | 0x2E | 0x30..=0x39 | 0xB7 | 0x300..=0x36F | 0x203F..=0x2040)
}

/// The number of leading XML whitespace bytes.
pub(crate) fn leading_whitespace(bytes: &[u8]) -> usize {
    bytes.iter().take_while(|&&b| is_whitespace(b)).count()
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;

    #[test]
    fn decoder_agrees_with_std_on_all_two_and_three_byte_prefixes() {
        for a in 0x80u8..=0xFF {
            for b in 0u8..=0xFF {
                let pair = [a, b];
                let ours = decode_utf8(&pair);
                match std::str::from_utf8(&pair) {
                    Ok(s) => {
                        assert_eq!(ours, Decoded::Char(u32::from(s.chars().next().unwrap()), 2));
                    }
                    Err(e) if e.error_len().is_none() => assert_eq!(ours, Decoded::Incomplete, "{pair:x?}"),
                    Err(_) => assert_eq!(ours, Decoded::Invalid, "{pair:x?}"),
                }
            }
        }
    }

    #[test]
    fn decoder_handles_four_byte_sequences() {
        let s = "\u{1F600}";
        assert_eq!(decode_utf8(s.as_bytes()), Decoded::Char(0x1F600, 4));
        assert_eq!(decode_utf8(&s.as_bytes()[..3]), Decoded::Incomplete);
        assert_eq!(decode_utf8(&[0xF4, 0x90, 0x80, 0x80]), Decoded::Invalid);
        assert_eq!(decode_utf8(&[0xED, 0xA0, 0x80]), Decoded::Invalid, "surrogate");
        assert_eq!(decode_utf8(&[0xC0, 0x80]), Decoded::Invalid, "overlong");
    }

    #[test]
    fn xml_chars() {
        assert!(is_xml_char(0x9) && is_xml_char(0xA) && is_xml_char(0xD));
        assert!(!is_xml_char(0x0) && !is_xml_char(0x1F) && !is_xml_char(0xFFFE) && !is_xml_char(0xFFFF));
        assert!(is_xml_char(0x10FFFF) && !is_xml_char(0x110000));
    }
}
