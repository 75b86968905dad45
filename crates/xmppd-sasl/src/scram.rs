//! SCRAM message syntax and proof arithmetic (RFC 5802 §3, §5, §7).

use base64::Engine;
use base64::engine::general_purpose::STANDARD;
use subtle::ConstantTimeEq;

use crate::crypto;
use crate::failure::{Reject, SaslFailure};
use crate::mechanism::HashAlg;

/// Attribute letters RFC 5802 §5.1 defines; an extension (RFC 5802 §7
/// `extensions`) must not reuse them.
const DEFINED_ATTRIBUTES: &[u8] = b"acemnprsvi";

/// The GS2 channel-binding flag (RFC 5802 §7 `gs2-cbind-flag`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum CbindFlag<'a> {
    /// `n`: the client does not support channel binding.
    NotSupported,
    /// `y`: the client supports channel binding but thinks the server
    /// does not.
    SupportedNotUsed,
    /// `p=<cb-name>`: the client requires channel binding of this type.
    Binding(&'a str),
}

/// A parsed client-first-message (RFC 5802 §7).
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct ClientFirst<'a> {
    /// `gs2-header`, including its trailing comma.
    pub(crate) gs2_header: &'a str,
    pub(crate) cbind: CbindFlag<'a>,
    /// Decoded `a=` authzid.
    pub(crate) authzid: Option<String>,
    /// Decoded `n=` username (not normalized).
    pub(crate) username: String,
    pub(crate) client_nonce: &'a str,
    /// `client-first-message-bare`, as received.
    pub(crate) bare: &'a str,
}

/// A parsed client-final-message (RFC 5802 §7).
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct ClientFinal<'a> {
    /// Decoded `c=` value: gs2-header followed by the channel-binding data.
    pub(crate) channel_binding: Vec<u8>,
    pub(crate) nonce: &'a str,
    /// Decoded `p=` value.
    pub(crate) proof: Vec<u8>,
    /// `client-final-message-without-proof`, as received.
    pub(crate) without_proof: &'a str,
}

/// Parses a client-first-message (RFC 5802 §7):
///
/// ```text
/// client-first-message = gs2-header client-first-message-bare
/// gs2-header = gs2-cbind-flag "," [ authzid ] ","
/// client-first-message-bare = [reserved-mext ","] username "," nonce ["," extensions]
/// ```
pub(crate) fn parse_client_first(text: &str) -> Result<ClientFirst<'_>, Reject> {
    let (flag, rest) = text.split_once(',').ok_or(Reject::malformed("client-first-message has no GS2 header"))?;
    let cbind = match flag {
        "n" => CbindFlag::NotSupported,
        "y" => CbindFlag::SupportedNotUsed,
        _ => {
            let name = flag.strip_prefix("p=").ok_or(Reject::malformed("invalid gs2-cbind-flag"))?;
            if !is_cb_name(name) {
                return Err(Reject::malformed("invalid channel-binding name"));
            }
            CbindFlag::Binding(name)
        }
    };
    let (authzid_part, bare) = rest.split_once(',').ok_or(Reject::malformed("GS2 header is not terminated"))?;
    let authzid = if authzid_part.is_empty() {
        None
    } else {
        let value = authzid_part.strip_prefix("a=").ok_or(Reject::malformed("invalid authzid in GS2 header"))?;
        Some(decode_saslname(value)?)
    };
    let gs2_header = text.get(..text.len() - bare.len()).ok_or(Reject::malformed("invalid GS2 header"))?;

    let mut attributes = bare.split(',');
    let first = attributes.next().unwrap_or_default();
    if first.starts_with("m=") {
        return Err(Reject::malformed("mandatory extension (m=) is not supported"));
    }
    let username = first.strip_prefix("n=").ok_or(Reject::malformed("expected username attribute n="))?;
    let username = decode_saslname(username)?;
    let client_nonce = attributes
        .next()
        .and_then(|attribute| attribute.strip_prefix("r="))
        .ok_or(Reject::malformed("expected nonce attribute r="))?;
    if !is_nonce(client_nonce) {
        return Err(Reject::malformed("invalid client nonce"));
    }
    for extension in attributes {
        check_extension(extension)?;
    }
    Ok(ClientFirst { gs2_header, cbind, authzid, username, client_nonce, bare })
}

/// Parses a client-final-message (RFC 5802 §7):
///
/// ```text
/// client-final-message-without-proof = channel-binding "," nonce ["," extensions]
/// client-final-message = client-final-message-without-proof "," proof
/// ```
pub(crate) fn parse_client_final(text: &str) -> Result<ClientFinal<'_>, Reject> {
    let (without_proof, proof) =
        text.rsplit_once(',').ok_or(Reject::malformed("client-final-message is incomplete"))?;
    let proof = proof.strip_prefix("p=").ok_or(Reject::malformed("expected proof attribute p= last"))?;
    let proof = decode_base64(proof, "client proof is not valid base64")?;

    let mut attributes = without_proof.split(',');
    let channel_binding = attributes
        .next()
        .and_then(|attribute| attribute.strip_prefix("c="))
        .ok_or(Reject::malformed("expected channel-binding attribute c="))?;
    let channel_binding = decode_base64(channel_binding, "c= is not valid base64")?;
    let nonce = attributes
        .next()
        .and_then(|attribute| attribute.strip_prefix("r="))
        .ok_or(Reject::malformed("expected nonce attribute r="))?;
    if !is_nonce(nonce) {
        return Err(Reject::malformed("invalid nonce"));
    }
    for extension in attributes {
        check_extension(extension)?;
    }
    Ok(ClientFinal { channel_binding, nonce, proof, without_proof })
}

/// Builds the server-first-message (RFC 5802 §7), with the XEP-0474 `h`
/// attribute appended as an extension when given.
pub(crate) fn server_first_message(nonce: &str, salt: &[u8], iterations: u32, downgrade_hash: Option<&str>) -> String {
    let mut message = format!("r={nonce},s={},i={iterations}", STANDARD.encode(salt));
    if let Some(hash) = downgrade_hash {
        message.push_str(",h=");
        message.push_str(hash);
    }
    message
}

/// Builds the successful server-final-message `v=<ServerSignature>`
/// (RFC 5802 §7 `verifier`).
pub(crate) fn server_final_message(server_signature: &[u8]) -> String {
    format!("v={}", STANDARD.encode(server_signature))
}

/// Result of checking a client proof (RFC 5802 §3).
pub(crate) struct ProofCheck {
    pub(crate) valid: bool,
    pub(crate) server_signature: Vec<u8>,
}

/// Checks `ClientProof` against `StoredKey` and computes `ServerSignature`
/// (RFC 5802 §3):
///
/// ```text
/// ClientSignature := HMAC(StoredKey, AuthMessage)
/// ClientKey       := ClientProof XOR ClientSignature
/// valid           := H(ClientKey) == StoredKey          (constant time)
/// ServerSignature := HMAC(ServerKey, AuthMessage)
/// ```
///
/// Returns `None` only if the HMAC primitive fails.
pub(crate) fn check_proof(
    hash: HashAlg,
    stored_key: &[u8],
    server_key: &[u8],
    auth_message: &[u8],
    proof: &[u8],
) -> Option<ProofCheck> {
    let client_signature = crypto::hmac(hash, stored_key, auth_message)?;
    let client_key = crypto::xor(proof, &client_signature);
    let computed_stored_key = crypto::hash(hash, &client_key);
    let length_ok = proof.len() == client_signature.len();
    let valid = computed_stored_key.ct_eq(stored_key).into() && length_ok;
    let server_signature = crypto::hmac(hash, server_key, auth_message)?;
    Some(ProofCheck { valid, server_signature })
}

/// Decodes a `saslname` (RFC 5802 §7): `=2C` is `,`, `=3D` is `=`, any
/// other `=` is an error, as are NUL and an empty name.
pub(crate) fn decode_saslname(value: &str) -> Result<String, Reject> {
    if value.is_empty() {
        return Err(Reject::malformed("empty saslname"));
    }
    let mut decoded = String::with_capacity(value.len());
    let mut rest = value;
    while let Some(position) = rest.find(['=', '\0']) {
        let (literal, tail) = rest.split_at(position);
        decoded.push_str(literal);
        if let Some(after) = tail.strip_prefix("=2C") {
            decoded.push(',');
            rest = after;
        } else if let Some(after) = tail.strip_prefix("=3D") {
            decoded.push('=');
            rest = after;
        } else {
            return Err(Reject::malformed("invalid escape or NUL in saslname"));
        }
    }
    decoded.push_str(rest);
    Ok(decoded)
}

/// Encodes a `saslname` (RFC 5802 §5.1): `,` becomes `=2C`, `=` becomes
/// `=3D`.
#[cfg(test)]
pub(crate) fn encode_saslname(name: &str) -> String {
    name.replace('=', "=3D").replace(',', "=2C")
}

/// `nonce = "r=" c-nonce [s-nonce]`, `printable = %x21-2B / %x2D-7E`
/// (RFC 5802 §7): non-empty, printable ASCII without `,`.
pub(crate) fn is_nonce(value: &str) -> bool {
    !value.is_empty() && value.bytes().all(|byte| (0x21..=0x7E).contains(&byte) && byte != b',')
}

/// `cb-name = 1*(ALPHA / DIGIT / "." / "-")` (RFC 5802 §7).
fn is_cb_name(value: &str) -> bool {
    !value.is_empty() && value.bytes().all(|byte| byte.is_ascii_alphanumeric() || byte == b'.' || byte == b'-')
}

/// Checks one optional extension `attr-val = ALPHA "=" value` (RFC 5802 §7).
/// Unknown extensions are ignored as RFC 5802 §7 requires; `m=` (RFC 5802
/// §5.1) and reuse of defined attribute letters fail.
fn check_extension(extension: &str) -> Result<(), Reject> {
    let bytes = extension.as_bytes();
    let (Some(letter), Some(b'=')) = (bytes.first(), bytes.get(1)) else {
        return Err(Reject::malformed("invalid attribute syntax"));
    };
    if !letter.is_ascii_alphabetic() {
        return Err(Reject::malformed("invalid attribute name"));
    }
    if *letter == b'm' {
        return Err(Reject::malformed("mandatory extension (m=) is not supported"));
    }
    if DEFINED_ATTRIBUTES.contains(letter) {
        return Err(Reject::malformed("attribute repeated or out of order"));
    }
    let value = bytes.get(2..).unwrap_or_default();
    if value.is_empty() || value.contains(&0) {
        return Err(Reject::malformed("invalid extension value"));
    }
    Ok(())
}

fn decode_base64(value: &str, detail: &'static str) -> Result<Vec<u8>, Reject> {
    if value.is_empty() {
        return Err(Reject::malformed(detail));
    }
    STANDARD.decode(value).map_err(|_| Reject::new(SaslFailure::MalformedRequest, detail))
}
