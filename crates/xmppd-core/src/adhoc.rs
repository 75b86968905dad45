//! The kernel registry of XEP-0050 ad-hoc commands.
//!
//! Modules declare commands with
//! [`ModuleContext::adhoc_command`](crate::ModuleContext::adhoc_command); the `adhoc` module owns the
//! protocol (command list in service discovery, `<command/>` execution,
//! sessions, actions) and calls the [`AdhocCommand`] handlers. A command
//! module therefore never talks to the `adhoc` module, and a command's
//! handler never sees XEP-0050 framing: it gets the data forms submitted so
//! far and answers with the next form or the result.

use std::sync::Arc;

use async_trait::async_trait;
use xmppd_jid::{DomainJid, Jid};
use xmppd_proto::StanzaErrorCondition;
use xmppd_proto::data_form::DataForm;

use crate::server::Server;

/// Who may see and run a command.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum CommandAccess {
    /// Only the `[server] admins` (XEP-0133 §6: administrative commands
    /// "MUST NOT be granted to users who lack service-level administrative
    /// privileges").
    Admin,
    /// Every account of the host the command is addressed to.
    LocalUser,
}

/// The severity of a `<note/>` (XEP-0050 §4.3).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum NoteType {
    /// Informational.
    Info,
    /// A warning.
    Warn,
    /// An error: a completed command that failed carries at least one
    /// (XEP-0050 §3.6).
    Error,
}

impl NoteType {
    /// The `type` attribute value.
    pub fn as_str(self) -> &'static str {
        match self {
            NoteType::Info => "info",
            NoteType::Warn => "warn",
            NoteType::Error => "error",
        }
    }
}

/// What one stage of a command produced.
#[derive(Debug, Clone, PartialEq)]
pub enum AdhocReply {
    /// The command needs (more) input: send `form` (type `form`) and keep
    /// the session (status `executing`, XEP-0050 §2.4.2).
    Form {
        /// The form to fill in.
        form: DataForm,
        /// Whether submitting this form completes the command (the offered
        /// action is then `complete` rather than `next`, XEP-0050 §3.4).
        last: bool,
    },
    /// The command finished (status `completed`, XEP-0050 §2.4.1).
    Completed {
        /// An optional result form (type `result`).
        form: Option<DataForm>,
        /// Notes for the requester (XEP-0050 §4.3).
        notes: Vec<(NoteType, String)>,
    },
}

impl AdhocReply {
    /// A completed command with one note.
    pub fn done(note_type: NoteType, text: impl Into<String>) -> AdhocReply {
        AdhocReply::Completed { form: None, notes: vec![(note_type, text.into())] }
    }
}

/// One stage of a command execution, handed to an [`AdhocCommand`].
pub struct AdhocRequest<'a> {
    /// The server, for storage and sessions.
    pub server: &'a Arc<Server>,
    /// The host the command was addressed to.
    pub host: &'a DomainJid,
    /// Who runs it (the full JID, as stamped by the server).
    pub requester: &'a Jid,
    /// The forms submitted so far, one per completed stage, oldest first:
    /// empty on the first call, then one more each time the requester
    /// submits the form the previous call returned.
    pub submitted: &'a [DataForm],
}

/// What a command stage answers; an error ends the session and goes back
/// as a stanza error (XEP-0050 §4.4, XEP-0133 §5).
pub type AdhocOutcome = Result<AdhocReply, StanzaErrorCondition>;

/// A command implementation.
#[async_trait]
pub trait AdhocCommand: Send + Sync {
    /// Runs one stage.
    async fn execute(&self, request: AdhocRequest<'_>) -> AdhocOutcome;
}

/// A registered command.
#[derive(Clone)]
pub struct AdhocCommandEntry {
    /// The disco node naming the command (XEP-0050 §3.2: unique per JID).
    pub node: &'static str,
    /// The human-readable name shown in the command list.
    pub name: &'static str,
    /// Who may run it.
    pub access: CommandAccess,
    /// The implementation.
    pub handler: Arc<dyn AdhocCommand>,
}

impl AdhocCommandEntry {
    /// Whether `requester` may see and run this command on `host`.
    pub fn allows(&self, server: &Server, host: &DomainJid, requester: &Jid) -> bool {
        match self.access {
            CommandAccess::Admin => server.is_admin(&requester.to_bare()),
            CommandAccess::LocalUser => requester.node().is_some() && requester.domain() == host.as_str(),
        }
    }
}
