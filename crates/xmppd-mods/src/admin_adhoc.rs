//! XEP-0133: Service Administration (version 1.3.1) — administrative
//! ad-hoc commands (XEP-0050) for the `[server] admins`.
//!
//! Commands (declared in the kernel's ad-hoc registry with
//! [`CommandAccess::Admin`], so only admins see them in service discovery,
//! and everyone else gets `<forbidden/>`, XEP-0133 §5, §6):
//!
//! * `http://jabber.org/protocol/admin#add-user` (§4.1): `accountjid`,
//!   `password` and optionally `password-verify`, which must match; an
//!   existing account is `<conflict/>` (§5).
//! * `…#delete-user` (§4.2): `accountjids`; each account is deleted with
//!   its data and its sessions are closed (§4.2: "SHOULD result in the
//!   termination of any active sessions"). Accounts that do not exist are
//!   reported in a `<note type='error'/>` (XEP-0050 §3.6) while the others
//!   are still deleted.
//! * `…#change-user-password` (§4.7): `accountjid`, `password`. An unknown
//!   account is `<item-not-found/>`.
//! * `…#get-online-users-num` (§4.15): the number of accounts of the host
//!   with at least one session, as `onlineusersnum`.
//! * `…#get-online-users-list` (§4.20): those accounts' bare JIDs as
//!   `onlineuserjids`, answered at once (§4.20 allows it "if there are not
//!   many online users"), capped at [`MAX_LISTED`] with a warning note
//!   giving the total when there are more.
//!
//! Form handling: a submission without a required field is `<bad-request/>`
//! (XEP-0050 §4.4, bad-payload); a value that cannot be used (not a JID, an
//! account of another host than the one the command was sent to, passwords
//! that differ, a password the PRECIS OpaqueString profile refuses) is
//! `<not-acceptable/>` (XEP-0004 §4). JIDs given with a resource count as
//! their bare JID (§4.2 note).

use async_trait::async_trait;
use serde::Deserialize;
use xmppd_core::{
    AccountError, AdhocCommand, AdhocOutcome, AdhocReply, AdhocRequest, CommandAccess, ModuleContext, ModuleDef,
    NoteType, Protocol, Support,
};
use xmppd_jid::{BareJid, DomainJid, Jid};
use xmppd_proto::data_form::{DataForm, Field, FieldType, FormType};
use xmppd_proto::{StanzaErrorCondition, ns};

/// The module declaration.
pub static MODULE: ModuleDef = ModuleDef {
    name: "admin_adhoc",
    // Partial: five of the use cases of §4 (an implementation "MAY
    // support any subset", §4).
    protocols: &[Protocol { spec: "XEP-0133", version: "1.3.1", support: Support::Partial }],
    start,
};

/// Most JIDs `get-online-users-list` returns.
pub const MAX_LISTED: usize = 1000;

const ADD_USER: &str = "http://jabber.org/protocol/admin#add-user";
const DELETE_USER: &str = "http://jabber.org/protocol/admin#delete-user";
const CHANGE_USER_PASSWORD: &str = "http://jabber.org/protocol/admin#change-user-password";
const GET_ONLINE_USERS_NUM: &str = "http://jabber.org/protocol/admin#get-online-users-num";
const GET_ONLINE_USERS_LIST: &str = "http://jabber.org/protocol/admin#get-online-users-list";

/// `[modules.settings.admin_adhoc]`: nothing to configure (the admins are
/// `[server] admins`); the table exists so that misspelt keys are reported.
#[derive(Debug, Clone, Default, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct AdminAdhocConfig {}

fn start(ctx: &mut ModuleContext<'_>) -> Result<(), String> {
    let _config: AdminAdhocConfig = ctx.config()?;
    let admin = CommandAccess::Admin;
    ctx.adhoc_command(ADD_USER, "Add a User", admin, Admin::AddUser);
    ctx.adhoc_command(DELETE_USER, "Delete a User", admin, Admin::DeleteUser);
    ctx.adhoc_command(CHANGE_USER_PASSWORD, "Change User Password", admin, Admin::ChangeUserPassword);
    ctx.adhoc_command(GET_ONLINE_USERS_NUM, "Get Number of Online Users", admin, Admin::OnlineUsersNum);
    ctx.adhoc_command(GET_ONLINE_USERS_LIST, "Get List of Online Users", admin, Admin::OnlineUsersList);
    Ok(())
}

/// The commands.
#[derive(Debug, Clone, Copy)]
enum Admin {
    AddUser,
    DeleteUser,
    ChangeUserPassword,
    OnlineUsersNum,
    OnlineUsersList,
}

/// A form of this profile: the `FORM_TYPE` of §7 first.
fn admin_form(form_type: FormType, title: &str, instructions: Option<&str>) -> DataForm {
    let mut form = DataForm::new(form_type).with_title(title).with_field(Field::form_type(ns::ADMIN));
    if let Some(instructions) = instructions {
        form = form.with_instructions(instructions);
    }
    form
}

/// The one form submitted to a single-stage command.
fn single_submission<'a>(request: &'a AdhocRequest<'_>) -> Result<Option<&'a DataForm>, StanzaErrorCondition> {
    match request.submitted {
        [] => Ok(None),
        [form] => Ok(Some(form)),
        _ => Err(StanzaErrorCondition::BadRequest),
    }
}

/// A required value of the submission (XEP-0050 §4.4 bad-payload).
fn required<'f>(form: &'f DataForm, var: &str) -> Result<&'f str, StanzaErrorCondition> {
    form.value(var).ok_or(StanzaErrorCondition::BadRequest)
}

/// A required password: the first value verbatim (spaces are part of a
/// password), but not empty.
fn password<'f>(form: &'f DataForm, var: &str) -> Result<&'f str, StanzaErrorCondition> {
    form.field(var).and_then(Field::value).filter(|p| !p.is_empty()).ok_or(StanzaErrorCondition::BadRequest)
}

/// An account of `host` named in a form (XEP-0004 §4: unusable values are
/// `not-acceptable`).
fn account_of(value: &str, host: &DomainJid) -> Result<BareJid, StanzaErrorCondition> {
    let jid = value.parse::<Jid>().map_err(|_| StanzaErrorCondition::NotAcceptable)?.to_bare();
    if jid.node().is_none() || jid.domain() != host.as_str() {
        return Err(StanzaErrorCondition::NotAcceptable);
    }
    Ok(jid)
}

fn account_error(jid: &BareJid, error: AccountError) -> StanzaErrorCondition {
    match error {
        AccountError::Exists => StanzaErrorCondition::Conflict,
        AccountError::NotFound => StanzaErrorCondition::ItemNotFound,
        AccountError::InvalidPassword | AccountError::NotLocal(_) => StanzaErrorCondition::NotAcceptable,
        other => {
            tracing::warn!(%jid, error = %other, "administrative command failed");
            StanzaErrorCondition::InternalServerError
        }
    }
}

#[async_trait]
impl AdhocCommand for Admin {
    async fn execute(&self, request: AdhocRequest<'_>) -> AdhocOutcome {
        match self {
            Admin::AddUser => add_user(&request).await,
            Admin::DeleteUser => delete_user(&request).await,
            Admin::ChangeUserPassword => change_user_password(&request).await,
            Admin::OnlineUsersNum => {
                let (_, total) = request.server.sessions().online_accounts(request.host.as_str(), 0);
                let form = admin_form(FormType::Result, "Number of Online Users", None).with_field(
                    Field::new("onlineusersnum", FieldType::TextSingle, "The number of online users")
                        .with_value(&total.to_string()),
                );
                Ok(AdhocReply::Completed { form: Some(form), notes: Vec::new() })
            }
            Admin::OnlineUsersList => {
                let (accounts, total) = request.server.sessions().online_accounts(request.host.as_str(), MAX_LISTED);
                let form = admin_form(FormType::Result, "List of Online Users", None).with_field(
                    Field::new("onlineuserjids", FieldType::JidMulti, "The list of all online users")
                        .with_values(accounts.iter().map(BareJid::as_str)),
                );
                let notes = if total > accounts.len() {
                    vec![(NoteType::Warn, format!("showing {} of {total} online users", accounts.len()))]
                } else {
                    Vec::new()
                };
                Ok(AdhocReply::Completed { form: Some(form), notes })
            }
        }
    }
}

/// §4.1 Add User.
async fn add_user(request: &AdhocRequest<'_>) -> AdhocOutcome {
    let Some(form) = single_submission(request)? else {
        let form = admin_form(FormType::Form, "Adding a User", Some("Fill out this form to add a user."))
            .with_field(
                Field::new("accountjid", FieldType::JidSingle, "The Jabber ID for the account to be added").required(),
            )
            .with_field(Field::new("password", FieldType::TextPrivate, "The password for this account").required())
            .with_field(Field::new("password-verify", FieldType::TextPrivate, "Retype password"));
        return Ok(AdhocReply::Form { form, last: true });
    };
    let jid = account_of(required(form, "accountjid")?, request.host)?;
    let password = password(form, "password")?;
    if let Some(verify) = form.field("password-verify").and_then(Field::value)
        && verify != password
    {
        return Err(StanzaErrorCondition::NotAcceptable);
    }
    request.server.create_account(&jid, password).await.map_err(|e| account_error(&jid, e))?;
    tracing::info!(admin = %request.requester, %jid, "account added by an administrator");
    Ok(AdhocReply::done(NoteType::Info, format!("Account {jid} created.")))
}

/// §4.2 Delete User.
async fn delete_user(request: &AdhocRequest<'_>) -> AdhocOutcome {
    let Some(form) = single_submission(request)? else {
        let form = admin_form(FormType::Form, "Deleting a User", Some("Fill out this form to delete a user."))
            .with_field(Field::new("accountjids", FieldType::JidMulti, "The Jabber ID(s) to delete").required());
        return Ok(AdhocReply::Form { form, last: true });
    };
    let values = form.values("accountjids");
    if values.is_empty() {
        return Err(StanzaErrorCondition::BadRequest);
    }
    let mut accounts: Vec<BareJid> = Vec::with_capacity(values.len());
    for value in values {
        let jid = account_of(value, request.host)?;
        // XEP-0004 §3.3 jid-multi: duplicates MUST be ignored.
        if !accounts.contains(&jid) {
            accounts.push(jid);
        }
    }
    let mut deleted = Vec::new();
    let mut missing = Vec::new();
    for jid in accounts {
        match request.server.delete_account(&jid).await {
            Ok(_) => deleted.push(jid.to_string()),
            Err(AccountError::NotFound) => missing.push(jid.to_string()),
            Err(error) => return Err(account_error(&jid, error)),
        }
    }
    tracing::info!(admin = %request.requester, ?deleted, "accounts deleted by an administrator");
    let mut notes = Vec::new();
    if !deleted.is_empty() {
        notes.push((NoteType::Info, format!("Deleted: {}.", deleted.join(", "))));
    }
    if !missing.is_empty() {
        notes.push((NoteType::Error, format!("No such account: {}.", missing.join(", "))));
    }
    Ok(AdhocReply::Completed { form: None, notes })
}

/// §4.7 Change User Password.
async fn change_user_password(request: &AdhocRequest<'_>) -> AdhocOutcome {
    let Some(form) = single_submission(request)? else {
        let form = admin_form(
            FormType::Form,
            "Changing a User Password",
            Some("Fill out this form to change a user's password."),
        )
        .with_field(Field::new("accountjid", FieldType::JidSingle, "The Jabber ID for this account").required())
        .with_field(Field::new("password", FieldType::TextPrivate, "The password for this account").required());
        return Ok(AdhocReply::Form { form, last: true });
    };
    let jid = account_of(required(form, "accountjid")?, request.host)?;
    let password = password(form, "password")?;
    request.server.set_password(&jid, password).await.map_err(|e| account_error(&jid, e))?;
    tracing::info!(admin = %request.requester, %jid, "password changed by an administrator");
    Ok(AdhocReply::done(NoteType::Info, format!("Password of {jid} changed.")))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn host() -> DomainJid {
        "example.org".parse().unwrap_or_else(|e| panic!("{e}"))
    }

    #[test]
    fn account_values() {
        let host = host();
        assert_eq!(account_of("Juliet@Example.org", &host).map(|j| j.to_string()), Ok("juliet@example.org".into()));
        assert_eq!(
            account_of("juliet@example.org/balcony", &host).map(|j| j.to_string()),
            Ok("juliet@example.org".into())
        );
        assert_eq!(account_of("example.org", &host), Err(StanzaErrorCondition::NotAcceptable));
        assert_eq!(account_of("juliet@elsewhere.org", &host), Err(StanzaErrorCondition::NotAcceptable));
        assert_eq!(account_of("ju liet@@example.org", &host), Err(StanzaErrorCondition::NotAcceptable));
    }

    #[test]
    fn passwords_are_kept_verbatim_but_required() {
        let form = DataForm::new(FormType::Submit)
            .with_field(Field::new("password", FieldType::TextPrivate, "").with_value(" two words "))
            .with_field(Field::new("empty", FieldType::TextPrivate, "").with_value(""));
        assert_eq!(password(&form, "password"), Ok(" two words "));
        assert_eq!(password(&form, "empty"), Err(StanzaErrorCondition::BadRequest));
        assert_eq!(password(&form, "missing"), Err(StanzaErrorCondition::BadRequest));
        assert_eq!(required(&form, "missing"), Err(StanzaErrorCondition::BadRequest));
    }

    #[test]
    fn forms_carry_the_admin_form_type() {
        let form = admin_form(FormType::Form, "T", Some("I"));
        assert_eq!(form.form_type_value(), Some(ns::ADMIN));
        assert_eq!(form.instructions, ["I"]);
    }
}
