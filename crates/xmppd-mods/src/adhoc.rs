//! XEP-0050: Ad-Hoc Commands (version 1.3.0) — discovery and execution of
//! the commands other modules declare in the kernel registry
//! ([`ModuleContext::adhoc_command`]).
//!
//! * **Discovery** (§2.1, §2.2): the host advertises
//!   `http://jabber.org/protocol/commands`; disco#items on that node lists
//!   the commands *the requester* may run (§2.2: "The responder is not
//!   required to send the same list of commands to all requesters"), each
//!   as `<item jid=host node name/>`; disco#info on a command node gives
//!   identity `automation/command-node` and the features
//!   `http://jabber.org/protocol/commands` and `jabber:x:data`, or
//!   `<forbidden/>` when the requester may not run it (§2.2).
//! * **Execution** (§2.4): an IQ set with `<command node=…/>` to the host.
//!   The first request starts a session; every answer carries its
//!   `sessionid`. A stage that needs input answers `status='executing'`
//!   with a `jabber:x:data` form and `<actions/>` (`next`, or `complete` for
//!   the last form, plus `prev` after the first stage, §3.4); the requester
//!   submits the form (type `submit`; `cancel` counts as `submit`, §3.5.1)
//!   with action `execute`, `next` or `complete`, which are treated alike.
//!   `prev` goes back one stage and sends that stage's form again;
//!   `cancel` ends the session with `status='canceled'` (§2.4.3). The last
//!   stage answers `status='completed'` with an optional result form and
//!   notes (§3.6: a failed command carries a `<note type='error'/>`). A
//!   first request that already carries a submitted form is taken as that
//!   form's submission (one-shot execution).
//! * **Sessions** (§3.3) belong to the requester's full JID and one command
//!   node, live in memory, expire after `session_timeout_secs` without
//!   activity, and are bounded (`max_sessions` in all,
//!   `max_sessions_per_user` per requester; over either:
//!   `<resource-constraint/>`). Ids are unique per server run.
//! * **Errors** carry the specific conditions of §4.6 next to the defined
//!   one: `malformed-action` (an unknown action), `bad-action` (`prev` at
//!   the first stage, anything but execute without a session),
//!   `bad-payload` (no or a broken form), `bad-sessionid` (another
//!   requester's or node's session), `session-expired` (unknown or timed
//!   out session, `not-allowed`).
//! * **Errors** (§4.4): no `node` or an unknown `action` is
//!   `<bad-request/>`, an unknown node `<item-not-found/>`, a command the
//!   requester may not run `<forbidden/>`, an unknown or expired
//!   `sessionid` `<not-allowed/>`, a `sessionid` of another requester or
//!   node, `prev` without a previous stage, or a continuation without a
//!   submitted form `<bad-request/>`. The command-specific child conditions
//!   of §4.4 (`<malformed-action/>`, `<bad-sessionid/>`, …) are not added:
//!   the kernel's IQ handlers answer defined conditions only. Any error
//!   ends the session.

use std::collections::HashMap;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use async_trait::async_trait;
use serde::Deserialize;
use xmppd_core::adhoc::AdhocCommandEntry;
use xmppd_core::module::IqOutcome;
use xmppd_core::{
    AdhocReply, AdhocRequest, DiscoNodes, IqHandler, IqRequest, IqType, ModuleContext, ModuleDef, Protocol, Scope,
    Server, Support,
};
use xmppd_jid::{DomainJid, Jid};
use xmppd_proto::data_form::{DataForm, FormType};
use xmppd_proto::{StanzaErrorCondition, ns};
use xmppd_xml::Element;

/// The module declaration.
pub static MODULE: ModuleDef = ModuleDef {
    name: "adhoc",
    // Partial: no xml:lang handling (§3.7), no announcements by message
    // (§2.3).
    protocols: &[Protocol { spec: "XEP-0050", version: "1.3.0", support: Support::Partial }],
    start,
};

/// `[modules.settings.adhoc]`
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct AdhocConfig {
    /// Seconds a multi-stage command session survives without activity.
    pub session_timeout_secs: u64,
    /// Open command sessions per host, all requesters together.
    pub max_sessions: usize,
    /// Open command sessions per requester (full JID).
    pub max_sessions_per_user: usize,
}

impl Default for AdhocConfig {
    fn default() -> Self {
        AdhocConfig { session_timeout_secs: 600, max_sessions: 1000, max_sessions_per_user: 10 }
    }
}

fn start(ctx: &mut ModuleContext<'_>) -> Result<(), String> {
    let config: AdhocConfig = ctx.config()?;
    if config.session_timeout_secs == 0 || config.max_sessions == 0 || config.max_sessions_per_user == 0 {
        return Err("modules.settings.adhoc: session_timeout_secs, max_sessions and max_sessions_per_user \
                    must be at least 1"
            .into());
    }
    ctx.disco_feature(ns::COMMANDS);
    ctx.disco_nodes(CommandNodes);
    ctx.iq_handler(IqType::Set, Scope::Host, ns::COMMANDS, "command", Execute { sessions: Sessions::new(&config) });
    Ok(())
}

/// The requested `action` (XEP-0050 §4.1).
/// A failed request: the defined condition and XEP-0050's specific one
/// (§4.6: `malformed-action`, `bad-action`, `bad-payload`,
/// `bad-sessionid`, `session-expired`), if any.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
struct CommandError(StanzaErrorCondition, Option<&'static str>);

impl From<StanzaErrorCondition> for CommandError {
    fn from(condition: StanzaErrorCondition) -> Self {
        CommandError(condition, None)
    }
}

/// §4.6: `bad-request` with a specific condition.
const fn bad(specific: &'static str) -> CommandError {
    CommandError(StanzaErrorCondition::BadRequest, Some(specific))
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Action {
    /// `execute` (the default), `next` and `complete`: go on.
    Proceed,
    /// `prev`: back one stage.
    Prev,
    /// `cancel`: end the session.
    Cancel,
}

impl Action {
    fn parse(value: Option<&str>) -> Result<Action, CommandError> {
        match value {
            None | Some("execute" | "next" | "complete") => Ok(Action::Proceed),
            Some("prev") => Ok(Action::Prev),
            Some("cancel") => Ok(Action::Cancel),
            Some(_) => Err(bad("malformed-action")),
        }
    }
}

/// The submitted form of a `<command/>`, if any (§3.5.1: a form of type
/// `cancel` is taken as `submit`; forms of other types are ignored).
fn submitted_form(command: &Element) -> Result<Option<DataForm>, CommandError> {
    match DataForm::find_in(command) {
        None => Ok(None),
        Some(Err(_)) => Err(bad("bad-payload")),
        Some(Ok(form)) if matches!(form.form_type, FormType::Submit | FormType::Cancel) => Ok(Some(form)),
        Some(Ok(_)) => Ok(None),
    }
}

/// One open command session.
#[derive(Debug)]
struct Session {
    node: &'static str,
    owner: Jid,
    /// The forms sent, one per stage, with whether each was the last.
    forms: Vec<(DataForm, bool)>,
    /// The forms submitted, one per completed stage.
    submitted: Vec<DataForm>,
    touched: Instant,
}

/// The open sessions of one host.
struct Sessions {
    map: Mutex<HashMap<String, Session>>,
    timeout: Duration,
    max_total: usize,
    max_per_user: usize,
    /// Makes ids unique across server runs.
    epoch: u128,
    counter: AtomicU64,
}

impl Sessions {
    fn new(config: &AdhocConfig) -> Sessions {
        Sessions {
            map: Mutex::new(HashMap::new()),
            timeout: Duration::from_secs(config.session_timeout_secs),
            max_total: config.max_sessions,
            max_per_user: config.max_sessions_per_user,
            epoch: SystemTime::now().duration_since(UNIX_EPOCH).map(|d| d.as_nanos()).unwrap_or_default(),
            counter: AtomicU64::new(0),
        }
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, HashMap<String, Session>> {
        self.map.lock().unwrap_or_else(std::sync::PoisonError::into_inner)
    }

    fn new_id(&self) -> String {
        format!("{:x}-{:x}", self.epoch, self.counter.fetch_add(1, Ordering::Relaxed))
    }

    fn purge(&self, map: &mut HashMap<String, Session>, now: Instant) {
        map.retain(|_, session| now.saturating_duration_since(session.touched) < self.timeout);
    }

    /// Stores a session that waits for its next request.
    fn put(&self, id: String, mut session: Session, now: Instant) -> Result<(), StanzaErrorCondition> {
        let mut map = self.lock();
        self.purge(&mut map, now);
        let mine = map.values().filter(|s| s.owner == session.owner).count();
        if map.len() >= self.max_total || mine >= self.max_per_user {
            return Err(StanzaErrorCondition::ResourceConstraint);
        }
        session.touched = now;
        map.insert(id, session);
        Ok(())
    }

    /// Takes the session `id` out for `requester` and `node`.
    fn take(&self, id: &str, requester: &Jid, node: &str, now: Instant) -> Result<Session, CommandError> {
        let mut map = self.lock();
        self.purge(&mut map, now);
        let expired = CommandError(StanzaErrorCondition::NotAllowed, Some("session-expired"));
        match map.get(id) {
            None => Err(expired),
            Some(session) if session.owner != *requester || session.node != node => Err(bad("bad-sessionid")),
            Some(_) => map.remove(id).ok_or(expired),
        }
    }
}

/// `<command/>` answers (§4.1).
fn command_reply(node: &str, sessionid: &str, status: &str) -> Element {
    Element::builder("command", ns::COMMANDS)
        .attr("node", node)
        .attr("sessionid", sessionid)
        .attr("status", status)
        .build()
}

/// `<actions/>` for a stage (§3.4, §4.2): `next` or `complete` as the
/// default, `prev` after the first stage.
fn actions(last: bool, has_previous: bool) -> Element {
    let default = if last { "complete" } else { "next" };
    let mut actions = Element::builder("actions", ns::COMMANDS).attr("execute", default).build();
    if has_previous {
        actions.push_child(Element::new("prev", ns::COMMANDS));
    }
    actions.push_child(Element::new(default, ns::COMMANDS));
    actions
}

/// The answer for a session that waits for `form` (status `executing`).
fn executing(node: &str, sessionid: &str, form: &DataForm, last: bool, has_previous: bool) -> Element {
    let mut reply = command_reply(node, sessionid, "executing");
    reply.push_child(actions(last, has_previous));
    reply.push_child(form.to_element());
    reply
}

/// IQ set `<command/>` to the host (§2.4).
struct Execute {
    sessions: Sessions,
}

impl Execute {
    /// Runs the command's next stage for `session` and answers.
    async fn run_stage(
        &self,
        request: &IqRequest<'_>,
        host: &DomainJid,
        command: &AdhocCommandEntry,
        id: String,
        mut session: Session,
    ) -> IqOutcome {
        let stage = AdhocRequest {
            server: request.server,
            host,
            requester: request.stanza.from(),
            submitted: &session.submitted,
        };
        match command.handler.execute(stage).await? {
            AdhocReply::Form { form, last } => {
                let has_previous = !session.forms.is_empty();
                let reply = executing(command.node, &id, &form, last, has_previous);
                session.forms.push((form, last));
                self.sessions.put(id, session, Instant::now())?;
                Ok(Some(reply))
            }
            AdhocReply::Completed { form, notes } => {
                let mut reply = command_reply(command.node, &id, "completed");
                if let Some(form) = form {
                    reply.push_child(form.to_element());
                }
                for (note_type, text) in notes {
                    reply.push_child(
                        Element::builder("note", ns::COMMANDS).attr("type", note_type.as_str()).text(&text).build(),
                    );
                }
                Ok(Some(reply))
            }
        }
    }
}

#[async_trait]
impl IqHandler for Execute {
    async fn handle(&self, request: IqRequest<'_>) -> IqOutcome {
        self.execute(&request).await.or_else(|CommandError(condition, specific)| match specific {
            Some(name) => request.fail_with(condition, Element::new(name, ns::COMMANDS)),
            None => Err(condition),
        })
    }
}

impl Execute {
    async fn execute(&self, request: &IqRequest<'_>) -> Result<Option<Element>, CommandError> {
        let host = request.stanza.to().map(Jid::to_domain_jid).ok_or(StanzaErrorCondition::BadRequest)?;
        let payload = &request.payload;
        let node = payload.attr("node").filter(|n| !n.is_empty()).ok_or(StanzaErrorCondition::BadRequest)?;
        let action = Action::parse(payload.attr("action"))?;
        let command = request
            .server
            .adhoc_commands(&host)
            .iter()
            .find(|c| c.node == node)
            .cloned()
            .ok_or(StanzaErrorCondition::ItemNotFound)?;
        let requester = request.stanza.from();
        if !command.allows(request.server, &host, requester) {
            return Err(StanzaErrorCondition::Forbidden.into());
        }
        let form = submitted_form(payload)?;
        let now = Instant::now();
        let Some(id) = payload.attr("sessionid").filter(|id| !id.is_empty()) else {
            if action != Action::Proceed {
                return Err(bad("bad-action"));
            }
            let session = Session {
                node: command.node,
                owner: requester.clone(),
                forms: Vec::new(),
                submitted: form.into_iter().collect(),
                touched: now,
            };
            return Ok(self.run_stage(request, &host, &command, self.sessions.new_id(), session).await?);
        };
        let mut session = self.sessions.take(id, requester, node, now)?;
        match action {
            Action::Cancel => Ok(Some(command_reply(command.node, id, "canceled"))),
            Action::Prev => {
                if session.forms.len() < 2 {
                    return Err(bad("bad-action"));
                }
                session.forms.pop();
                session.submitted.pop();
                let Some((form, last)) = session.forms.last() else { return Err(bad("bad-action")) };
                let reply = executing(command.node, id, form, *last, session.forms.len() > 1);
                self.sessions.put(id.to_owned(), session, now)?;
                Ok(Some(reply))
            }
            Action::Proceed => {
                let form = form.ok_or(bad("bad-payload"))?;
                session.submitted.push(form);
                Ok(self.run_stage(request, &host, &command, id.to_owned(), session).await?)
            }
        }
    }
}

/// The command list node and the command nodes in service discovery.
struct CommandNodes;

#[async_trait]
impl DiscoNodes for CommandNodes {
    async fn info(
        &self,
        server: &Arc<Server>,
        host: &DomainJid,
        requester: &Jid,
        node: &str,
    ) -> Option<Result<Vec<Element>, StanzaErrorCondition>> {
        let identity = |kind: &str, name: &str| {
            Element::builder("identity", ns::DISCO_INFO)
                .attr("category", "automation")
                .attr("type", kind)
                .attr("name", name)
                .build()
        };
        let feature = |var: &str| Element::builder("feature", ns::DISCO_INFO).attr("var", var).build();
        if node == ns::COMMANDS {
            // XEP-0050 §6.2: the command list node is automation/command-list.
            return Some(Ok(vec![identity("command-list", "Commands"), feature(ns::COMMANDS)]));
        }
        let command = server.adhoc_commands(host).iter().find(|c| c.node == node)?;
        if !command.allows(server, host, requester) {
            return Some(Err(StanzaErrorCondition::Forbidden));
        }
        Some(Ok(vec![identity("command-node", command.name), feature(ns::COMMANDS), feature(ns::DATA_FORMS)]))
    }

    async fn items(
        &self,
        server: &Arc<Server>,
        host: &DomainJid,
        requester: &Jid,
        node: &str,
    ) -> Option<Result<Vec<Element>, StanzaErrorCondition>> {
        let commands = server.adhoc_commands(host);
        if node == ns::COMMANDS {
            let items = commands
                .iter()
                .filter(|c| c.allows(server, host, requester))
                .map(|c| {
                    Element::builder("item", ns::DISCO_ITEMS)
                        .attr("jid", host.as_str())
                        .attr("node", c.node)
                        .attr("name", c.name)
                        .build()
                })
                .collect();
            return Some(Ok(items));
        }
        // A command node has no items.
        commands.iter().any(|c| c.node == node).then(|| Ok(Vec::new()))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn expired() -> CommandError {
        CommandError(StanzaErrorCondition::NotAllowed, Some("session-expired"))
    }

    fn element(xml: &str) -> Element {
        Element::parse_standalone(xml.as_bytes(), ns::CLIENT).unwrap_or_default()
    }

    #[test]
    fn actions_parse() {
        for (value, action) in [
            (None, Action::Proceed),
            (Some("execute"), Action::Proceed),
            (Some("next"), Action::Proceed),
            (Some("complete"), Action::Proceed),
            (Some("prev"), Action::Prev),
            (Some("cancel"), Action::Cancel),
        ] {
            assert_eq!(Action::parse(value), Ok(action));
        }
        assert_eq!(Action::parse(Some("jump")), Err(bad("malformed-action")));
    }

    #[test]
    fn submitted_forms() {
        let with = |x: &str| element(&format!("<command xmlns='{}' node='n'>{x}</command>", ns::COMMANDS));
        let submit = with("<x xmlns='jabber:x:data' type='submit'><field var='a'><value>1</value></field></x>");
        assert_eq!(
            submitted_form(&submit).ok().flatten().and_then(|f| f.value("a").map(str::to_owned)),
            Some("1".into())
        );
        // §3.5.1: cancel counts as submit; a form of type form is no submission.
        assert!(matches!(submitted_form(&with("<x xmlns='jabber:x:data' type='cancel'/>")), Ok(Some(_))));
        assert!(matches!(submitted_form(&with("<x xmlns='jabber:x:data' type='form'/>")), Ok(None)));
        assert!(matches!(submitted_form(&with("")), Ok(None)));
        assert_eq!(submitted_form(&with("<x xmlns='jabber:x:data'/>")), Err(bad("bad-payload")));
    }

    #[test]
    fn actions_element() {
        assert_eq!(
            String::from_utf8_lossy(&actions(true, true).to_bytes()),
            "<actions xmlns='http://jabber.org/protocol/commands' execute='complete'><prev/><complete/></actions>"
        );
        assert_eq!(
            String::from_utf8_lossy(&actions(false, false).to_bytes()),
            "<actions xmlns='http://jabber.org/protocol/commands' execute='next'><next/></actions>"
        );
    }

    fn jid(text: &str) -> Jid {
        text.parse().unwrap_or_else(|e| panic!("{text}: {e}"))
    }

    fn session(owner: &str) -> Session {
        Session { node: "n", owner: jid(owner), forms: Vec::new(), submitted: Vec::new(), touched: Instant::now() }
    }

    #[test]
    fn sessions_are_bounded_owned_and_expire() {
        let config = AdhocConfig { session_timeout_secs: 60, max_sessions: 3, max_sessions_per_user: 2 };
        let sessions = Sessions::new(&config);
        let t0 = Instant::now();
        let alice = jid("alice@example.org/a");
        assert_eq!(sessions.put("1".into(), session("alice@example.org/a"), t0), Ok(()));
        assert_eq!(sessions.put("2".into(), session("alice@example.org/a"), t0), Ok(()));
        assert_eq!(
            sessions.put("3".into(), session("alice@example.org/a"), t0),
            Err(StanzaErrorCondition::ResourceConstraint)
        );
        assert_eq!(sessions.put("3".into(), session("bob@example.org/b"), t0), Ok(()));
        assert_eq!(
            sessions.put("4".into(), session("carol@example.org/c"), t0),
            Err(StanzaErrorCondition::ResourceConstraint)
        );
        // Only the owner, and only for the session's node.
        let bob = jid("bob@example.org/b");
        assert_eq!(sessions.take("1", &bob, "n", t0).map(|s| s.node), Err(bad("bad-sessionid")));
        assert_eq!(sessions.take("1", &alice, "other", t0).map(|s| s.node), Err(bad("bad-sessionid")));
        assert_eq!(sessions.take("1", &alice, "n", t0).map(|s| s.node), Ok("n"));
        assert_eq!(sessions.take("1", &alice, "n", t0).map(|s| s.node), Err(expired()));
        // Expired sessions are gone and make room.
        let later = t0 + Duration::from_secs(61);
        assert_eq!(sessions.take("2", &alice, "n", later).map(|s| s.node), Err(expired()));
        assert_eq!(sessions.put("5".into(), session("carol@example.org/c"), later), Ok(()));
        assert_ne!(sessions.new_id(), sessions.new_id());
    }
}
