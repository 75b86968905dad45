//! The per-attempt server state machine (RFC 6120 §6.4, RFC 4422 §3).

use std::fmt;

use base64::Engine;
use base64::engine::general_purpose::STANDARD;
use precis_profiles::UsernameCaseMapped;
use precis_profiles::precis_core::profile::PrecisFastInvocation;
use rand::RngCore;
use subtle::ConstantTimeEq;

use crate::channel_binding::{ChannelBindingData, ChannelBindingType};
use crate::credentials::ScramCredentials;
use crate::crypto;
use crate::downgrade::DowngradeInfo;
use crate::failure::{Reject, SaslFailure};
use crate::mechanism::{HashAlg, Mechanism};
use crate::plain::{self, PlainMessage};
use crate::scram::{self, CbindFlag};

/// Default upper bound for one decoded client message, in octets.
pub const DEFAULT_MAX_MESSAGE_LEN: usize = 4096;

/// Default iteration count announced for unknown users. Set it to the count
/// used for real accounts ([`SaslConfig::with_fake_iterations`]), or unknown
/// users stand out.
pub const DEFAULT_FAKE_ITERATIONS: u32 = 4096;

/// Salt length announced for unknown users (that of
/// [`ScramCredentials::generate`]).
const FAKE_SALT_LEN: usize = 16;

/// Random octets in the server nonce; base64 makes 32 printable characters
/// (RFC 5802 §5.1 asks for a fresh, unpredictable nonce).
const SERVER_NONCE_LEN: usize = 24;

/// Process-wide settings shared by all [`ServerSession`]s.
#[derive(Clone)]
pub struct SaslConfig {
    fake_secret: [u8; 32],
    fake_iterations: u32,
    max_message_len: usize,
}

impl fmt::Debug for SaslConfig {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("SaslConfig")
            .field("fake_iterations", &self.fake_iterations)
            .field("max_message_len", &self.max_message_len)
            .finish_non_exhaustive()
    }
}

impl SaslConfig {
    /// Settings with the given secret for deriving unknown users' fake salts.
    /// Keep the secret stable for the life of the process (or longer): a
    /// changing fake salt would reveal that a user does not exist.
    pub fn new(fake_credentials_secret: [u8; 32]) -> SaslConfig {
        SaslConfig {
            fake_secret: fake_credentials_secret,
            fake_iterations: DEFAULT_FAKE_ITERATIONS,
            max_message_len: DEFAULT_MAX_MESSAGE_LEN,
        }
    }

    /// Settings with a fresh random secret (per process).
    pub fn with_random_secret() -> SaslConfig {
        let mut secret = [0u8; 32];
        rand::rng().fill_bytes(&mut secret);
        SaslConfig::new(secret)
    }

    /// Sets the iteration count announced to unknown users; values below 1
    /// are raised to 1.
    #[must_use]
    pub fn with_fake_iterations(mut self, iterations: u32) -> SaslConfig {
        self.fake_iterations = iterations.max(1);
        self
    }

    /// Sets the largest accepted decoded client message; larger ones fail
    /// with `malformed-request`.
    #[must_use]
    pub fn with_max_message_len(mut self, max_message_len: usize) -> SaslConfig {
        self.max_message_len = max_message_len;
        self
    }

    /// The iteration count announced to unknown users.
    pub fn fake_iterations(&self) -> u32 {
        self.fake_iterations
    }

    /// The largest accepted decoded client message, in octets.
    pub fn max_message_len(&self) -> usize {
        self.max_message_len
    }
}

/// What the caller must do next (RFC 6120 §6.4).
#[derive(Debug, Clone, PartialEq, Eq)]
#[must_use]
pub enum Step {
    /// Look up the user's credentials (asynchronously) and call
    /// [`ServerSession::provide_credentials`]. Nothing is sent to the peer.
    ///
    /// `authcid` is the authentication identity exactly as sent (SCRAM `n=`
    /// with `=2C`/`=3D` decoded, RFC 5802 §5.1; PLAIN authcid, RFC 4616 §2):
    /// valid UTF-8 but not normalized — apply the XMPP localpart rules
    /// (UsernameCaseMapped, RFC 7622 §3.3) before lookup. For SCRAM, look up
    /// the credentials for the mechanism's [`HashAlg`].
    NeedCredentials {
        /// The authentication identity.
        authcid: String,
        /// The requested authorization identity, if any (RFC 6120 §6.3.8).
        authzid: Option<String>,
    },
    /// Send `<challenge/>` with this data (RFC 6120 §6.4.3). Empty data
    /// means an empty `<challenge/>` element.
    Challenge(Vec<u8>),
    /// Authentication succeeded: send `<success/>` with `additional_data`
    /// (RFC 6120 §6.4.6); for SCRAM that is the server-final-message, for
    /// PLAIN it is empty (send an empty element). The caller still decides
    /// whether `authcid` may act as `authzid` (else `invalid-authzid`).
    Success {
        /// The authentication identity, as in [`Step::NeedCredentials`].
        authcid: String,
        /// The requested authorization identity, if any.
        authzid: Option<String>,
        /// Additional data with success.
        additional_data: Vec<u8>,
    },
    /// Authentication failed: send `<failure/>` with this condition
    /// (RFC 6120 §6.4.5). The session is finished.
    Failure(SaslFailure),
}

/// One server-side SASL authentication attempt (RFC 6120 §6.4).
///
/// Feed it decoded client data with [`ServerSession::step`] and credentials
/// with [`ServerSession::provide_credentials`]; it never performs I/O and
/// never panics on peer input.
pub struct ServerSession {
    mechanism: Mechanism,
    channel_binding: ChannelBindingData,
    downgrade: DowngradeInfo,
    fake_secret: [u8; 32],
    fake_iterations: u32,
    max_message_len: usize,
    server_nonce: String,
    state: State,
    used_channel_binding: Option<ChannelBindingType>,
    failure_detail: Option<&'static str>,
}

impl fmt::Debug for ServerSession {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("ServerSession")
            .field("mechanism", &self.mechanism)
            .field("state", &self.state.name())
            .field("channel_binding", &self.used_channel_binding)
            .field("failure_detail", &self.failure_detail)
            .finish_non_exhaustive()
    }
}

enum State {
    /// SCRAM started without initial response; the client-first-message is
    /// expected next.
    AwaitingClientFirst,
    /// PLAIN started without initial response.
    AwaitingPlainMessage,
    ScramAwaitingCredentials(ScramClientFirst),
    ScramAwaitingClientFinal(ScramExchange),
    PlainAwaitingCredentials(PlainMessage),
    Finished,
}

impl State {
    fn name(&self) -> &'static str {
        match self {
            State::AwaitingClientFirst => "awaiting-client-first",
            State::AwaitingPlainMessage => "awaiting-plain-message",
            State::ScramAwaitingCredentials(_) | State::PlainAwaitingCredentials(_) => "awaiting-credentials",
            State::ScramAwaitingClientFinal(_) => "awaiting-client-final",
            State::Finished => "finished",
        }
    }
}

/// What the server keeps from the client-first-message.
struct ScramClientFirst {
    hash: HashAlg,
    /// The `c=` value the client must send: gs2-header plus channel-binding
    /// data (RFC 5802 §7 `cbind-input`).
    expected_channel_binding: Vec<u8>,
    authcid: String,
    authzid: Option<String>,
    client_nonce: String,
    bare: String,
}

/// State between server-first and client-final messages.
struct ScramExchange {
    first: ScramClientFirst,
    server_first: String,
    nonce: String,
    credentials: ScramCredentials,
    known_user: bool,
}

impl ServerSession {
    /// Starts an attempt after `<auth mechanism='…'/>` (RFC 6120 §6.4.2).
    ///
    /// * `channel_binding`: the TLS channel-binding data of this stream.
    /// * `downgrade`: what was advertised, for XEP-0474 and the RFC 5802 §6
    ///   `y`-flag check; [`DowngradeInfo::none`] omits the `h` attribute.
    /// * `initial_response`: the decoded initial response; `None` if the
    ///   `<auth/>` element was empty, `Some(b"")` if it was `=`.
    ///
    /// Fails with `invalid-mechanism` when the mechanism is not in a given
    /// advertised list, or is `-PLUS` without any channel-binding data.
    pub fn start(
        config: &SaslConfig,
        mechanism: Mechanism,
        channel_binding: ChannelBindingData,
        downgrade: DowngradeInfo,
        initial_response: Option<&[u8]>,
    ) -> (ServerSession, Step) {
        let server_nonce = random_nonce();
        Self::start_with_server_nonce(config, mechanism, channel_binding, downgrade, initial_response, server_nonce)
    }

    /// [`ServerSession::start`] with a chosen server nonce, for test vectors.
    pub(crate) fn start_with_server_nonce(
        config: &SaslConfig,
        mechanism: Mechanism,
        channel_binding: ChannelBindingData,
        downgrade: DowngradeInfo,
        initial_response: Option<&[u8]>,
        server_nonce: String,
    ) -> (ServerSession, Step) {
        let initial_state = if mechanism.is_scram() { State::AwaitingClientFirst } else { State::AwaitingPlainMessage };
        let mut session = ServerSession {
            mechanism,
            channel_binding,
            downgrade,
            fake_secret: config.fake_secret,
            fake_iterations: config.fake_iterations,
            max_message_len: config.max_message_len,
            server_nonce,
            state: initial_state,
            used_channel_binding: None,
            failure_detail: None,
        };
        let step = session.begin(initial_response);
        (session, step)
    }

    /// Handles the decoded data of a `<response/>` (RFC 6120 §6.4.3).
    pub fn step(&mut self, response: &[u8]) -> Step {
        if response.len() > self.max_message_len {
            return self.fail(Reject::malformed("message too long"));
        }
        match std::mem::replace(&mut self.state, State::Finished) {
            State::AwaitingClientFirst => self.handle_client_first(response),
            State::AwaitingPlainMessage => self.handle_plain(response),
            State::ScramAwaitingClientFinal(exchange) => self.handle_client_final(exchange, response),
            State::ScramAwaitingCredentials(_) | State::PlainAwaitingCredentials(_) => {
                self.fail(Reject::malformed("unexpected response while credentials are looked up"))
            }
            State::Finished => self.fail(Reject::malformed("exchange already finished")),
        }
    }

    /// Continues after [`Step::NeedCredentials`] with the stored
    /// credentials, or `None` if the user does not exist (or must not
    /// authenticate this way).
    ///
    /// For SCRAM the credentials must be for the mechanism's hash; with
    /// `None` the exchange continues with a fake salt and iteration count
    /// derived from the configured secret and the UsernameCaseMapped form
    /// of the authcid (raw form if that fails), so that spellings of one
    /// name get the same fake salt, and fails only at the final proof check
    /// with `not-authorized`. For PLAIN, `None` runs a PBKDF2 of the
    /// configured fake cost before failing, to keep timing similar.
    ///
    /// Unusable credentials (wrong hash, malformed) give
    /// `temporary-auth-failure`.
    pub fn provide_credentials(&mut self, credentials: Option<ScramCredentials>) -> Step {
        match std::mem::replace(&mut self.state, State::Finished) {
            State::ScramAwaitingCredentials(first) => self.continue_scram(first, credentials),
            State::PlainAwaitingCredentials(message) => self.finish_plain(message, credentials),
            _ => self
                .fail(Reject::new(SaslFailure::TemporaryAuthFailure, "credentials provided without being requested")),
        }
    }

    /// Ends the attempt because the client sent `<abort/>`
    /// (RFC 6120 §6.4.4); returns the `aborted` failure to send.
    pub fn abort(&mut self) -> Step {
        self.state = State::Finished;
        self.fail(Reject::new(SaslFailure::Aborted, "aborted by the client"))
    }

    /// The mechanism of this attempt.
    pub fn mechanism(&self) -> Mechanism {
        self.mechanism
    }

    /// The channel-binding type the client bound to (after the
    /// client-first-message of a `-PLUS` mechanism).
    pub fn channel_binding_type(&self) -> Option<ChannelBindingType> {
        self.used_channel_binding
    }

    /// Whether the attempt has ended (success or failure).
    pub fn is_finished(&self) -> bool {
        matches!(self.state, State::Finished)
    }

    /// A short reason for the last failure, for server logs only (never
    /// send it to the peer: it would tell unknown users apart).
    pub fn failure_detail(&self) -> Option<&'static str> {
        self.failure_detail
    }

    fn begin(&mut self, initial_response: Option<&[u8]>) -> Step {
        if self.downgrade.advertises(self.mechanism.name()) == Some(false) {
            return self.fail(Reject::new(SaslFailure::InvalidMechanism, "mechanism was not advertised"));
        }
        if self.mechanism.is_plus() && !self.channel_binding.is_available() {
            return self
                .fail(Reject::new(SaslFailure::InvalidMechanism, "-PLUS mechanism without channel-binding data"));
        }
        match initial_response {
            // RFC 6120 §6.4.2: without an initial response the server sends
            // an empty challenge.
            None => Step::Challenge(Vec::new()),
            Some(data) => self.step(data),
        }
    }

    fn fail(&mut self, reject: Reject) -> Step {
        self.state = State::Finished;
        self.failure_detail = Some(reject.detail);
        Step::Failure(reject.failure)
    }

    fn handle_plain(&mut self, message: &[u8]) -> Step {
        match plain::parse(message) {
            Ok(message) => {
                let step = Step::NeedCredentials { authcid: message.authcid.clone(), authzid: message.authzid.clone() };
                self.state = State::PlainAwaitingCredentials(message);
                step
            }
            Err(reject) => self.fail(reject),
        }
    }

    fn finish_plain(&mut self, message: PlainMessage, credentials: Option<ScramCredentials>) -> Step {
        match credentials {
            Some(credentials) if credentials.is_well_formed() => {
                if credentials.verify_plain(&message.password) {
                    self.state = State::Finished;
                    Step::Success { authcid: message.authcid, authzid: message.authzid, additional_data: Vec::new() }
                } else {
                    self.fail(Reject::new(SaslFailure::NotAuthorized, "wrong password"))
                }
            }
            Some(_) => self.fail(Reject::new(SaslFailure::TemporaryAuthFailure, "stored credentials are malformed")),
            None => {
                // Spend about as long as a real check would.
                let fake = self.fake_credentials(HashAlg::Sha256, &message.authcid);
                let _ = fake.verify_plain(&message.password);
                self.fail(Reject::new(SaslFailure::NotAuthorized, "unknown user"))
            }
        }
    }

    fn handle_client_first(&mut self, message: &[u8]) -> Step {
        match self.parse_client_first(message) {
            Ok(first) => {
                let step = Step::NeedCredentials { authcid: first.authcid.clone(), authzid: first.authzid.clone() };
                self.state = State::ScramAwaitingCredentials(first);
                step
            }
            Err(reject) => self.fail(reject),
        }
    }

    /// Parses and checks a client-first-message, including the GS2
    /// channel-binding flag rules of RFC 5802 §6.
    fn parse_client_first(&mut self, message: &[u8]) -> Result<ScramClientFirst, Reject> {
        let Some(hash) = self.mechanism.hash() else {
            return Err(Reject::new(SaslFailure::TemporaryAuthFailure, "not a SCRAM mechanism"));
        };
        let text =
            std::str::from_utf8(message).map_err(|_| Reject::malformed("client-first-message is not valid UTF-8"))?;
        let first = scram::parse_client_first(text)?;
        let mut expected_channel_binding = first.gs2_header.as_bytes().to_vec();
        match first.cbind {
            CbindFlag::Binding(name) => {
                if !self.mechanism.is_plus() {
                    return Err(Reject::malformed("channel binding requested with a non-PLUS mechanism"));
                }
                let cb_type = ChannelBindingType::from_name(name)
                    .ok_or(Reject::new(SaslFailure::NotAuthorized, "unsupported channel-binding type"))?;
                let data = self.channel_binding.get(cb_type).ok_or(Reject::new(
                    SaslFailure::NotAuthorized,
                    "channel-binding type not available on this connection",
                ))?;
                expected_channel_binding.extend_from_slice(data);
                self.used_channel_binding = Some(cb_type);
            }
            CbindFlag::NotSupported | CbindFlag::SupportedNotUsed if self.mechanism.is_plus() => {
                return Err(Reject::malformed("-PLUS mechanism without channel binding (p=) in GS2 header"));
            }
            CbindFlag::SupportedNotUsed => {
                // RFC 5802 §6: "y" while we advertised -PLUS means someone
                // stripped the -PLUS mechanisms: a downgrade attack.
                let advertised_plus =
                    self.downgrade.advertises_plus().unwrap_or_else(|| self.channel_binding.is_available());
                if advertised_plus {
                    return Err(Reject::new(
                        SaslFailure::NotAuthorized,
                        "client supports channel binding but saw no -PLUS mechanism (downgrade)",
                    ));
                }
            }
            CbindFlag::NotSupported => {}
        }
        Ok(ScramClientFirst {
            hash,
            expected_channel_binding,
            authcid: first.username,
            authzid: first.authzid,
            client_nonce: first.client_nonce.to_owned(),
            bare: first.bare.to_owned(),
        })
    }

    fn continue_scram(&mut self, first: ScramClientFirst, credentials: Option<ScramCredentials>) -> Step {
        let (credentials, known_user) = match credentials {
            Some(credentials) if credentials.hash == first.hash && credentials.is_well_formed() => (credentials, true),
            Some(_) => {
                return self.fail(Reject::new(
                    SaslFailure::TemporaryAuthFailure,
                    "stored credentials are malformed or for another hash",
                ));
            }
            None => (self.fake_credentials(first.hash, &first.authcid), false),
        };
        let nonce = format!("{}{}", first.client_nonce, self.server_nonce);
        let downgrade_hash = self.downgrade.attribute_value(first.hash);
        let server_first =
            scram::server_first_message(&nonce, &credentials.salt, credentials.iterations, downgrade_hash.as_deref());
        let step = Step::Challenge(server_first.as_bytes().to_vec());
        self.state =
            State::ScramAwaitingClientFinal(ScramExchange { first, server_first, nonce, credentials, known_user });
        step
    }

    fn handle_client_final(&mut self, exchange: ScramExchange, message: &[u8]) -> Step {
        let Ok(text) = std::str::from_utf8(message) else {
            return self.fail(Reject::malformed("client-final-message is not valid UTF-8"));
        };
        let client_final = match scram::parse_client_final(text) {
            Ok(client_final) => client_final,
            Err(reject) => return self.fail(reject),
        };
        let channel_binding_ok: bool =
            client_final.channel_binding.ct_eq(&exchange.first.expected_channel_binding).into();
        if !channel_binding_ok {
            return self.fail(Reject::new(SaslFailure::NotAuthorized, "channel binding (c=) does not match"));
        }
        if client_final.nonce != exchange.nonce {
            return self.fail(Reject::new(SaslFailure::NotAuthorized, "nonce (r=) does not match"));
        }
        let hash = exchange.first.hash;
        if client_final.proof.len() != hash.output_len() {
            return self.fail(Reject::malformed("client proof has the wrong length"));
        }
        let auth_message = format!("{},{},{}", exchange.first.bare, exchange.server_first, client_final.without_proof);
        let Some(check) = scram::check_proof(
            hash,
            &exchange.credentials.stored_key,
            &exchange.credentials.server_key,
            auth_message.as_bytes(),
            &client_final.proof,
        ) else {
            return self.fail(Reject::new(SaslFailure::TemporaryAuthFailure, "HMAC computation failed"));
        };
        if !exchange.known_user {
            return self.fail(Reject::new(SaslFailure::NotAuthorized, "unknown user"));
        }
        if !check.valid {
            return self.fail(Reject::new(SaslFailure::NotAuthorized, "invalid client proof"));
        }
        self.state = State::Finished;
        Step::Success {
            authcid: exchange.first.authcid,
            authzid: exchange.first.authzid,
            additional_data: scram::server_final_message(&check.server_signature).into_bytes(),
        }
    }

    /// Deterministic stand-in credentials for an unknown user: the same
    /// salt and iteration count on every attempt for that name and hash,
    /// keys no password matches (short of breaking HMAC).
    fn fake_credentials(&self, hash: HashAlg, authcid: &str) -> ScramCredentials {
        let name =
            UsernameCaseMapped::enforce(authcid).map(|name| name.into_owned()).unwrap_or_else(|_| authcid.to_owned());
        let derive = |label: &str, alg: HashAlg| {
            let mut input = format!("xmppd-sasl fake {label} {}\0", hash.name()).into_bytes();
            input.extend_from_slice(name.as_bytes());
            crypto::hmac(alg, &self.fake_secret, &input).unwrap_or_default()
        };
        let mut salt = derive("salt", HashAlg::Sha256);
        salt.resize(FAKE_SALT_LEN, 0);
        let mut stored_key = derive("stored-key", hash);
        stored_key.resize(hash.output_len(), 0);
        let mut server_key = derive("server-key", hash);
        server_key.resize(hash.output_len(), 0);
        ScramCredentials { hash, salt, iterations: self.fake_iterations, stored_key, server_key }
    }
}

fn random_nonce() -> String {
    let mut bytes = [0u8; SERVER_NONCE_LEN];
    rand::rng().fill_bytes(&mut bytes);
    STANDARD.encode(bytes)
}
