//! Feature modules, one XEP per file. The registry below is explicit so
//! the list of what the server can do is grep-able.
#![warn(missing_docs)]

pub mod adhoc;
pub mod admin_adhoc;
pub mod blocking;
pub mod caps;
pub mod carbons;
pub mod contact_addresses;
pub mod disco;
pub mod last;
pub mod offline;
pub mod ping;
pub mod presence;
pub mod private;
pub mod register;
pub mod roster;
pub mod time;
pub mod vcard;
pub mod version;

use xmppd_core::ModuleDef;

/// Every module this crate provides.
pub static ALL: &[&ModuleDef] = &[
    &disco::MODULE,
    &ping::MODULE,
    &roster::MODULE,
    &presence::MODULE,
    &offline::MODULE,
    &blocking::MODULE,
    &caps::MODULE,
    &version::MODULE,
    &time::MODULE,
    &private::MODULE,
    &vcard::MODULE,
    &contact_addresses::MODULE,
    &last::MODULE,
    &register::MODULE,
    &adhoc::MODULE,
    &admin_adhoc::MODULE,
    &carbons::MODULE,
];
