//! The XMPP XML stream layer (RFC 6120 §4 and §11).
//!
//! # Why hand-written
//!
//! An XMPP stream is one long XML document whose depth-1 children are the
//! stanzas. A server needs three things from its XML parser that generic
//! parsers do not give together: every way a peer can misbehave must map to
//! exactly one stream error condition (RFC 6120 §4.9.3), memory must stay
//! bounded whatever the peer sends, and stanzas must be routable without
//! building a DOM. [`StreamParser`] is a small incremental tokenizer and
//! validator written for that purpose alone.
//!
//! # What is accepted
//!
//! UTF-8 XML 1.0 with Namespaces in XML 1.0, restricted as RFC 6120 §11.1
//! demands:
//!
//! * no DTD, no comments, no processing instructions, and an XML declaration
//!   only at the very start of a stream: [`XmlError::RestrictedXml`];
//! * no entity references other than the five predefined ones
//!   (`&nbsp;` is [`XmlError::RestrictedXml`]), while a malformed reference is
//!   [`XmlError::NotWellFormed`];
//! * everything else XML and Namespaces in XML require is checked: UTF-8
//!   validity (also across `feed` boundaries), legal characters, name
//!   syntax, matching end tags, unique attributes, bound prefixes, the rules
//!   for the `xml` and `xmlns` prefixes, `]]>` outside CDATA. CDATA sections
//!   are allowed;
//! * character data between stanzas must be whitespace (keepalives, §4.6.1),
//!   which is skipped; anything else is [`XmlError::BadFormat`];
//! * [`Limits`] bound stanza size, header size, depth, attributes and
//!   namespace declarations: [`XmlError::PolicyViolation`].
//!
//! [`XmlError::condition`] gives the RFC 6120 condition name.
//!
//! # How raw routing works
//!
//! Received bytes are appended to one [`bytes::BytesMut`]. The parser scans
//! it once, keeping the namespace declarations of open elements as byte
//! ranges. When a stanza's end tag is found, its bytes are split off the
//! buffer without copying and returned as a [`RawElement`], which records the
//! top-level name, namespace and attributes as ranges (unescaping only values
//! that contain references). Routing reads `to`/`from`/`type` from it and
//! forwards the bytes, rewriting only the start tag when needed
//! ([`RawElement::write_with_attrs`]). [`RawElement::is_self_contained`] tells
//! whether the bytes depend on prefixes declared on the stream header (such
//! as `stream:`), in which case they cannot be copied verbatim into another
//! stream. Modules that need to look inside a payload call
//! [`RawElement::parse_element`] to get an [`Element`].
//!
//! Per stanza, the hot path allocates only the attribute vector of the
//! top-level element (and strings for values that contain references); the
//! scanner's stacks are reused. Between stanzas, [`StreamParser::release_idle`]
//! gives the read buffer back so an idle connection holds almost nothing.

#![warn(missing_docs)]

mod chars;
mod dom;
mod error;
mod escape;
mod lex;
mod limits;
mod ns;
mod parser;
mod raw;

pub use crate::dom::{Element, ElementBuilder, Node};
pub use crate::error::{LimitKind, XmlError};
pub use crate::escape::{escape_attr, escape_attr_into, escape_text, escape_text_into, write_end_tag, write_start_tag};
pub use crate::limits::Limits;
pub use crate::ns::{XML_NS, XMLNS_NS};
pub use crate::parser::{Event, StreamHeader, StreamParser};
pub use crate::raw::RawElement;
