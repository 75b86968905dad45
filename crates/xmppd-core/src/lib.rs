//! The xmppd kernel.
//!
//! It owns the one routing entry point ([`Server::route`]), the registry of
//! bound sessions, the module API through which every XEP is added, and the
//! configuration model. It knows no concrete storage backend, transport or
//! bus: those are handed in as trait objects by the `xmppd-server` binary.
#![warn(missing_docs)]

pub mod accounts;
pub mod adhoc;
pub mod config;
pub mod hooks;
pub mod module;
pub mod queue;
pub mod registry;
mod requests;
pub mod roster;
pub mod server;
pub mod stanza;

pub use accounts::AccountError;
pub use adhoc::{AdhocCommand, AdhocOutcome, AdhocReply, AdhocRequest, CommandAccess, NoteType};
pub use config::Config;
pub use hooks::{
    HookFlow, KindSet, RosterHook, SessionHook, SessionHookPoint, StanzaHook, StanzaHookPoint, StanzaRewriter,
};
pub use module::{
    DiscoNodes, IqHandler, IqRequest, ModuleContext, ModuleDef, PreAuthError, PreAuthIqHandler, PreAuthIqRequest,
    Protocol, Scope, Support,
};
pub use queue::{Outbound, SessionQueue};
pub use registry::{BindError, ResourceConflict, SessionEntry, SessionRegistry};
pub use roster::RosterWrite;
pub use server::{Server, ServerBuilder, Stores, roster_push};
pub use stanza::{IqType, Stanza, StanzaKind, StanzaReject};

/// Errors raised by the kernel.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum CoreError {
    /// A module failed to start (bad config, missing dependency).
    #[error("module {module}: {reason}")]
    ModuleStart {
        /// Module name.
        module: &'static str,
        /// What went wrong.
        reason: String,
    },
    /// The configuration names an unknown module.
    #[error("unknown module `{0}`")]
    UnknownModule(String),
    /// Storage failed underneath the kernel.
    #[error("storage: {0}")]
    Storage(#[from] xmppd_storage::StorageError),
}
