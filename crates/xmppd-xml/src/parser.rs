//! The incremental stream parser (RFC 6120 §4).

use std::mem;
use std::sync::Arc;

use bytes::{Buf, Bytes, BytesMut};

use crate::chars::{Decoded, decode_utf8, is_whitespace, is_xml_char, leading_whitespace};
use crate::error::{LimitKind, XmlError, nwf};
use crate::lex::{
    AttrKind, AttrSpan, CDATA_OPEN, Markup, QName, Scan, Span, TextStop, clamp_u32, classify_markup,
    find_declaration_end, find_end_tag_end, find_start_tag_end, parse_end_tag, parse_start_tag, parse_xml_declaration,
    scan_cdata, scan_text, unescape_attribute,
};
use crate::limits::Limits;
use crate::ns::{Binding, HeaderScope, Resolved, binding_uri, process_namespaces, resolved_uri};
use crate::raw::{NsSource, RawAttr, RawElement};

/// Byte offsets are stored as `u32`; limits are clamped below this.
const MAX_BUFFER_LIMIT: usize = (u32::MAX / 2) as usize;

/// The start tag of a stream's root element, `<stream:stream …>`
/// (RFC 6120 §4.7), reported as written. Which namespaces, versions and
/// addresses are acceptable is for the caller to decide (§4.7, §4.8).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct StreamHeader {
    prefix: Option<String>,
    local_name: String,
    namespace: String,
    default_namespace: Option<String>,
    prefixes: Vec<(String, String)>,
    attributes: Vec<(String, String)>,
}

impl StreamHeader {
    /// The root element's prefix (`stream`), if any.
    pub fn prefix(&self) -> Option<&str> {
        self.prefix.as_deref()
    }

    /// The root element's local name (`stream`).
    pub fn local_name(&self) -> &str {
        &self.local_name
    }

    /// The qualified name as written (`stream:stream`).
    pub fn qualified_name(&self) -> String {
        match &self.prefix {
            Some(prefix) => format!("{prefix}:{}", self.local_name),
            None => self.local_name.clone(),
        }
    }

    /// The resolved namespace of the root element
    /// (`http://etherx.jabber.org/streams`, RFC 6120 §4.8.1).
    pub fn namespace(&self) -> &str {
        &self.namespace
    }

    /// The declared default namespace (`xmlns='jabber:client'`), the
    /// content namespace of RFC 6120 §4.8.2.
    pub fn default_namespace(&self) -> Option<&str> {
        self.default_namespace.as_deref()
    }

    /// The prefix declarations (`xmlns:stream='…'`) as (prefix, namespace).
    pub fn prefixes(&self) -> &[(String, String)] {
        &self.prefixes
    }

    /// The namespace a prefix is declared for on the header.
    pub fn prefix_namespace(&self, prefix: &str) -> Option<&str> {
        self.prefixes.iter().find(|(declared, _)| declared == prefix).map(|(_, uri)| uri.as_str())
    }

    /// The attributes as (qualified name, unescaped value), without namespace
    /// declarations (`to`, `from`, `version`, `xml:lang`, `id`).
    pub fn attributes(&self) -> &[(String, String)] {
        &self.attributes
    }

    /// An attribute's unescaped value by qualified name.
    pub fn attr(&self, name: &str) -> Option<&str> {
        self.attributes.iter().find(|(key, _)| key == name).map(|(_, value)| value.as_str())
    }
}

/// What the parser found in the stream.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Event {
    /// The stream header (RFC 6120 §4.2).
    StreamOpen(StreamHeader),
    /// A complete depth-1 element: a stanza or a negotiation element (§4.1).
    Stanza(RawElement),
    /// The end tag of the root element, `</stream:stream>` (§4.4).
    StreamClose,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Phase {
    /// Before the stream header: optional XML declaration and whitespace.
    Prolog,
    /// Inside the root element.
    Root,
    /// After the root element's end tag.
    Closed,
}

/// The token being scanned, with its resumable progress.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Lex {
    /// Between tokens.
    Boundary,
    XmlDecl {
        scanned: usize,
    },
    StartTag {
        scanned: usize,
        quote: u8,
    },
    EndTag {
        scanned: usize,
    },
    Cdata,
}

#[derive(Debug, Clone, Copy)]
struct OpenElement {
    qname: Span,
    bindings_mark: usize,
}

/// Per-stanza state. Its vectors are reused from stanza to stanza.
#[derive(Debug)]
struct StanzaState {
    /// A top-level start tag has begun.
    active: bool,
    stack: Vec<OpenElement>,
    bindings: Vec<Binding>,
    attrs: Vec<AttrSpan>,
    top_name: QName,
    head_len: u32,
    top_self_closing: bool,
    self_contained: bool,
    top_ns: NsSource,
    top_attrs: Vec<RawAttr>,
}

impl StanzaState {
    fn new() -> StanzaState {
        StanzaState {
            active: false,
            stack: Vec::new(),
            bindings: Vec::new(),
            attrs: Vec::new(),
            top_name: QName::default(),
            head_len: 0,
            top_self_closing: false,
            self_contained: true,
            top_ns: NsSource::Empty,
            top_attrs: Vec::new(),
        }
    }

    fn begin(&mut self) {
        self.active = true;
        self.self_contained = true;
        self.stack.clear();
        self.bindings.clear();
    }

    fn clear(&mut self) {
        self.active = false;
        self.stack.clear();
        self.bindings.clear();
        self.top_attrs.clear();
        self.top_ns = NsSource::Empty;
    }

    /// Frees scratch vectors that grew beyond what ordinary stanzas need;
    /// small ones are kept so that releasing an idle connection after every
    /// read does not cost allocations per stanza.
    fn shrink(&mut self) {
        const KEEP: usize = 16;
        if self.stack.capacity() > KEEP {
            self.stack = Vec::new();
        }
        if self.bindings.capacity() > KEEP {
            self.bindings = Vec::new();
        }
        if self.attrs.capacity() > KEEP {
            self.attrs = Vec::new();
        }
    }

    fn release_all(&mut self) {
        self.stack = Vec::new();
        self.bindings = Vec::new();
        self.attrs = Vec::new();
        self.top_attrs = Vec::new();
    }

    /// Advances through the stanza at the start of `buf`. Returns its length
    /// once its end tag has been seen, `None` if more data is needed.
    fn step(
        &mut self,
        buf: &[u8],
        lex: &mut Lex,
        pos: &mut usize,
        scope: &HeaderScope,
        limits: &Limits,
    ) -> Result<Option<usize>, XmlError> {
        loop {
            match *lex {
                Lex::StartTag { scanned, quote } => match find_start_tag_end(buf, scanned, quote)? {
                    Scan::More { scanned, quote } => {
                        *lex = Lex::StartTag { scanned, quote };
                        return Ok(None);
                    }
                    Scan::Found(end) => {
                        *lex = Lex::Boundary;
                        let complete = self.start_tag(buf, *pos, end, scope, limits)?;
                        *pos = end;
                        if complete {
                            return Ok(Some(end));
                        }
                    }
                },
                Lex::EndTag { scanned } => match find_end_tag_end(buf, scanned)? {
                    Scan::More { scanned, .. } => {
                        *lex = Lex::EndTag { scanned };
                        return Ok(None);
                    }
                    Scan::Found(end) => {
                        *lex = Lex::Boundary;
                        let complete = self.end_tag(buf, *pos, end)?;
                        *pos = end;
                        if complete {
                            return Ok(Some(end));
                        }
                    }
                },
                Lex::Cdata => {
                    let (next, closed) = scan_cdata(buf, *pos)?;
                    *pos = next;
                    if !closed {
                        return Ok(None);
                    }
                    *lex = Lex::Boundary;
                }
                Lex::XmlDecl { .. } => return Err(nwf("unexpected parser state")),
                Lex::Boundary => {
                    let rest = buf.get(*pos..).unwrap_or_default();
                    match rest.first() {
                        None => return Ok(None),
                        Some(b'<') => match classify_markup(rest)? {
                            Markup::NeedMore => return Ok(None),
                            Markup::StartTag => *lex = Lex::StartTag { scanned: *pos + 1, quote: 0 },
                            Markup::EndTag => *lex = Lex::EndTag { scanned: *pos + 2 },
                            Markup::Cdata => {
                                *pos += CDATA_OPEN.len();
                                *lex = Lex::Cdata;
                            }
                        },
                        Some(_) => {
                            let (next, stop) = scan_text(buf, *pos)?;
                            *pos = next;
                            if stop == TextStop::NeedMore {
                                return Ok(None);
                            }
                        }
                    }
                }
            }
        }
    }

    /// Handles the complete start tag `buf[start..end]`; true if it was a
    /// self-closing top-level element (the stanza is complete).
    fn start_tag(
        &mut self,
        buf: &[u8],
        start: usize,
        end: usize,
        scope: &HeaderScope,
        limits: &Limits,
    ) -> Result<bool, XmlError> {
        let depth = self.stack.len() + 1;
        if depth > limits.max_depth {
            return Err(XmlError::PolicyViolation(LimitKind::Depth));
        }
        let tag = parse_start_tag(buf, start, end, &mut self.attrs, limits)?;
        let bindings_mark = self.bindings.len();
        let outcome = process_namespaces(buf, &tag, &self.attrs, &mut self.bindings, scope)?;
        if outcome.uses_header_prefix {
            self.self_contained = false;
        }
        if depth == 1 {
            self.top_name = tag.name;
            self.head_len = clamp_u32(end);
            self.top_self_closing = tag.self_closing;
            self.top_ns = top_namespace(buf, &self.bindings, outcome.element);
            self.top_attrs = self
                .attrs
                .iter()
                .map(|attr| RawAttr {
                    name: attr.name,
                    value: attr.value,
                    unescaped: attr
                        .escaped
                        .then(|| unescape_attribute(attr.value.str(buf)).into_owned().into_boxed_str()),
                    kind: attr.kind,
                })
                .collect();
        }
        if tag.self_closing {
            self.bindings.truncate(bindings_mark);
            return Ok(depth == 1);
        }
        self.stack.push(OpenElement { qname: tag.name.span, bindings_mark });
        Ok(false)
    }

    /// Handles the complete end tag `buf[start..end]`; true if it closed the
    /// top-level element.
    fn end_tag(&mut self, buf: &[u8], start: usize, end: usize) -> Result<bool, XmlError> {
        let name = parse_end_tag(buf, start, end)?;
        let open = self.stack.pop().ok_or(nwf("unexpected end tag"))?;
        if name.span.slice(buf) != open.qname.slice(buf) {
            return Err(nwf("mismatched end tag"));
        }
        self.bindings.truncate(open.bindings_mark);
        Ok(self.stack.is_empty())
    }

    fn finish(&mut self, bytes: Bytes, scope: Arc<HeaderScope>) -> RawElement {
        self.active = false;
        self.stack.clear();
        self.bindings.clear();
        RawElement {
            bytes,
            name: self.top_name,
            head_len: self.head_len,
            self_closing: self.top_self_closing,
            self_contained: self.self_contained,
            ns: mem::replace(&mut self.top_ns, NsSource::Empty),
            attrs: mem::take(&mut self.top_attrs),
            scope,
        }
    }
}

fn top_namespace(buf: &[u8], bindings: &[Binding], resolved: Resolved) -> NsSource {
    match resolved {
        Resolved::NoNamespace => NsSource::Empty,
        Resolved::Xml => NsSource::Xml,
        Resolved::HeaderDefault => NsSource::HeaderDefault,
        Resolved::HeaderPrefix(index) => NsSource::HeaderPrefix(clamp_u32(index)),
        Resolved::Local(index) => match bindings.get(index) {
            Some(&binding) if binding.escaped => {
                NsSource::Owned(binding_uri(buf, binding).into_owned().into_boxed_str())
            }
            Some(binding) => NsSource::Local(binding.uri),
            None => NsSource::Empty,
        },
    }
}

/// How a stream starts (RFC 6120 §11.5, §11.6).
enum Start {
    NeedMore,
    Declaration,
    Other,
}

fn sniff_start(window: &[u8]) -> Result<Start, XmlError> {
    const DECLARATION: &[u8] = b"<?xml";
    if let [0xFE, 0xFF, ..] | [0xFF, 0xFE, ..] | [0x00, b'<', ..] | [b'<', 0x00, ..] = window {
        // UTF-16 signatures or UTF-16 without one.
        return Err(XmlError::UnsupportedEncoding);
    }
    if window.len() < 2 {
        return Ok(Start::NeedMore);
    }
    if window.starts_with(DECLARATION) {
        return Ok(match window.get(DECLARATION.len()) {
            None => Start::NeedMore,
            Some(&b) if is_whitespace(b) => Start::Declaration,
            Some(_) => Start::Other,
        });
    }
    Ok(if DECLARATION.starts_with(window) { Start::NeedMore } else { Start::Other })
}

/// Classifies non-markup data between stanzas.
fn stray_data(buf: &[u8]) -> Result<Option<Event>, XmlError> {
    match decode_utf8(buf) {
        Decoded::Incomplete => Ok(None),
        Decoded::Invalid => Err(nwf("invalid UTF-8")),
        Decoded::Char(c, _) if !is_xml_char(c) => Err(nwf("forbidden character")),
        // RFC 6120 §4.9.3.1; only whitespace may appear between stanzas (§11.7).
        Decoded::Char(..) => Err(XmlError::BadFormat("character data between stanzas")),
    }
}

/// An incremental, restricted XML 1.0 parser for one XMPP stream
/// (RFC 6120 §4, §11). Sans-I/O: the caller [`feed`](Self::feed)s bytes as
/// they arrive and pulls [`Event`]s with [`next_event`](Self::next_event).
///
/// However the input is split between `feed` calls, the same events (or the
/// same error) result. Memory is bounded: an incomplete stanza is never
/// buffered beyond [`Limits::max_stanza_bytes`] (nor the prolog beyond
/// [`Limits::max_header_bytes`]) as long as the caller drains `next_event`
/// after each `feed`, so the buffer holds at most one limit plus one read.
/// After an error the parser is poisoned and returns that error forever
/// (until [`reset`](Self::reset)).
#[derive(Debug)]
pub struct StreamParser {
    limits: Limits,
    buf: BytesMut,
    phase: Phase,
    lex: Lex,
    /// Scan position inside the current stanza (stanzas start at `buf[0]`).
    pos: usize,
    prolog_consumed: usize,
    pending_close: bool,
    error: Option<XmlError>,
    scope: Arc<HeaderScope>,
    root_name: String,
    stanza: StanzaState,
}

impl StreamParser {
    /// A parser expecting a new stream (optional XML declaration, then the
    /// stream header). Limits above 2 GiB are clamped.
    pub fn new(limits: Limits) -> StreamParser {
        let mut limits = limits;
        limits.max_stanza_bytes = limits.max_stanza_bytes.min(MAX_BUFFER_LIMIT);
        limits.max_header_bytes = limits.max_header_bytes.min(MAX_BUFFER_LIMIT);
        StreamParser {
            limits,
            buf: BytesMut::new(),
            phase: Phase::Prolog,
            lex: Lex::Boundary,
            pos: 0,
            prolog_consumed: 0,
            pending_close: false,
            error: None,
            scope: Arc::new(HeaderScope::default()),
            root_name: String::new(),
            stanza: StanzaState::new(),
        }
    }

    /// The limits in force.
    pub fn limits(&self) -> &Limits {
        &self.limits
    }

    /// Appends received bytes. Ignored once the parser is poisoned.
    pub fn feed(&mut self, data: &[u8]) {
        if self.error.is_none() {
            self.buf.extend_from_slice(data);
        }
    }

    /// The number of received bytes not yet returned as events (a partial
    /// token or stanza, or data not yet examined).
    pub fn buffered_len(&self) -> usize {
        self.buf.len()
    }

    /// The error that poisoned the parser, if any.
    pub fn error(&self) -> Option<&XmlError> {
        self.error.as_ref()
    }

    /// The next event: `Ok(None)` means more data is needed. Whitespace
    /// between stanzas (keepalives, RFC 6120 §4.6.1) is skipped.
    pub fn next_event(&mut self) -> Result<Option<Event>, XmlError> {
        if let Some(error) = &self.error {
            return Err(error.clone());
        }
        let result = self.advance();
        if let Err(error) = &result {
            self.error = Some(error.clone());
            // Nothing more will be parsed: give the memory back.
            self.buf = BytesMut::new();
            self.stanza.clear();
            self.stanza.release_all();
        }
        result
    }

    /// Restarts the stream (RFC 6120 §4.3.3, after STARTTLS or SASL): the
    /// parser expects an optional XML declaration and a new stream header.
    /// Buffered data is discarded: after STARTTLS, data sent before the TLS
    /// handshake must not be processed (§5.4.3.3).
    pub fn reset(&mut self) {
        self.buf.clear();
        self.reset_keep_buffered();
    }

    /// Like [`reset`](Self::reset), but keeps data that was received and not
    /// yet parsed (e.g. a stream header pipelined right after a SASL exchange).
    /// Call it only between events, not in the middle of a stanza.
    pub fn reset_keep_buffered(&mut self) {
        if self.stanza.active {
            // The partial stanza's bytes are not a stream start.
            self.buf.clear();
        }
        self.phase = Phase::Prolog;
        self.lex = Lex::Boundary;
        self.pos = 0;
        self.prolog_consumed = 0;
        self.pending_close = false;
        self.error = None;
        self.scope = Arc::new(HeaderScope::default());
        self.root_name.clear();
        self.stanza.clear();
    }

    /// Frees the read buffer (and scratch space that grew large) if no partial
    /// data is buffered, so an idle connection holds almost nothing. The
    /// buffer is reallocated, at the size of the data, on the next `feed`.
    pub fn release_idle(&mut self) {
        if self.buf.is_empty() && !self.stanza.active && self.lex == Lex::Boundary {
            self.buf = BytesMut::new();
            self.stanza.shrink();
        }
    }

    fn advance(&mut self) -> Result<Option<Event>, XmlError> {
        if self.pending_close {
            self.pending_close = false;
            self.phase = Phase::Closed;
            return Ok(Some(Event::StreamClose));
        }
        match self.phase {
            Phase::Prolog => self.prolog(),
            Phase::Root => self.content(),
            Phase::Closed => self.epilog(),
        }
    }

    fn consume_prolog(&mut self, count: usize) {
        self.buf.advance(count.min(self.buf.len()));
        self.prolog_consumed += count;
    }

    /// More data is needed in the prolog; fail if the budget is spent.
    fn prolog_wait(&self, budget: usize) -> Result<Option<Event>, XmlError> {
        if self.buf.len() >= budget { Err(XmlError::PolicyViolation(LimitKind::HeaderSize)) } else { Ok(None) }
    }

    fn prolog(&mut self) -> Result<Option<Event>, XmlError> {
        loop {
            let budget = self.limits.max_header_bytes.saturating_sub(self.prolog_consumed);
            let window = self.buf.get(..self.buf.len().min(budget)).unwrap_or_default();
            match self.lex {
                Lex::XmlDecl { scanned } => match find_declaration_end(window, scanned)? {
                    Scan::More { scanned, .. } => {
                        self.lex = Lex::XmlDecl { scanned };
                        return self.prolog_wait(budget);
                    }
                    Scan::Found(end) => {
                        parse_xml_declaration(window.get(..end).unwrap_or_default())?;
                        self.consume_prolog(end);
                        self.lex = Lex::Boundary;
                    }
                },
                Lex::StartTag { scanned, quote } => match find_start_tag_end(window, scanned, quote)? {
                    Scan::More { scanned, quote } => {
                        self.lex = Lex::StartTag { scanned, quote };
                        return self.prolog_wait(budget);
                    }
                    Scan::Found(end) => {
                        let header = self.open_stream(end)?;
                        self.consume_prolog(end);
                        self.lex = Lex::Boundary;
                        self.phase = Phase::Root;
                        return Ok(Some(Event::StreamOpen(header)));
                    }
                },
                Lex::EndTag { .. } | Lex::Cdata => return Err(nwf("unexpected parser state")),
                Lex::Boundary => {
                    // RFC 6120 §11.5: an XML declaration only at the very start.
                    if self.prolog_consumed == 0 {
                        match sniff_start(window)? {
                            Start::NeedMore => return self.prolog_wait(budget),
                            Start::Declaration => {
                                self.lex = Lex::XmlDecl { scanned: 5 };
                                continue;
                            }
                            Start::Other => {}
                        }
                    }
                    let whitespace = leading_whitespace(window);
                    if whitespace > 0 {
                        self.consume_prolog(whitespace);
                        continue;
                    }
                    match window.first() {
                        None => return self.prolog_wait(budget),
                        Some(b'<') => match classify_markup(window)? {
                            Markup::NeedMore => return self.prolog_wait(budget),
                            Markup::StartTag => self.lex = Lex::StartTag { scanned: 1, quote: 0 },
                            Markup::EndTag => return Err(nwf("end tag before the stream header")),
                            Markup::Cdata => return Err(nwf("character data before the stream header")),
                        },
                        // Includes U+FEFF, which RFC 6120 §11.6 says is not a BOM.
                        Some(_) => return Err(nwf("character data before the stream header")),
                    }
                }
            }
        }
    }

    /// Processes the complete stream header `buf[..end]`.
    fn open_stream(&mut self, end: usize) -> Result<StreamHeader, XmlError> {
        let buf = self.buf.get(..end).unwrap_or_default();
        let attrs = &mut self.stanza.attrs;
        let tag = parse_start_tag(buf, 0, end, attrs, &self.limits)?;
        let mut bindings = Vec::new();
        let own_scope = HeaderScope::default();
        let outcome = process_namespaces(buf, &tag, attrs, &mut bindings, &own_scope)?;
        let namespace = resolved_uri(buf, &bindings, outcome.element, &own_scope).into_owned();
        let mut default_namespace = None;
        let mut prefixes = Vec::new();
        let mut attributes = Vec::with_capacity(attrs.len());
        for attr in attrs.iter() {
            let raw = attr.value.str(buf);
            let value = if attr.escaped { unescape_attribute(raw).into_owned() } else { raw.to_owned() };
            match attr.kind {
                AttrKind::DefaultDecl => default_namespace = Some(value),
                AttrKind::PrefixDecl => prefixes.push((attr.name.local().str(buf).to_owned(), value)),
                AttrKind::Plain => attributes.push((attr.name.span.str(buf).to_owned(), value)),
            }
        }
        self.root_name = tag.name.span.str(buf).to_owned();
        self.scope = Arc::new(HeaderScope {
            default_ns: default_namespace.clone().unwrap_or_default(),
            prefixes: prefixes.clone(),
        });
        self.pending_close = tag.self_closing;
        Ok(StreamHeader {
            prefix: tag.name.prefix().map(|prefix| prefix.str(buf).to_owned()),
            local_name: tag.name.local().str(buf).to_owned(),
            namespace,
            default_namespace,
            prefixes,
            attributes,
        })
    }

    fn content(&mut self) -> Result<Option<Event>, XmlError> {
        loop {
            if self.stanza.active {
                return self.continue_stanza();
            }
            if let Lex::EndTag { scanned } = self.lex {
                return self.close_stream(scanned);
            }
            let whitespace = leading_whitespace(&self.buf);
            self.buf.advance(whitespace);
            let Some(&first) = self.buf.first() else {
                return Ok(None);
            };
            if first != b'<' {
                return stray_data(&self.buf);
            }
            match classify_markup(&self.buf)? {
                Markup::NeedMore => return Ok(None),
                Markup::StartTag => {
                    self.stanza.begin();
                    self.pos = 0;
                    self.lex = Lex::StartTag { scanned: 1, quote: 0 };
                }
                Markup::EndTag => self.lex = Lex::EndTag { scanned: 2 },
                Markup::Cdata => return Err(XmlError::BadFormat("character data between stanzas")),
            }
        }
    }

    fn stanza_window(&self) -> &[u8] {
        self.buf.get(..self.buf.len().min(self.limits.max_stanza_bytes)).unwrap_or_default()
    }

    /// More data is needed inside a stanza; fail if the stanza cannot end
    /// within the limit.
    fn stanza_wait(&self) -> Result<Option<Event>, XmlError> {
        if self.buf.len() >= self.limits.max_stanza_bytes {
            Err(XmlError::PolicyViolation(LimitKind::StanzaSize))
        } else {
            Ok(None)
        }
    }

    fn continue_stanza(&mut self) -> Result<Option<Event>, XmlError> {
        let window = self.buf.get(..self.buf.len().min(self.limits.max_stanza_bytes)).unwrap_or_default();
        match self.stanza.step(window, &mut self.lex, &mut self.pos, &self.scope, &self.limits)? {
            None => self.stanza_wait(),
            Some(end) => {
                let bytes = self.buf.split_to(end.min(self.buf.len())).freeze();
                self.pos = 0;
                self.lex = Lex::Boundary;
                Ok(Some(Event::Stanza(self.stanza.finish(bytes, Arc::clone(&self.scope)))))
            }
        }
    }

    fn close_stream(&mut self, scanned: usize) -> Result<Option<Event>, XmlError> {
        let window = self.stanza_window();
        match find_end_tag_end(window, scanned)? {
            Scan::More { scanned, .. } => {
                self.lex = Lex::EndTag { scanned };
                self.stanza_wait()
            }
            Scan::Found(end) => {
                let name = parse_end_tag(window, 0, end)?;
                if name.span.slice(window) != self.root_name.as_bytes() {
                    return Err(nwf("end tag does not match the stream header"));
                }
                self.buf.advance(end);
                self.lex = Lex::Boundary;
                self.phase = Phase::Closed;
                Ok(Some(Event::StreamClose))
            }
        }
    }

    fn epilog(&mut self) -> Result<Option<Event>, XmlError> {
        let whitespace = leading_whitespace(&self.buf);
        self.buf.advance(whitespace);
        if self.buf.is_empty() { Ok(None) } else { Err(nwf("data after the end of the stream")) }
    }
}

/// Parses one standalone element for [`RawElement::from_fragment`].
pub(crate) fn parse_fragment(data: &[u8], default_ns: &str, limits: &Limits) -> Result<RawElement, XmlError> {
    let mut parser = StreamParser::new(limits.clone());
    parser.phase = Phase::Root;
    parser.scope = Arc::new(HeaderScope { default_ns: default_ns.to_owned(), prefixes: Vec::new() });
    parser.feed(data);
    let raw = match parser.next_event()? {
        Some(Event::Stanza(raw)) => raw,
        None => return Err(nwf("incomplete element")),
        Some(_) => return Err(nwf("expected an element")),
    };
    match parser.next_event()? {
        None if parser.buffered_len() == 0 => Ok(raw),
        _ => Err(nwf("data after the element")),
    }
}
