//! Lexical routines shared by the stream parser and the DOM builder.
//!
//! Everything here works on byte offsets into one buffer. Routines that scan
//! open-ended input (`scan_text`, `scan_cdata`, the `find_*_end` functions)
//! can stop at the end of the buffer and be resumed later from the offset they
//! returned, so no byte is examined more than a bounded number of times however
//! the input is split. Routines that parse a complete token (`parse_start_tag`,
//! `parse_end_tag`, `parse_xml_declaration`) run once the token's end is known.

use std::borrow::Cow;
use std::ops::Range;

use crate::chars::{Decoded, decode_utf8, is_name_char, is_name_start_char, is_whitespace, is_xml_char};
use crate::error::{LimitKind, XmlError, nwf, restricted};
use crate::limits::Limits;

/// The opening of a CDATA section (XML 1.0 §2.7).
pub(crate) const CDATA_OPEN: &[u8] = b"<![CDATA[";

/// Longest accepted character or entity reference, `&` and `;` included.
/// Bounds the re-scanning of a reference split across reads.
pub(crate) const MAX_REFERENCE_LEN: usize = 64;

/// A byte range in a buffer. Offsets fit in `u32` because every buffer the
/// parser scans is bounded by a limit clamped below 4 GiB.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub(crate) struct Span {
    pub(crate) start: u32,
    pub(crate) end: u32,
}

impl Span {
    pub(crate) fn new(start: usize, end: usize) -> Span {
        Span { start: clamp_u32(start), end: clamp_u32(end) }
    }

    pub(crate) fn range(self) -> Range<usize> {
        self.start as usize..self.end as usize
    }

    pub(crate) fn slice(self, buf: &[u8]) -> &[u8] {
        buf.get(self.range()).unwrap_or_default()
    }

    /// The text of this span in `buf`, which was validated as UTF-8.
    pub(crate) fn str(self, buf: &[u8]) -> &str {
        std::str::from_utf8(self.slice(buf)).unwrap_or_default()
    }
}

pub(crate) fn clamp_u32(value: usize) -> u32 {
    u32::try_from(value).unwrap_or(u32::MAX)
}

/// A qualified name (Namespaces in XML 1.0 §4): `prefix:local` or `local`.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub(crate) struct QName {
    pub(crate) span: Span,
    /// Offset of the colon, if the name is prefixed.
    pub(crate) colon: Option<u32>,
}

impl QName {
    pub(crate) fn prefix(self) -> Option<Span> {
        self.colon.map(|colon| Span { start: self.span.start, end: colon })
    }

    pub(crate) fn local(self) -> Span {
        match self.colon {
            Some(colon) => Span { start: colon.saturating_add(1), end: self.span.end },
            None => self.span,
        }
    }
}

/// What an attribute is, as far as Namespaces in XML 1.0 §3 is concerned.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum AttrKind {
    /// An ordinary attribute.
    Plain,
    /// `xmlns='…'`.
    DefaultDecl,
    /// `xmlns:p='…'`; the declared prefix is the local part of the name.
    PrefixDecl,
}

/// One attribute of a parsed start tag.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct AttrSpan {
    pub(crate) name: QName,
    /// The raw value between the quotes.
    pub(crate) value: Span,
    /// The value contains references or literal whitespace that attribute-value
    /// normalisation (XML 1.0 §3.3.3) changes; it must be unescaped.
    pub(crate) escaped: bool,
    pub(crate) kind: AttrKind,
}

/// A parsed start tag; its attributes are in the vector passed to
/// [`parse_start_tag`].
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct StartTag {
    pub(crate) name: QName,
    pub(crate) self_closing: bool,
}

/// Progress of a resumable search for the end of a token.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Scan {
    /// The token ends just before this offset.
    Found(usize),
    /// Not yet: resume from `scanned` with the given quote state.
    More { scanned: usize, quote: u8 },
}

/// What follows a `<`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Markup {
    StartTag,
    EndTag,
    Cdata,
    NeedMore,
}

/// Where a run of character data stopped.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum TextStop {
    /// At a `<`.
    Markup,
    /// At the end of the buffer or before an undecidable construct.
    NeedMore,
}

/// Result of scanning a reference.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum RefScan {
    /// A valid reference ending just before this offset.
    Complete(usize),
    /// The buffer ends inside the reference.
    Incomplete,
}

fn byte_at(buf: &[u8], index: usize) -> Option<u8> {
    buf.get(index).copied()
}

fn tail(buf: &[u8], index: usize) -> &[u8] {
    buf.get(index..).unwrap_or_default()
}

/// Classifies the markup starting with the `<` at `rest[0]`. Comments,
/// processing instructions and DTD declarations are refused here
/// (RFC 6120 §11.1).
pub(crate) fn classify_markup(rest: &[u8]) -> Result<Markup, XmlError> {
    match byte_at(rest, 1) {
        None => Ok(Markup::NeedMore),
        Some(b'/') => Ok(Markup::EndTag),
        Some(b'?') => Err(restricted("processing instructions and XML declarations are not allowed here")),
        Some(b'!') => match byte_at(rest, 2) {
            None => Ok(Markup::NeedMore),
            Some(b'-') => match byte_at(rest, 3) {
                None => Ok(Markup::NeedMore),
                Some(b'-') => Err(restricted("comments are not allowed")),
                Some(_) => Err(nwf("malformed markup after '<!'")),
            },
            Some(b'[') => {
                let available = rest.len().min(CDATA_OPEN.len());
                if rest.get(..available) != CDATA_OPEN.get(..available) {
                    Err(nwf("malformed markup after '<!['"))
                } else if available < CDATA_OPEN.len() {
                    Ok(Markup::NeedMore)
                } else {
                    Ok(Markup::Cdata)
                }
            }
            Some(b) if b.is_ascii_uppercase() => {
                Err(restricted("document type and markup declarations are not allowed"))
            }
            Some(_) => Err(nwf("malformed markup after '<!'")),
        },
        Some(_) => Ok(Markup::StartTag),
    }
}

/// Resumable search for the `>` that ends a start tag, skipping quoted
/// attribute values. A `<` anywhere inside a tag is an error (XML 1.0 §3.1:
/// `AttValue` excludes it, and it cannot appear between attributes).
pub(crate) fn find_start_tag_end(buf: &[u8], from: usize, quote: u8) -> Result<Scan, XmlError> {
    let mut quote = quote;
    for (offset, &b) in tail(buf, from).iter().enumerate() {
        if quote != 0 {
            if b == quote {
                quote = 0;
            } else if b == b'<' {
                return Err(nwf("'<' in attribute value"));
            }
            continue;
        }
        match b {
            b'"' | b'\'' => quote = b,
            b'>' => return Ok(Scan::Found(from + offset + 1)),
            b'<' => return Err(nwf("'<' inside a start tag")),
            _ => {}
        }
    }
    Ok(Scan::More { scanned: buf.len().max(from), quote })
}

/// Resumable search for the `>` that ends an end tag.
pub(crate) fn find_end_tag_end(buf: &[u8], from: usize) -> Result<Scan, XmlError> {
    for (offset, &b) in tail(buf, from).iter().enumerate() {
        match b {
            b'>' => return Ok(Scan::Found(from + offset + 1)),
            b'<' => return Err(nwf("'<' inside an end tag")),
            _ => {}
        }
    }
    Ok(Scan::More { scanned: buf.len().max(from), quote: 0 })
}

/// Resumable search for the `?>` that ends an XML declaration.
pub(crate) fn find_declaration_end(buf: &[u8], from: usize) -> Result<Scan, XmlError> {
    let mut index = from;
    while let Some(b) = byte_at(buf, index) {
        match b {
            b'?' => match byte_at(buf, index + 1) {
                Some(b'>') => return Ok(Scan::Found(index + 2)),
                None => return Ok(Scan::More { scanned: index, quote: 0 }),
                Some(_) => return Err(nwf("malformed XML declaration")),
            },
            b'<' | b'>' => return Err(nwf("malformed XML declaration")),
            _ => index += 1,
        }
    }
    Ok(Scan::More { scanned: index, quote: 0 })
}

/// Scans a QName at `start`, stopping at the first character that cannot be
/// part of it. Returns the name and the offset after it.
pub(crate) fn scan_qname(buf: &[u8], start: usize) -> Result<(QName, usize), XmlError> {
    let mut index = start;
    let mut colon = None;
    let mut at_part_start = true;
    while let Some(b) = byte_at(buf, index) {
        if b == b':' {
            if at_part_start || colon.is_some() {
                return Err(nwf("invalid qualified name"));
            }
            colon = Some(clamp_u32(index));
            at_part_start = true;
            index += 1;
            continue;
        }
        let (c, len) = if b < 0x80 {
            (u32::from(b), 1)
        } else {
            match decode_utf8(tail(buf, index)) {
                Decoded::Char(c, len) => (c, len),
                Decoded::Incomplete | Decoded::Invalid => return Err(nwf("invalid UTF-8")),
            }
        };
        let allowed = if at_part_start { is_name_start_char(c) } else { is_name_char(c) };
        if !allowed {
            if at_part_start {
                return Err(nwf(if index == start { "expected a name" } else { "invalid qualified name" }));
            }
            break;
        }
        at_part_start = false;
        index += len;
    }
    if at_part_start {
        return Err(nwf("expected a name"));
    }
    Ok((QName { span: Span::new(start, index), colon }, index))
}

fn skip_whitespace(buf: &[u8], mut index: usize) -> usize {
    while byte_at(buf, index).is_some_and(is_whitespace) {
        index += 1;
    }
    index
}

/// Parses the complete start tag `buf[start..end]` (from `<` to `>`),
/// collecting its attributes into `attrs` (cleared first). Checks XML 1.0
/// §3.1 syntax, duplicate attribute names and the attribute and declaration
/// count limits. Namespace processing is left to the caller.
pub(crate) fn parse_start_tag(
    buf: &[u8],
    start: usize,
    end: usize,
    attrs: &mut Vec<AttrSpan>,
    limits: &Limits,
) -> Result<StartTag, XmlError> {
    attrs.clear();
    let tag = buf.get(..end).ok_or(nwf("truncated start tag"))?;
    let (name, mut index) = scan_qname(tag, start + 1)?;
    if name.prefix().is_some_and(|prefix| prefix.slice(tag) == b"xmlns") {
        return Err(nwf("element names must not use the xmlns prefix"));
    }
    let mut plain = 0usize;
    let mut declarations = 0usize;
    loop {
        let whitespace_start = index;
        index = skip_whitespace(tag, index);
        match byte_at(tag, index) {
            Some(b'>') if index + 1 == end => return Ok(StartTag { name, self_closing: false }),
            Some(b'/') if byte_at(tag, index + 1) == Some(b'>') && index + 2 == end => {
                return Ok(StartTag { name, self_closing: true });
            }
            Some(b'>' | b'/') | None => return Err(nwf("malformed start tag")),
            Some(_) if index == whitespace_start => return Err(nwf("missing whitespace before attribute")),
            Some(_) => {}
        }
        let (attr_name, after_name) = scan_qname(tag, index)?;
        index = skip_whitespace(tag, after_name);
        if byte_at(tag, index) != Some(b'=') {
            return Err(nwf("expected '=' after attribute name"));
        }
        index = skip_whitespace(tag, index + 1);
        let quote = match byte_at(tag, index) {
            Some(q @ (b'"' | b'\'')) => q,
            _ => return Err(nwf("attribute value must be quoted")),
        };
        let value_start = index + 1;
        let (value_end, escaped) = scan_attribute_value(tag, value_start, quote)?;
        index = value_end + 1;

        let name_bytes = attr_name.span.slice(tag);
        let kind = if name_bytes == b"xmlns" {
            AttrKind::DefaultDecl
        } else if attr_name.prefix().is_some_and(|prefix| prefix.slice(tag) == b"xmlns") {
            AttrKind::PrefixDecl
        } else {
            AttrKind::Plain
        };
        if kind == AttrKind::Plain {
            plain += 1;
            if plain > limits.max_attributes {
                return Err(XmlError::PolicyViolation(LimitKind::Attributes));
            }
        } else {
            declarations += 1;
            if declarations > limits.max_namespace_decls {
                return Err(XmlError::PolicyViolation(LimitKind::NamespaceDeclarations));
            }
        }
        // XML 1.0 §3.1 "Unique Att Spec".
        if attrs.iter().any(|other| other.name.span.slice(tag) == name_bytes) {
            return Err(nwf("duplicate attribute"));
        }
        attrs.push(AttrSpan { name: attr_name, value: Span::new(value_start, value_end), escaped, kind });
    }
}

/// Scans an attribute value from `start` to the closing `quote`. Returns the
/// offset of the closing quote and whether the value needs unescaping.
fn scan_attribute_value(tag: &[u8], start: usize, quote: u8) -> Result<(usize, bool), XmlError> {
    let mut index = start;
    let mut escaped = false;
    loop {
        let Some(b) = byte_at(tag, index) else {
            return Err(nwf("unterminated attribute value"));
        };
        match b {
            _ if b == quote => return Ok((index, escaped)),
            b'<' => return Err(nwf("'<' in attribute value")),
            b'&' => match scan_reference(tag, index)? {
                RefScan::Complete(after) => {
                    escaped = true;
                    index = after;
                }
                RefScan::Incomplete => return Err(nwf("unterminated reference")),
            },
            b'\t' | b'\n' | b'\r' => {
                escaped = true;
                index += 1;
            }
            0x00..=0x1F => return Err(nwf("forbidden control character")),
            0x20..=0x7F => index += 1,
            _ => index += checked_char(tag, index)?.ok_or(nwf("invalid UTF-8"))?,
        }
    }
}

/// Decodes and checks the non-ASCII character at `index`; `Ok(None)` means the
/// buffer ends inside it.
fn checked_char(buf: &[u8], index: usize) -> Result<Option<usize>, XmlError> {
    match decode_utf8(tail(buf, index)) {
        Decoded::Char(c, len) if is_xml_char(c) => Ok(Some(len)),
        Decoded::Char(..) => Err(nwf("forbidden character")),
        Decoded::Incomplete => Ok(None),
        Decoded::Invalid => Err(nwf("invalid UTF-8")),
    }
}

/// Scans the reference starting with the `&` at `start` (XML 1.0 §4.1).
/// Character references must name an XML `Char`; entity references must be
/// one of the five predefined entities, since XMPP streams have no DTD
/// (RFC 6120 §11.1).
pub(crate) fn scan_reference(buf: &[u8], start: usize) -> Result<RefScan, XmlError> {
    let mut index = start + 1;
    match byte_at(buf, index) {
        None => Ok(RefScan::Incomplete),
        Some(b'#') => {
            index += 1;
            let radix = match byte_at(buf, index) {
                None => return Ok(RefScan::Incomplete),
                Some(b'x') => {
                    index += 1;
                    16
                }
                Some(_) => 10,
            };
            let mut value: u32 = 0;
            let mut digits = 0usize;
            loop {
                if index - start >= MAX_REFERENCE_LEN {
                    return Err(nwf("character reference too long"));
                }
                let Some(b) = byte_at(buf, index) else {
                    return Ok(RefScan::Incomplete);
                };
                if b == b';' {
                    break;
                }
                let digit = char::from(b).to_digit(radix).ok_or(nwf("malformed character reference"))?;
                value = value.saturating_mul(radix).saturating_add(digit);
                digits += 1;
                index += 1;
            }
            if digits == 0 {
                return Err(nwf("empty character reference"));
            }
            if !is_xml_char(value) {
                return Err(nwf("character reference to a forbidden character"));
            }
            Ok(RefScan::Complete(index + 1))
        }
        Some(_) => {
            let name_start = index;
            loop {
                if index - start >= MAX_REFERENCE_LEN {
                    return Err(restricted("reference to an undeclared entity"));
                }
                let Some(b) = byte_at(buf, index) else {
                    return Ok(RefScan::Incomplete);
                };
                if b == b';' {
                    break;
                }
                let (c, len) = match decode_utf8(tail(buf, index)) {
                    Decoded::Char(c, len) => (c, len),
                    Decoded::Incomplete => return Ok(RefScan::Incomplete),
                    Decoded::Invalid => return Err(nwf("invalid UTF-8")),
                };
                let allowed =
                    c == u32::from(b':') || if index == name_start { is_name_start_char(c) } else { is_name_char(c) };
                if !allowed {
                    return Err(nwf("malformed entity reference"));
                }
                index += len;
            }
            match buf.get(name_start..index).unwrap_or_default() {
                b"" => Err(nwf("empty entity reference")),
                b"lt" | b"gt" | b"amp" | b"apos" | b"quot" => Ok(RefScan::Complete(index + 1)),
                _ => Err(restricted("reference to an undeclared entity")),
            }
        }
    }
}

/// Validates character data from `start` up to the next `<` (XML 1.0 §2.4):
/// legal characters, well-formed references, no `]]>`.
pub(crate) fn scan_text(buf: &[u8], start: usize) -> Result<(usize, TextStop), XmlError> {
    let mut index = start;
    while let Some(b) = byte_at(buf, index) {
        match b {
            b'<' => return Ok((index, TextStop::Markup)),
            b'&' => match scan_reference(buf, index)? {
                RefScan::Complete(after) => index = after,
                RefScan::Incomplete => return Ok((index, TextStop::NeedMore)),
            },
            b']' => match (byte_at(buf, index + 1), byte_at(buf, index + 2)) {
                (Some(b']'), Some(b'>')) => return Err(nwf("']]>' in character data")),
                (None, _) | (Some(b']'), None) => return Ok((index, TextStop::NeedMore)),
                _ => index += 1,
            },
            b'\t' | b'\n' | b'\r' | 0x20..=0x7F => index += 1,
            0x00..=0x1F => return Err(nwf("forbidden control character")),
            _ => match checked_char(buf, index)? {
                Some(len) => index += len,
                None => return Ok((index, TextStop::NeedMore)),
            },
        }
    }
    Ok((index, TextStop::NeedMore))
}

/// Validates the body of a CDATA section from `start`. Returns the offset after
/// `]]>` and `true`, or how far it got and `false`.
pub(crate) fn scan_cdata(buf: &[u8], start: usize) -> Result<(usize, bool), XmlError> {
    let mut index = start;
    while let Some(b) = byte_at(buf, index) {
        match b {
            b']' => match (byte_at(buf, index + 1), byte_at(buf, index + 2)) {
                (Some(b']'), Some(b'>')) => return Ok((index + 3, true)),
                (None, _) | (Some(b']'), None) => return Ok((index, false)),
                _ => index += 1,
            },
            b'\t' | b'\n' | b'\r' | 0x20..=0x7F => index += 1,
            0x00..=0x1F => return Err(nwf("forbidden control character")),
            _ => match checked_char(buf, index)? {
                Some(len) => index += len,
                None => return Ok((index, false)),
            },
        }
    }
    Ok((index, false))
}

/// Parses the complete end tag `buf[start..end]` (XML 1.0 §3.1 `ETag`).
pub(crate) fn parse_end_tag(buf: &[u8], start: usize, end: usize) -> Result<QName, XmlError> {
    let tag = buf.get(..end).ok_or(nwf("truncated end tag"))?;
    let (name, after) = scan_qname(tag, start + 2)?;
    let index = skip_whitespace(tag, after);
    if byte_at(tag, index) == Some(b'>') && index + 1 == end { Ok(name) } else { Err(nwf("malformed end tag")) }
}

/// Parses a complete XML declaration `<?xml … ?>` (XML 1.0 §2.8 `XMLDecl`).
/// Only UTF-8 is accepted (RFC 6120 §11.6).
pub(crate) fn parse_xml_declaration(decl: &[u8]) -> Result<(), XmlError> {
    let body = decl
        .strip_prefix(b"<?xml")
        .and_then(|rest| rest.strip_suffix(b"?>"))
        .ok_or(nwf("malformed XML declaration"))?;
    const ORDER: [&[u8]; 3] = [b"version", b"encoding", b"standalone"];
    let mut next = 0usize;
    let mut index = 0usize;
    loop {
        let after_space = skip_whitespace(body, index);
        if after_space == body.len() {
            break;
        }
        if after_space == index {
            return Err(nwf("malformed XML declaration"));
        }
        index = after_space;
        let name_len = tail(body, index).iter().take_while(|b| b.is_ascii_lowercase()).count();
        let name = body.get(index..index + name_len).unwrap_or_default();
        let position = ORDER
            .iter()
            .position(|candidate| *candidate == name)
            .filter(|&position| position >= next && (position == 0 || next > 0))
            .ok_or(nwf("malformed XML declaration"))?;
        next = position + 1;
        index = skip_whitespace(body, index + name_len);
        if byte_at(body, index) != Some(b'=') {
            return Err(nwf("malformed XML declaration"));
        }
        index = skip_whitespace(body, index + 1);
        let quote = match byte_at(body, index) {
            Some(q @ (b'"' | b'\'')) => q,
            _ => return Err(nwf("malformed XML declaration")),
        };
        let value_len = tail(body, index + 1).iter().take_while(|&&b| b != quote).count();
        let value = body.get(index + 1..index + 1 + value_len).unwrap_or_default();
        if byte_at(body, index + 1 + value_len) != Some(quote) {
            return Err(nwf("malformed XML declaration"));
        }
        index += value_len + 2;
        match position {
            0 => {
                // XML 1.0 §2.8 VersionNum ::= '1.' [0-9]+
                let digits = value.strip_prefix(b"1.").unwrap_or_default();
                if digits.is_empty() || !digits.iter().all(u8::is_ascii_digit) {
                    return Err(nwf("unsupported XML version"));
                }
            }
            1 => {
                let valid_name = value.first().is_some_and(u8::is_ascii_alphabetic)
                    && value.iter().all(|&b| b.is_ascii_alphanumeric() || matches!(b, b'.' | b'_' | b'-'));
                if !valid_name {
                    return Err(nwf("malformed encoding name"));
                }
                if !value.eq_ignore_ascii_case(b"utf-8") {
                    return Err(XmlError::UnsupportedEncoding);
                }
            }
            _ => {
                if value != b"yes" && value != b"no" {
                    return Err(nwf("malformed XML declaration"));
                }
            }
        }
    }
    if next == 0 {
        return Err(nwf("the XML declaration lacks a version"));
    }
    Ok(())
}

/// Decodes the reference at the start of `text` (already validated). Returns
/// the character and the reference's length.
fn decode_reference(text: &str) -> Option<(char, usize)> {
    let end = text.find(';')?;
    let body = text.get(1..end)?;
    let c = if let Some(hex) = body.strip_prefix("#x") {
        char::from_u32(u32::from_str_radix(hex, 16).ok()?)?
    } else if let Some(decimal) = body.strip_prefix('#') {
        char::from_u32(decimal.parse().ok()?)?
    } else {
        match body {
            "lt" => '<',
            "gt" => '>',
            "amp" => '&',
            "apos" => '\'',
            "quot" => '"',
            _ => return None,
        }
    };
    Some((c, end + 1))
}

/// Replaces references and normalises line ends (XML 1.0 §2.11) in
/// validated character data; attribute values additionally get whitespace
/// normalisation (§3.3.3).
fn unescape(raw: &str, attribute: bool) -> Cow<'_, str> {
    let needs_work = raw.bytes().any(|b| b == b'&' || b == b'\r' || (attribute && (b == b'\t' || b == b'\n')));
    if !needs_work {
        return Cow::Borrowed(raw);
    }
    let bytes = raw.as_bytes();
    let mut out = String::with_capacity(raw.len());
    let mut run_start = 0;
    let mut index = 0;
    while let Some(&b) = bytes.get(index) {
        let (replacement, consumed) = match b {
            b'&' => match raw.get(index..).and_then(decode_reference) {
                Some((c, len)) => (c, len),
                None => ('&', 1),
            },
            b'\r' => {
                let len = if bytes.get(index + 1) == Some(&b'\n') { 2 } else { 1 };
                (if attribute { ' ' } else { '\n' }, len)
            }
            b'\t' | b'\n' if attribute => (' ', 1),
            _ => {
                index += 1;
                continue;
            }
        };
        out.push_str(raw.get(run_start..index).unwrap_or_default());
        out.push(replacement);
        index += consumed;
        run_start = index;
    }
    out.push_str(raw.get(run_start..).unwrap_or_default());
    Cow::Owned(out)
}

/// Unescapes validated character data.
pub(crate) fn unescape_text(raw: &str) -> Cow<'_, str> {
    unescape(raw, false)
}

/// Unescapes and normalises a validated attribute value.
pub(crate) fn unescape_attribute(raw: &str) -> Cow<'_, str> {
    unescape(raw, true)
}

/// Normalises line ends in a validated CDATA section body.
pub(crate) fn normalize_line_ends(raw: &str) -> Cow<'_, str> {
    if raw.contains('\r') { Cow::Owned(raw.replace("\r\n", "\n").replace('\r', "\n")) } else { Cow::Borrowed(raw) }
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;

    fn tag(text: &str) -> Result<(StartTag, Vec<AttrSpan>), XmlError> {
        let mut attrs = Vec::new();
        let tag = parse_start_tag(text.as_bytes(), 0, text.len(), &mut attrs, &Limits::default())?;
        Ok((tag, attrs))
    }

    #[test]
    fn start_tags() {
        let (t, attrs) = tag("<a:b x='1' y = \"2\" xmlns='u' xmlns:a='v'/>").unwrap();
        assert!(t.self_closing);
        assert_eq!(t.name.local().str(b"<a:b"), "b");
        assert_eq!(attrs.len(), 4);
        assert_eq!(attrs[2].kind, AttrKind::DefaultDecl);
        assert_eq!(attrs[3].kind, AttrKind::PrefixDecl);
        assert!(tag("<a >").is_ok());
        for bad in ["<a b='1'c='2'>", "<a b=1>", "<a b='1' b='2'>", "<a b>", "<1a>", "<a: b>", "<a:b:c>", "<a / >"] {
            assert!(matches!(tag(bad), Err(XmlError::NotWellFormed(_))), "{bad}");
        }
        assert!(matches!(tag("<a b='&foo;'>"), Err(XmlError::RestrictedXml(_))));
    }

    #[test]
    fn references() {
        let ok = |s: &str| scan_reference(s.as_bytes(), 0);
        assert_eq!(ok("&amp;").unwrap(), RefScan::Complete(5));
        assert_eq!(ok("&#x41;x").unwrap(), RefScan::Complete(6));
        assert_eq!(ok("&#65").unwrap(), RefScan::Incomplete);
        assert!(matches!(ok("&#0;"), Err(XmlError::NotWellFormed(_))));
        assert!(matches!(ok("&#xD800;"), Err(XmlError::NotWellFormed(_))));
        assert!(matches!(ok("&#X41;"), Err(XmlError::NotWellFormed(_))));
        assert!(matches!(ok("&;"), Err(XmlError::NotWellFormed(_))));
        assert!(matches!(ok("&nbsp;"), Err(XmlError::RestrictedXml(_))));
    }

    #[test]
    fn unescaping() {
        assert_eq!(unescape_text("a&lt;b&#x20AC;&#65;\r\nc\rd"), "a<b\u{20AC}A\nc\nd");
        assert_eq!(unescape_attribute("a\tb\r\nc&#10;"), "a b c\n");
        assert!(matches!(unescape_text("plain"), Cow::Borrowed(_)));
    }

    #[test]
    fn declarations() {
        assert!(parse_xml_declaration(b"<?xml version='1.0'?>").is_ok());
        assert!(parse_xml_declaration(b"<?xml version=\"1.0\" encoding='UTF-8' standalone='yes' ?>").is_ok());
        assert_eq!(
            parse_xml_declaration(b"<?xml version='1.0' encoding='ISO-8859-1'?>"),
            Err(XmlError::UnsupportedEncoding)
        );
        for bad in [
            &b"<?xml encoding='UTF-8'?>"[..],
            b"<?xml version='2.0'?>",
            b"<?xml version='1.0' standalone='yes' encoding='UTF-8'?>",
            b"<?xml version='1.0'encoding='UTF-8'?>",
            b"<?xml version='1.0' foo='bar'?>",
        ] {
            assert!(matches!(parse_xml_declaration(bad), Err(XmlError::NotWellFormed(_))));
        }
    }
}
