//! XEP-0092: Software Version — the server answers `jabber:iq:version`
//! queries addressed to a host.
//!
//! Queries to an account's bare JID are not answered here: the software
//! version of a user's client is the client's to give (XEP-0092 §1 note),
//! and such queries reach the client when sent to its full JID.

use async_trait::async_trait;
use serde::Deserialize;
use xmppd_core::module::IqOutcome;
use xmppd_core::{IqHandler, IqRequest, IqType, ModuleContext, ModuleDef, Protocol, Scope, Support};
use xmppd_xml::Element;

/// XEP-0092 §2: the protocol namespace, also the disco feature (§4).
pub const NS: &str = "jabber:iq:version";

/// The software name reported in `<name/>`.
const SOFTWARE: &str = "xmppd";

/// The module declaration.
pub static MODULE: ModuleDef = ModuleDef {
    name: "version",
    protocols: &[Protocol { spec: "XEP-0092", version: "1.1", support: Support::Complete }],
    start,
};

/// `[modules.settings.version]`
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct VersionConfig {
    /// Leave out `<os/>`. XEP-0092 §5: revealing the operating system may
    /// invite attacks against it, so an administrator MUST be able to turn
    /// it off; hidden by default, as Prosody's `hide_os_type` does.
    pub hide_os: bool,
    /// Do not answer version queries at all. `<version/>` is REQUIRED in a
    /// result (XEP-0092 §2), so instead of an empty or invented value the
    /// protocol is not offered: no disco feature, and queries get
    /// `<service-unavailable/>`, the condition XEP-0092 §3 gives for an
    /// entity that does not support the namespace.
    pub hide_version: bool,
}

impl Default for VersionConfig {
    fn default() -> Self {
        VersionConfig { hide_os: true, hide_version: false }
    }
}

fn start(ctx: &mut ModuleContext<'_>) -> Result<(), String> {
    let config: VersionConfig = ctx.config()?;
    if config.hide_version {
        return Ok(());
    }
    let os = if config.hide_os { None } else { Some(operating_system()) };
    ctx.disco_feature(NS);
    ctx.iq_handler(IqType::Get, Scope::Host, NS, "query", Version { answer: version_query(os.as_deref()) });
    Ok(())
}

/// Answers with a reply built once at start.
struct Version {
    answer: Element,
}

#[async_trait]
impl IqHandler for Version {
    /// XEP-0092 §2: the result carries `<name/>`, `<version/>` and
    /// optionally `<os/>`.
    async fn handle(&self, _request: IqRequest<'_>) -> IqOutcome {
        Ok(Some(self.answer.clone()))
    }
}

/// The `<query xmlns='jabber:iq:version'/>` result payload (XEP-0092 §2).
fn version_query(os: Option<&str>) -> Element {
    let child = |name: &str, text: &str| Element::builder(name, NS).text(text).build();
    let mut query = Element::builder("query", NS)
        .append(child("name", SOFTWARE))
        .append(child("version", env!("CARGO_PKG_VERSION")));
    if let Some(os) = os {
        query = query.append(child("os", os));
    }
    query.build()
}

/// The kernel name and release, like `uname -sr` (what Prosody reports),
/// falling back to the compile-time OS name where `/proc` is unavailable.
fn operating_system() -> String {
    let read = |path: &str| std::fs::read_to_string(path).ok().map(|s| s.trim().to_owned()).filter(|s| !s.is_empty());
    match (read("/proc/sys/kernel/ostype"), read("/proc/sys/kernel/osrelease")) {
        (Some(kernel), Some(release)) => format!("{kernel} {release}"),
        (Some(kernel), None) => kernel,
        _ => std::env::consts::OS.to_owned(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn answer_without_os() {
        let query = version_query(None);
        assert_eq!(query.get_child("name", NS).map(Element::text).as_deref(), Some("xmppd"));
        assert_eq!(query.get_child("version", NS).map(Element::text).as_deref(), Some(env!("CARGO_PKG_VERSION")));
        assert!(!query.has_child("os", NS));
    }

    #[test]
    fn answer_with_os() {
        let query = version_query(Some("Linux 6.1"));
        assert_eq!(query.get_child("os", NS).map(Element::text).as_deref(), Some("Linux 6.1"));
    }

    #[test]
    fn os_is_never_empty() {
        assert!(!operating_system().is_empty());
    }

    #[test]
    fn config_defaults_hide_only_the_os() {
        let config = VersionConfig::default();
        assert!(config.hide_os);
        assert!(!config.hide_version);
    }
}
