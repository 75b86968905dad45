//! XEP-0115 Entity Capabilities for the server itself: the kernel hashes
//! the host's final disco#info (§5.1) once every module has started and
//! offers `<c/>` in the stream features (§6.3); the disco module answers
//! the `node#ver` query (§6.2).

use xmppd_core::{ModuleContext, ModuleDef, Protocol, Support};
use xmppd_proto::ns;

/// The module declaration.
pub static MODULE: ModuleDef = ModuleDef {
    name: "caps",
    protocols: &[Protocol { spec: "XEP-0115", version: "1.6.0", support: Support::Complete }],
    start,
};

fn start(ctx: &mut ModuleContext<'_>) -> Result<(), String> {
    ctx.disco_feature(ns::CAPS);
    Ok(())
}
