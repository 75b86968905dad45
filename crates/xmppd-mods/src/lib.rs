//! Feature modules, one XEP per file. The registry below is explicit so
//! the list of what the server can do is grep-able.
#![warn(missing_docs)]

pub mod disco;
pub mod ping;

use xmppd_core::ModuleDef;

/// Every module this crate provides.
pub static ALL: &[&ModuleDef] = &[&disco::MODULE, &ping::MODULE];
