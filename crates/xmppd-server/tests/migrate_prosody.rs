//! `xmppd import --from prosody`: accounts made by the real `prosodyctl`
//! keep their passwords on xmppd (Prosody stores SCRAM keys; they are
//! imported as they are), and a PEP node that Prosody's own `util.pubsub`
//! stored arrives with its configuration and item.
#![allow(clippy::unwrap_used)]

mod common;

use std::path::PathBuf;
use std::process::Command;

use common::{RawClient, TestServer, header};

fn find_program(name: &str) -> Option<PathBuf> {
    let path = std::env::var_os("PATH")?;
    std::env::split_paths(&path).map(|dir| dir.join(name)).find(|candidate| candidate.is_file())
}

#[tokio::test]
async fn accounts_from_prosody_keep_their_passwords() {
    let Some(prosodyctl) = find_program("prosodyctl") else {
        assert!(
            std::env::var("XMPPD_REQUIRE_SERVICES").as_deref() != Ok("1"),
            "XMPPD_REQUIRE_SERVICES=1 but prosodyctl is not installed"
        );
        eprintln!("SKIPPED: prosodyctl not installed (apt-get install prosody)");
        return;
    };
    let dir = tempfile::tempdir().unwrap();
    let data = dir.path().join("prosody-data");
    std::fs::create_dir(&data).unwrap();
    let config = dir.path().join("prosody.cfg.lua");
    std::fs::write(
        &config,
        format!(
            "data_path = {:?}\npidfile = {:?}\nrun_as_root = true\nlog = {{ error = {:?} }}\n\
             VirtualHost \"localhost\"\nauthentication = \"internal_hashed\"\npassword_hash = \"SHA-256\"\n",
            data.display().to_string(),
            dir.path().join("prosody.pid").display().to_string(),
            dir.path().join("prosody.log").display().to_string(),
        ),
    )
    .unwrap();
    let accounts = [("romeo", "wherefore art thou"), ("juliet", "pässwörd 42")];
    for (user, password) in accounts {
        let output = Command::new(&prosodyctl)
            .arg("--config")
            .arg(&config)
            .args(["register", user, "localhost", password])
            .output()
            .unwrap();
        assert!(output.status.success(), "prosodyctl register {user}: {}", String::from_utf8_lossy(&output.stderr));
    }

    // Roster, vCard and a PEP node written by Prosody's own storage
    // modules (what mod_roster, mod_vcard and mod_pep do), when Lua is
    // there.
    let populated = match (find_program("lua5.4"), prosody_source_dir(&prosodyctl)) {
        (Some(lua), Some(source)) => {
            let script = dir.path().join("populate.lua");
            std::fs::write(&script, POPULATE).unwrap();
            let output = Command::new(lua).arg(&script).arg(&source).arg(&data).output().unwrap();
            assert!(output.status.success(), "populate.lua: {}", String::from_utf8_lossy(&output.stderr));
            true
        }
        _ => {
            assert!(
                std::env::var("XMPPD_REQUIRE_SERVICES").as_deref() != Ok("1"),
                "XMPPD_REQUIRE_SERVICES=1 but lua5.4 is not installed"
            );
            eprintln!("lua5.4 not installed: roster and vCard not checked");
            false
        }
    };

    let server = TestServer::start("", &[]);
    let report = server.cli(&["import", "--from", "prosody", data.to_str().unwrap()]).unwrap();
    assert!(report.contains("2 account(s) created, 0 already present, 0 skipped"), "{report}");
    if populated {
        assert!(report.contains("1 PEP node(s), 1 PEP item(s)"), "{report}");
        let export = server.dir.path().join("export.xml");
        server.cli(&["export", export.to_str().unwrap()]).unwrap();
        let export = std::fs::read_to_string(export).unwrap();
        assert!(
            export
                .contains("<configure node='http://jabber.org/protocol/nick'><x xmlns='jabber:x:data' type='submit'>")
                && export.contains("<field var='pubsub#access_model'><value>open</value></field>"),
            "{export}"
        );
        assert!(
            export.contains(
                "<items node='http://jabber.org/protocol/nick'><item id='current' \
                 publisher='romeo@localhost/orchard'><nick xmlns='http://jabber.org/protocol/nick'>Romy</nick>\
                 </item></items>"
            ),
            "{export}"
        );
    }
    // Running it again changes nothing.
    let again = server.cli(&["import", "--from", "prosody", data.to_str().unwrap()]).unwrap();
    assert!(again.contains("0 account(s) created, 2 already present"), "{again}");

    for (user, password) in accounts {
        let mut client = RawClient::connect(server.starttls_port).await;
        client.open_secure("localhost").await;
        client.scram_sha256(user, password).await;
        let outcome = client.expect("</success>").await;
        assert!(outcome.contains("<success"), "{user}: {outcome}");
        client.send(header("localhost")).await;
        client.expect("</stream:features>").await;
        let jid = client.bind(Some("imported")).await;
        assert_eq!(jid, format!("{user}@localhost/imported"));
        if populated && user == "romeo" {
            let roster = client.iq("get", "r1", None, "<query xmlns='jabber:iq:roster'/>").await;
            assert!(
                roster.contains("jid='juliet@localhost'")
                    && roster.contains("subscription='both'")
                    && roster.contains("<group>Lovers</group>"),
                "{roster}"
            );
            let vcard = client.iq("get", "v1", None, "<vCard xmlns='vcard-temp'/>").await;
            assert!(vcard.contains("<FN>Romeo Montague</FN>"), "{vcard}");
        }
    }
}

/// Prosody's sources (`CFG_SOURCEDIR` of prosodyctl), for the Lua script.
fn prosody_source_dir(prosodyctl: &std::path::Path) -> Option<PathBuf> {
    let text = std::fs::read_to_string(prosodyctl).ok()?;
    let line = text.lines().find(|line| line.starts_with("CFG_SOURCEDIR="))?;
    Some(PathBuf::from(line.split('\'').nth(1)?))
}

/// Stores romeo's roster and vCard through Prosody's datamanager and stanza
/// modules, and a PEP node with one item through `util.pubsub` with the
/// stores `mod_pep` gives it: the `pep` map (one key-value file) for nodes
/// and a `pep_<node>` archive for items, whose entries are what
/// `mod_storage_internal`'s `archive:append` writes (the preserialized
/// payload with `key`, `when`, `with` and the attribute `stamp`).
const POPULATE: &str = r#"
local source, data = arg[1], arg[2]
package.path = source .. "/../?.lua;" .. package.path
package.cpath = source .. "/../?.so;" .. package.cpath
local dm = require "prosody.util.datamanager"
local st = require "prosody.util.stanza"
local pubsub = require "prosody.util.pubsub"
local datetime = require "prosody.util.datetime"
dm.set_data_path(data)
assert(dm.store("romeo", "localhost", "roster", {
  [false] = { version = 2 },
  ["juliet@localhost"] = { subscription = "both", name = "Juliet", groups = { ["Lovers"] = true } },
}))
local vcard = st.stanza("vCard", { xmlns = "vcard-temp" }):text_tag("FN", "Romeo Montague")
assert(dm.store("romeo", "localhost", "vcard", st.preserialize(vcard)))

local nodes = {}
local nodestore = {}
function nodestore:get(node) return nodes[node] end
function nodestore:set(node, value) nodes[node] = value; return dm.store("romeo", "localhost", "pep", nodes) end
function nodestore:users() return pairs(nodes) end
local function itemstore(_, node)
  local store = {}
  function store:set(key, value)
    local payload = st.preserialize(st.clone(value.tags[1]))
    payload.key, payload.when, payload.with = key, os.time(), value.attr.publisher
    payload.attr.stamp = datetime.datetime(payload.when)
    return dm.list_append("romeo", "localhost", "pep_" .. node, payload)
  end
  function store:get() return nil end
  function store:items() return function() end end
  function store:head() return nil end
  function store:resize() return true end
  function store:clear() return true end
  return store
end
local service = pubsub.new({
  nodestore = nodestore,
  itemstore = itemstore,
  node_defaults = { max_items = 1, access_model = "presence", send_last_published_item = "on_sub_and_presence" },
})
local nick = "http://jabber.org/protocol/nick"
assert(service:create(nick, true, { access_model = "open" }))
local item = st.stanza("item", { id = "current", publisher = "romeo@localhost/orchard", xmlns = "http://jabber.org/protocol/pubsub" })
  :tag("nick", { xmlns = nick }):text("Romy"):up()
assert(service:publish(nick, true, "current", item))
"#;
