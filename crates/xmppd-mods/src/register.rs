//! XEP-0077: In-Band Registration (version 2.4) — account creation before
//! authentication, password change and account removal after it.
//!
//! * **Registration** (§3.1, §3.1.1) happens on a client stream that is
//!   not authenticated yet, over TLS only (§11: the methods "SHOULD NOT be
//!   used unless the channel ... has been secured"; the client session
//!   offers pre-authentication services only over TLS). It is off unless
//!   `allow_registration = true`; then the stream features before
//!   authentication carry `<register xmlns='http://jabber.org/features/iq-register'/>`
//!   (§8), an IQ get returns the fields (`<username/>`, `<password/>`), and
//!   an IQ set creates the account on the stream's host. The client then
//!   authenticates with SASL as usual. With registration off, pre-auth
//!   registration IQs get `<service-unavailable/>` (§3.1: "If the host
//!   does not support In-Band Registration, it MUST return a
//!   &unavailable; error").
//! * **Username**: enforced with the RFC 7622 §3.3 localpart rules (PRECIS
//!   UsernameCaseMapped), so `Bill` registers `bill`. An empty or missing
//!   username or password is `<not-acceptable/>` (§3.1, including the
//!   empty `<password/>` of its footnote), and so is a username that is
//!   not a valid localpart or a password the OpaqueString profile refuses
//!   (the form field is there but its value cannot be used). An existing
//!   account is `<conflict/>` (§3.1).
//! * **Rate limit**: at most `registrations_per_ip_per_hour` successful
//!   registrations per client address in any sliding hour (IPv6 addresses
//!   count per /64, as one host usually owns a whole /64). Over the limit
//!   the answer is `<not-acceptable/>` of type `wait` with a text: §3.1.1
//!   names `not-acceptable` for an entity that "attempts to register too
//!   many times"; `wait` tells the client that retrying later may work.
//!   The limiter lives in memory, per host, and tracks at most
//!   [`MAX_TRACKED_ADDRESSES`] addresses: when full it forgets addresses
//!   whose hour has passed, then the least recently active one.
//! * **Password change** (§3.3), for an authenticated user: `<username/>`
//!   (optional here; when present it must name the user's own account,
//!   else `<forbidden/>`) and `<password/>`. A missing or empty password is
//!   `<bad-request/>` and leaves the password as it was (§3.3: "MUST NOT
//!   change the password to a null value"). The kernel derives new SCRAM
//!   credentials, so the new password works at the next login and the old
//!   one no longer does; open sessions stay open.
//! * **Removal** (§3.2): `<remove/>` as the only child (else
//!   `<bad-request/>`) deletes the account and all its data, answers with
//!   an IQ result and then closes every session of the account with a
//!   `<not-authorized/>` stream error. With `allow_account_removal = false`
//!   the answer is `<not-allowed/>` (§3.2 table: "No sender is allowed to
//!   cancel registrations in-band"). A removal request on a stream that is
//!   not authenticated is `<unexpected-request/>` (§3.2 table).
//! * **Queries** after authentication (§3.1): `<registered/>` with the
//!   username. Requests for another account are `<forbidden/>`.
//! * Submissions may use the plain fields or a `jabber:x:data` form with
//!   the same field names (§4); the module never offers a form itself.
//! * Disco feature `jabber:iq:register` (§10).

use std::collections::{HashMap, VecDeque};
use std::net::{IpAddr, Ipv6Addr};
use std::sync::Mutex;
use std::time::{Duration, Instant};

use async_trait::async_trait;
use serde::Deserialize;
use xmppd_core::module::{IqOutcome, PreAuthOutcome};
use xmppd_core::{
    AccountError, IqHandler, IqRequest, IqType, ModuleContext, ModuleDef, PreAuthError, PreAuthIqHandler,
    PreAuthIqRequest, Protocol, Scope, Support,
};
use xmppd_jid::BareJid;
use xmppd_proto::data_form::DataForm;
use xmppd_proto::{ErrorType, StanzaErrorCondition, ns};
use xmppd_xml::Element;

/// The module declaration.
pub static MODULE: ModuleDef = ModuleDef {
    name: "register",
    // Partial: no registration data form is offered (§4 is RECOMMENDED,
    // not required) and no redirection (§5).
    protocols: &[Protocol { spec: "XEP-0077", version: "2.4", support: Support::Partial }],
    start,
};

/// Most client addresses the registration rate limiter remembers per host.
pub const MAX_TRACKED_ADDRESSES: usize = 4096;

/// The rate limit window.
const WINDOW: Duration = Duration::from_secs(3600);

/// `[modules.settings.register]`
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct RegisterConfig {
    /// Let clients create accounts before authenticating (XEP-0077 §3.1).
    pub allow_registration: bool,
    /// Successful registrations per client address (IPv6: per /64) in any
    /// sliding hour; 1..=10000.
    pub registrations_per_ip_per_hour: u32,
    /// Let users delete their own account (XEP-0077 §3.2).
    pub allow_account_removal: bool,
}

impl Default for RegisterConfig {
    fn default() -> Self {
        RegisterConfig { allow_registration: false, registrations_per_ip_per_hour: 5, allow_account_removal: true }
    }
}

fn start(ctx: &mut ModuleContext<'_>) -> Result<(), String> {
    let config: RegisterConfig = ctx.config()?;
    if !(1..=10_000).contains(&config.registrations_per_ip_per_hour) {
        return Err(format!(
            "modules.settings.register.registrations_per_ip_per_hour: {} is outside 1..=10000",
            config.registrations_per_ip_per_hour
        ));
    }
    ctx.disco_feature(ns::REGISTER);
    for scope in [Scope::Host, Scope::Account] {
        ctx.iq_handler(IqType::Get, scope, ns::REGISTER, "query", RegistrationInfo);
        ctx.iq_handler(
            IqType::Set,
            scope,
            ns::REGISTER,
            "query",
            AccountUpdate { allow_removal: config.allow_account_removal },
        );
    }
    if config.allow_registration {
        ctx.pre_auth_stream_feature(&Element::new("register", ns::REGISTER_FEATURE));
    }
    ctx.pre_auth_iq_handler(
        ns::REGISTER,
        Registration {
            enabled: config.allow_registration,
            limiter: Mutex::new(RateLimiter::new(config.registrations_per_ip_per_hour, WINDOW, MAX_TRACKED_ADDRESSES)),
        },
    );
    Ok(())
}

/// What a `jabber:iq:register` set asks for.
#[derive(Debug, Clone, PartialEq, Eq)]
enum Request {
    /// `<remove/>` (§3.2).
    Remove,
    /// Registration (§3.1) or password change (§3.3): the non-empty
    /// `username` and `password` values given, if any.
    Fields { username: Option<String>, password: Option<String> },
}

/// Reads a set's `<query/>`: `<remove/>` alone, a submitted data form
/// (§4), or the plain fields.
fn parse_request(query: &Element) -> Result<Request, StanzaErrorCondition> {
    if query.has_child("remove", ns::REGISTER) {
        // §3.2 table: <remove/> must be the only child.
        return if query.children().count() == 1 { Ok(Request::Remove) } else { Err(StanzaErrorCondition::BadRequest) };
    }
    let non_empty = |text: String| (!text.is_empty()).then_some(text);
    if let Some(form) = DataForm::find_in(query) {
        let form = form.map_err(|_| StanzaErrorCondition::BadRequest)?;
        // The form carries the password verbatim: only the username is
        // trimmed (a password may begin or end with a space).
        let raw = |var: &str| form.field(var).and_then(|f| f.value()).map(str::to_owned).and_then(non_empty);
        return Ok(Request::Fields { username: form.value("username").map(str::to_owned), password: raw("password") });
    }
    let field = |name: &str| query.get_child(name, ns::REGISTER).map(Element::text).and_then(non_empty);
    Ok(Request::Fields { username: field("username").map(|u| u.trim().to_owned()), password: field("password") })
}

/// The rate limiter's key for a client address: IPv4 addresses as they
/// are, IPv6 addresses by their /64 prefix, unknown addresses together.
fn address_key(ip: Option<IpAddr>) -> Option<IpAddr> {
    match ip {
        Some(IpAddr::V6(v6)) => {
            let [a, b, c, d, ..] = v6.segments();
            Some(IpAddr::V6(Ipv6Addr::new(a, b, c, d, 0, 0, 0, 0)))
        }
        other => other,
    }
}

/// A sliding-window counter per client address with a bounded number of
/// addresses (see the module documentation).
#[derive(Debug)]
struct RateLimiter {
    limit: usize,
    window: Duration,
    max_keys: usize,
    /// Per key, the times of the registrations within the window, oldest
    /// first (at most `limit` of them).
    entries: HashMap<Option<IpAddr>, VecDeque<Instant>>,
}

impl RateLimiter {
    fn new(limit: u32, window: Duration, max_keys: usize) -> RateLimiter {
        RateLimiter {
            limit: usize::try_from(limit).unwrap_or(usize::MAX),
            window,
            max_keys: max_keys.max(1),
            entries: HashMap::new(),
        }
    }

    /// Takes one slot for `key` at `now`; false when the key has used up
    /// its limit within the window.
    fn try_acquire(&mut self, key: Option<IpAddr>, now: Instant) -> bool {
        let window = self.window;
        if let Some(stamps) = self.entries.get_mut(&key) {
            while stamps.front().is_some_and(|t| now.saturating_duration_since(*t) >= window) {
                stamps.pop_front();
            }
            if stamps.len() >= self.limit {
                return false;
            }
            stamps.push_back(now);
            return true;
        }
        if self.entries.len() >= self.max_keys {
            self.entries.retain(|_, stamps| stamps.back().is_some_and(|t| now.saturating_duration_since(*t) < window));
        }
        if self.entries.len() >= self.max_keys {
            let least_recent = self.entries.iter().min_by_key(|(_, stamps)| stamps.back().copied()).map(|(k, _)| *k);
            if let Some(least_recent) = least_recent {
                self.entries.remove(&least_recent);
            }
        }
        if self.limit == 0 {
            return false;
        }
        self.entries.insert(key, VecDeque::from([now]));
        true
    }

    /// Gives back the slot taken last for `key` (the registration failed).
    fn release(&mut self, key: Option<IpAddr>) {
        if let Some(stamps) = self.entries.get_mut(&key) {
            stamps.pop_back();
            if stamps.is_empty() {
                self.entries.remove(&key);
            }
        }
    }
}

/// The registration fields offered before authentication (§3.1).
fn registration_fields() -> Element {
    Element::builder("query", ns::REGISTER)
        .append(
            Element::builder("instructions", ns::REGISTER)
                .text("Choose a username and password to create an account on this server.")
                .build(),
        )
        .append(Element::new("username", ns::REGISTER))
        .append(Element::new("password", ns::REGISTER))
        .build()
}

fn not_acceptable(text: &'static str) -> PreAuthError {
    PreAuthError { condition: StanzaErrorCondition::NotAcceptable, error_type: None, text: Some(text) }
}

/// Registration on a stream that is not authenticated yet (§3.1).
struct Registration {
    enabled: bool,
    limiter: Mutex<RateLimiter>,
}

impl Registration {
    fn limiter(&self) -> std::sync::MutexGuard<'_, RateLimiter> {
        self.limiter.lock().unwrap_or_else(std::sync::PoisonError::into_inner)
    }
}

#[async_trait]
impl PreAuthIqHandler for Registration {
    async fn handle(&self, request: PreAuthIqRequest<'_>) -> PreAuthOutcome {
        if !self.enabled {
            return Err(StanzaErrorCondition::ServiceUnavailable.into());
        }
        if request.payload.name() != "query" {
            return Err(StanzaErrorCondition::BadRequest.into());
        }
        if request.iq_type == IqType::Get {
            return Ok(Some(registration_fields()));
        }
        let (username, password) = match parse_request(&request.payload)? {
            Request::Remove => return Err(StanzaErrorCondition::UnexpectedRequest.into()),
            Request::Fields { username: Some(username), password: Some(password) } => (username, password),
            Request::Fields { .. } => return Err(not_acceptable("both a username and a password are required")),
        };
        let jid = xmppd_jid::nodeprep(&username)
            .ok()
            .and_then(|node| BareJid::from_parts(Some(&node), request.host.as_str()).ok())
            .ok_or_else(|| not_acceptable("the username is not a valid XMPP localpart"))?;
        let key = address_key(request.peer_ip);
        if !self.limiter().try_acquire(key, Instant::now()) {
            tracing::info!(peer = ?request.peer_ip, "registration refused: rate limit");
            return Err(PreAuthError {
                condition: StanzaErrorCondition::NotAcceptable,
                error_type: Some(ErrorType::Wait),
                text: Some("too many registrations from this address; try again later"),
            });
        }
        match request.server.create_account(&jid, &password).await {
            Ok(()) => Ok(None),
            Err(error) => {
                self.limiter().release(key);
                Err(match error {
                    AccountError::Exists => StanzaErrorCondition::Conflict.into(),
                    AccountError::InvalidPassword => not_acceptable("the password is not acceptable"),
                    other => {
                        tracing::warn!(%jid, error = %other, "registration failed");
                        StanzaErrorCondition::InternalServerError.into()
                    }
                })
            }
        }
    }
}

/// The account a post-authentication request is about: the sender's own.
/// Besides what [`IqRequest::own_account`] accepts, the sender's host
/// stands for it; a request addressed to another account, or to another
/// host than the sender's, is `<forbidden/>`.
fn own_account(request: &IqRequest<'_>) -> Result<BareJid, StanzaErrorCondition> {
    let sender = request.stanza.from();
    match request.stanza.to() {
        Some(to) if to.node().is_none() && to.domain() == sender.domain() => Ok(sender.to_bare()),
        _ => request.own_account(),
    }
}

/// §3.1: an authenticated entity is registered; its query answers so.
struct RegistrationInfo;

#[async_trait]
impl IqHandler for RegistrationInfo {
    async fn handle(&self, request: IqRequest<'_>) -> IqOutcome {
        let account = own_account(&request)?;
        let username = account.node().ok_or(StanzaErrorCondition::Forbidden)?;
        Ok(Some(
            Element::builder("query", ns::REGISTER)
                .append(
                    Element::builder("instructions", ns::REGISTER)
                        .text(
                            "You are registered. Send a new password to change it, or <remove/> to delete the account.",
                        )
                        .build(),
                )
                .append(Element::new("registered", ns::REGISTER))
                .append(Element::builder("username", ns::REGISTER).text(username).build())
                .append(Element::new("password", ns::REGISTER))
                .build(),
        ))
    }
}

/// §3.2 removal and §3.3 password change by an authenticated user.
struct AccountUpdate {
    allow_removal: bool,
}

#[async_trait]
impl IqHandler for AccountUpdate {
    async fn handle(&self, request: IqRequest<'_>) -> IqOutcome {
        let account = own_account(&request)?;
        let server = request.server;
        match parse_request(&request.payload)? {
            Request::Remove => {
                if !self.allow_removal {
                    return Err(StanzaErrorCondition::NotAllowed);
                }
                // The result must reach the client before the stream error
                // that ends its session (§3.2): the kernel delivers it in
                // between. The router's own copy of the result, queued
                // after the close, is never written.
                let reply = request.stanza.iq_result(None);
                server.delete_account_replying(&account, Some(&reply)).await.map_err(|error| match error {
                    AccountError::NotFound => StanzaErrorCondition::RegistrationRequired,
                    other => {
                        tracing::warn!(jid = %account, error = %other, "account removal failed");
                        StanzaErrorCondition::InternalServerError
                    }
                })?;
                Ok(None)
            }
            Request::Fields { username, password } => {
                if let Some(username) = username
                    && xmppd_jid::nodeprep(&username).ok().as_deref() != account.node()
                {
                    return Err(StanzaErrorCondition::Forbidden);
                }
                let password = password.ok_or(StanzaErrorCondition::BadRequest)?;
                server.set_password(&account, &password).await.map_err(|error| match error {
                    AccountError::InvalidPassword => StanzaErrorCondition::NotAcceptable,
                    AccountError::NotFound => StanzaErrorCondition::RegistrationRequired,
                    other => {
                        tracing::warn!(jid = %account, error = %other, "password change failed");
                        StanzaErrorCondition::InternalServerError
                    }
                })?;
                Ok(None)
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn query(children: &str) -> Element {
        let xml = format!("<query xmlns='jabber:iq:register'>{children}</query>");
        Element::parse_standalone(xml.as_bytes(), ns::CLIENT).unwrap_or_default()
    }

    fn fields(username: Option<&str>, password: Option<&str>) -> Result<Request, StanzaErrorCondition> {
        Ok(Request::Fields { username: username.map(str::to_owned), password: password.map(str::to_owned) })
    }

    #[test]
    fn plain_fields() {
        assert_eq!(
            parse_request(&query("<username> bill </username><password> Calliope</password><email>x</email>")),
            fields(Some("bill"), Some(" Calliope"))
        );
        // §3.1 footnote: <password/> and <password></password> are "not provided".
        assert_eq!(parse_request(&query("<username>bill</username><password/>")), fields(Some("bill"), None));
        assert_eq!(parse_request(&query("")), fields(None, None));
    }

    #[test]
    fn removal_must_stand_alone() {
        assert_eq!(parse_request(&query("<remove/>")), Ok(Request::Remove));
        assert_eq!(parse_request(&query("<remove/><username>bill</username>")), Err(StanzaErrorCondition::BadRequest));
    }

    #[test]
    fn data_form_submission() {
        let form = "<x xmlns='jabber:x:data' type='submit'>\
            <field type='hidden' var='FORM_TYPE'><value>jabber:iq:register</value></field>\
            <field var='username'><value>juliet</value></field>\
            <field var='password'><value>R0m30 </value></field></x>";
        assert_eq!(parse_request(&query(form)), fields(Some("juliet"), Some("R0m30 ")));
        let broken = "<x xmlns='jabber:x:data' type='nonsense'/>";
        assert_eq!(parse_request(&query(broken)), Err(StanzaErrorCondition::BadRequest));
    }

    #[test]
    fn ipv6_counts_per_64() {
        let a: IpAddr = "2001:db8:1:2:aaaa::1".parse().unwrap_or(IpAddr::V6(Ipv6Addr::UNSPECIFIED));
        let b: IpAddr = "2001:db8:1:2:bbbb::2".parse().unwrap_or(IpAddr::V6(Ipv6Addr::UNSPECIFIED));
        let c: IpAddr = "2001:db8:1:3::1".parse().unwrap_or(IpAddr::V6(Ipv6Addr::UNSPECIFIED));
        assert_eq!(address_key(Some(a)), address_key(Some(b)));
        assert_ne!(address_key(Some(a)), address_key(Some(c)));
        let v4: IpAddr = "192.0.2.7".parse().unwrap_or(IpAddr::V6(Ipv6Addr::UNSPECIFIED));
        assert_eq!(address_key(Some(v4)), Some(v4));
    }

    fn ip(last: u8) -> Option<IpAddr> {
        Some(IpAddr::from([192, 0, 2, last]))
    }

    #[test]
    fn limit_per_address_in_a_sliding_window() {
        let hour = Duration::from_secs(3600);
        let mut limiter = RateLimiter::new(2, hour, 100);
        let t0 = Instant::now();
        assert!(limiter.try_acquire(ip(1), t0));
        assert!(limiter.try_acquire(ip(1), t0 + Duration::from_secs(600)));
        assert!(!limiter.try_acquire(ip(1), t0 + Duration::from_secs(1200)));
        // Another address has its own budget.
        assert!(limiter.try_acquire(ip(2), t0 + Duration::from_secs(1200)));
        // The first slot frees up an hour after it was taken.
        assert!(limiter.try_acquire(ip(1), t0 + hour));
        assert!(!limiter.try_acquire(ip(1), t0 + hour + Duration::from_secs(1)));
        // A failed registration gives its slot back.
        limiter.release(ip(1));
        assert!(limiter.try_acquire(ip(1), t0 + hour + Duration::from_secs(2)));
    }

    #[test]
    fn tracked_addresses_are_bounded() {
        let hour = Duration::from_secs(3600);
        let mut limiter = RateLimiter::new(1, hour, 3);
        let t0 = Instant::now();
        for last in 1..=3 {
            assert!(limiter.try_acquire(ip(last), t0 + Duration::from_secs(u64::from(last))));
        }
        // Full: the least recently active address (1) is forgotten.
        assert!(limiter.try_acquire(ip(4), t0 + Duration::from_secs(10)));
        assert_eq!(limiter.entries.len(), 3);
        assert!(!limiter.entries.contains_key(&ip(1)));
        assert!(!limiter.try_acquire(ip(4), t0 + Duration::from_secs(11)));
        // After the window, expired addresses are dropped first.
        assert!(limiter.try_acquire(ip(5), t0 + hour + Duration::from_secs(20)));
        assert_eq!(limiter.entries.len(), 1);
        // Many addresses never grow the map past its bound.
        for last in 0..=255 {
            limiter.try_acquire(ip(last), t0 + hour + Duration::from_secs(30));
        }
        assert_eq!(limiter.entries.len(), 3);
    }
}
