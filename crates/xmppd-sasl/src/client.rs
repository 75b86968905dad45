//! Client side of SCRAM (RFC 5802 §3, §5, §7; RFC 7677), sans-I/O.
//!
//! One authentication attempt is a [`ScramClient`]:
//!
//! 1. [`ScramClient::client_first`] gives the client-first-message for
//!    `<auth/>` (RFC 6120 §6.4.2);
//! 2. [`ScramClient::handle_server_first`] takes the decoded
//!    server-first-message from `<challenge/>` and gives the
//!    client-final-message for `<response/>`;
//! 3. [`ScramClient::verify_server_final`] checks the server-final-message
//!    (the additional data of `<success/>`, RFC 6120 §6.4.6).
//!
//! `SaltedPassword` costs one PBKDF2 run. Clients that log in repeatedly
//! may keep the derived [`ClientKeys`] ([`ScramClient::keys`]) and hand them
//! to the next attempt ([`ScramClient::with_cached_keys`]); they are used
//! only while the server's salt and iteration count stay the same.
//!
//! ```
//! use xmppd_sasl::client::ScramClient;
//! use xmppd_sasl::{
//!     ChannelBindingData, DowngradeInfo, HashAlg, SaslConfig, ScramCredentials, ServerSession, Step,
//! };
//!
//! let mut client = ScramClient::new(HashAlg::Sha256, "juliet", "r0m30myr0m30");
//! let (mut server, step) = ServerSession::start(
//!     &SaslConfig::with_random_secret(),
//!     client.mechanism(),
//!     ChannelBindingData::none(),
//!     DowngradeInfo::none(),
//!     Some(&client.client_first()?),
//! );
//! assert!(matches!(step, Step::NeedCredentials { .. }));
//! let stored = ScramCredentials::derive(HashAlg::Sha256, "r0m30myr0m30", b"salty salt", 4096)?;
//! let Step::Challenge(server_first) = server.provide_credentials(Some(stored)) else { panic!() };
//! let client_final = client.handle_server_first(&server_first)?;
//! let Step::Success { additional_data, .. } = server.step(&client_final) else { panic!() };
//! client.verify_server_final(&additional_data)?;
//! # Ok::<(), Box<dyn std::error::Error>>(())
//! ```

use std::fmt;

use base64::Engine;
use base64::engine::general_purpose::STANDARD;
use rand::RngCore;
use subtle::ConstantTimeEq;

use crate::credentials::salted_password;
use crate::{ChannelBindingType, DowngradeInfo, HashAlg, Mechanism, SaslError, crypto};

/// Default upper bound on the iteration count a server may ask for
/// (see [`ScramClient::with_max_iterations`]).
pub const DEFAULT_MAX_ITERATIONS: u32 = 10_000_000;

/// Random octets behind the client nonce (base64-encoded on the wire).
const CLIENT_NONCE_LEN: usize = 24;

/// The GS2 channel-binding choice of the client (RFC 5802 §6, §7
/// `gs2-cbind-flag`).
#[derive(Clone, PartialEq, Eq)]
pub enum ClientChannelBinding {
    /// `n`: the client does not support channel binding.
    NotSupported,
    /// `y`: the client supports channel binding but believes the server
    /// does not (no `-PLUS` mechanism was offered).
    SupportedNotOffered,
    /// `p=<type>`: channel binding with this type and the data the client
    /// sees on its side of the TLS connection (RFC 5056; e.g. 32 octets of
    /// `tls-exporter` keying material, RFC 9266).
    Bind(ChannelBindingType, Vec<u8>),
}

impl fmt::Debug for ClientChannelBinding {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            ClientChannelBinding::NotSupported => f.write_str("NotSupported"),
            ClientChannelBinding::SupportedNotOffered => f.write_str("SupportedNotOffered"),
            ClientChannelBinding::Bind(cb_type, data) => write!(f, "Bind({cb_type}, {} octets)", data.len()),
        }
    }
}

/// Keys derived from the password for one salt and iteration count
/// (RFC 5802 §3): what a client may cache instead of the password.
#[derive(Clone, PartialEq, Eq)]
pub struct ClientKeys {
    /// Hash function of the keys.
    pub hash: HashAlg,
    /// The salt the server sent (RFC 5802 §5.1 `s`).
    pub salt: Vec<u8>,
    /// The iteration count the server sent (RFC 5802 §5.1 `i`).
    pub iterations: u32,
    /// `ClientKey := HMAC(SaltedPassword, "Client Key")`.
    pub client_key: Vec<u8>,
    /// `ServerKey := HMAC(SaltedPassword, "Server Key")`.
    pub server_key: Vec<u8>,
}

impl fmt::Debug for ClientKeys {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        // Password equivalents: keep them out of logs.
        f.debug_struct("ClientKeys")
            .field("hash", &self.hash)
            .field("salt_len", &self.salt.len())
            .field("iterations", &self.iterations)
            .finish_non_exhaustive()
    }
}

impl ClientKeys {
    /// Derives the keys (RFC 5802 §3):
    ///
    /// ```text
    /// SaltedPassword := Hi(Normalize(password), salt, i)
    /// ClientKey      := HMAC(SaltedPassword, "Client Key")
    /// ServerKey      := HMAC(SaltedPassword, "Server Key")
    /// ```
    ///
    /// with the OpaqueString profile (RFC 8265 §4.2) as `Normalize`, like
    /// [`ScramCredentials::derive`](crate::ScramCredentials::derive).
    ///
    /// # Errors
    ///
    /// As for [`ScramCredentials::derive`](crate::ScramCredentials::derive).
    pub fn derive(hash: HashAlg, password: &str, salt: &[u8], iterations: u32) -> Result<ClientKeys, SaslError> {
        let salted = salted_password(hash, password, salt, iterations)?;
        let client_key = crypto::hmac(hash, &salted, b"Client Key").ok_or(SaslError::Crypto)?;
        let server_key = crypto::hmac(hash, &salted, b"Server Key").ok_or(SaslError::Crypto)?;
        Ok(ClientKeys { hash, salt: salt.to_vec(), iterations, client_key, server_key })
    }

    fn matches(&self, hash: HashAlg, salt: &[u8], iterations: u32) -> bool {
        self.hash == hash && self.salt == salt && self.iterations == iterations
    }
}

/// Where the exchange stands.
#[derive(Clone)]
enum State {
    Initial,
    /// client-first-message sent; keeps `client-first-message-bare`.
    FirstSent {
        first_bare: String,
    },
    /// client-final-message sent; keeps the expected `ServerSignature`.
    FinalSent {
        server_signature: Vec<u8>,
    },
    Done,
}

/// One SCRAM authentication attempt by a client (RFC 5802 §5). See the
/// [module documentation](self) for the sequence of calls.
#[derive(Clone)]
pub struct ScramClient {
    hash: HashAlg,
    username: String,
    password: String,
    authzid: Option<String>,
    channel_binding: ClientChannelBinding,
    client_nonce: String,
    max_iterations: u32,
    downgrade: Option<DowngradeInfo>,
    keys: Option<ClientKeys>,
    state: State,
}

impl fmt::Debug for ScramClient {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("ScramClient")
            .field("mechanism", &self.mechanism())
            .field("username", &self.username)
            .field("authzid", &self.authzid)
            .finish_non_exhaustive()
    }
}

impl ScramClient {
    /// A client for `SCRAM-<hash>` without channel binding (GS2 flag `n`)
    /// and with a fresh random nonce. `username` is the authentication
    /// identity as the user typed it (for XMPP, the localpart); it is sent
    /// as a `saslname` (RFC 5802 §5.1).
    pub fn new(hash: HashAlg, username: &str, password: &str) -> ScramClient {
        let mut random = [0u8; CLIENT_NONCE_LEN];
        rand::rng().fill_bytes(&mut random);
        ScramClient {
            hash,
            username: username.to_owned(),
            password: password.to_owned(),
            authzid: None,
            channel_binding: ClientChannelBinding::NotSupported,
            client_nonce: STANDARD.encode(random),
            max_iterations: DEFAULT_MAX_ITERATIONS,
            downgrade: None,
            keys: None,
            state: State::Initial,
        }
    }

    /// Sets the channel-binding choice. With [`ClientChannelBinding::Bind`]
    /// the mechanism becomes the `-PLUS` variant (RFC 5802 §6).
    pub fn with_channel_binding(mut self, channel_binding: ClientChannelBinding) -> ScramClient {
        self.channel_binding = channel_binding;
        self
    }

    /// Requests authorization as `authzid` (RFC 5802 §5.1 `a`; for XMPP,
    /// RFC 6120 §6.4.6).
    pub fn with_authzid(mut self, authzid: &str) -> ScramClient {
        self.authzid = Some(authzid.to_owned());
        self
    }

    /// Replaces the random client nonce, for reproducible exchanges (test
    /// vectors). The nonce must be printable ASCII without `,`
    /// (RFC 5802 §7 `c-nonce`); other characters are dropped.
    pub fn with_nonce(mut self, nonce: &str) -> ScramClient {
        self.client_nonce = nonce.chars().filter(|c| c.is_ascii_graphic() && *c != ',').collect();
        self
    }

    /// Refuses server-first-messages with an iteration count above `max`
    /// ([`DEFAULT_MAX_ITERATIONS`] by default), so that a hostile server
    /// cannot make the client compute PBKDF2 for hours.
    pub fn with_max_iterations(mut self, max: u32) -> ScramClient {
        self.max_iterations = max;
        self
    }

    /// Checks the XEP-0474 `h` attribute of the server-first-message, when
    /// the server sends one, against what this client saw advertised.
    pub fn with_downgrade_check(mut self, advertised: DowngradeInfo) -> ScramClient {
        self.downgrade = Some(advertised);
        self
    }

    /// Uses previously derived keys instead of the password when the server
    /// sends the same hash, salt and iteration count (RFC 5802 §5.1 allows
    /// clients to cache them).
    pub fn with_cached_keys(mut self, keys: ClientKeys) -> ScramClient {
        self.keys = Some(keys);
        self
    }

    /// The mechanism to name in `<auth mechanism='…'/>` (RFC 6120 §6.4.2).
    pub fn mechanism(&self) -> Mechanism {
        Mechanism::scram(self.hash, matches!(self.channel_binding, ClientChannelBinding::Bind(..)))
    }

    /// The keys used in this exchange, once the server-first-message was
    /// handled: cache them for the next login of the same account.
    pub fn keys(&self) -> Option<&ClientKeys> {
        match self.state {
            State::FinalSent { .. } | State::Done => self.keys.as_ref(),
            State::Initial | State::FirstSent { .. } => None,
        }
    }

    /// `gs2-header = gs2-cbind-flag "," [ authzid ] ","` (RFC 5802 §7).
    fn gs2_header(&self) -> String {
        let mut header = match &self.channel_binding {
            ClientChannelBinding::NotSupported => "n".to_owned(),
            ClientChannelBinding::SupportedNotOffered => "y".to_owned(),
            ClientChannelBinding::Bind(cb_type, _) => format!("p={}", cb_type.name()),
        };
        header.push(',');
        if let Some(authzid) = &self.authzid {
            header.push_str("a=");
            header.push_str(&encode_saslname(authzid));
        }
        header.push(',');
        header
    }

    /// The client-first-message (RFC 5802 §7):
    /// `gs2-header "n=" saslname ",r=" c-nonce`.
    ///
    /// # Errors
    ///
    /// [`SaslError::OutOfOrder`] if called twice.
    pub fn client_first(&mut self) -> Result<Vec<u8>, SaslError> {
        if !matches!(self.state, State::Initial) {
            return Err(SaslError::OutOfOrder);
        }
        let first_bare = format!("n={},r={}", encode_saslname(&self.username), self.client_nonce);
        let message = format!("{}{first_bare}", self.gs2_header());
        self.state = State::FirstSent { first_bare };
        Ok(message.into_bytes())
    }

    /// Handles the server-first-message and returns the
    /// client-final-message (RFC 5802 §3, §7):
    ///
    /// ```text
    /// AuthMessage     := client-first-message-bare + "," + server-first-message + ","
    ///                    + client-final-message-without-proof
    /// ClientSignature := HMAC(StoredKey, AuthMessage)
    /// ClientProof     := ClientKey XOR ClientSignature
    /// ```
    ///
    /// # Errors
    ///
    /// Every [`SaslError`] about the server-first-message; the
    /// exchange cannot continue after an error.
    pub fn handle_server_first(&mut self, server_first: &[u8]) -> Result<Vec<u8>, SaslError> {
        let State::FirstSent { first_bare } = &self.state else {
            return Err(SaslError::OutOfOrder);
        };
        let first_bare = first_bare.clone();
        // Whatever happens next, this exchange cannot go back.
        self.state = State::Done;
        let text = std::str::from_utf8(server_first).map_err(|_| SaslError::Malformed("not UTF-8"))?;
        let parsed = parse_server_first(text)?;
        if !parsed.nonce.starts_with(&self.client_nonce) || parsed.nonce.len() <= self.client_nonce.len() {
            return Err(SaslError::NonceMismatch);
        }
        if parsed.iterations == 0 || parsed.iterations > self.max_iterations {
            return Err(SaslError::IterationCount(parsed.iterations));
        }
        if let (Some(advertised), Some(received)) = (&self.downgrade, parsed.downgrade_hash) {
            let expected = advertised.attribute_value(self.hash).unwrap_or_default();
            if !bool::from(expected.as_bytes().ct_eq(received.as_bytes())) {
                return Err(SaslError::Downgrade);
            }
        }

        let keys = match self.keys.take() {
            Some(keys) if keys.matches(self.hash, &parsed.salt, parsed.iterations) => keys,
            _ => ClientKeys::derive(self.hash, &self.password, &parsed.salt, parsed.iterations)?,
        };

        let mut cbind_input = self.gs2_header().into_bytes();
        if let ClientChannelBinding::Bind(_, data) = &self.channel_binding {
            cbind_input.extend_from_slice(data);
        }
        let without_proof = format!("c={},r={}", STANDARD.encode(&cbind_input), parsed.nonce);
        let auth_message = format!("{first_bare},{text},{without_proof}");
        let stored_key = crypto::hash(self.hash, &keys.client_key);
        let client_signature =
            crypto::hmac(self.hash, &stored_key, auth_message.as_bytes()).ok_or(SaslError::Crypto)?;
        let proof = crypto::xor(&keys.client_key, &client_signature);
        let server_signature =
            crypto::hmac(self.hash, &keys.server_key, auth_message.as_bytes()).ok_or(SaslError::Crypto)?;
        self.keys = Some(keys);
        self.state = State::FinalSent { server_signature };
        Ok(format!("{without_proof},p={}", STANDARD.encode(proof)).into_bytes())
    }

    /// Checks the server-final-message (RFC 5802 §7:
    /// `server-final-message = (server-error / verifier) ["," extensions]`).
    ///
    /// # Errors
    ///
    /// [`SaslError::ServerError`] for `e=`,
    /// [`SaslError::BadServerSignature`] for a wrong `v=`,
    /// [`SaslError::Malformed`] otherwise.
    pub fn verify_server_final(&mut self, server_final: &[u8]) -> Result<(), SaslError> {
        let State::FinalSent { server_signature } = &self.state else {
            return Err(SaslError::OutOfOrder);
        };
        let server_signature = server_signature.clone();
        self.state = State::Done;
        let text = std::str::from_utf8(server_final).map_err(|_| SaslError::Malformed("not UTF-8"))?;
        let first = text.split(',').next().unwrap_or_default();
        if let Some(error) = first.strip_prefix("e=") {
            return Err(SaslError::ServerError(error.to_owned()));
        }
        let verifier = first.strip_prefix("v=").ok_or(SaslError::Malformed("expected v= or e="))?;
        let received = STANDARD.decode(verifier).map_err(|_| SaslError::Malformed("v= is not valid base64"))?;
        if bool::from(received.ct_eq(&server_signature)) { Ok(()) } else { Err(SaslError::BadServerSignature) }
    }
}

/// The parts of a server-first-message (RFC 5802 §7) the client uses.
struct ServerFirst<'a> {
    nonce: &'a str,
    salt: Vec<u8>,
    iterations: u32,
    /// The XEP-0474 `h` extension, if present.
    downgrade_hash: Option<&'a str>,
}

/// Parses `server-first-message = [reserved-mext ","] nonce "," salt ","
/// iteration-count ["," extensions]` (RFC 5802 §7).
fn parse_server_first(text: &str) -> Result<ServerFirst<'_>, SaslError> {
    let mut attributes = text.split(',');
    let first = attributes.next().unwrap_or_default();
    if first.starts_with("m=") {
        return Err(SaslError::MandatoryExtension);
    }
    let nonce = first.strip_prefix("r=").ok_or(SaslError::Malformed("expected r="))?;
    if nonce.is_empty() || !nonce.bytes().all(|byte| (0x21..=0x7E).contains(&byte)) {
        return Err(SaslError::Malformed("invalid nonce"));
    }
    let salt = attributes
        .next()
        .and_then(|attribute| attribute.strip_prefix("s="))
        .ok_or(SaslError::Malformed("expected s="))?;
    let salt = STANDARD.decode(salt).map_err(|_| SaslError::Malformed("s= is not valid base64"))?;
    if salt.is_empty() {
        return Err(SaslError::Malformed("empty salt"));
    }
    let iterations = attributes
        .next()
        .and_then(|attribute| attribute.strip_prefix("i="))
        .ok_or(SaslError::Malformed("expected i="))?;
    if iterations.is_empty() || !iterations.bytes().all(|byte| byte.is_ascii_digit()) {
        return Err(SaslError::Malformed("i= is not a number"));
    }
    let iterations = iterations.parse::<u32>().map_err(|_| SaslError::IterationCount(u32::MAX))?;
    let mut downgrade_hash = None;
    for extension in attributes {
        match extension.split_once('=') {
            Some(("h", value)) => downgrade_hash = Some(value),
            Some(("m", _)) => return Err(SaslError::MandatoryExtension),
            Some((name, _)) if name.len() == 1 && name.bytes().all(|byte| byte.is_ascii_alphabetic()) => {}
            _ => return Err(SaslError::Malformed("invalid extension")),
        }
    }
    Ok(ServerFirst { nonce, salt, iterations, downgrade_hash })
}

/// Encodes a `saslname` (RFC 5802 §5.1): `=` becomes `=3D`, `,` becomes
/// `=2C`.
fn encode_saslname(name: &str) -> String {
    name.replace('=', "=3D").replace(',', "=2C")
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;
    use crate::{ChannelBindingData, SaslConfig, SaslFailure, ScramCredentials, ServerSession, Step};

    const RFC5802_SERVER_FIRST: &str = "r=fyko+d2lbbFgONRv9qkxdawL3rfcNHYJY1ZVvWVs7j,s=QSXCR+Q6sek8bf92,i=4096";

    fn rfc5802_client() -> ScramClient {
        ScramClient::new(HashAlg::Sha1, "user", "pencil").with_nonce("fyko+d2lbbFgONRv9qkxdawL")
    }

    /// RFC 5802 §5, byte for byte.
    #[test]
    fn rfc5802_sha1_vector() {
        let mut client = rfc5802_client();
        assert_eq!(client.client_first().unwrap(), b"n,,n=user,r=fyko+d2lbbFgONRv9qkxdawL");
        let client_final = client.handle_server_first(RFC5802_SERVER_FIRST.as_bytes()).unwrap();
        assert_eq!(
            String::from_utf8(client_final).unwrap(),
            "c=biws,r=fyko+d2lbbFgONRv9qkxdawL3rfcNHYJY1ZVvWVs7j,p=v0X8v3Bz2T0CJGbJQyF0X+HI4Ts="
        );
        client.verify_server_final(b"v=rmF9pqV8S7suAoZWja4dJRkFsKQ=").unwrap();
    }

    /// RFC 7677 §3, byte for byte.
    #[test]
    fn rfc7677_sha256_vector() {
        let mut client = ScramClient::new(HashAlg::Sha256, "user", "pencil").with_nonce("rOprNGfwEbeRWgbNEkqO");
        assert_eq!(client.client_first().unwrap(), b"n,,n=user,r=rOprNGfwEbeRWgbNEkqO");
        assert_eq!(client.mechanism(), Mechanism::ScramSha256);
        let client_final = client
            .handle_server_first(
                b"r=rOprNGfwEbeRWgbNEkqO%hvYDpWUa2RaTCAfuxFIlj)hNlF$k0,s=W22ZaJ0SNY7soEsUEjb6gQ==,i=4096",
            )
            .unwrap();
        assert_eq!(
            String::from_utf8(client_final).unwrap(),
            "c=biws,r=rOprNGfwEbeRWgbNEkqO%hvYDpWUa2RaTCAfuxFIlj)hNlF$k0,p=dHzbZapWIk4jUhN+Ute9ytag9zjfMHgsqmmiz7AndVQ="
        );
        client.verify_server_final(b"v=6rriTRBi23WpRR/wtup+mMhUZUn/dB5nLTJRsjl95G4=").unwrap();
    }

    fn config() -> SaslConfig {
        SaslConfig::new([9u8; 32]).with_fake_iterations(64)
    }

    /// Runs `client` against a real [`ServerSession`] whose account has
    /// `server_password`; returns the server's final step and the client's
    /// verdict on it.
    fn exchange(
        mut client: ScramClient,
        channel_binding: ChannelBindingData,
        downgrade: DowngradeInfo,
        server_password: &str,
    ) -> (Step, Result<(), SaslError>, ScramClient) {
        let first = client.client_first().unwrap();
        let (mut server, step) =
            ServerSession::start(&config(), client.mechanism(), channel_binding, downgrade, Some(&first));
        assert!(matches!(step, Step::NeedCredentials { .. }), "{step:?}");
        let stored = ScramCredentials::derive(client.hash, server_password, b"per-user salt", 128).unwrap();
        let Step::Challenge(server_first) = server.provide_credentials(Some(stored)) else { panic!("no challenge") };
        let client_final = client.handle_server_first(&server_first).unwrap();
        let step = server.step(&client_final);
        let verdict = match &step {
            Step::Success { additional_data, .. } => client.verify_server_final(additional_data),
            _ => Err(SaslError::OutOfOrder),
        };
        (step, verdict, client)
    }

    #[test]
    fn every_hash_against_the_server() {
        for hash in HashAlg::ALL {
            for username in ["juliet", "odd,user=name"] {
                let client = ScramClient::new(hash, username, "r0m30-Π");
                let (step, verdict, _) = exchange(client, ChannelBindingData::none(), DowngradeInfo::none(), "r0m30-Π");
                assert!(matches!(step, Step::Success { ref authcid, .. } if authcid == username), "{hash}: {step:?}");
                verdict.unwrap();
            }
        }
    }

    #[test]
    fn plus_with_tls_exporter_against_the_server() {
        let exporter = b"exporter-keying-material-32-byte".to_vec();
        let data = ChannelBindingData { tls_exporter: Some(exporter.clone()), tls_server_end_point: None };
        for hash in HashAlg::ALL {
            let client = ScramClient::new(hash, "juliet", "r0m30")
                .with_channel_binding(ClientChannelBinding::Bind(ChannelBindingType::TlsExporter, exporter.clone()));
            assert!(client.mechanism().is_plus());
            let (step, verdict, _) = exchange(client, data.clone(), DowngradeInfo::none(), "r0m30");
            assert!(matches!(step, Step::Success { .. }), "{step:?}");
            verdict.unwrap();
        }
        // Different data on the two sides of the "TLS connection" fails.
        let client = ScramClient::new(HashAlg::Sha256, "juliet", "r0m30")
            .with_channel_binding(ClientChannelBinding::Bind(ChannelBindingType::TlsExporter, b"other".to_vec()));
        let (step, _, _) = exchange(client, data, DowngradeInfo::none(), "r0m30");
        assert!(matches!(step, Step::Failure(_)), "{step:?}");
    }

    #[test]
    fn y_flag_and_authzid_against_the_server() {
        let client = ScramClient::new(HashAlg::Sha256, "juliet", "r0m30")
            .with_channel_binding(ClientChannelBinding::SupportedNotOffered)
            .with_authzid("juliet@example.com");
        let (step, verdict, _) = exchange(client, ChannelBindingData::none(), DowngradeInfo::none(), "r0m30");
        assert!(
            matches!(step, Step::Success { ref authzid, .. } if authzid.as_deref() == Some("juliet@example.com")),
            "{step:?}"
        );
        verdict.unwrap();
    }

    #[test]
    fn wrong_password_is_refused_by_the_server() {
        let client = ScramClient::new(HashAlg::Sha1, "juliet", "wrong");
        let (step, _, _) = exchange(client, ChannelBindingData::none(), DowngradeInfo::none(), "r0m30");
        assert_eq!(step, Step::Failure(SaslFailure::NotAuthorized));
    }

    #[test]
    fn downgrade_check_passes_when_lists_agree_and_fails_when_not() {
        let advertised = DowngradeInfo::new(["SCRAM-SHA-1", "SCRAM-SHA-256"]);
        let client = ScramClient::new(HashAlg::Sha256, "juliet", "r0m30").with_downgrade_check(advertised.clone());
        let (_, verdict, _) = exchange(client, ChannelBindingData::none(), advertised.clone(), "r0m30");
        verdict.unwrap();

        // The server saw a longer list than the client (someone stripped
        // SCRAM-SHA-512 on the way): the h attribute differs.
        let mut client = ScramClient::new(HashAlg::Sha256, "juliet", "r0m30").with_downgrade_check(advertised);
        let first = client.client_first().unwrap();
        let (mut server, _) = ServerSession::start(
            &config(),
            Mechanism::ScramSha256,
            ChannelBindingData::none(),
            DowngradeInfo::new(["SCRAM-SHA-1", "SCRAM-SHA-256", "SCRAM-SHA-512"]),
            Some(&first),
        );
        let stored = ScramCredentials::derive(HashAlg::Sha256, "r0m30", b"salt", 128).unwrap();
        let Step::Challenge(server_first) = server.provide_credentials(Some(stored)) else { panic!() };
        assert!(String::from_utf8_lossy(&server_first).contains(",h="));
        assert_eq!(client.handle_server_first(&server_first), Err(SaslError::Downgrade));
    }

    #[test]
    fn cached_keys_give_the_same_proof_without_the_password() {
        let mut client = rfc5802_client();
        client.client_first().unwrap();
        let expected = client.handle_server_first(RFC5802_SERVER_FIRST.as_bytes()).unwrap();
        let keys = client.keys().unwrap().clone();
        assert_eq!(keys.iterations, 4096);

        let mut cached = ScramClient::new(HashAlg::Sha1, "user", "not the password")
            .with_nonce("fyko+d2lbbFgONRv9qkxdawL")
            .with_cached_keys(keys.clone());
        cached.client_first().unwrap();
        assert_eq!(cached.handle_server_first(RFC5802_SERVER_FIRST.as_bytes()).unwrap(), expected);
        cached.verify_server_final(b"v=rmF9pqV8S7suAoZWja4dJRkFsKQ=").unwrap();

        // A different iteration count: the cache is not used, the (wrong)
        // password is, so the proof differs.
        let mut stale = ScramClient::new(HashAlg::Sha1, "user", "not the password")
            .with_nonce("fyko+d2lbbFgONRv9qkxdawL")
            .with_cached_keys(keys);
        stale.client_first().unwrap();
        let other = stale
            .handle_server_first(b"r=fyko+d2lbbFgONRv9qkxdawL3rfcNHYJY1ZVvWVs7j,s=QSXCR+Q6sek8bf92,i=4097")
            .unwrap();
        assert_ne!(other, expected);
        assert_eq!(stale.keys().unwrap().iterations, 4097);
    }

    #[test]
    fn fresh_nonces_are_random_and_printable() {
        let mut a = ScramClient::new(HashAlg::Sha1, "u", "p");
        let mut b = ScramClient::new(HashAlg::Sha1, "u", "p");
        let (a, b) = (a.client_first().unwrap(), b.client_first().unwrap());
        assert_ne!(a, b);
        let text = String::from_utf8(a).unwrap();
        let nonce = text.strip_prefix("n,,n=u,r=").unwrap();
        assert!(nonce.len() >= 24 && nonce.bytes().all(|byte| byte.is_ascii_graphic() && byte != b','));
    }

    fn after_first(server_first: &[u8]) -> Result<Vec<u8>, SaslError> {
        let mut client = rfc5802_client();
        client.client_first().unwrap();
        client.handle_server_first(server_first)
    }

    #[test]
    fn malformed_server_first_messages_are_errors() {
        use SaslError::*;
        let cases: &[(&[u8], SaslError)] = &[
            (b"", Malformed("expected r=")),
            (b"\xff", Malformed("not UTF-8")),
            (b"m=ext,r=fyko+d2lbbFgONRv9qkxdawLx,s=QSXCR+Q6sek8bf92,i=1", MandatoryExtension),
            (b"r=fyko+d2lbbFgONRv9qkxdawLx,s=QSXCR+Q6sek8bf92,i=1,m=x", MandatoryExtension),
            (b"r=somebody-else,s=QSXCR+Q6sek8bf92,i=4096", NonceMismatch),
            (b"r=fyko+d2lbbFgONRv9qkxdawL,s=QSXCR+Q6sek8bf92,i=4096", NonceMismatch),
            (b"r=fyko+d2lbbFgONRv9qkxdawLx,i=4096,s=QSXCR+Q6sek8bf92", Malformed("expected s=")),
            (b"r=fyko+d2lbbFgONRv9qkxdawLx,s=!!!,i=4096", Malformed("s= is not valid base64")),
            (b"r=fyko+d2lbbFgONRv9qkxdawLx,s=,i=4096", Malformed("empty salt")),
            (b"r=fyko+d2lbbFgONRv9qkxdawLx,s=QSXCR+Q6sek8bf92", Malformed("expected i=")),
            (b"r=fyko+d2lbbFgONRv9qkxdawLx,s=QSXCR+Q6sek8bf92,i=-1", Malformed("i= is not a number")),
            (b"r=fyko+d2lbbFgONRv9qkxdawLx,s=QSXCR+Q6sek8bf92,i=0", IterationCount(0)),
            (b"r=fyko+d2lbbFgONRv9qkxdawLx,s=QSXCR+Q6sek8bf92,i=99999999999", IterationCount(u32::MAX)),
            (b"r=fyko+d2lbbFgONRv9qkxdawLx,s=QSXCR+Q6sek8bf92,i=4096,bogus", Malformed("invalid extension")),
        ];
        for (message, expected) in cases {
            assert_eq!(&after_first(message).unwrap_err(), expected, "{}", String::from_utf8_lossy(message));
        }
        // Unknown extensions are ignored (RFC 5802 §7).
        after_first(b"r=fyko+d2lbbFgONRv9qkxdawLx,s=QSXCR+Q6sek8bf92,i=64,x=whatever").unwrap();
    }

    #[test]
    fn iteration_bound_is_configurable() {
        let mut client = rfc5802_client().with_max_iterations(1000);
        client.client_first().unwrap();
        assert_eq!(client.handle_server_first(RFC5802_SERVER_FIRST.as_bytes()), Err(SaslError::IterationCount(4096)));
    }

    #[test]
    fn server_final_failures() {
        let ready = || {
            let mut client = rfc5802_client();
            client.client_first().unwrap();
            client.handle_server_first(RFC5802_SERVER_FIRST.as_bytes()).unwrap();
            client
        };
        assert_eq!(
            ready().verify_server_final(b"e=invalid-proof"),
            Err(SaslError::ServerError("invalid-proof".into()))
        );
        assert_eq!(
            ready().verify_server_final(b"v=rmF9pqV8S7suAoZWja4dJRkFsKQ"),
            Err(SaslError::Malformed("v= is not valid base64"))
        );
        assert_eq!(ready().verify_server_final(b"v=AmF9pqV8S7suAoZWja4dJRkFsKQ="), Err(SaslError::BadServerSignature));
        assert_eq!(ready().verify_server_final(b""), Err(SaslError::Malformed("expected v= or e=")));
        // Extensions after the verifier are allowed.
        ready().verify_server_final(b"v=rmF9pqV8S7suAoZWja4dJRkFsKQ=,x=1").unwrap();
    }

    #[test]
    fn steps_out_of_order_are_errors() {
        let mut client = rfc5802_client();
        assert_eq!(client.handle_server_first(RFC5802_SERVER_FIRST.as_bytes()), Err(SaslError::OutOfOrder));
        assert_eq!(client.verify_server_final(b"v=x"), Err(SaslError::OutOfOrder));
        client.client_first().unwrap();
        assert_eq!(client.client_first(), Err(SaslError::OutOfOrder));
        assert!(client.keys().is_none());
        client.handle_server_first(RFC5802_SERVER_FIRST.as_bytes()).unwrap();
        assert_eq!(client.handle_server_first(RFC5802_SERVER_FIRST.as_bytes()), Err(SaslError::OutOfOrder));
        client.verify_server_final(b"v=rmF9pqV8S7suAoZWja4dJRkFsKQ=").unwrap();
        assert_eq!(client.verify_server_final(b"v=rmF9pqV8S7suAoZWja4dJRkFsKQ="), Err(SaslError::OutOfOrder));
    }

    #[test]
    fn secrets_stay_out_of_debug_output() {
        let keys = ClientKeys::derive(HashAlg::Sha1, "pencil", b"salt", 16).unwrap();
        let client = ScramClient::new(HashAlg::Sha1, "user", "pencil").with_cached_keys(keys.clone());
        let text = format!(
            "{keys:?} {client:?} {:?}",
            ClientChannelBinding::Bind(ChannelBindingType::TlsExporter, vec![1; 32])
        );
        assert!(!text.contains("pencil"), "{text}");
        assert!(!text.contains("client_key"), "{text}");
        assert!(text.contains("32 octets"), "{text}");
    }
}
