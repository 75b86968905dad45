//! The error type of this crate.

/// Why a string is not a valid XMPP address or address part (RFC 7622 §3).
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum JidError {
    /// An `@` separator is present but the localpart before it is empty
    /// (RFC 7622 §3.3: a localpart MUST NOT be zero octets).
    #[error("localpart is empty")]
    EmptyLocalpart,
    /// The enforced localpart is longer than 1023 octets (RFC 7622 §3.3).
    #[error("localpart is longer than 1023 octets")]
    LocalpartTooLong,
    /// The localpart is rejected by the PRECIS `UsernameCaseMapped` profile
    /// (RFC 8265 §3.3) or contains one of the code points that RFC 7622 §3.3.1
    /// additionally prohibits (`" & ' / : < > @`).
    #[error("invalid localpart{}", describe_code_point(.code_point))]
    InvalidLocalpart {
        /// The offending code point, when one can be named.
        code_point: Option<char>,
    },
    /// The domainpart is empty (RFC 7622 §3.2: it MUST NOT be zero octets),
    /// including after stripping one trailing dot.
    #[error("domainpart is empty")]
    EmptyDomain,
    /// The domainpart is longer than 1023 octets (RFC 7622 §3.2).
    #[error("domainpart is longer than 1023 octets")]
    DomainTooLong,
    /// The domainpart is neither an IP address literal nor a domain name that
    /// passes UTS #46 processing with the STD3 rules, has no empty label and no
    /// label longer than 63 octets in A-label form (RFC 7622 §3.2,
    /// RFC 5890 §2.3.1).
    #[error("invalid domainpart")]
    InvalidDomain,
    /// A `/` separator is present but the resourcepart after it is empty
    /// (RFC 7622 §3.4: a resourcepart MUST NOT be zero octets).
    #[error("resourcepart is empty")]
    EmptyResource,
    /// The enforced resourcepart is longer than 1023 octets (RFC 7622 §3.4).
    #[error("resourcepart is longer than 1023 octets")]
    ResourceTooLong,
    /// The resourcepart is rejected by the PRECIS `OpaqueString` profile
    /// (RFC 8265 §4.2, RFC 7622 §3.4).
    #[error("invalid resourcepart{}", describe_code_point(.code_point))]
    InvalidResource {
        /// The offending code point, when one can be named.
        code_point: Option<char>,
    },
    /// A full JID (with a resourcepart) was required but the address is bare
    /// (RFC 6120 §1.4).
    #[error("address has no resourcepart")]
    MissingResource,
    /// A bare or domain JID was required but the address has a resourcepart.
    #[error("address has a resourcepart where none is allowed")]
    UnexpectedResource,
    /// A domain JID was required but the address has a localpart.
    #[error("address has a localpart where none is allowed")]
    UnexpectedLocalpart,
}

/// Renders the optional offending code point of an error message.
fn describe_code_point(code_point: &Option<char>) -> String {
    match code_point {
        Some(c) => format!(" (code point U+{:04X})", u32::from(*c)),
        None => String::new(),
    }
}
