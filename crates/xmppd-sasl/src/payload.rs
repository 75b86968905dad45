//! Base64 transport encoding of SASL payloads in XML (RFC 6120 §6.4.2).

use base64::Engine;
use base64::engine::general_purpose::STANDARD;

use crate::failure::SaslFailure;

/// Decodes the character data of `<auth/>`, `<response/>` (RFC 6120 §6.4.2,
/// §6.4.3). An element without character data means "no data" and yields
/// `Ok(None)`; a single `=` means an empty response and yields
/// `Ok(Some(vec![]))`. Whitespace is not allowed (RFC 6120 §6.4.2 uses
/// base64 without line breaks), but leading/trailing XML whitespace is
/// tolerated.
///
/// # Errors
///
/// [`SaslFailure::IncorrectEncoding`] for invalid base64 (RFC 6120 §6.5.5).
pub fn decode_payload(text: &str) -> Result<Option<Vec<u8>>, SaslFailure> {
    let text = text.trim_matches(|c| matches!(c, ' ' | '\t' | '\r' | '\n'));
    match text {
        "" => Ok(None),
        "=" => Ok(Some(Vec::new())),
        _ => STANDARD.decode(text).map(Some).map_err(|_| SaslFailure::IncorrectEncoding),
    }
}

/// Encodes data for `<challenge/>` or `<success/>` (RFC 6120 §6.4.3,
/// §6.4.6): base64, with `=` for present-but-empty data. Callers that want
/// to send no data at all (e.g. `<success/>` without additional data) should
/// send an empty element instead of calling this.
pub fn encode_payload(data: &[u8]) -> String {
    if data.is_empty() { "=".to_owned() } else { STANDARD.encode(data) }
}
