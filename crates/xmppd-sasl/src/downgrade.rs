//! SCRAM downgrade protection (XEP-0474 version 0.5.0, 2025-10-25).

use base64::Engine;
use base64::engine::general_purpose::STANDARD;

use crate::channel_binding::ChannelBindingType;
use crate::crypto;
use crate::mechanism::HashAlg;

/// Separator between list items in the XEP-0474 hash input (`%x1E`).
const ITEM_SEPARATOR: u8 = 0x1E;
/// Separator between the mechanism and channel-binding lists (`%x1F`).
const LIST_SEPARATOR: u8 = 0x1F;

/// What the server advertised before authentication, for XEP-0474
/// (SASL SCRAM Downgrade Protection, implemented per version 0.5.0 of
/// 2025-10-25) and for detecting the RFC 5802 §6 `y`-flag downgrade.
///
/// Pass exactly the mechanism list of the SASL profile the client is using
/// (XEP-0474 §4.1: for SASL1 the `<mechanisms/>` list) and, if the
/// XEP-0440 `<sasl-channel-binding/>` feature was sent, its types.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct DowngradeInfo {
    mechanisms: Vec<String>,
    channel_binding_types: Option<Vec<String>>,
}

impl DowngradeInfo {
    /// No advertisement information: the server-first-message carries no
    /// XEP-0474 `h` attribute, and the mechanism is not checked against
    /// an advertised list.
    pub fn none() -> DowngradeInfo {
        DowngradeInfo::default()
    }

    /// The advertised SASL mechanism names, e.g. `["SCRAM-SHA-1",
    /// "SCRAM-SHA-1-PLUS", "EXTERNAL"]` (any order; XEP-0474 §4.1 sorts).
    pub fn new<I, S>(mechanisms: I) -> DowngradeInfo
    where
        I: IntoIterator<Item = S>,
        S: Into<String>,
    {
        DowngradeInfo { mechanisms: mechanisms.into_iter().map(Into::into).collect(), channel_binding_types: None }
    }

    /// Adds the channel-binding type names advertised with XEP-0440. An
    /// empty list means XEP-0440 was not used.
    pub fn with_channel_binding_types<I, S>(mut self, types: I) -> DowngradeInfo
    where
        I: IntoIterator<Item = S>,
        S: Into<String>,
    {
        let types: Vec<String> = types.into_iter().map(Into::into).collect();
        self.channel_binding_types = if types.is_empty() { None } else { Some(types) };
        self
    }

    /// Convenience constructor from typed values.
    pub fn from_advertised(
        mechanisms: &[crate::Mechanism],
        channel_binding_types: &[ChannelBindingType],
    ) -> DowngradeInfo {
        DowngradeInfo::new(mechanisms.iter().map(|mechanism| mechanism.name()))
            .with_channel_binding_types(channel_binding_types.iter().map(|t| t.name()))
    }

    /// The advertised mechanism names, as given.
    pub fn mechanisms(&self) -> &[String] {
        &self.mechanisms
    }

    /// The XEP-0440 channel-binding type names, if XEP-0440 was used.
    pub fn channel_binding_types(&self) -> Option<&[String]> {
        self.channel_binding_types.as_deref()
    }

    /// Whether a mechanism list was given at all.
    pub fn is_empty(&self) -> bool {
        self.mechanisms.is_empty()
    }

    /// Whether the list contains `name`; `None` if no list was given.
    pub(crate) fn advertises(&self, name: &str) -> Option<bool> {
        if self.is_empty() { None } else { Some(self.mechanisms.iter().any(|m| m == name)) }
    }

    /// Whether any `-PLUS` mechanism was advertised; `None` if no list was
    /// given.
    pub(crate) fn advertises_plus(&self) -> Option<bool> {
        if self.is_empty() { None } else { Some(self.mechanisms.iter().any(|m| m.ends_with("-PLUS"))) }
    }

    /// The XEP-0474 §4.1 hash input S: sorted mechanisms joined by `%x1E`;
    /// then, if XEP-0440 was used, `%x1F` and the sorted channel-binding
    /// types joined by `%x1E`. Sorting is by octets ("i;octet", RFC 4790
    /// §9.3), which is Rust's `str` ordering.
    pub fn hash_input(&self) -> Vec<u8> {
        let mut mechanisms: Vec<&str> = self.mechanisms.iter().map(String::as_str).collect();
        mechanisms.sort_unstable();
        let mut input = join(&mechanisms);
        if let Some(types) = &self.channel_binding_types {
            let mut types: Vec<&str> = types.iter().map(String::as_str).collect();
            types.sort_unstable();
            input.push(LIST_SEPARATOR);
            input.extend(join(&types));
        }
        input
    }

    /// The base64 value of the XEP-0474 `h` attribute for a SCRAM mechanism
    /// using `hash`, or `None` when no mechanism list was given.
    pub fn attribute_value(&self, hash: HashAlg) -> Option<String> {
        if self.is_empty() {
            return None;
        }
        Some(STANDARD.encode(crypto::hash(hash, &self.hash_input())))
    }
}

fn join(items: &[&str]) -> Vec<u8> {
    let mut out = Vec::new();
    for (index, item) in items.iter().enumerate() {
        if index > 0 {
            out.push(ITEM_SEPARATOR);
        }
        out.extend_from_slice(item.as_bytes());
    }
    out
}
