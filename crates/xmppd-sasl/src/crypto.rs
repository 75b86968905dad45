//! Hash, HMAC and PBKDF2 dispatch over [`HashAlg`] (RFC 5802 §2.2).
//!
//! HMAC accepts keys of any length, so the `None` results below cannot occur
//! in practice; callers still fail closed on them instead of panicking.

use hmac::{EagerHash, Hmac, KeyInit, Mac};
use sha1::Sha1;
use sha2::{Digest, Sha256, Sha512};

use crate::mechanism::HashAlg;

/// `H(data)` (RFC 5802 §2.2).
pub(crate) fn hash(alg: HashAlg, data: &[u8]) -> Vec<u8> {
    match alg {
        HashAlg::Sha1 => Sha1::digest(data).to_vec(),
        HashAlg::Sha256 => Sha256::digest(data).to_vec(),
        HashAlg::Sha512 => Sha512::digest(data).to_vec(),
    }
}

/// `HMAC(key, data)` (RFC 5802 §2.2, RFC 2104).
pub(crate) fn hmac(alg: HashAlg, key: &[u8], data: &[u8]) -> Option<Vec<u8>> {
    match alg {
        HashAlg::Sha1 => hmac_with::<Sha1>(key, data),
        HashAlg::Sha256 => hmac_with::<Sha256>(key, data),
        HashAlg::Sha512 => hmac_with::<Sha512>(key, data),
    }
}

/// `Hi(password, salt, iterations)`, which is PBKDF2 with HMAC as PRF and an
/// output as long as the hash (RFC 5802 §2.2).
pub(crate) fn hi(alg: HashAlg, password: &[u8], salt: &[u8], iterations: u32) -> Option<Vec<u8>> {
    let mut out = vec![0u8; alg.output_len()];
    let result = match alg {
        HashAlg::Sha1 => pbkdf2::pbkdf2::<Hmac<Sha1>>(password, salt, iterations, &mut out),
        HashAlg::Sha256 => pbkdf2::pbkdf2::<Hmac<Sha256>>(password, salt, iterations, &mut out),
        HashAlg::Sha512 => pbkdf2::pbkdf2::<Hmac<Sha512>>(password, salt, iterations, &mut out),
    };
    result.ok().map(|()| out)
}

/// Octet-wise exclusive or of two equally long strings (RFC 5802 §2.2 `XOR`).
pub(crate) fn xor(left: &[u8], right: &[u8]) -> Vec<u8> {
    left.iter().zip(right).map(|(a, b)| a ^ b).collect()
}

fn hmac_with<D>(key: &[u8], data: &[u8]) -> Option<Vec<u8>>
where
    D: EagerHash,
    Hmac<D>: KeyInit + Mac,
{
    let mut mac = <Hmac<D> as KeyInit>::new_from_slice(key).ok()?;
    Mac::update(&mut mac, data);
    Some(mac.finalize().into_bytes().to_vec())
}
