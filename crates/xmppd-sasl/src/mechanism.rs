//! SASL mechanism names and SCRAM hash functions (RFC 5802 §4, RFC 7677 §2).

use std::fmt;

/// Hash function underlying a SCRAM mechanism (RFC 5802 §4, RFC 7677 §2).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum HashAlg {
    /// SHA-1 (`SCRAM-SHA-1`, RFC 5802).
    Sha1,
    /// SHA-256 (`SCRAM-SHA-256`, RFC 7677).
    Sha256,
    /// SHA-512 (`SCRAM-SHA-512`, IANA SCRAM family registration).
    Sha512,
}

impl HashAlg {
    /// All supported hash functions, weakest first.
    pub const ALL: [HashAlg; 3] = [HashAlg::Sha1, HashAlg::Sha256, HashAlg::Sha512];

    /// Length in octets of the hash output, which is also the length of
    /// `StoredKey`, `ServerKey` and the client proof (RFC 5802 §3).
    pub fn output_len(self) -> usize {
        match self {
            HashAlg::Sha1 => 20,
            HashAlg::Sha256 => 32,
            HashAlg::Sha512 => 64,
        }
    }

    /// Hash name as used inside SCRAM mechanism names, e.g. `SHA-256`.
    pub fn name(self) -> &'static str {
        match self {
            HashAlg::Sha1 => "SHA-1",
            HashAlg::Sha256 => "SHA-256",
            HashAlg::Sha512 => "SHA-512",
        }
    }
}

impl fmt::Display for HashAlg {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.name())
    }
}

/// A SASL mechanism supported by this crate (RFC 6120 §6.3.3).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Mechanism {
    /// `SCRAM-SHA-1` (RFC 5802).
    ScramSha1,
    /// `SCRAM-SHA-1-PLUS` (RFC 5802, with channel binding).
    ScramSha1Plus,
    /// `SCRAM-SHA-256` (RFC 7677).
    ScramSha256,
    /// `SCRAM-SHA-256-PLUS` (RFC 7677, with channel binding).
    ScramSha256Plus,
    /// `SCRAM-SHA-512`.
    ScramSha512,
    /// `SCRAM-SHA-512-PLUS` (with channel binding).
    ScramSha512Plus,
    /// `PLAIN` (RFC 4616). Only to be offered over TLS (RFC 6120 §13.8.3);
    /// enforcing that is the caller's job.
    Plain,
}

impl Mechanism {
    /// Every mechanism this crate implements, strongest first.
    pub const ALL: [Mechanism; 7] = [
        Mechanism::ScramSha512Plus,
        Mechanism::ScramSha256Plus,
        Mechanism::ScramSha1Plus,
        Mechanism::ScramSha512,
        Mechanism::ScramSha256,
        Mechanism::ScramSha1,
        Mechanism::Plain,
    ];

    /// The registered SASL mechanism name (RFC 4422 §3.1).
    pub fn name(self) -> &'static str {
        match self {
            Mechanism::ScramSha1 => "SCRAM-SHA-1",
            Mechanism::ScramSha1Plus => "SCRAM-SHA-1-PLUS",
            Mechanism::ScramSha256 => "SCRAM-SHA-256",
            Mechanism::ScramSha256Plus => "SCRAM-SHA-256-PLUS",
            Mechanism::ScramSha512 => "SCRAM-SHA-512",
            Mechanism::ScramSha512Plus => "SCRAM-SHA-512-PLUS",
            Mechanism::Plain => "PLAIN",
        }
    }

    /// Looks a mechanism up by its exact (upper-case) name, as sent in the
    /// `mechanism` attribute of `<auth/>` (RFC 6120 §6.4.2). Mechanism names
    /// are case-sensitive upper-case strings (RFC 4422 §3.1).
    pub fn from_name(name: &str) -> Option<Mechanism> {
        Mechanism::ALL.into_iter().find(|mechanism| mechanism.name() == name)
    }

    /// Whether this is a `-PLUS` (channel-binding) variant (RFC 5802 §4).
    pub fn is_plus(self) -> bool {
        matches!(self, Mechanism::ScramSha1Plus | Mechanism::ScramSha256Plus | Mechanism::ScramSha512Plus)
    }

    /// Whether this is a SCRAM mechanism (RFC 5802).
    pub fn is_scram(self) -> bool {
        self.hash().is_some()
    }

    /// The SCRAM hash function, or `None` for `PLAIN`.
    pub fn hash(self) -> Option<HashAlg> {
        match self {
            Mechanism::ScramSha1 | Mechanism::ScramSha1Plus => Some(HashAlg::Sha1),
            Mechanism::ScramSha256 | Mechanism::ScramSha256Plus => Some(HashAlg::Sha256),
            Mechanism::ScramSha512 | Mechanism::ScramSha512Plus => Some(HashAlg::Sha512),
            Mechanism::Plain => None,
        }
    }

    /// The SCRAM mechanism for `hash`, with or without channel binding.
    pub fn scram(hash: HashAlg, plus: bool) -> Mechanism {
        match (hash, plus) {
            (HashAlg::Sha1, false) => Mechanism::ScramSha1,
            (HashAlg::Sha1, true) => Mechanism::ScramSha1Plus,
            (HashAlg::Sha256, false) => Mechanism::ScramSha256,
            (HashAlg::Sha256, true) => Mechanism::ScramSha256Plus,
            (HashAlg::Sha512, false) => Mechanism::ScramSha512,
            (HashAlg::Sha512, true) => Mechanism::ScramSha512Plus,
        }
    }
}

impl fmt::Display for Mechanism {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.name())
    }
}
