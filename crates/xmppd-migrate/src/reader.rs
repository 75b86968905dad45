//! The streaming XEP-0227 reader.
//!
//! # How a document is driven through the stream parser
//!
//! `xmppd-xml`'s [`StreamParser`] yields the depth-1 children of a root
//! element, each as one buffered [`RawElement`]. In a `<server-data/>`
//! document those are whole `<host/>` elements, possibly hundreds of
//! megabytes, so the reader never lets one parser see a whole host. It uses
//! one parser per level instead, all of them the same restricted parser:
//!
//! * the *prolog parser* reads the XML declaration and the root start tag;
//! * at the `<server-data/>` level the reader looks at the next token
//!   itself: whitespace is skipped; a start tag (`<host …>`) is cut out of
//!   the input, validated by a *probe parser* (the prolog followed by the
//!   tag made self-closing, so namespace prefixes resolve exactly as in the
//!   document), and becomes the header of a *host parser*, whose depth-1
//!   elements are the `<user/>`s. The header is rebuilt with the namespace
//!   declarations inherited from `<server-data/>`, so that the host parser
//!   resolves names like the document does. Anything else (the closing
//!   `</server-data>`, a comment, a DTD, text) goes to a *closing parser*
//!   that was given the prolog again, so that it is accepted or refused by
//!   the same rules as everywhere else;
//! * a document whose root is `<host/>` (ejabberd's per-host files,
//!   XEP-0227 §5) or `<user/>` (§5) needs only the prolog parser.
//!
//! At most one user (plus one read) is buffered at any time, in the parser
//! and in the reader's window, which keeps a copy to compute line and
//! column numbers. The parsers' errors carry no position, so when one fails
//! the reader replays the window into a fresh parser to find the byte whose
//! arrival revealed the error, and reports that byte's line and column.

use std::collections::{HashMap, VecDeque};
use std::fs::File;
use std::io::{ErrorKind, Read};
use std::path::{Component, Path, PathBuf};
use std::sync::Arc;

use xmppd_jid::DomainJid;
use xmppd_proto::data_form::DataForm;
use xmppd_xml::{
    Element, Event, LimitKind, Limits, RawElement, StreamHeader, StreamParser, XmlError, escape_attr, escape_text,
};

use crate::error::{Error, Location};
use crate::model::{Export, HostData, UserData};
use crate::ns;
use crate::user::{self, UserAttr};
use crate::window::{Window, advance_position};

/// Start tags (and the prolog) longer than this are refused.
const MAX_TAG_BYTES: usize = 64 * 1024;

/// The UTF-8 encoding of U+FEFF.
const BOM: &[u8] = b"\xEF\xBB\xBF";

/// Bytes fed at a time when replaying input to locate an error.
const REPLAY_STEP: usize = 4096;

/// A check of a PEP node's configuration form (XEP-0227 §4.10.1) run while
/// reading: `Err` with the reason when the importer would refuse it (for
/// example an unknown `pubsub#access_model`). The node is then skipped
/// with its items and reported as [`Error::InvalidRecord`] with its
/// location; the rest of the user is kept.
pub type NodeConfigCheck = fn(&DataForm) -> Result<(), String>;

/// Tunables of a [`Reader`].
#[derive(Debug, Clone)]
pub struct ReaderOptions {
    /// The largest `<user/>` element accepted, in bytes; a larger one is a
    /// fatal error. It bounds the reader's memory. Default: 64 MiB.
    pub max_user_bytes: usize,
    /// The deepest element nesting inside a `<user/>` (the user's children
    /// are at depth 2). Default: 64.
    pub max_depth: usize,
    /// How many bytes are read from the input at a time. Default: 64 KiB.
    pub read_size: usize,
    /// How many XInclude levels are followed (XEP-0227 §5 uses two: host
    /// files, then user files). Default: 4.
    pub max_include_depth: usize,
    /// The check of PEP node configurations, if any. Default: none (every
    /// well-formed data form is accepted).
    pub check_node_config: Option<NodeConfigCheck>,
}

impl Default for ReaderOptions {
    fn default() -> Self {
        ReaderOptions {
            max_user_bytes: 64 * 1024 * 1024,
            max_depth: 64,
            read_size: 64 * 1024,
            max_include_depth: 4,
            check_node_config: None,
        }
    }
}

impl ReaderOptions {
    fn limits(&self) -> Limits {
        Limits {
            max_stanza_bytes: self.max_user_bytes.max(1),
            max_header_bytes: MAX_TAG_BYTES,
            max_depth: self.max_depth.max(1),
            max_attributes: 256,
            // Prosody declares a prefix per namespaced attribute of <user/>.
            max_namespace_decls: 64,
        }
    }
}

/// What a document's root may be.
#[derive(Debug, Clone)]
enum Expect {
    /// The file given to the reader: `<server-data/>` or `<host/>`.
    Top,
    /// Included from `<server-data/>`: a `<host/>` file.
    Host,
    /// Included from a `<host/>`: a `<user/>` file.
    User(HostCtx),
}

/// The host whose users are being read.
#[derive(Debug, Clone)]
struct HostCtx {
    domain: DomainJid,
}

/// Where a host's users are read from.
struct ElementState {
    parser: StreamParser,
    /// Bytes that bring a fresh parser to the state at the window's start.
    header: Vec<u8>,
    limits: Limits,
    /// `None`: skip the element's children (unknown element, invalid host).
    host: Option<HostCtx>,
    /// For truncation messages, e.g. `<host jid='example.com'>`.
    label: String,
    /// After a `<host/>` of `<server-data/>`: back to that level; after a
    /// root `<host/>`: the end of the document.
    nested: bool,
}

/// A `<user/>` that is the root of an included file.
struct UserRootState {
    parser: StreamParser,
    attrs: Vec<UserAttr>,
    children: Vec<Element>,
    bytes: usize,
    location: Location,
    host: HostCtx,
}

enum State {
    /// Nothing read yet (the parser is made with the reader's options).
    Start,
    /// Before the root start tag. The parser is fed from the window here
    /// (not as data is read) so that a byte order mark can be dropped first.
    Prolog {
        parser: StreamParser,
        /// Window bytes fed to the parser.
        fed: usize,
        bom_checked: bool,
    },
    ServerLevel,
    Element(Box<ElementState>),
    Closing {
        parser: StreamParser,
        closed: bool,
    },
    UserRoot(Box<UserRootState>),
    Epilog(StreamParser),
    Done,
}

enum Step {
    Continue,
    NeedData,
    /// A user, with the records of it that were skipped.
    User(Box<(DomainJid, UserData, Location, Vec<Error>)>),
    Record(Error),
    Fatal(Error),
    Include {
        href: String,
        location: Location,
        expect: Expect,
    },
    Finished,
}

/// One input document (the main file or an included one).
struct Doc<'r> {
    source: Box<dyn Read + Send + 'r>,
    file: Option<Arc<str>>,
    dir: Option<PathBuf>,
    eof: bool,
    win: Window,
    /// The XML declaration, whitespace and root start tag, as read.
    prolog: Vec<u8>,
    /// The `<server-data/>` start tag, for the namespaces hosts inherit.
    root: Option<StreamHeader>,
    expect: Expect,
    state: State,
}

/// Reads a XEP-0227 document one user at a time (XEP-0227 §4), in bounded
/// memory.
///
/// The items are `(host, user)` pairs in file order, or errors: see
/// [`Error::is_fatal`]. After a fatal error the iterator ends. Users whose
/// record is bad are reported ([`Error::InvalidUser`]) and skipped as a
/// whole; so are duplicates ([`Error::DuplicateUser`]), for which the
/// reader remembers the names seen per host.
///
/// The input is refused unless it is UTF-8 XML that XMPP's restricted
/// parser accepts (RFC 6120 §11): no DTD, no entity references besides the
/// predefined ones, no comments or processing instructions; an XML
/// declaration at the start is accepted.
///
/// XInclude `<include href='…'/>` elements (§5) among the children of
/// `<server-data/>` (host files) and of `<host/>` (user files) are followed
/// when the reader knows a base directory (see [`Reader::open`],
/// [`Reader::with_include_dir`]); `href` must be a relative path below it.
/// An `<include/>` deeper inside a `<user/>` is user data (§6) and is kept
/// in [`UserData::unsupported`].
pub struct Reader<'r> {
    options: ReaderOptions,
    stack: Vec<Doc<'r>>,
    seen: HashMap<String, HashMap<Box<str>, Location>>,
    chunk: Vec<u8>,
    peak: usize,
    done: bool,
    /// Skipped records of the user found last, then that user: yielded
    /// before reading on.
    queued: VecDeque<Result<(DomainJid, UserData), Error>>,
}

impl<'r> Reader<'r> {
    /// A reader of `input`. XIncludes are not followed (see
    /// [`with_include_dir`](Self::with_include_dir)); locations have no file
    /// name (see [`with_file_name`](Self::with_file_name)).
    pub fn new(input: impl Read + Send + 'r) -> Reader<'r> {
        Reader {
            options: ReaderOptions::default(),
            stack: vec![Doc::new(Box::new(input), None, None, Expect::Top)],
            seen: HashMap::new(),
            chunk: Vec::new(),
            peak: 0,
            done: false,
            queued: VecDeque::new(),
        }
    }

    /// A reader of the file at `path`, naming it in locations and following
    /// XIncludes relative to its directory.
    pub fn open(path: impl AsRef<Path>) -> Result<Reader<'static>, Error> {
        let path = path.as_ref();
        let file = File::open(path).map_err(|source| Error::Io { location: None, source })?;
        let dir = path.parent().map(Path::to_path_buf).unwrap_or_default();
        Ok(Reader::new(file).with_file_name(&path.display().to_string()).with_include_dir(dir))
    }

    /// Sets the options. Call before reading.
    #[must_use]
    pub fn with_options(mut self, options: ReaderOptions) -> Reader<'r> {
        self.options = options;
        self
    }

    /// Names the input in locations. Call before reading.
    #[must_use]
    pub fn with_file_name(mut self, name: &str) -> Reader<'r> {
        if let Some(doc) = self.stack.first_mut() {
            doc.file = Some(Arc::from(name));
            doc.win.set_file(doc.file.clone());
        }
        self
    }

    /// Follows XIncludes relative to `dir`. Call before reading.
    #[must_use]
    pub fn with_include_dir(mut self, dir: impl Into<PathBuf>) -> Reader<'r> {
        if let Some(doc) = self.stack.first_mut() {
            doc.dir = Some(dir.into());
        }
        self
    }

    /// The most input bytes the reader has held at once (its window; the
    /// parser holds a copy of the same bytes). Bounded by the largest user
    /// plus one read.
    pub fn peak_buffered(&self) -> usize {
        self.peak
    }

    fn next_item(&mut self) -> Option<Result<(DomainJid, UserData), Error>> {
        if let Some(item) = self.queued.pop_front() {
            return Some(item);
        }
        loop {
            if self.done {
                return None;
            }
            let Some(doc) = self.stack.last_mut() else {
                self.done = true;
                return None;
            };
            match doc.step(&self.options) {
                Step::Continue => {}
                Step::NeedData => {
                    self.chunk.resize(self.options.read_size.max(1), 0);
                    if let Err(error) = doc.fill(&mut self.chunk) {
                        return self.fatal(error);
                    }
                    self.peak = self.peak.max(doc.win.len());
                }
                Step::User(found) => {
                    let (host, user, location, skipped) = *found;
                    let users = self.seen.entry(host.as_str().to_owned()).or_default();
                    if let Some(first) = users.get(user.username.as_str()) {
                        return Some(Err(Error::DuplicateUser {
                            location,
                            host: host.as_str().to_owned(),
                            user: user.username,
                            first: Box::new(first.clone()),
                        }));
                    }
                    users.insert(user.username.as_str().into(), location);
                    self.queued.extend(skipped.into_iter().map(Err));
                    self.queued.push_back(Ok((host, user)));
                    return self.queued.pop_front();
                }
                Step::Record(error) => return Some(Err(error)),
                Step::Fatal(error) => return self.fatal(error),
                Step::Include { href, location, expect } => match self.include(&href, expect) {
                    Ok(doc) => self.stack.push(doc),
                    Err(message) => return Some(Err(Error::Include { location, href, message })),
                },
                Step::Finished => {
                    self.stack.pop();
                }
            }
        }
    }

    fn fatal(&mut self, error: Error) -> Option<Result<(DomainJid, UserData), Error>> {
        self.done = true;
        self.stack.clear();
        Some(Err(error))
    }

    /// Opens the document an `<include href='…'/>` names (XEP-0227 §5).
    fn include(&self, href: &str, expect: Expect) -> Result<Doc<'r>, String> {
        if self.stack.len() > self.options.max_include_depth {
            return Err("includes are nested too deeply".to_owned());
        }
        let dir = self
            .stack
            .last()
            .and_then(|doc| doc.dir.clone())
            .ok_or("no base directory is known (read the export from a file)")?;
        let relative = Path::new(href);
        // XEP-0227 §5 requires relative URIs; stay below the directory.
        let plain = !href.is_empty()
            && !href.contains(':')
            && !href.contains('%')
            && relative.components().all(|component| matches!(component, Component::Normal(_)));
        if !plain {
            return Err("only relative paths below the including file's directory are followed".to_owned());
        }
        let path = dir.join(relative);
        let file = File::open(&path).map_err(|error| format!("cannot open {}: {error}", path.display()))?;
        let name: Arc<str> = Arc::from(path.display().to_string());
        let parent = path.parent().map(Path::to_path_buf);
        Ok(Doc::new(Box::new(file), Some(name), parent, expect))
    }
}

impl Iterator for Reader<'_> {
    type Item = Result<(DomainJid, UserData), Error>;

    fn next(&mut self) -> Option<Self::Item> {
        self.next_item()
    }
}

impl Export {
    /// Reads a whole export into memory: the users grouped by host, and the
    /// record errors met on the way. A fatal error is returned as `Err`.
    pub fn read(reader: Reader<'_>) -> Result<(Export, Vec<Error>), Error> {
        let mut export = Export::default();
        let mut errors = Vec::new();
        for item in reader {
            match item {
                Ok((domain, user)) => match export.hosts.iter_mut().find(|host| host.domain == domain) {
                    Some(host) => host.users.push(user),
                    None => export.hosts.push(HostData { domain, users: vec![user] }),
                },
                Err(error) if error.is_fatal() => return Err(error),
                Err(error) => errors.push(error),
            }
        }
        Ok((export, errors))
    }
}

impl<'r> Doc<'r> {
    fn new(source: Box<dyn Read + Send + 'r>, file: Option<Arc<str>>, dir: Option<PathBuf>, expect: Expect) -> Doc<'r> {
        Doc {
            source,
            win: Window::new(file.clone()),
            file,
            dir,
            eof: false,
            prolog: Vec::new(),
            root: None,
            expect,
            state: State::Start,
        }
    }

    /// Reads once from the source into the window and the current parser.
    fn fill(&mut self, chunk: &mut [u8]) -> Result<(), Error> {
        let count = loop {
            match self.source.read(chunk) {
                Ok(count) => break count,
                Err(error) if error.kind() == ErrorKind::Interrupted => {}
                Err(source) => {
                    return Err(Error::Io { location: Some(self.win.location_at(self.win.end())), source });
                }
            }
        };
        let data = chunk.get(..count).unwrap_or_default();
        if data.is_empty() {
            self.eof = true;
            return Ok(());
        }
        self.win.extend(data);
        match &mut self.state {
            State::Closing { parser, .. } | State::Epilog(parser) => parser.feed(data),
            State::Element(element) => element.parser.feed(data),
            State::UserRoot(root) => root.parser.feed(data),
            State::Start | State::Prolog { .. } | State::ServerLevel | State::Done => {}
        }
        Ok(())
    }

    fn step(&mut self, options: &ReaderOptions) -> Step {
        match self.state {
            State::Start => {
                let parser = StreamParser::new(options.limits());
                self.state = State::Prolog { parser, fed: 0, bom_checked: false };
                Step::Continue
            }
            State::Prolog { .. } => self.prolog_step(options),
            State::ServerLevel => self.server_level_step(options),
            State::Element(_) => self.element_step(options),
            State::Closing { .. } => self.closing_step(options),
            State::UserRoot(_) => self.user_root_step(options),
            State::Epilog(_) => self.epilog_step(),
            State::Done => Step::Finished,
        }
    }

    fn xml_error(&self, source: XmlError, offset: u64) -> Step {
        Step::Fatal(Error::Xml { location: self.win.location_at(offset), source })
    }

    fn truncated(&self, element: String) -> Step {
        let location = self.win.location_at(self.win.end());
        let element = match self.win.first_non_whitespace() {
            Some(start) => format!("{element} (the element at {} is incomplete)", self.win.location_at(start)),
            None => element,
        };
        Step::Fatal(Error::Truncated { location, element })
    }

    fn prolog_step(&mut self, options: &ReaderOptions) -> Step {
        let State::Prolog { parser, fed, bom_checked } = &mut self.state else {
            return Step::Continue;
        };
        if !*bom_checked {
            if self.win.len() < BOM.len() && !self.eof {
                return Step::NeedData;
            }
            // XML 1.0 §4.3.3 allows a UTF-8 byte order mark in a file (a
            // stream has none: RFC 6120 §11.6), so it is dropped here.
            if self.win.bytes().starts_with(BOM) {
                self.win.skip_invisible(BOM.len());
            }
            *bom_checked = true;
        }
        parser.feed(self.win.bytes().get(*fed..).unwrap_or_default());
        *fed = self.win.len();
        match parser.next_event() {
            Ok(None) if !self.eof => Step::NeedData,
            Ok(None) => match self.win.first_non_whitespace() {
                None => not_piefxis(self.win.location_at(self.win.end()), "the input is empty".to_owned()),
                Some(_) => self.truncated("the prolog (no complete root start tag)".to_owned()),
            },
            Ok(Some(Event::StreamOpen(header))) => {
                let end = self.win.end().saturating_sub(parser.buffered_len() as u64);
                let prolog_len = usize::try_from(end.saturating_sub(self.win.start())).unwrap_or(usize::MAX);
                self.prolog = self.win.bytes().get(..prolog_len).unwrap_or_default().to_vec();
                let root_location = self.win.location_at(self.win.start() + root_tag_start(&self.prolog) as u64);
                self.win.advance_to(end);
                let State::Prolog { parser, .. } = std::mem::replace(&mut self.state, State::Done) else {
                    return Step::Continue;
                };
                self.open_root(header, parser, root_location, options)
            }
            Ok(Some(_)) => not_piefxis(self.win.location(), "unexpected content before the root".to_owned()),
            Err(error) => {
                let at = replay(&options.limits(), &[], self.win.bytes(), false);
                self.xml_error(error, self.win.start() + at)
            }
        }
    }

    /// Dispatches on the root element (XEP-0227 §4, §5).
    fn open_root(
        &mut self,
        header: StreamHeader,
        parser: StreamParser,
        location: Location,
        options: &ReaderOptions,
    ) -> Step {
        let (name, namespace) = (header.local_name().to_owned(), header.namespace().to_owned());
        if !ns::is_pie(&namespace) {
            return not_piefxis(
                location,
                format!("the root element is {{{namespace}}}{name}, not XEP-0227's <server-data xmlns='{}'/>", ns::PIE),
            );
        }
        let self_closing = self.prolog.ends_with(b"/>");
        match (name.as_str(), &self.expect) {
            ("server-data", Expect::Top) => {
                self.root = Some(header);
                self.state = if self_closing { State::Closing { parser, closed: false } } else { State::ServerLevel };
                Step::Continue
            }
            ("host", Expect::Top | Expect::Host) => {
                let (host, outcome) = host_of(header.attr("jid"), &location);
                let label = host_label(header.attr("jid"));
                self.state = State::Element(Box::new(ElementState {
                    parser,
                    header: self.prolog.clone(),
                    limits: options.limits(),
                    host,
                    label,
                    nested: false,
                }));
                outcome
            }
            ("user", Expect::User(host)) => {
                let host = host.clone();
                self.state = State::UserRoot(Box::new(UserRootState {
                    parser,
                    attrs: UserAttr::of_header(&header),
                    children: Vec::new(),
                    bytes: 0,
                    location,
                    host,
                }));
                Step::Continue
            }
            (other, expect) => {
                let wanted = match expect {
                    Expect::Top => "<server-data/> or <host/>",
                    Expect::Host => "<host/> (it is included by <server-data/>)",
                    Expect::User(_) => "<user/> (it is included by a <host/>)",
                };
                not_piefxis(location, format!("the root element is <{other}/>; expected {wanted}"))
            }
        }
    }

    /// Between the children of `<server-data/>`.
    fn server_level_step(&mut self, options: &ReaderOptions) -> Step {
        self.win.skip_whitespace();
        let bytes = self.win.bytes();
        let Some(&first) = bytes.first() else {
            return if self.eof { self.truncated("<server-data>".to_owned()) } else { Step::NeedData };
        };
        if first != b'<' {
            return self.enter_closing(options);
        }
        match bytes.get(1) {
            None if self.eof => return self.enter_closing(options),
            None => return Step::NeedData,
            Some(b'/' | b'!' | b'?') => return self.enter_closing(options),
            Some(_) => {}
        }
        match find_tag_end(bytes) {
            TagEnd::Found(end) => self.open_child(end, options),
            TagEnd::Lt(index) => {
                self.xml_error(XmlError::NotWellFormed("'<' inside a start tag"), self.win.start() + index as u64)
            }
            TagEnd::More if bytes.len() > MAX_TAG_BYTES => {
                self.xml_error(XmlError::PolicyViolation(LimitKind::HeaderSize), self.win.start())
            }
            TagEnd::More if self.eof => self.truncated("<server-data>".to_owned()),
            TagEnd::More => Step::NeedData,
        }
    }

    /// Hands what follows to a parser that has seen the prolog again: it
    /// accepts `</server-data>` and trailing whitespace, and refuses the
    /// rest with the restricted parser's own errors.
    fn enter_closing(&mut self, options: &ReaderOptions) -> Step {
        let mut parser = StreamParser::new(options.limits());
        parser.feed(&self.prolog);
        if !matches!(parser.next_event(), Ok(Some(Event::StreamOpen(_)))) {
            return not_piefxis(self.win.location(), "the prolog cannot be parsed again".to_owned());
        }
        parser.feed(self.win.bytes());
        self.state = State::Closing { parser, closed: false };
        Step::Continue
    }

    fn closing_step(&mut self, options: &ReaderOptions) -> Step {
        let State::Closing { parser, closed } = &mut self.state else {
            return Step::Continue;
        };
        match parser.next_event() {
            Ok(Some(Event::StreamClose)) => {
                *closed = true;
                let end = self.win.end().saturating_sub(parser.buffered_len() as u64);
                self.win.advance_to(end);
                Step::Continue
            }
            Ok(Some(_)) => not_piefxis(self.win.location(), "unexpected element after the hosts".to_owned()),
            Ok(None) => {
                let closed = *closed;
                let end = self.win.end().saturating_sub(parser.buffered_len() as u64);
                self.win.advance_to(end);
                match (self.eof, closed) {
                    (false, _) => Step::NeedData,
                    (true, true) => {
                        self.state = State::Done;
                        Step::Finished
                    }
                    (true, false) => self.truncated("<server-data>".to_owned()),
                }
            }
            // After the end tag the window no longer starts where a parser
            // given the prolog would be: the culprit is the first byte that
            // is not whitespace.
            Err(error) if *closed => {
                let at = self.win.first_non_whitespace().unwrap_or(self.win.start());
                self.xml_error(error, at)
            }
            Err(error) => {
                let at = replay(&options.limits(), &self.prolog, self.win.bytes(), false);
                self.xml_error(error, self.win.start() + at)
            }
        }
    }

    /// A child of `<server-data/>` whose start tag is `window[..end]`.
    fn open_child(&mut self, end: usize, options: &ReaderOptions) -> Step {
        let tag = self.win.bytes().get(..end).unwrap_or_default().to_vec();
        let location = self.win.location();
        let limits = options.limits();
        // Validate the tag where it stands: after the prolog, made
        // self-closing so that the probe parser completes the element.
        let probe = self_closing(&tag);
        let mut parser = StreamParser::new(limits.clone());
        parser.feed(&self.prolog);
        let raw = match parser.next_event().and_then(|_| {
            parser.feed(&probe);
            parser.next_event()
        }) {
            Ok(Some(Event::Stanza(raw))) => raw,
            Ok(_) => return not_piefxis(location, "unreadable start tag".to_owned()),
            Err(error) => {
                let at = replay(&limits, &self.prolog, &probe, false).min(tag.len().saturating_sub(1) as u64);
                return self.xml_error(error, self.win.start() + at);
            }
        };
        let (host, outcome) = if ns::is_pie(raw.namespace()) && raw.name() == "host" {
            host_of(raw.attr("jid"), &location)
        } else if raw.namespace() == ns::XINCLUDE && raw.name() == "include" {
            (None, include_step(&raw, location.clone(), Expect::Host))
        } else {
            (None, Step::Record(Error::Ignored { location: location.clone(), element: element_name(&raw) }))
        };
        let label = if host.is_some() { host_label(raw.attr("jid")) } else { format!("<{}>", raw.qualified_name()) };
        let header = inherited_header(&raw, &tag, self.root.as_ref());
        let limits = Limits { max_header_bytes: header.len() + 1, ..limits };
        let mut parser = StreamParser::new(limits.clone());
        parser.feed(&header);
        if !matches!(parser.next_event(), Ok(Some(Event::StreamOpen(_)))) {
            return not_piefxis(location, "the start tag cannot be reparsed with its namespaces".to_owned());
        }
        self.win.advance_to(self.win.start() + tag.len() as u64);
        parser.feed(self.win.bytes());
        self.state = State::Element(Box::new(ElementState { parser, header, limits, host, label, nested: true }));
        outcome
    }

    /// Inside a `<host/>` (or an element being skipped): its children.
    fn element_step(&mut self, options: &ReaderOptions) -> Step {
        let State::Element(element) = &mut self.state else {
            return Step::Continue;
        };
        match element.parser.next_event() {
            Ok(Some(Event::Stanza(raw))) => {
                let end = self.win.end().saturating_sub(element.parser.buffered_len() as u64);
                let start = end.saturating_sub(raw.bytes().len() as u64);
                let location = self.win.advance_to(start);
                self.win.advance_to(end);
                let Some(host) = &element.host else {
                    return Step::Continue;
                };
                if ns::is_pie(raw.namespace()) && raw.name() == "user" {
                    match raw.parse_element() {
                        Ok(user) => {
                            let attrs = UserAttr::of_element(&user);
                            finish_user(&attrs, user.children(), host, raw.bytes(), location, options)
                        }
                        Err(source) => Step::Fatal(Error::Xml { location, source }),
                    }
                } else if raw.namespace() == ns::XINCLUDE && raw.name() == "include" {
                    include_step(&raw, location, Expect::User(host.clone()))
                } else {
                    Step::Record(Error::Ignored { location, element: element_name(&raw) })
                }
            }
            Ok(Some(Event::StreamClose)) => {
                let end = self.win.end().saturating_sub(element.parser.buffered_len() as u64);
                self.win.advance_to(end);
                let State::Element(element) = std::mem::replace(&mut self.state, State::Done) else {
                    return Step::Continue;
                };
                self.state = if element.nested { State::ServerLevel } else { State::Epilog(element.parser) };
                Step::Continue
            }
            Ok(Some(Event::StreamOpen(_))) => Step::Continue,
            Ok(None) if !self.eof => Step::NeedData,
            Ok(None) => {
                let label = element.label.clone();
                self.truncated(label)
            }
            Err(error) => {
                let at = replay(&element.limits, &element.header, self.win.bytes(), true);
                self.xml_error(error, self.win.start() + at)
            }
        }
    }

    /// Inside a `<user/>` that is the root of its file.
    fn user_root_step(&mut self, options: &ReaderOptions) -> Step {
        let State::UserRoot(root) = &mut self.state else {
            return Step::Continue;
        };
        match root.parser.next_event() {
            Ok(Some(Event::Stanza(raw))) => {
                let end = self.win.end().saturating_sub(root.parser.buffered_len() as u64);
                let start = end.saturating_sub(raw.bytes().len() as u64);
                let location = self.win.advance_to(start);
                self.win.advance_to(end);
                root.bytes = root.bytes.saturating_add(raw.bytes().len());
                if root.bytes > options.max_user_bytes {
                    return Step::Fatal(Error::Xml {
                        location,
                        source: XmlError::PolicyViolation(LimitKind::StanzaSize),
                    });
                }
                match raw.parse_element() {
                    Ok(child) => {
                        root.children.push(child);
                        Step::Continue
                    }
                    Err(source) => Step::Fatal(Error::Xml { location, source }),
                }
            }
            Ok(Some(Event::StreamClose)) => {
                let end = self.win.end().saturating_sub(root.parser.buffered_len() as u64);
                self.win.advance_to(end);
                let State::UserRoot(root) = std::mem::replace(&mut self.state, State::Done) else {
                    return Step::Continue;
                };
                let root = *root;
                let tag = self.prolog.get(root_tag_start(&self.prolog)..).unwrap_or_default();
                let step = finish_user(&root.attrs, root.children.iter(), &root.host, tag, root.location, options);
                self.state = State::Epilog(root.parser);
                step
            }
            Ok(Some(Event::StreamOpen(_))) => Step::Continue,
            Ok(None) if !self.eof => Step::NeedData,
            Ok(None) => self.truncated("<user>".to_owned()),
            Err(error) => {
                let at = replay(&options.limits(), &self.prolog, self.win.bytes(), true);
                self.xml_error(error, self.win.start() + at)
            }
        }
    }

    /// After the root element of a `<host/>` or `<user/>` file: only
    /// whitespace may follow.
    fn epilog_step(&mut self) -> Step {
        let State::Epilog(parser) = &mut self.state else {
            return Step::Continue;
        };
        match parser.next_event() {
            Ok(Some(_)) => Step::Continue,
            Ok(None) => {
                let end = self.win.end().saturating_sub(parser.buffered_len() as u64);
                self.win.advance_to(end);
                if self.eof {
                    self.state = State::Done;
                    Step::Finished
                } else {
                    Step::NeedData
                }
            }
            Err(error) => {
                let at = self.win.first_non_whitespace().unwrap_or(self.win.start());
                self.xml_error(error, at)
            }
        }
    }
}

fn not_piefxis(location: Location, message: String) -> Step {
    Step::Fatal(Error::NotPiefxis { location, message })
}

/// Turns an interpreted user into a step, locating a bad record's offending
/// value in the user's bytes.
fn finish_user<'e>(
    attrs: &[UserAttr],
    children: impl IntoIterator<Item = &'e Element>,
    host: &HostCtx,
    bytes: &[u8],
    location: Location,
    options: &ReaderOptions,
) -> Step {
    let locate = |hint: Option<&str>| match hint.and_then(|hint| find_value(bytes, hint)) {
        Some(index) => {
            let (line, column) =
                advance_position(location.line, location.column, bytes.get(..index).unwrap_or_default());
            Location { line, column, offset: location.offset + index as u64, ..location.clone() }
        }
        None => location.clone(),
    };
    match user::interpret(attrs, children, &host.domain, options.check_node_config) {
        Ok((user, skipped)) => {
            let skipped = skipped
                .into_iter()
                .map(|invalid| Error::InvalidRecord {
                    location: locate(invalid.hint.as_deref()),
                    host: host.domain.as_str().to_owned(),
                    user: user.username.clone(),
                    message: invalid.message,
                })
                .collect();
            Step::User(Box::new((host.domain.clone(), user, location.clone(), skipped)))
        }
        Err(invalid) => Step::Record(Error::InvalidUser {
            location: locate(invalid.hint.as_deref()),
            host: host.domain.as_str().to_owned(),
            user: user::raw_name(attrs),
            message: invalid.message,
        }),
    }
}

/// The offset of `value` in `bytes`: as a quoted attribute value or as the
/// whole content of an element if it appears as one, else anywhere.
fn find_value(bytes: &[u8], value: &str) -> Option<usize> {
    if value.is_empty() {
        return None;
    }
    let find = |needle: &[u8]| bytes.windows(needle.len().max(1)).position(|window| window == needle);
    let escaped_attr = escape_attr(value);
    let escaped_text = escape_text(value);
    for (open, escaped, close) in
        [(b'\'', &escaped_attr, b'\''), (b'"', &escaped_attr, b'"'), (b'>', &escaped_text, b'<')]
    {
        let mut needle = vec![open];
        needle.extend_from_slice(escaped.as_bytes());
        needle.push(close);
        if let Some(index) = find(&needle) {
            return Some(index + 1);
        }
    }
    find(value.as_bytes())
}

/// The `<host/>` context of a `jid` attribute, or the record error.
fn host_of(jid: Option<&str>, location: &Location) -> (Option<HostCtx>, Step) {
    let error = |message: String| Step::Record(Error::InvalidHost { location: location.clone(), message });
    match jid {
        None => (None, error("the <host/> has no 'jid' attribute; its users are skipped".to_owned())),
        Some(text) => match text.parse::<DomainJid>() {
            Ok(domain) => (Some(HostCtx { domain }), Step::Continue),
            Err(reason) => (None, error(format!("'{text}' is not a domain ({reason}); its users are skipped"))),
        },
    }
}

fn host_label(jid: Option<&str>) -> String {
    format!("<host jid='{}'>", escape_attr(jid.unwrap_or_default()))
}

fn include_step(raw: &RawElement, location: Location, expect: Expect) -> Step {
    match raw.attr("href") {
        Some(href) => Step::Include { href: href.to_owned(), location, expect },
        None => Step::Record(Error::Include {
            location,
            href: String::new(),
            message: "the <include/> has no 'href' attribute".to_owned(),
        }),
    }
}

fn element_name(raw: &RawElement) -> String {
    format!("{{{}}}{}", raw.namespace(), raw.name())
}

/// Where the root start tag begins in a validated prolog.
fn root_tag_start(prolog: &[u8]) -> usize {
    let mut index = 0;
    if prolog.starts_with(b"<?xml") {
        index = prolog.windows(2).position(|pair| pair == b"?>").map_or(0, |end| end + 2);
    }
    index + prolog.get(index..).unwrap_or_default().iter().take_while(|b| b.is_ascii_whitespace()).count()
}

enum TagEnd {
    /// The tag ends just before this index.
    Found(usize),
    /// A `<` at this index, which no start tag may contain.
    Lt(usize),
    More,
}

/// Finds the `>` ending the start tag at `bytes[0]`, skipping quoted values.
fn find_tag_end(bytes: &[u8]) -> TagEnd {
    let mut quote = 0u8;
    for (index, &b) in bytes.iter().enumerate().skip(1) {
        match b {
            b'<' => return TagEnd::Lt(index),
            b'"' | b'\'' if quote == 0 => quote = b,
            _ if b == quote => quote = 0,
            b'>' if quote == 0 => return TagEnd::Found(index + 1),
            _ => {}
        }
    }
    TagEnd::More
}

/// `<a …>` as `<a …/>`.
fn self_closing(tag: &[u8]) -> Vec<u8> {
    if tag.ends_with(b"/>") {
        return tag.to_vec();
    }
    let mut probe = tag.get(..tag.len().saturating_sub(1)).unwrap_or_default().to_vec();
    probe.extend_from_slice(b"/>");
    probe
}

/// The start tag `tag` of a `<server-data/>` child, with the namespace
/// declarations it inherits written onto it, so that a parser given it as
/// its root resolves names as the document does.
fn inherited_header(raw: &RawElement, tag: &[u8], root: Option<&StreamHeader>) -> Vec<u8> {
    let qname = raw.qualified_name();
    let own: Vec<Option<&str>> = raw.namespace_declarations().map(|(prefix, _)| prefix).collect();
    let mut header = Vec::with_capacity(tag.len() + 128);
    header.push(b'<');
    header.extend_from_slice(qname.as_bytes());
    if let Some(root) = root {
        if let Some(default) = root.default_namespace()
            && !own.contains(&None)
        {
            header.extend_from_slice(b" xmlns='");
            header.extend_from_slice(escape_attr(default).as_bytes());
            header.push(b'\'');
        }
        for (prefix, uri) in root.prefixes() {
            if !own.contains(&Some(prefix.as_str())) {
                header.extend_from_slice(format!(" xmlns:{prefix}='{}'", escape_attr(uri)).as_bytes());
            }
        }
    }
    header.extend_from_slice(tag.get(1 + qname.len()..).unwrap_or_default());
    header
}

/// The offset in `data` of the byte whose arrival made a fresh parser
/// (given `header` first) fail; `data.len()` if it does not fail. Parsing
/// is deterministic whatever the chunking, so a first pass feeds `data` in
/// steps to find the step that fails, and a second one feeds everything
/// before that step at once and the step byte by byte. With
/// `stop_at_close`, parsing stops at the root's end tag, as the reader's
/// host parsers do.
fn replay(limits: &Limits, header: &[u8], data: &[u8], stop_at_close: bool) -> u64 {
    let fresh = || {
        let mut parser = StreamParser::new(limits.clone());
        parser.feed(header);
        let state = drain(&mut parser, stop_at_close);
        (parser, state)
    };
    let (mut parser, state) = fresh();
    if state != Drained::Open {
        return 0;
    }
    let mut failing = None;
    for (index, step) in data.chunks(REPLAY_STEP).enumerate() {
        parser.feed(step);
        match drain(&mut parser, stop_at_close) {
            Drained::Open => {}
            Drained::Closed => return data.len() as u64,
            Drained::Failed => {
                failing = Some(index * REPLAY_STEP);
                break;
            }
        }
    }
    let Some(start) = failing else {
        return data.len() as u64;
    };
    let (mut parser, _) = fresh();
    parser.feed(data.get(..start).unwrap_or_default());
    if drain(&mut parser, stop_at_close) != Drained::Open {
        return start as u64;
    }
    let end = (start + REPLAY_STEP).min(data.len());
    for index in start..end {
        parser.feed(data.get(index..=index).unwrap_or_default());
        if drain(&mut parser, stop_at_close) != Drained::Open {
            return index as u64;
        }
    }
    end.saturating_sub(1) as u64
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Drained {
    /// All events taken; more input is needed.
    Open,
    /// The root's end tag was reached (with `stop_at_close`).
    Closed,
    Failed,
}

fn drain(parser: &mut StreamParser, stop_at_close: bool) -> Drained {
    loop {
        match parser.next_event() {
            Ok(None) => return Drained::Open,
            Ok(Some(Event::StreamClose)) if stop_at_close => return Drained::Closed,
            Ok(Some(_)) => {}
            Err(_) => return Drained::Failed,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn tag_ends() {
        assert!(matches!(find_tag_end(b"<a b='>'>rest"), TagEnd::Found(9)));
        assert!(matches!(find_tag_end(b"<a b=\"'\">"), TagEnd::Found(9)));
        assert!(matches!(find_tag_end(b"<a b='x"), TagEnd::More));
        assert!(matches!(find_tag_end(b"<a <b>"), TagEnd::Lt(3)));
        assert_eq!(self_closing(b"<a x='1'>"), b"<a x='1'/>");
        assert_eq!(self_closing(b"<a/>"), b"<a/>");
        assert_eq!(root_tag_start(b"<?xml version='1.0'?>\n <r>"), 23);
        assert_eq!(root_tag_start(b"<r>"), 0);
    }

    #[test]
    fn value_search() {
        assert_eq!(find_value(b"<a x='bob' y='b'>", "b"), Some(14));
        assert_eq!(find_value(b"<a x=\"it's\">", "it's"), Some(6));
        assert_eq!(find_value(b"<s>abc</s>", "abc"), Some(3));
        assert_eq!(find_value(b"<s/>", "zz"), None);
    }
}
