//! The crate's error type and source locations.

use std::fmt;
use std::sync::Arc;

use xmppd_xml::{LimitKind, XmlError};

/// A position in an input file: 1-based line and column (columns count
/// characters), plus the byte offset.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct Location {
    /// The file's name as given to the reader, if any (included files always
    /// have one).
    pub file: Option<Arc<str>>,
    /// 1-based line number.
    pub line: u64,
    /// 1-based column, in characters.
    pub column: u64,
    /// 0-based byte offset.
    pub offset: u64,
}

impl fmt::Display for Location {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match &self.file {
            Some(file) => write!(f, "{file}:{}:{}", self.line, self.column),
            None => write!(f, "line {}, column {}", self.line, self.column),
        }
    }
}

/// Everything that can go wrong reading or writing XEP-0227 data.
///
/// A [`Reader`](crate::Reader) yields two kinds of errors: *fatal* ones (the
/// document cannot be read further: I/O, not well-formed or restricted XML,
/// truncation, a root that is not XEP-0227) after which it yields nothing
/// more, and *record* errors (one user, host or element is unusable) after
/// which it continues with the next user. [`Error::is_fatal`] tells them
/// apart; every reader error names its [`Location`].
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum Error {
    /// Reading the input failed. Fatal.
    #[error("{}: read error: {source}", display_opt(.location))]
    Io {
        /// Where the reader was (the end of the data read so far).
        location: Option<Location>,
        /// The underlying error.
        #[source]
        source: std::io::Error,
    },
    /// Writing the output failed.
    #[error("write error: {0}")]
    Write(#[source] std::io::Error),
    /// The document is not well-formed, or uses XML that XMPP's restricted
    /// parser refuses (DTDs, entity references, comments, processing
    /// instructions: RFC 6120 §11.1), or crosses a size limit. Fatal.
    #[error("{location}: {}", describe_xml(.source))]
    Xml {
        /// Where the parser detected the problem.
        location: Location,
        /// The parser's error.
        #[source]
        source: XmlError,
    },
    /// The input ends inside an element. Fatal.
    #[error("{location}: unexpected end of file inside {element}")]
    Truncated {
        /// The end of the input.
        location: Location,
        /// The innermost element left open, e.g. `<host jid='example.com'>`.
        element: String,
    },
    /// Well-formed XML that is not a XEP-0227 document (wrong root element
    /// or namespace, misplaced XInclude). Fatal.
    #[error("{location}: {message}")]
    NotPiefxis {
        /// Where.
        location: Location,
        /// What is wrong.
        message: String,
    },
    /// A `<host/>` whose `jid` is missing or invalid (XEP-0227 §4.1). Its
    /// users are skipped; reading continues after it.
    #[error("{location}: invalid host: {message}")]
    InvalidHost {
        /// The `<host/>` start tag.
        location: Location,
        /// What is wrong.
        message: String,
    },
    /// A `<user/>` with a bad record: invalid name or JID, bad base64,
    /// unknown subscription value… (XEP-0227 §4.2–§4.9). The user is
    /// skipped as a whole, never half-read; reading continues.
    #[error("{location}: user '{user}' of {host}: {message}")]
    InvalidUser {
        /// The offending value if it could be found, else the `<user/>` start
        /// tag.
        location: Location,
        /// The host's domain.
        host: String,
        /// The `name` attribute as written (empty if missing).
        user: String,
        /// What is wrong.
        message: String,
    },
    /// A record inside a `<user/>` that cannot be imported and is skipped
    /// while the rest of the user is kept: a PEP node or item (XEP-0227
    /// §4.10) without a node name or item id, twice in the file, or with a
    /// configuration the importer refuses ([`NodeConfigCheck`](crate::NodeConfigCheck)).
    /// Reported before the user it belongs to; reading continues.
    #[error("{location}: user '{user}' of {host}: {message}; skipped")]
    InvalidRecord {
        /// The offending value if it could be found, else the `<user/>`
        /// start tag (or the file, for Prosody's storage).
        location: Location,
        /// The host's domain.
        host: String,
        /// The normalized user name.
        user: String,
        /// What is wrong, naming the record.
        message: String,
    },
    /// A second `<user/>` with the same normalized name on the same host.
    /// The second one is skipped; reading continues.
    #[error("{location}: duplicate user '{user}' of {host} (first at {first})")]
    DuplicateUser {
        /// The duplicate's start tag.
        location: Location,
        /// The host's domain.
        host: String,
        /// The normalized name.
        user: String,
        /// Where the first one is (boxed to keep the error small).
        first: Box<Location>,
    },
    /// An XInclude `<include/>` (XEP-0227 §5) that was not followed: no
    /// base directory, a refused `href`, or a file that cannot be opened.
    /// Reading continues after it.
    #[error("{location}: XInclude of '{href}' not followed: {message}")]
    Include {
        /// The `<include/>` element.
        location: Location,
        /// Its `href`.
        href: String,
        /// Why.
        message: String,
    },
    /// An element outside any `<user/>` that XEP-0227 does not define, which
    /// was skipped (§4: "SHOULD ignore the unknown data, SHOULD notify the
    /// operator"). Reading continues.
    #[error("{location}: ignored unknown element {element}")]
    Ignored {
        /// The element's start tag.
        location: Location,
        /// Its name, `{namespace}name`.
        element: String,
    },
    /// The writer was used out of order (e.g. a user outside a host).
    #[error("writer misuse: {0}")]
    Misuse(&'static str),
    /// The writer was given data it cannot serialise (e.g. an offline
    /// message whose bytes are not one XML element).
    #[error("cannot write user '{user}': {message}")]
    InvalidData {
        /// The user being written.
        user: String,
        /// What is wrong.
        message: String,
    },
}

impl Error {
    /// Whether the reader stops after this error. Record errors
    /// ([`InvalidHost`](Error::InvalidHost), [`InvalidUser`](Error::InvalidUser),
    /// [`InvalidRecord`](Error::InvalidRecord),
    /// [`DuplicateUser`](Error::DuplicateUser), [`Include`](Error::Include),
    /// [`Ignored`](Error::Ignored)) are not fatal.
    pub fn is_fatal(&self) -> bool {
        !matches!(
            self,
            Error::InvalidHost { .. }
                | Error::InvalidUser { .. }
                | Error::InvalidRecord { .. }
                | Error::DuplicateUser { .. }
                | Error::Include { .. }
                | Error::Ignored { .. }
        )
    }

    /// Where in the input the error is, for reader errors.
    pub fn location(&self) -> Option<&Location> {
        match self {
            Error::Io { location, .. } => location.as_ref(),
            Error::Xml { location, .. }
            | Error::Truncated { location, .. }
            | Error::NotPiefxis { location, .. }
            | Error::InvalidHost { location, .. }
            | Error::InvalidUser { location, .. }
            | Error::InvalidRecord { location, .. }
            | Error::DuplicateUser { location, .. }
            | Error::Include { location, .. }
            | Error::Ignored { location, .. } => Some(location),
            Error::Write(_) | Error::Misuse(_) | Error::InvalidData { .. } => None,
        }
    }
}

fn display_opt(location: &Option<Location>) -> String {
    location.as_ref().map_or_else(|| "input".to_owned(), Location::to_string)
}

/// The parser's error in the vocabulary of a file rather than of a stream.
fn describe_xml(error: &XmlError) -> String {
    match error {
        XmlError::NotWellFormed(reason) => format!("not well-formed XML: {reason}"),
        XmlError::RestrictedXml(reason) => format!("refused by the restricted XML parser (RFC 6120 §11.1): {reason}"),
        XmlError::BadFormat(_) => "text is not allowed here (only elements and whitespace)".to_owned(),
        XmlError::PolicyViolation(LimitKind::StanzaSize) => "a <user/> element exceeds the size limit".to_owned(),
        XmlError::PolicyViolation(LimitKind::HeaderSize) => {
            "a start tag or the prolog exceeds the size limit".to_owned()
        }
        XmlError::PolicyViolation(LimitKind::Depth) => "elements are nested too deeply".to_owned(),
        XmlError::PolicyViolation(kind) => kind.describe().to_owned(),
        XmlError::UnsupportedEncoding => "unsupported encoding: only UTF-8 is accepted".to_owned(),
        other => other.to_string(),
    }
}
