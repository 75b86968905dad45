//! The address types: [`Jid`], [`BareJid`], [`FullJid`] and [`DomainJid`].
//!
//! Each stores its normalised text once (a boxed `str`) plus the byte
//! offsets of the `@` and `/` separators, so a [`FullJid`] or [`BareJid`]
//! is 24 bytes plus one heap allocation.

use std::cmp::Ordering;
use std::fmt;
use std::hash::{Hash, Hasher};
use std::num::NonZeroU16;
use std::str::FromStr;

use crate::error::JidError;
use crate::prep::{nameprep, nodeprep, resourceprep};

/// An XMPP address with or without a resourcepart (RFC 7622 §3.1:
/// `[ localpart "@" ] domainpart [ "/" resourcepart ]`).
///
/// Equality, ordering and hashing use the normalised (enforced) string, so
/// `Juliet@Example.COM` equals `juliet@example.com` (RFC 7622 §3.2.3,
/// §3.3.3, §3.4.3).
#[derive(Clone)]
pub enum Jid {
    /// An address without a resourcepart.
    Bare(BareJid),
    /// An address with a resourcepart.
    Full(FullJid),
}

/// An XMPP address without a resourcepart, `[ localpart "@" ] domainpart`
/// (RFC 6120 §1.4 "bare JID"). A domain JID such as `example.com` is a
/// `BareJid` without a localpart.
#[derive(Clone)]
pub struct BareJid {
    /// Normalised text.
    text: Box<str>,
    /// Byte offset of the `@` separator, if there is a localpart.
    at: Option<NonZeroU16>,
}

/// An XMPP address with a resourcepart,
/// `[ localpart "@" ] domainpart "/" resourcepart` (RFC 6120 §1.4
/// "full JID").
#[derive(Clone)]
pub struct FullJid {
    /// Normalised text.
    text: Box<str>,
    /// Byte offset of the `@` separator, if there is a localpart.
    at: Option<NonZeroU16>,
    /// Byte offset of the `/` separator.
    slash: NonZeroU16,
}

/// An XMPP address that is a domainpart only, e.g. a server or component
/// address (RFC 7622 §3.2).
#[derive(Clone)]
pub struct DomainJid {
    /// Normalised domainpart.
    text: Box<str>,
}

/// The three parts of an address as split by RFC 7622 §3.1, before any
/// preparation.
struct RawParts<'a> {
    node: Option<&'a str>,
    domain: &'a str,
    resource: Option<&'a str>,
}

impl<'a> RawParts<'a> {
    /// Splits an address per RFC 7622 §3.1: the resourcepart is everything
    /// after the first `/`; the localpart is everything before the first
    /// `@` that precedes that `/`; the rest is the domainpart.
    fn split(input: &'a str) -> Self {
        let (before_slash, resource) = match input.split_once('/') {
            Some((head, resource)) => (head, Some(resource)),
            None => (input, None),
        };
        let (node, domain) = match before_slash.split_once('@') {
            Some((node, domain)) => (Some(node), domain),
            None => (None, before_slash),
        };
        Self { node, domain, resource }
    }
}

/// A prepared address: normalised text and separator offsets.
struct Assembled {
    text: Box<str>,
    at: Option<NonZeroU16>,
    slash: Option<NonZeroU16>,
}

/// Converts a separator offset to the stored form. Offsets are at most
/// 2 × 1023 + 1 and never zero (the part before a separator is non-empty).
fn separator_offset(offset: usize) -> Result<NonZeroU16, JidError> {
    u16::try_from(offset).ok().and_then(NonZeroU16::new).ok_or(JidError::DomainTooLong)
}

/// Prepares each part (RFC 7622 §3.2–§3.4) and joins them.
fn assemble(node: Option<&str>, domain: &str, resource: Option<&str>) -> Result<Assembled, JidError> {
    let node = node.map(nodeprep).transpose()?;
    let domain = nameprep(domain)?;
    let resource = resource.map(resourceprep).transpose()?;

    let node_len = node.as_ref().map_or(0, |n| n.len() + 1);
    let resource_len = resource.as_ref().map_or(0, |r| r.len() + 1);
    let mut text = String::with_capacity(node_len + domain.len() + resource_len);
    let mut at = None;
    if let Some(node) = &node {
        text.push_str(node);
        at = Some(separator_offset(text.len())?);
        text.push('@');
    }
    text.push_str(&domain);
    let mut slash = None;
    if let Some(resource) = &resource {
        slash = Some(separator_offset(text.len())?);
        text.push('/');
        text.push_str(resource);
    }
    Ok(Assembled { text: text.into_boxed_str(), at, slash })
}

/// The localpart of `text` given the `@` offset.
fn node_of(text: &str, at: Option<NonZeroU16>) -> Option<&str> {
    at.and_then(|at| text.get(..usize::from(at.get())))
}

/// The domainpart of `text`, which ends at `end`.
fn domain_of(text: &str, at: Option<NonZeroU16>, end: usize) -> &str {
    let start = at.map_or(0, |at| usize::from(at.get()) + 1);
    text.get(start..end).unwrap_or_default()
}

impl Jid {
    /// Builds an address from unprepared parts, enforcing each part
    /// (RFC 7622 §3.2–§3.4).
    pub fn from_parts(node: Option<&str>, domain: &str, resource: Option<&str>) -> Result<Self, JidError> {
        let Assembled { text, at, slash } = assemble(node, domain, resource)?;
        Ok(match slash {
            Some(slash) => Self::Full(FullJid { text, at, slash }),
            None => Self::Bare(BareJid { text, at }),
        })
    }

    /// The normalised address text.
    pub fn as_str(&self) -> &str {
        match self {
            Self::Bare(bare) => bare.as_str(),
            Self::Full(full) => full.as_str(),
        }
    }

    /// The localpart, if any (RFC 7622 §3.3).
    pub fn node(&self) -> Option<&str> {
        match self {
            Self::Bare(bare) => bare.node(),
            Self::Full(full) => full.node(),
        }
    }

    /// The domainpart (RFC 7622 §3.2).
    pub fn domain(&self) -> &str {
        match self {
            Self::Bare(bare) => bare.domain(),
            Self::Full(full) => full.domain(),
        }
    }

    /// The resourcepart, if any (RFC 7622 §3.4).
    pub fn resource(&self) -> Option<&str> {
        match self {
            Self::Bare(_) => None,
            Self::Full(full) => Some(full.resource()),
        }
    }

    /// The text of the bare address, without allocating.
    pub fn bare_str(&self) -> &str {
        match self {
            Self::Bare(bare) => bare.as_str(),
            Self::Full(full) => full.bare_str(),
        }
    }

    /// Whether the address has a resourcepart.
    pub fn is_full(&self) -> bool {
        matches!(self, Self::Full(_))
    }

    /// Whether the address has no resourcepart.
    pub fn is_bare(&self) -> bool {
        matches!(self, Self::Bare(_))
    }

    /// The address without its resourcepart (RFC 6120 §1.4).
    pub fn to_bare(&self) -> BareJid {
        match self {
            Self::Bare(bare) => bare.clone(),
            Self::Full(full) => full.to_bare(),
        }
    }

    /// The domainpart as an address of its own.
    pub fn to_domain_jid(&self) -> DomainJid {
        DomainJid::from_prepared(self.domain())
    }

    /// The full address, or the bare one back when there is no resourcepart.
    pub fn try_into_full(self) -> Result<FullJid, BareJid> {
        match self {
            Self::Full(full) => Ok(full),
            Self::Bare(bare) => Err(bare),
        }
    }

    /// A borrow of the full address, if this is one.
    pub fn as_full(&self) -> Option<&FullJid> {
        match self {
            Self::Full(full) => Some(full),
            Self::Bare(_) => None,
        }
    }

    /// A borrow of the bare address, if this is one.
    pub fn as_bare(&self) -> Option<&BareJid> {
        match self {
            Self::Bare(bare) => Some(bare),
            Self::Full(_) => None,
        }
    }
}

impl FromStr for Jid {
    type Err = JidError;

    /// Parses and enforces an address (RFC 7622 §3.1–§3.4).
    fn from_str(input: &str) -> Result<Self, JidError> {
        let parts = RawParts::split(input);
        Self::from_parts(parts.node, parts.domain, parts.resource)
    }
}

impl BareJid {
    /// Builds a bare address from unprepared parts, enforcing each part
    /// (RFC 7622 §3.2, §3.3).
    pub fn from_parts(node: Option<&str>, domain: &str) -> Result<Self, JidError> {
        let Assembled { text, at, .. } = assemble(node, domain, None)?;
        Ok(Self { text, at })
    }

    /// The normalised address text.
    pub fn as_str(&self) -> &str {
        &self.text
    }

    /// The localpart, if any (RFC 7622 §3.3).
    pub fn node(&self) -> Option<&str> {
        node_of(&self.text, self.at)
    }

    /// The domainpart (RFC 7622 §3.2).
    pub fn domain(&self) -> &str {
        domain_of(&self.text, self.at, self.text.len())
    }

    /// Whether the address is a domainpart only.
    pub fn is_domain(&self) -> bool {
        self.at.is_none()
    }

    /// The domainpart as an address of its own.
    pub fn to_domain_jid(&self) -> DomainJid {
        DomainJid::from_prepared(self.domain())
    }

    /// This address with the given resourcepart, which is enforced with the
    /// `OpaqueString` profile (RFC 7622 §3.4), e.g. for resource binding
    /// (RFC 6120 §7).
    pub fn with_resource(&self, resource: &str) -> Result<FullJid, JidError> {
        let resource = resourceprep(resource)?;
        let slash = separator_offset(self.text.len())?;
        let mut text = String::with_capacity(self.text.len() + 1 + resource.len());
        text.push_str(&self.text);
        text.push('/');
        text.push_str(&resource);
        Ok(FullJid { text: text.into_boxed_str(), at: self.at, slash })
    }
}

impl FromStr for BareJid {
    type Err = JidError;

    /// Parses and enforces a bare address; a resourcepart is an error.
    fn from_str(input: &str) -> Result<Self, JidError> {
        let parts = RawParts::split(input);
        if parts.resource.is_some() {
            return Err(JidError::UnexpectedResource);
        }
        Self::from_parts(parts.node, parts.domain)
    }
}

impl FullJid {
    /// Builds a full address from unprepared parts, enforcing each part
    /// (RFC 7622 §3.2–§3.4).
    pub fn from_parts(node: Option<&str>, domain: &str, resource: &str) -> Result<Self, JidError> {
        let Assembled { text, at, slash } = assemble(node, domain, Some(resource))?;
        let slash = slash.ok_or(JidError::MissingResource)?;
        Ok(Self { text, at, slash })
    }

    /// The normalised address text.
    pub fn as_str(&self) -> &str {
        &self.text
    }

    /// The localpart, if any (RFC 7622 §3.3).
    pub fn node(&self) -> Option<&str> {
        node_of(&self.text, self.at)
    }

    /// The domainpart (RFC 7622 §3.2).
    pub fn domain(&self) -> &str {
        domain_of(&self.text, self.at, usize::from(self.slash.get()))
    }

    /// The resourcepart (RFC 7622 §3.4).
    pub fn resource(&self) -> &str {
        self.text.get(usize::from(self.slash.get()) + 1..).unwrap_or_default()
    }

    /// The text of the bare address, without allocating.
    pub fn bare_str(&self) -> &str {
        self.text.get(..usize::from(self.slash.get())).unwrap_or_default()
    }

    /// The address without its resourcepart (RFC 6120 §1.4).
    pub fn to_bare(&self) -> BareJid {
        BareJid { text: Box::from(self.bare_str()), at: self.at }
    }

    /// The domainpart as an address of its own.
    pub fn to_domain_jid(&self) -> DomainJid {
        DomainJid::from_prepared(self.domain())
    }
}

impl FromStr for FullJid {
    type Err = JidError;

    /// Parses and enforces a full address; a missing resourcepart is an
    /// error.
    fn from_str(input: &str) -> Result<Self, JidError> {
        let parts = RawParts::split(input);
        let resource = parts.resource.ok_or(JidError::MissingResource)?;
        Self::from_parts(parts.node, parts.domain, resource)
    }
}

impl DomainJid {
    /// Wraps a domainpart that is already enforced.
    fn from_prepared(domain: &str) -> Self {
        Self { text: Box::from(domain) }
    }

    /// The normalised domainpart.
    pub fn as_str(&self) -> &str {
        &self.text
    }

    /// The domainpart (RFC 7622 §3.2); the same as [`DomainJid::as_str`].
    pub fn domain(&self) -> &str {
        &self.text
    }

    /// Always `None`: a domain address has no localpart.
    pub fn node(&self) -> Option<&str> {
        None
    }

    /// Always `None`: a domain address has no resourcepart.
    pub fn resource(&self) -> Option<&str> {
        None
    }

    /// This domain with the given resourcepart, enforced with the
    /// `OpaqueString` profile (RFC 7622 §3.4).
    pub fn with_resource(&self, resource: &str) -> Result<FullJid, JidError> {
        BareJid::from(self.clone()).with_resource(resource)
    }
}

impl FromStr for DomainJid {
    type Err = JidError;

    /// Parses and enforces a domain address (RFC 7622 §3.2); a localpart or
    /// resourcepart is an error.
    fn from_str(input: &str) -> Result<Self, JidError> {
        let parts = RawParts::split(input);
        if parts.resource.is_some() {
            return Err(JidError::UnexpectedResource);
        }
        if parts.node.is_some() {
            return Err(JidError::UnexpectedLocalpart);
        }
        let domain = nameprep(parts.domain)?;
        Ok(Self { text: Box::from(domain) })
    }
}

impl From<FullJid> for Jid {
    fn from(full: FullJid) -> Self {
        Self::Full(full)
    }
}

impl From<BareJid> for Jid {
    fn from(bare: BareJid) -> Self {
        Self::Bare(bare)
    }
}

impl From<DomainJid> for Jid {
    fn from(domain: DomainJid) -> Self {
        Self::Bare(domain.into())
    }
}

impl From<DomainJid> for BareJid {
    fn from(domain: DomainJid) -> Self {
        Self { text: domain.text, at: None }
    }
}

impl TryFrom<BareJid> for DomainJid {
    type Error = JidError;

    /// Fails with [`JidError::UnexpectedLocalpart`] if there is a localpart.
    fn try_from(bare: BareJid) -> Result<Self, JidError> {
        if bare.at.is_some() {
            return Err(JidError::UnexpectedLocalpart);
        }
        Ok(Self { text: bare.text })
    }
}

impl TryFrom<Jid> for FullJid {
    type Error = JidError;

    /// Fails with [`JidError::MissingResource`] for a bare address.
    fn try_from(jid: Jid) -> Result<Self, JidError> {
        jid.try_into_full().map_err(|_| JidError::MissingResource)
    }
}

impl TryFrom<Jid> for BareJid {
    type Error = JidError;

    /// Fails with [`JidError::UnexpectedResource`] for a full address; use
    /// [`Jid::to_bare`] to drop the resourcepart instead.
    fn try_from(jid: Jid) -> Result<Self, JidError> {
        match jid {
            Jid::Bare(bare) => Ok(bare),
            Jid::Full(_) => Err(JidError::UnexpectedResource),
        }
    }
}

/// Implements the traits that every address type shares, all based on the
/// normalised text returned by `as_str`.
macro_rules! impl_common_traits {
    ($name:ident) => {
        impl PartialEq for $name {
            fn eq(&self, other: &Self) -> bool {
                self.as_str() == other.as_str()
            }
        }

        impl Eq for $name {}

        impl PartialOrd for $name {
            fn partial_cmp(&self, other: &Self) -> Option<Ordering> {
                Some(self.cmp(other))
            }
        }

        impl Ord for $name {
            /// Orders by the normalised text, octet by octet.
            fn cmp(&self, other: &Self) -> Ordering {
                self.as_str().cmp(other.as_str())
            }
        }

        impl Hash for $name {
            fn hash<H: Hasher>(&self, state: &mut H) {
                self.as_str().hash(state);
            }
        }

        impl fmt::Display for $name {
            fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str(self.as_str())
            }
        }

        impl fmt::Debug for $name {
            fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.debug_tuple(stringify!($name)).field(&self.as_str()).finish()
            }
        }

        impl AsRef<str> for $name {
            fn as_ref(&self) -> &str {
                self.as_str()
            }
        }

        impl TryFrom<&str> for $name {
            type Error = JidError;

            fn try_from(input: &str) -> Result<Self, JidError> {
                input.parse()
            }
        }

        impl TryFrom<String> for $name {
            type Error = JidError;

            fn try_from(input: String) -> Result<Self, JidError> {
                input.parse()
            }
        }
    };
}

impl_common_traits!(Jid);
impl_common_traits!(BareJid);
impl_common_traits!(FullJid);
impl_common_traits!(DomainJid);

/// Implements equality between two address types by normalised text.
macro_rules! impl_cross_eq {
    ($left:ident, $right:ident) => {
        impl PartialEq<$right> for $left {
            fn eq(&self, other: &$right) -> bool {
                self.as_str() == other.as_str()
            }
        }

        impl PartialEq<$left> for $right {
            fn eq(&self, other: &$left) -> bool {
                self.as_str() == other.as_str()
            }
        }
    };
}

impl_cross_eq!(Jid, BareJid);
impl_cross_eq!(Jid, FullJid);
impl_cross_eq!(BareJid, DomainJid);

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;

    #[test]
    fn layout_is_compact() {
        assert_eq!(std::mem::size_of::<BareJid>(), 24);
        assert_eq!(std::mem::size_of::<FullJid>(), 24);
        assert_eq!(std::mem::size_of::<DomainJid>(), 16);
        assert!(std::mem::size_of::<Jid>() <= 32);
    }

    #[test]
    fn split_follows_rfc_7622_section_3_1() {
        let parts = RawParts::split("a@b/c@d/e");
        assert_eq!(parts.node, Some("a"));
        assert_eq!(parts.domain, "b");
        assert_eq!(parts.resource, Some("c@d/e"));
        let parts = RawParts::split("a.example.com/b@example.net");
        assert_eq!(parts.node, None);
        assert_eq!(parts.domain, "a.example.com");
        assert_eq!(parts.resource, Some("b@example.net"));
    }
}
