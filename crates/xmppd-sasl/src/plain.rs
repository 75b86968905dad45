//! `PLAIN` message parsing (RFC 4616 §2).

use crate::failure::Reject;

/// A parsed `PLAIN` message: `[authzid] UTF8NUL authcid UTF8NUL passwd`.
#[derive(Clone, PartialEq, Eq)]
pub(crate) struct PlainMessage {
    pub(crate) authzid: Option<String>,
    pub(crate) authcid: String,
    pub(crate) password: String,
}

impl std::fmt::Debug for PlainMessage {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("PlainMessage")
            .field("authzid", &self.authzid)
            .field("authcid", &self.authcid)
            .finish_non_exhaustive()
    }
}

/// Parses a `PLAIN` message strictly (RFC 4616 §2): exactly two NULs,
/// valid UTF-8, non-empty authcid and password. An empty authzid means
/// none. The overall length limit is enforced by the caller.
pub(crate) fn parse(message: &[u8]) -> Result<PlainMessage, Reject> {
    let text = std::str::from_utf8(message).map_err(|_| Reject::malformed("PLAIN message is not valid UTF-8"))?;
    let mut parts = text.split('\0');
    let (Some(authzid), Some(authcid), Some(password), None) = (parts.next(), parts.next(), parts.next(), parts.next())
    else {
        return Err(Reject::malformed("PLAIN message must contain exactly two NULs"));
    };
    if authcid.is_empty() {
        return Err(Reject::malformed("PLAIN authcid is empty"));
    }
    if password.is_empty() {
        return Err(Reject::malformed("PLAIN password is empty"));
    }
    Ok(PlainMessage {
        authzid: (!authzid.is_empty()).then(|| authzid.to_owned()),
        authcid: authcid.to_owned(),
        password: password.to_owned(),
    })
}
