//! Stored SCRAM credentials (RFC 5802 §3, §5).

use std::fmt;

use precis_profiles::OpaqueString;
use precis_profiles::precis_core::profile::PrecisFastInvocation;
use rand::RngCore;
use subtle::ConstantTimeEq;

use crate::SaslError;
use crate::crypto;
use crate::mechanism::HashAlg;

/// Length of the salt chosen by [`ScramCredentials::generate`].
const GENERATED_SALT_LEN: usize = 16;

/// What the server stores per user and hash function for SCRAM
/// (RFC 5802 §3: "the server stores only the salt, iteration count,
/// StoredKey and ServerKey"). Plaintext passwords are never stored.
#[derive(Clone, PartialEq, Eq)]
pub struct ScramCredentials {
    /// Hash function these keys belong to.
    pub hash: HashAlg,
    /// The user's salt (RFC 5802 §5.1 `s`).
    pub salt: Vec<u8>,
    /// The PBKDF2 iteration count (RFC 5802 §5.1 `i`).
    pub iterations: u32,
    /// `StoredKey := H(ClientKey)` (RFC 5802 §3).
    pub stored_key: Vec<u8>,
    /// `ServerKey := HMAC(SaltedPassword, "Server Key")` (RFC 5802 §3).
    pub server_key: Vec<u8>,
}

impl fmt::Debug for ScramCredentials {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        // The keys are password equivalents for this server: keep them out of logs.
        f.debug_struct("ScramCredentials")
            .field("hash", &self.hash)
            .field("salt_len", &self.salt.len())
            .field("iterations", &self.iterations)
            .finish_non_exhaustive()
    }
}

impl ScramCredentials {
    /// Derives the stored keys from a password (RFC 5802 §3):
    ///
    /// ```text
    /// SaltedPassword := Hi(Normalize(password), salt, i)
    /// ClientKey      := HMAC(SaltedPassword, "Client Key")
    /// StoredKey      := H(ClientKey)
    /// ServerKey      := HMAC(SaltedPassword, "Server Key")
    /// ```
    ///
    /// `Normalize` is the PRECIS OpaqueString profile (RFC 8265 §4.2), which
    /// RFC 8265 §7.3 names as the replacement for the SASLprep profile
    /// (RFC 4013) that RFC 5802 §2.2 refers to; RFC 7677 and XMPP (RFC 7622)
    /// follow PRECIS too. The two agree on ASCII passwords, which is what
    /// nearly all clients send; for other passwords, clients still on
    /// stringprep SASLprep may differ in rare corner cases (e.g. code points
    /// unassigned in Unicode 3.2).
    ///
    /// # Errors
    ///
    /// [`SaslError::InvalidPassword`] if OpaqueString rejects the password
    /// (empty, control characters, …), [`SaslError::InvalidIterationCount`]
    /// for `iterations == 0`, [`SaslError::EmptySalt`] for an empty salt.
    pub fn derive(hash: HashAlg, password: &str, salt: &[u8], iterations: u32) -> Result<ScramCredentials, SaslError> {
        let salted_password = salted_password(hash, password, salt, iterations)?;
        Self::from_salted_password(hash, &salted_password, salt, iterations)
    }

    /// Like [`ScramCredentials::derive`], with a fresh random 16-octet salt;
    /// for setting or changing a password.
    ///
    /// # Errors
    ///
    /// As for [`ScramCredentials::derive`].
    pub fn generate(hash: HashAlg, password: &str, iterations: u32) -> Result<ScramCredentials, SaslError> {
        let mut salt = [0u8; GENERATED_SALT_LEN];
        rand::rng().fill_bytes(&mut salt);
        Self::derive(hash, password, &salt, iterations)
    }

    /// Builds credentials from an already computed `SaltedPassword`
    /// (RFC 5802 §3).
    pub(crate) fn from_salted_password(
        hash: HashAlg,
        salted_password: &[u8],
        salt: &[u8],
        iterations: u32,
    ) -> Result<ScramCredentials, SaslError> {
        let client_key = crypto::hmac(hash, salted_password, b"Client Key").ok_or(SaslError::Crypto)?;
        let server_key = crypto::hmac(hash, salted_password, b"Server Key").ok_or(SaslError::Crypto)?;
        Ok(ScramCredentials {
            hash,
            salt: salt.to_vec(),
            iterations,
            stored_key: crypto::hash(hash, &client_key),
            server_key,
        })
    }

    /// Checks a plaintext password (e.g. from `PLAIN`, RFC 4616) against
    /// these credentials by re-deriving the keys and comparing them in
    /// constant time. Costs one PBKDF2 run with `self.iterations`.
    ///
    /// Returns `false` for passwords OpaqueString rejects and for malformed
    /// stored credentials.
    pub fn verify_plain(&self, password: &str) -> bool {
        if !self.is_well_formed() {
            return false;
        }
        match Self::derive(self.hash, password, &self.salt, self.iterations) {
            Ok(candidate) => {
                let stored = candidate.stored_key.ct_eq(&self.stored_key);
                let server = candidate.server_key.ct_eq(&self.server_key);
                (stored & server).into()
            }
            Err(_) => false,
        }
    }

    /// Whether the fields are consistent: non-empty salt, positive
    /// iteration count and keys as long as the hash output.
    pub fn is_well_formed(&self) -> bool {
        !self.salt.is_empty()
            && self.iterations > 0
            && self.stored_key.len() == self.hash.output_len()
            && self.server_key.len() == self.hash.output_len()
    }
}

/// `SaltedPassword := Hi(Normalize(password), salt, i)` (RFC 5802 §3), with
/// OpaqueString (RFC 8265 §4.2) as `Normalize`.
pub(crate) fn salted_password(
    hash: HashAlg,
    password: &str,
    salt: &[u8],
    iterations: u32,
) -> Result<Vec<u8>, SaslError> {
    if iterations == 0 {
        return Err(SaslError::InvalidIterationCount);
    }
    if salt.is_empty() {
        return Err(SaslError::EmptySalt);
    }
    let prepared = OpaqueString::enforce(password).map_err(|_| SaslError::InvalidPassword)?;
    crypto::hi(hash, prepared.as_bytes(), salt, iterations).ok_or(SaslError::Crypto)
}
