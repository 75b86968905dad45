//! The `xmppd-storage` conformance suite against both SQL dialects.

mod common;

mod sqlite {
    xmppd_storage::conformance_tests!(async || Some(super::common::sqlite_fixture().await));
}

mod postgres {
    xmppd_storage::conformance_tests!(super::common::postgres_fixture);
}
