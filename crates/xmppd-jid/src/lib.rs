//! XMPP addresses (JIDs) as specified by RFC 7622.
//!
//! RFC 7622 replaced the stringprep profiles of RFC 6122 with PRECIS:
//!
//! - the localpart is enforced with the `UsernameCaseMapped` profile
//!   (RFC 8265 §3.3) and may not contain `" & ' / : < > @` (RFC 7622 §3.3);
//! - the domainpart is an IP address literal or an internationalised domain
//!   name, stored in U-label form (RFC 7622 §3.2), prepared here with UTS #46;
//! - the resourcepart is enforced with the `OpaqueString` profile
//!   (RFC 8265 §4.2, RFC 7622 §3.4).
//!
//! Each part is 1 to 1023 octets long after enforcement. Addresses are
//! stored normalised, so equality, ordering and hashing compare enforced
//! forms: `Juliet@Example.COM` equals `juliet@example.com`.
//!
//! # Confusable characters
//!
//! Enforcement does not fold visually similar characters (RFC 7622 §3.3.1,
//! §8.3, RFC 8264 §12.5). `pаypal@example.com` with CYRILLIC SMALL LETTER A
//! (U+0430) is a different, valid address from `paypal@example.com`, and
//! `ς` (final sigma) is distinct from `σ` although `Σ` maps to `σ`.
//! Deployments that care must apply their own confusable policy when
//! registering accounts.
//!
//! ```
//! use xmppd_jid::{BareJid, FullJid, Jid};
//!
//! let jid: Jid = "Juliet@Example.COM/balcony".parse()?;
//! assert_eq!(jid.as_str(), "juliet@example.com/balcony");
//! assert_eq!(jid.node(), Some("juliet"));
//! assert_eq!(jid.domain(), "example.com");
//! assert_eq!(jid.resource(), Some("balcony"));
//!
//! let bare: BareJid = "juliet@example.com".parse()?;
//! assert_eq!(jid.to_bare(), bare);
//! let full: FullJid = bare.with_resource("orchard")?;
//! assert_eq!(full.resource(), "orchard");
//! # Ok::<(), xmppd_jid::JidError>(())
//! ```

#![warn(missing_docs)]

mod error;
mod escape;
mod jid;
mod prep;

pub use crate::error::JidError;
pub use crate::escape::{escape_localpart, unescape_localpart};
pub use crate::jid::{BareJid, DomainJid, FullJid, Jid};
pub use crate::prep::{MAX_PART_OCTETS, nameprep, nodeprep, resourceprep};
