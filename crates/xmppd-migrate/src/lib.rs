//! XEP-0227 (Portable Import/Export Format for XMPP-IM Servers, "PIEFXIS",
//! version 1.1) for xmppd: a storage-neutral model of the data, a streaming
//! [`Reader`] and a streaming [`Writer`].
//!
//! This crate knows no storage and no server: the import and export
//! commands map [`UserData`] to and from the stores. It does no I/O besides
//! reading the `std::io::Read` it is given (and the files XIncludes name,
//! XEP-0227 §5) and writing the `std::io::Write` it is given.
//!
//! # Reading
//!
//! ```
//! use xmppd_migrate::{Password, Reader};
//!
//! let file = "<?xml version='1.0' encoding='UTF-8'?>
//! <server-data xmlns='urn:xmpp:pie:0'>
//!   <host jid='capulet.com'>
//!     <user name='juliet' password='s3cr3t'>
//!       <query xmlns='jabber:iq:roster'>
//!         <item jid='romeo@montague.net' subscription='both'><group>Friends</group></item>
//!       </query>
//!     </user>
//!   </host>
//! </server-data>";
//! for item in Reader::new(file.as_bytes()) {
//!     let (host, user) = item?;
//!     assert_eq!(host.as_str(), "capulet.com");
//!     assert_eq!(user.password, Some(Password::Plain("s3cr3t".into())));
//!     assert_eq!(user.roster[0].groups, ["Friends"]);
//! }
//! # Ok::<(), xmppd_migrate::Error>(())
//! ```
//!
//! The reader holds one user at a time, whatever the size of the file; a
//! bad user is reported with its line and column and skipped, a malformed
//! file stops the reader with its line and column ([`Error::is_fatal`]).
//! It uses `xmppd-xml`'s restricted parser, the one that reads client
//! streams, so a DTD, an entity reference, a comment or a processing
//! instruction is refused exactly as on a stream (RFC 6120 §11.1).
//!
//! # What other servers write
//!
//! Deviations from XEP-0227 1.1 that the reader accepts (each is marked
//! `COMPAT:` in the code):
//!
//! * ejabberd `export_piefxis` (`src/ejabberd_piefxis.erl`) writes a main
//!   file of `<xi:include/>`s, one per host, and each host in a file whose
//!   root is `<host/>`; [`Reader::open`] follows them.
//! * ejabberd 15.04–21.10 put SCRAM credentials in the `password`
//!   attribute as `scram:StoredKey,ServerKey,Salt,IterationCount` (from
//!   20.12 optionally prefixed `sha256,` or `sha512,`); before 22.05 it
//!   wrote `password=''` for accounts without one.
//! * ejabberd (at least 24.12) writes `<scram-credentials/>` whose salt and
//!   keys are base64 of the base64 text it stores; the key lengths give it
//!   away.
//! * ejabberd 2.x used the namespace
//!   `http://www.xmpp.org/extensions/xep-0227.html#ns`.
//! * Prosody's `mod_storage_xep0227` writes subscription requests as
//!   `<presence/>` without `xmlns='jabber:client'`, and up to 0.11 kept
//!   SCRAM-SHA-1 credentials as attributes of `<user/>` in the namespace
//!   `http://prosody.im/protocol/extended-xep0227` (keys in hex).
//! * Offline messages may carry XEP-0091 `<x xmlns='jabber:x:delay'/>`
//!   stamps, and may inherit the PIEFXIS namespace.

#![warn(missing_docs)]

mod error;
mod model;
mod ns;
pub mod prosody;
mod reader;
mod timestamp;
mod user;
pub mod vcard4;
mod window;
mod writer;

pub use crate::error::{Error, Location};
pub use crate::model::{
    Export, HostData, OfflineEntry, Password, PendingSubscription, PepItem, PepNode, RosterEntry, ScramEntry,
    ScramHash, Subscription, UserData,
};
pub use crate::ns::{PIE as NS_PIE, PIE_SCRAM as NS_PIE_SCRAM};
pub use crate::reader::{NodeConfigCheck, Reader, ReaderOptions};
pub use crate::timestamp::Timestamp;
pub use crate::writer::Writer;
pub use xmppd_proto::data_form::{DataForm, FormType};
