//! XEP-0202: Entity Time — the server tells its UTC time to anyone who asks
//! the host.
//!
//! The server reports UTC with a zero offset, as Prosody does: the process
//! has no portable notion of a local time zone, and revealing one would
//! leak the server's location (XEP-0202 §6) for no benefit.

use std::time::SystemTime;

use async_trait::async_trait;
use serde::Deserialize;
use xmppd_core::module::IqOutcome;
use xmppd_core::{IqHandler, IqRequest, IqType, ModuleContext, ModuleDef, Protocol, Scope, Support};
use xmppd_proto::datetime::format_datetime;
use xmppd_xml::Element;

/// XEP-0202 §2: the protocol namespace, also the disco feature (§4).
pub const NS: &str = "urn:xmpp:time";

/// The reported offset: a XEP-0082 §2.1 TZD. `+00:00` rather than `Z`
/// because that is the form of the XEP-0202 §3 example and what Prosody
/// sends, so clients that only parse `±hh:mm` cope.
const TZO: &str = "+00:00";

/// The module declaration.
pub static MODULE: ModuleDef = ModuleDef {
    name: "time",
    protocols: &[Protocol { spec: "XEP-0202", version: "2.0", support: Support::Complete }],
    start,
};

/// `[modules.settings.time]`: nothing to configure yet; the table exists so
/// that misspelt keys are reported.
#[derive(Debug, Clone, Default, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct TimeConfig {}

fn start(ctx: &mut ModuleContext<'_>) -> Result<(), String> {
    let _config: TimeConfig = ctx.config()?;
    ctx.disco_feature(NS);
    ctx.iq_handler(IqType::Get, Scope::Host, NS, "time", EntityTime);
    Ok(())
}

struct EntityTime;

#[async_trait]
impl IqHandler for EntityTime {
    /// XEP-0202 §2: `<tzo/>` and `<utc/>`, both REQUIRED.
    async fn handle(&self, _request: IqRequest<'_>) -> IqOutcome {
        Ok(Some(time_payload(&format_datetime(SystemTime::now()))))
    }
}

/// The `<time xmlns='urn:xmpp:time'/>` result for a UTC instant written
/// as a XEP-0082 §3.2 DateTime (`CCYY-MM-DDThh:mm:ss.sssZ`, §2: "MUST be
/// expressed in UTC").
fn time_payload(utc: &str) -> Element {
    Element::builder("time", NS)
        .append(Element::builder("tzo", NS).text(TZO).build())
        .append(Element::builder("utc", NS).text(utc).build())
        .build()
}

#[cfg(test)]
mod tests {
    use xmppd_proto::datetime::format_unix_ms;

    use super::*;

    #[test]
    fn payload_shape() {
        let payload = time_payload(&format_unix_ms(1_166_551_115_000));
        assert!(payload.is("time", NS));
        assert_eq!(payload.get_child("tzo", NS).map(Element::text).as_deref(), Some("+00:00"));
        // The XEP-0202 §3 example instant, with milliseconds.
        assert_eq!(payload.get_child("utc", NS).map(Element::text).as_deref(), Some("2006-12-19T17:58:35.000Z"));
    }

    #[test]
    fn utc_has_the_datetime_profile() {
        let utc = format_datetime(SystemTime::now());
        let bytes = utc.as_bytes();
        assert_eq!(bytes.len(), 24, "{utc}");
        assert!(utc.ends_with('Z') && bytes[10] == b'T' && bytes[19] == b'.', "{utc}");
        assert!(utc.as_str() > "2024-01-01", "{utc}");
        for (at, byte) in bytes.iter().enumerate() {
            if ![4, 7, 10, 13, 16, 19, 23].contains(&at) {
                assert!(byte.is_ascii_digit(), "{utc}");
            }
        }
    }
}
