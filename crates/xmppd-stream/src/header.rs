//! Stream header validation and the response header (RFC 6120 §4.7, §4.8).

use xmppd_jid::{DomainJid, Jid};
use xmppd_proto::{StreamErrorCondition as Cond, ns};
use xmppd_xml::StreamHeader;

use crate::StreamError;

/// What the server learned from a valid initial stream header.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct HeaderInfo {
    /// The served domain named in `to` (RFC 6120 §4.7.2).
    pub to: DomainJid,
    /// The client's `from`, if it sent one (§4.7.1).
    pub from: Option<Jid>,
    /// The default language of the stream (§4.7.4).
    pub lang: Option<String>,
}

/// Validates an initial stream header sent by a client, in the order the RFC
/// implies: namespaces first (§4.8), then version (§4.7.5), then addressing
/// (§4.7.1, §4.7.2).
///
/// `is_served` answers whether a domain is one of this server's hosts.
/// The `Err` carries the stream error to send *after* the server's own
/// response header (§4.9.1.2).
pub fn check_c2s_header(
    header: &StreamHeader,
    is_served: impl Fn(&DomainJid) -> bool,
) -> Result<HeaderInfo, StreamError> {
    // §4.8.1: the stream element is qualified by the streams namespace.
    if header.namespace() != ns::STREAM {
        return Err(StreamError::new(
            Cond::InvalidNamespace,
            "the stream element must be in http://etherx.jabber.org/streams",
        ));
    }
    if header.local_name() != "stream" {
        return Err(StreamError::new(Cond::BadFormat, "the root element must be <stream:stream>"));
    }
    // §4.8.5: the stream namespace needs a prefix, since the default
    // namespace is the content namespace.
    if header.prefix().is_none() {
        return Err(StreamError::new(Cond::BadNamespacePrefix, "the stream element must use a namespace prefix"));
    }
    // §4.8.2: the content namespace of a c2s stream is jabber:client.
    if header.default_namespace() != Some(ns::CLIENT) {
        return Err(StreamError::new(Cond::InvalidNamespace, "the content namespace must be jabber:client"));
    }
    // §4.7.5: version 1.0 is required; a higher major version is refused.
    match header.attr("version") {
        None => {
            return Err(StreamError::new(Cond::UnsupportedVersion, "streams without version='1.0' are not supported"));
        }
        Some(version) => {
            let major = parse_version(version).map(|(major, _)| major);
            if major != Some(1) {
                return Err(StreamError::new(Cond::UnsupportedVersion, "only XMPP version 1.0 is supported"));
            }
        }
    }
    // §4.7.2: 'to' names the service; without it we cannot pick a host.
    let to = match header.attr("to") {
        None | Some("") => {
            return Err(StreamError::new(
                Cond::ImproperAddressing,
                "a 'to' attribute is required on the stream header",
            ));
        }
        Some(to) => match to.parse::<DomainJid>() {
            Ok(domain) => domain,
            Err(_) => {
                return Err(StreamError::new(Cond::ImproperAddressing, "the 'to' attribute is not a valid domain JID"));
            }
        },
    };
    if !is_served(&to) {
        return Err(StreamError::new(Cond::HostUnknown, "this server does not serve that domain"));
    }
    // §4.7.1: a client MAY announce its bare JID; it must at least be valid.
    let from = match header.attr("from") {
        None => None,
        Some(from) => match from.parse::<Jid>() {
            Ok(jid) => Some(jid),
            Err(_) => {
                return Err(StreamError::new(Cond::InvalidFrom, "the 'from' attribute is not a valid JID"));
            }
        },
    };
    let lang = header.attr("xml:lang").map(str::to_owned);
    Ok(HeaderInfo { to, from, lang })
}

/// Parses `major.minor` (RFC 6120 §4.7.5: integers, leading zeros ignored).
fn parse_version(version: &str) -> Option<(u32, u32)> {
    let (major, minor) = version.split_once('.')?;
    let all_digits = |s: &str| !s.is_empty() && s.bytes().all(|b| b.is_ascii_digit());
    if !all_digits(major) || !all_digits(minor) {
        return None;
    }
    Some((major.parse().ok()?, minor.parse().ok()?))
}

/// Serialises the server's response stream header (RFC 6120 §4.7).
///
/// `from` is the served domain (or the domain the client asked for, when the
/// header is sent only to carry an error); `to` echoes the client's `from`.
pub fn response_header(stream_id: &str, from: Option<&str>, to: Option<&str>, with_declaration: bool) -> Vec<u8> {
    let mut out = Vec::with_capacity(200);
    if with_declaration {
        out.extend_from_slice(b"<?xml version='1.0'?>");
    }
    out.extend_from_slice(b"<stream:stream xmlns='jabber:client' xmlns:stream='http://etherx.jabber.org/streams' id='");
    xmppd_xml::escape_attr_into(stream_id, &mut out);
    out.push(b'\'');
    if let Some(from) = from {
        out.extend_from_slice(b" from='");
        xmppd_xml::escape_attr_into(from, &mut out);
        out.push(b'\'');
    }
    if let Some(to) = to {
        out.extend_from_slice(b" to='");
        xmppd_xml::escape_attr_into(to, &mut out);
        out.push(b'\'');
    }
    out.extend_from_slice(b" version='1.0' xml:lang='en'>");
    out
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;
    use xmppd_xml::{Event, Limits, StreamParser};

    fn header(text: &str) -> StreamHeader {
        let mut parser = StreamParser::new(Limits::default());
        parser.feed(text.as_bytes());
        match parser.next_event().unwrap() {
            Some(Event::StreamOpen(h)) => h,
            other => panic!("unexpected {other:?}"),
        }
    }

    fn check(text: &str) -> Result<HeaderInfo, Cond> {
        check_c2s_header(&header(text), |d| d.as_str() == "example.com").map_err(|e| e.condition)
    }

    const NS: &str = "xmlns='jabber:client' xmlns:stream='http://etherx.jabber.org/streams'";

    #[test]
    fn accepts_a_good_header() {
        let info = check(&format!("<stream:stream {NS} to='example.com' version='1.0' xml:lang='en'>")).unwrap();
        assert_eq!(info.to.as_str(), "example.com");
        assert_eq!(info.lang.as_deref(), Some("en"));
    }

    #[test]
    fn header_errors() {
        let cases = [
            (
                "<stream:stream xmlns='jabber:client' xmlns:stream='urn:wrong' to='example.com' version='1.0'>".to_owned(),
                Cond::InvalidNamespace,
            ),
            (
                "<stream:stream xmlns='jabber:server' xmlns:stream='http://etherx.jabber.org/streams' to='example.com' version='1.0'>".to_owned(),
                Cond::InvalidNamespace,
            ),
            (format!("<stream:stream {NS} to='example.com' version='2.0'>"), Cond::UnsupportedVersion),
            (format!("<stream:stream {NS} to='example.com'>"), Cond::UnsupportedVersion),
            (format!("<stream:stream {NS} to='example.net' version='1.0'>"), Cond::HostUnknown),
            (format!("<stream:stream {NS} version='1.0'>"), Cond::ImproperAddressing),
            (format!("<stream:stream {NS} to='a@b@c' version='1.0'>"), Cond::ImproperAddressing),
            (format!("<stream:stream {NS} to='user@example.com' version='1.0'>"), Cond::ImproperAddressing),
            (format!("<stream:stream {NS} to='example.com' from='@@' version='1.0'>"), Cond::InvalidFrom),
        ];
        for (text, expected) in cases {
            assert_eq!(check(&text).unwrap_err(), expected, "{text}");
        }
    }

    #[test]
    fn minor_versions_are_accepted() {
        assert!(check(&format!("<stream:stream {NS} to='example.com' version='1.1'>")).is_ok());
        assert!(check(&format!("<stream:stream {NS} to='example.com' version='01.0'>")).is_ok());
    }
}
