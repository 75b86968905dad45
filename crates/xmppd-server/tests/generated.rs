//! Generated files stay in step with the code: the README's feature table
//! and `xmppd.doap` come from the module declarations. Run with
//! `XMPPD_BLESS=1` to rewrite them after adding or changing a module.
#![allow(clippy::unwrap_used)]

use std::path::PathBuf;

const BEGIN: &str = "<!-- BEGIN GENERATED: features (tests/generated.rs) -->\n";
const END: &str = "<!-- END GENERATED: features -->";

fn root() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../..")
}

fn bless() -> bool {
    std::env::var("XMPPD_BLESS").is_ok_and(|v| v == "1")
}

#[test]
fn readme_feature_table_is_current() {
    let path = root().join("README.md");
    let readme = std::fs::read_to_string(&path).unwrap();
    let start = readme.find(BEGIN).expect("README.md lacks the generated-table markers") + BEGIN.len();
    let end = readme[start..].find(END).unwrap() + start;
    let table = xmppd_server::features::markdown_table(&xmppd_server::modules());
    if readme[start..end] != table {
        if bless() {
            std::fs::write(&path, format!("{}{table}{}", &readme[..start], &readme[end..])).unwrap();
        } else {
            panic!(
                "README.md's feature table is stale; run `XMPPD_BLESS=1 cargo test -p xmppd-server --test generated`"
            );
        }
    }
}

#[test]
fn doap_is_current() {
    let path = root().join("xmppd.doap");
    let doap = xmppd_server::features::doap(&xmppd_server::modules());
    let current = std::fs::read_to_string(&path).unwrap_or_default();
    if current != doap {
        if bless() {
            std::fs::write(&path, doap).unwrap();
        } else {
            panic!("xmppd.doap is stale; run `XMPPD_BLESS=1 cargo test -p xmppd-server --test generated`");
        }
    }
}
