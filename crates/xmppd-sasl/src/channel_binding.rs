//! Channel-binding types and data (RFC 5056, RFC 5929, RFC 9266, XEP-0440).

use std::fmt;

/// Namespace of the XEP-0440 `<sasl-channel-binding/>` stream feature.
pub const SASL_CB_NS: &str = "urn:xmpp:sasl-cb:0";

/// A channel-binding type this crate can verify (RFC 5802 §6).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum ChannelBindingType {
    /// `tls-exporter` (RFC 9266): TLS exporter with label
    /// `EXPORTER-Channel-Binding`, empty context, 32 octets.
    TlsExporter,
    /// `tls-server-end-point` (RFC 5929 §4): hash of the server certificate.
    TlsServerEndPoint,
}

impl ChannelBindingType {
    /// Every supported type, strongest first.
    pub const ALL: [ChannelBindingType; 2] = [ChannelBindingType::TlsExporter, ChannelBindingType::TlsServerEndPoint];

    /// The channel-binding unique prefix registered with IANA, as used in
    /// the GS2 header `p=` (RFC 5802 §7) and the XEP-0440 `type` attribute.
    pub fn name(self) -> &'static str {
        match self {
            ChannelBindingType::TlsExporter => "tls-exporter",
            ChannelBindingType::TlsServerEndPoint => "tls-server-end-point",
        }
    }

    /// Looks a type up by its exact name.
    pub fn from_name(name: &str) -> Option<ChannelBindingType> {
        ChannelBindingType::ALL.into_iter().find(|cb_type| cb_type.name() == name)
    }
}

impl fmt::Display for ChannelBindingType {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.name())
    }
}

/// Channel-binding data of the current TLS connection, supplied by the
/// transport (RFC 5056). `None` (or an empty value) means the type is not
/// available, e.g. on a cleartext stream or behind TLS offloading.
#[derive(Clone, Default, PartialEq, Eq)]
pub struct ChannelBindingData {
    /// `tls-exporter` data (RFC 9266 §2): 32 octets of exported keying
    /// material. For TLS 1.2 only valid with extended master secret.
    pub tls_exporter: Option<Vec<u8>>,
    /// `tls-server-end-point` data (RFC 5929 §4.1): hash of the server's
    /// certificate.
    pub tls_server_end_point: Option<Vec<u8>>,
}

impl fmt::Debug for ChannelBindingData {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("ChannelBindingData")
            .field("tls_exporter", &self.tls_exporter.as_ref().map(Vec::len))
            .field("tls_server_end_point", &self.tls_server_end_point.as_ref().map(Vec::len))
            .finish()
    }
}

impl ChannelBindingData {
    /// No channel binding available (cleartext stream).
    pub fn none() -> ChannelBindingData {
        ChannelBindingData::default()
    }

    /// The data for `cb_type`, if available and non-empty.
    pub fn get(&self, cb_type: ChannelBindingType) -> Option<&[u8]> {
        let data = match cb_type {
            ChannelBindingType::TlsExporter => self.tls_exporter.as_deref(),
            ChannelBindingType::TlsServerEndPoint => self.tls_server_end_point.as_deref(),
        };
        data.filter(|bytes| !bytes.is_empty())
    }

    /// Whether any channel-binding type is available, i.e. whether `-PLUS`
    /// mechanisms can be offered (RFC 5802 §6).
    pub fn is_available(&self) -> bool {
        ChannelBindingType::ALL.into_iter().any(|cb_type| self.get(cb_type).is_some())
    }
}

/// The channel-binding types to list in the XEP-0440
/// `<sasl-channel-binding xmlns='urn:xmpp:sasl-cb:0'>` stream feature
/// (XEP-0440 §2): every type we have data for, strongest first. Empty when
/// the feature must not be sent (XEP-0440 requires at least one
/// `<channel-binding/>` child).
///
/// XEP-0440 §3 rule 1 asks servers to offer `tls-server-end-point`; that is
/// up to the transport supplying its data.
pub fn advertised_channel_binding_types(data: &ChannelBindingData) -> Vec<ChannelBindingType> {
    ChannelBindingType::ALL.into_iter().filter(|cb_type| data.get(*cb_type).is_some()).collect()
}
