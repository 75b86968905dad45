//! Prosody internal storage: the Lua data parser, the reader on hand-made
//! directories, and the reader on data written by a real Prosody.
#![allow(clippy::unwrap_used)]

use std::fs;
use std::path::{Path, PathBuf};
use std::process::Command;

use proptest::prelude::*;
use xmppd_jid::DomainJid;
use xmppd_migrate::prosody::{LuaKey, LuaValue, MAX_DEPTH, ProsodyReader, parse_dat, parse_list, stanza_to_element};
use xmppd_migrate::{Error, Password, Reader, ScramHash, Subscription, Timestamp, UserData, Writer};

fn table(value: &LuaValue) -> &xmppd_migrate::prosody::LuaTable {
    value.as_table().unwrap()
}

// ---------------------------------------------------------------------------
// The Lua parser
// ---------------------------------------------------------------------------

#[test]
fn string_escapes() {
    let value = parse_dat(
        br#"return "a\n\t\065\x42\u{e9}\z
        c\"\'\\\0001\a\b\f\v\r\
d";"#,
    )
    .unwrap();
    assert_eq!(value, LuaValue::Str(b"a\n\tAB\xc3\xa9c\"'\\\x001\x07\x08\x0c\x0b\r\nd".to_vec()));
    // What util/serialization.lua writes for bytes >= 0x7f and controls.
    assert_eq!(parse_dat(br#"return "\195\169\127\001";"#).unwrap(), LuaValue::Str(vec![0xc3, 0xa9, 0x7f, 1]));
    assert_eq!(parse_dat(b"return 'single \"quoted\"'").unwrap(), LuaValue::Str(b"single \"quoted\"".to_vec()));
    assert_eq!(parse_dat(b"return [==[long ]] ]=] string]==]").unwrap(), LuaValue::Str(b"long ]] ]=] string".to_vec()));
    assert_eq!(parse_dat(b"return [[\nskip first newline]]").unwrap(), LuaValue::Str(b"skip first newline".to_vec()));
    for bad in [
        &br#"return "\256""#[..],
        br#"return "\xg0""#,
        br#"return "\q""#,
        b"return \"open",
        b"return \"a\nb\"",
        br#"return "\u{110000}""#,
    ] {
        assert!(parse_dat(bad).is_err(), "{}", String::from_utf8_lossy(bad));
    }
}

#[test]
fn numbers_and_literals() {
    let value = parse_dat(
        b"return { 1, -2, 3.5, 1e3, -0x10, 0xff, (1/0), (-1/0), (0/0), 9223372036854775807, -9223372036854775808,
                  true, false, - - 4, 1700000000.5 };",
    )
    .unwrap();
    let items: Vec<&LuaValue> = table(&value).array().collect();
    assert_eq!(items[0], &LuaValue::Int(1));
    assert_eq!(items[1], &LuaValue::Int(-2));
    assert_eq!(items[2], &LuaValue::Float(3.5));
    assert_eq!(items[3], &LuaValue::Float(1000.0));
    assert_eq!(items[4], &LuaValue::Int(-16));
    assert_eq!(items[5], &LuaValue::Int(255));
    assert_eq!(items[6], &LuaValue::Float(f64::INFINITY));
    assert_eq!(items[7], &LuaValue::Float(f64::NEG_INFINITY));
    assert!(matches!(items[8], LuaValue::Float(f) if f.is_nan()));
    assert_eq!(items[9], &LuaValue::Int(i64::MAX));
    assert_eq!(items[10], &LuaValue::Float(-9.223_372_036_854_776e18));
    assert_eq!(items[11], &LuaValue::Bool(true));
    assert_eq!(items[12], &LuaValue::Bool(false));
    assert_eq!(items[13], &LuaValue::Int(4));
    assert_eq!(items[14].as_f64(), Some(1_700_000_000.5));
    assert_eq!(items.len(), 15);
}

#[test]
fn tables_keys_and_comments() {
    let value = parse_dat(
        br#"-- a comment
        --[==[ a long
        comment ]==]
        return {
            [false] = { ["version"] = 3 };
            ["a b"] = "x", plain = 'y';
            [1] = "overridden", "first";
            [2.0] = "int key";
            dup = 1; dup = 2;
            gone = 1; gone = nil;
            [true] = {{}, {{}}};
        };
        "#,
    )
    .unwrap();
    let t = table(&value);
    let meta = t.get(&LuaKey::Bool(false)).unwrap();
    assert_eq!(table(meta).get_str("version"), Some(&LuaValue::Int(3)));
    assert_eq!(t.get_str("a b").and_then(LuaValue::as_str), Some("x"));
    assert_eq!(t.get_str("plain").and_then(LuaValue::as_str), Some("y"));
    assert_eq!(t.get(&LuaKey::Int(1)).and_then(LuaValue::as_str), Some("first"));
    assert_eq!(t.get(&LuaKey::Int(2)).and_then(LuaValue::as_str), Some("int key"));
    assert_eq!(t.get_str("dup"), Some(&LuaValue::Int(2)));
    assert_eq!(t.get_str("gone"), None);
    assert_eq!(t.array().count(), 2);
    assert!(t.get(&LuaKey::Bool(true)).is_some());
    assert_eq!(parse_dat(b"return nil;").unwrap(), LuaValue::Nil);
    assert_eq!(parse_dat(b"return {}").unwrap(), LuaValue::Table(Default::default()));
}

#[test]
fn code_is_refused_with_a_position() {
    let error = parse_dat(b"return {\n  [\"k\"] = os.execute(\"rm -rf /\");\n}").unwrap_err();
    assert_eq!((error.line, error.column), (2, 11), "{error}");
    assert!(error.message.contains("'os' is not a literal"), "{error}");
    for code in [
        &b"return (function() end)()"[..],
        b"os.exit()",
        b"return {} .. {}",
        b"return 1 + 1",
        b"return {x = y}",
        b"return \"a\" \"b\"",
        b"return {} return {}",
        b"return { [nil] = 1 }",
        b"return { [(0/0)] = 1 }",
        b"return -\"s\"",
        b"return 1abc",
        b"",
        b"return",
    ] {
        assert!(parse_dat(code).is_err(), "accepted {}", String::from_utf8_lossy(code));
    }
}

#[test]
fn depth_limit() {
    let nested = |depth: usize| {
        let mut text = b"return ".to_vec();
        text.extend(std::iter::repeat_n(b'{', depth));
        text.extend(std::iter::repeat_n(b'}', depth));
        text
    };
    assert!(parse_dat(&nested(MAX_DEPTH)).is_ok());
    let error = parse_dat(&nested(MAX_DEPTH + 1)).unwrap_err();
    assert!(error.message.contains("nested deeper"), "{error}");
    // Deep enough to overflow the stack of a naive recursive parser.
    assert!(parse_dat(&nested(1_000_000)).is_err());
    let mut parens = b"return ".to_vec();
    parens.extend(std::iter::repeat_n(b'(', 1_000_000));
    assert!(parse_dat(&parens).is_err());
    let mut minus = b"return ".to_vec();
    minus.extend(std::iter::repeat_n(b"- ", 1_000_000).flatten());
    minus.push(b'1');
    assert_eq!(parse_dat(&minus).unwrap(), LuaValue::Int(1));
}

#[test]
fn list_items() {
    let items = parse_list(b"item({\n [\"key\"] = \"a\";\n});\nitem({ key = \"b\" });\n").unwrap();
    assert_eq!(items.len(), 2);
    assert_eq!(items[0].0, 1);
    assert_eq!(items[1].0, 4);
    assert_eq!(table(&items[1].1).get_str("key").and_then(LuaValue::as_str), Some("b"));
    assert!(parse_list(b"").unwrap().is_empty());
    let error = parse_list(b"item({});\nitem({};\n").unwrap_err();
    assert_eq!(error.line, 2, "{error}");
    assert!(parse_list(b"other({});").is_err());
}

#[test]
fn stanza_tables() {
    let value = parse_dat(
        br#"return {
            { "hi \195\169"; ["name"] = "body"; ["attr"] = {}; };
            { ["name"] = "x"; ["attr"] = { ["xmlns"] = "urn:example"; ["urn:attr\001a"] = "1";
              ["http://www.w3.org/XML/1998/namespace\001lang"] = "en" }; { ["name"] = "y"; ["attr"] = {} } };
            ["name"] = "message"; ["attr"] = { ["to"] = "a@b"; ["type"] = "chat" };
        }"#,
    )
    .unwrap();
    let element = stanza_to_element(table(&value), "jabber:client").unwrap();
    assert!(element.is("message", "jabber:client"));
    assert_eq!(element.attr("to"), Some("a@b"));
    assert_eq!(element.get_child("body", "jabber:client").unwrap().text(), "hi é");
    let x = element.get_child("x", "urn:example").unwrap();
    assert!(x.has_child("y", "urn:example"));
    assert_eq!(x.attr("xml:lang"), Some("en"));
    assert_eq!(x.attr("ns1:a"), Some("1"));
    assert_eq!(x.attr("xmlns:ns1"), Some("urn:attr"));
    // Serialises to XML the restricted parser takes back.
    let bytes = element.to_bytes();
    let again = xmppd_xml::Element::parse_standalone(&bytes, "jabber:client").unwrap();
    assert_eq!(again.get_child("x", "urn:example").unwrap().attr("xml:lang"), Some("en"));

    for bad in [
        &br#"return { ["attr"] = {} }"#[..],
        br#"return { ["name"] = "a b"; ["attr"] = {} }"#,
        br#"return { ["name"] = "a"; ["attr"] = {}; "\000" }"#,
        br#"return { ["name"] = "a"; ["attr"] = {}; "\255" }"#,
        br#"return { ["name"] = "a"; ["attr"] = { x = {} } }"#,
        br#"return { ["name"] = "a"; ["attr"] = {}; true }"#,
    ] {
        let value = parse_dat(bad).unwrap();
        assert!(stanza_to_element(table(&value), "").is_err(), "{}", String::from_utf8_lossy(bad));
    }
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 2000, ..ProptestConfig::default() })]

    #[test]
    fn garbage_never_panics(data in proptest::collection::vec(any::<u8>(), 0..512)) {
        let _ = parse_dat(&data);
        let _ = parse_list(&data);
    }

    #[test]
    fn lua_like_garbage_never_panics(text in r#"(return|item\(|\{|\}|\[|\]|=|;|,|"|'|\\|[0-9]|x|u\{|-|\(|\)|/|\.|e|nil|true|false|name|attr|\n| )*"#) {
        if let Ok(LuaValue::Table(t)) = parse_dat(text.as_bytes()) {
            let _ = stanza_to_element(&t, "jabber:client");
        }
        let _ = parse_list(text.as_bytes());
    }

    #[test]
    fn strings_round_trip(bytes in proptest::collection::vec(any::<u8>(), 0..64)) {
        // util/serialization.lua's escaping: \ddd for controls and bytes >= 127.
        let mut text = b"return \"".to_vec();
        for byte in &bytes {
            match byte {
                b'"' | b'\'' | b'\\' => { text.push(b'\\'); text.push(*byte); }
                0..=31 | 127..=255 => text.extend(format!("\\{byte:03}").bytes()),
                _ => text.push(*byte),
            }
        }
        text.extend(b"\";\n");
        prop_assert_eq!(parse_dat(&text).unwrap(), LuaValue::Str(bytes));
    }
}

// ---------------------------------------------------------------------------
// The reader on hand-made directories
// ---------------------------------------------------------------------------

fn write(path: &Path, text: &str) {
    fs::create_dir_all(path.parent().unwrap()).unwrap();
    fs::write(path, text).unwrap();
}

fn collect(reader: ProsodyReader) -> (Vec<(DomainJid, UserData)>, Vec<Error>) {
    let mut users = Vec::new();
    let mut errors = Vec::new();
    for item in reader {
        match item {
            Ok(user) => users.push(user),
            Err(error) => errors.push(error),
        }
    }
    (users, errors)
}

#[test]
fn bad_users_are_skipped_with_their_file() {
    let dir = tempfile::tempdir().unwrap();
    let host = dir.path().join("example%2ecom");
    write(&host.join("accounts/alice.dat"), "return { [\"password\"] = \"plain\" };\n");
    write(&host.join("accounts/bob.dat"), "return {\n  [\"stored_key\"] = os.getenv(\"X\");\n};\n");
    write(&host.join("accounts/carol.dat"), "return {};\n");
    write(&host.join("roster/carol.dat"), "return { [\"not a jid@\"] = { subscription = \"both\" } };\n");
    write(
        &host.join("accounts/dave.dat"),
        "return { salt = \"s\", iteration_count = 1, stored_key = \"zz\", server_key = \"00\" };\n",
    );
    write(&host.join("accounts/jos%c3%a9.dat"), "return {};\n");
    write(&host.join("accounts/o%27brien.dat"), "return {};\n");
    write(&host.join("accounts/alice.dat~"), "garbage");
    // A component without accounts, and the global store, are not hosts.
    write(&dir.path().join("conference%2eexample%2ecom/persistent/x.dat"), "return {};");
    write(&dir.path().join("_global/accounts/x.dat"), "return {};");
    let (users, errors) = collect(ProsodyReader::open(dir.path()).unwrap());
    let names: Vec<String> = users.iter().map(|(host, user)| format!("{}@{host}", user.username)).collect();
    assert_eq!(names, ["alice@example.com", "josé@example.com"]);
    assert_eq!(users[0].1.password, Some(Password::Plain("plain".into())));
    assert_eq!(errors.len(), 4, "{errors:?}");
    assert!(errors.iter().all(|error| !error.is_fatal()));
    let bob = errors[0].to_string();
    assert!(bob.contains("accounts/bob.dat:2:20") && bob.contains("'os' is not a literal"), "{bob}");
    let carol = errors[1].to_string();
    assert!(carol.contains("roster/carol.dat") && carol.contains("not a jid@"), "{carol}");
    assert!(errors[2].to_string().contains("stored_key is not hexadecimal"), "{}", errors[2]);
    let obrien = errors[3].to_string();
    assert!(obrien.contains("accounts/o%27brien.dat") && obrien.contains("invalid user name"), "{obrien}");
}

/// PEP nodes as Prosody 13's `mod_pep` stores them (the `pep` map and one
/// `pep_<node>` archive per node, as a real Prosody wrote them), read as a
/// `pubsub#node_config` form and items oldest first; a node whose
/// configuration the check refuses and an item without a key are skipped
/// with their file (and line), and the rest of the account is kept.
#[test]
fn pep_nodes_and_items() {
    let dir = tempfile::tempdir().unwrap();
    let host = dir.path().join("localhost");
    write(&host.join("accounts/romeo.dat"), "return { password = \"x\" };\n");
    write(
        &host.join("pep/romeo.dat"),
        r#"return {
	["http://jabber.org/protocol/nick"] = {
		["name"] = "http://jabber.org/protocol/nick";
		["config"] = {
			["access_model"] = "open";
			["max_items"] = 2;
			["notify_items"] = false;
			["roster_groups_allowed"] = { "Friends", "Family" };
		};
		["subscribers"] = {};
		["affiliations"] = {};
	};
	["old"] = true;
	["bad"] = { ["name"] = "bad"; ["config"] = { ["access_model"] = "everyone" } };
	["broken"] = { ["config"] = {} };
};
"#,
    );
    let items = "pep_http%3a%2f%2fjabber%2eorg%2fprotocol%2fnick/romeo.list";
    write(
        &host.join(items),
        r#"item({
	"Ro";
	["when"] = 1700000000.5;
	["key"] = "first";
	["attr"] = {
		["xmlns"] = "http://jabber.org/protocol/nick";
		["stamp"] = "2023-11-14T22:13:20.500000Z";
	};
	["name"] = "nick";
	["with"] = "romeo@localhost/orchard";
});
item({
	"Romy";
	["when"] = 1700000001;
	["key"] = "current";
	["attr"] = {
		["xmlns"] = "http://jabber.org/protocol/nick";
		["stamp"] = "2023-11-14T22:13:21Z";
	};
	["name"] = "nick";
});
"#,
    );
    write(&host.join("pep_broken/romeo.list"), "item({ [\"name\"] = \"x\"; [\"attr\"] = {} });\n");
    let check: xmppd_migrate::NodeConfigCheck = |form| match form.value("pubsub#access_model") {
        Some("open" | "presence") | None => Ok(()),
        Some(other) => Err(format!("invalid access model {other}")),
    };
    let (users, errors) = collect(ProsodyReader::open(dir.path()).unwrap().with_node_config_check(check));
    assert_eq!(errors.len(), 2, "{errors:?}");
    assert!(errors.iter().all(|error| matches!(error, Error::InvalidRecord { .. })));
    let bad = errors[0].to_string();
    assert!(bad.contains("pep/romeo.dat") && bad.contains("PEP node 'bad': invalid access model everyone"), "{bad}");
    let broken = errors[1].to_string();
    assert!(broken.contains("pep_broken/romeo.list:1:1") && broken.contains("without a key"), "{broken}");

    let romeo = &users[0].1;
    let names: Vec<&str> = romeo.pep.iter().map(|node| node.name.as_str()).collect();
    assert_eq!(names, ["broken", "http://jabber.org/protocol/nick", "old"]);
    assert!(romeo.pep[0].items.is_empty());
    let nick = &romeo.pep[1];
    let form = nick.config.as_ref().unwrap();
    assert_eq!(form.form_type_value(), Some("http://jabber.org/protocol/pubsub#node_config"));
    assert_eq!(form.value("pubsub#access_model"), Some("open"));
    assert_eq!(form.value("pubsub#max_items"), Some("2"));
    assert_eq!(form.value("pubsub#deliver_notifications"), Some("0"));
    assert_eq!(form.values("pubsub#roster_groups_allowed"), ["Friends", "Family"]);
    let ids: Vec<&str> = nick.items.iter().map(|item| item.id.as_str()).collect();
    assert_eq!(ids, ["first", "current"]);
    let first = &nick.items[0];
    assert_eq!(first.publisher.as_deref(), Some("romeo@localhost/orchard"));
    assert_eq!(first.published, Timestamp::parse("2023-11-14T22:13:20.5Z"));
    let payload = first.payload.as_ref().unwrap();
    assert!(payload.is("nick", "http://jabber.org/protocol/nick"));
    assert_eq!(payload.attr("stamp"), None);
    assert_eq!(payload.text(), "Ro");
    assert_eq!(nick.items[1].publisher, None);
    // COMPAT: a node stored as `true` (before Prosody 0.11) has defaults.
    assert_eq!(romeo.pep[2].config, None);
    assert!(romeo.pep[2].items.is_empty());
}

#[test]
fn unreadable_data_dir_is_fatal() {
    let dir = tempfile::tempdir().unwrap();
    let error = ProsodyReader::open(dir.path().join("missing")).unwrap_err();
    assert!(error.is_fatal());
    assert!(error.to_string().contains("missing"), "{error}");
}

#[test]
fn size_limit() {
    let dir = tempfile::tempdir().unwrap();
    let host = dir.path().join("example%2ecom");
    write(&host.join("accounts/alice.dat"), "return {};\n");
    write(
        &host.join("vcard/alice.dat"),
        &format!("return {{ name = \"vCard\", attr = {{ xmlns = \"vcard-temp\" }}, \"{}\" }};", "x".repeat(4096)),
    );
    let (users, errors) = collect(ProsodyReader::open(dir.path()).unwrap().with_max_file_bytes(1024));
    assert!(users.is_empty());
    assert!(errors[0].to_string().contains("larger than the limit"), "{}", errors[0]);
}

// ---------------------------------------------------------------------------
// Data written by a real Prosody
// ---------------------------------------------------------------------------

fn require_services() -> bool {
    std::env::var("XMPPD_REQUIRE_SERVICES").is_ok_and(|value| value == "1")
}

fn find_program(name: &str) -> Option<PathBuf> {
    let path = std::env::var_os("PATH")?;
    std::env::split_paths(&path).map(|dir| dir.join(name)).find(|candidate| candidate.is_file())
}

/// Prosody's sources (`CFG_SOURCEDIR` of prosodyctl), for the Lua script.
fn prosody_source_dir(prosodyctl: &Path) -> Option<PathBuf> {
    let text = fs::read_to_string(prosodyctl).ok()?;
    let line = text.lines().find(|line| line.starts_with("CFG_SOURCEDIR="))?;
    let dir = line.split('\'').nth(1)?;
    Some(PathBuf::from(dir))
}

/// Stores roster, vCard, private XML and an offline message for romeo
/// through Prosody's own datamanager and stanza modules, as mod_roster,
/// mod_vcard, mod_private and mod_offline (via mod_storage_internal) do.
const POPULATE: &str = r#"
local source, data = arg[1], arg[2]
package.path = source .. "/../?.lua;" .. package.path
package.cpath = source .. "/../?.so;" .. package.cpath
local dm = require "prosody.util.datamanager"
local st = require "prosody.util.stanza"
dm.set_data_path(data)
local host = "example.com"
local request = st.presence({ from = "nurse@example.com", type = "subscribe" }):text_tag("status", "It's me, \"Nurse\" \226\152\186")
assert(dm.store("romeo", host, "roster", {
  [false] = { version = 3, pending = { ["nurse@example.com"] = st.preserialize(request), ["tybalt@capulet.lit"] = true } },
  ["juliet@example.com"] = { subscription = "both", name = "Juliet", groups = { ["Friends"] = true, ["Lovers"] = true } },
  ["benvolio@montague.lit"] = { subscription = "none", ask = "subscribe", groups = {} },
  ["mercutio@verona.lit"] = { subscription = "from", groups = { ["Friends"] = true } },
}))
local vcard = st.stanza("vCard", { xmlns = "vcard-temp" })
  :text_tag("FN", "Romeo Montague")
  :tag("N"):text_tag("FAMILY", "Montague"):text_tag("GIVEN", "Romeo"):up()
  :text_tag("NICKNAME", "R. <&> \"M\"\n\tline")
assert(dm.store("romeo", host, "vcard", st.preserialize(vcard)))
local bookmarks = st.stanza("storage", { xmlns = "storage:bookmarks" })
  :tag("conference", { jid = "room@muc.example.com", name = "Room", autojoin = "true" }):up()
local notes = st.stanza("storage", { xmlns = "storage:rosternotes" })
assert(dm.store("romeo", host, "private", {
  ["storage:storage:bookmarks"] = st.preserialize(bookmarks),
  ["storage:storage:rosternotes"] = st.preserialize(notes),
}))
for i, text in ipairs({ "Wherefore art thou?", "Second \0\1 message" }) do
  if i == 2 then text = "Second message" end
  local message = st.message({ to = "romeo@example.com", from = "juliet@example.com/balcony", type = "chat", ["xml:lang"] = "en" })
    :text_tag("body", text)
  -- mod_storage_internal.lua, archive:append
  local value = st.preserialize(st.clone(message))
  value.when = 1700000000.5 + i
  value.with = ""
  value.attr.stamp = "2023-11-14T22:13:2" .. i .. "Z"
  value.key = "key" .. i
  assert(dm.list_append("romeo", host, "offline", value))
end
"#;

/// `(StoredKey, ServerKey)` in hex, computed by Python's hashlib (an
/// implementation independent of both Prosody and xmppd).
fn python_scram(hash: &str, password: &str, salt: &[u8], iterations: u32) -> Option<(String, String)> {
    let python = find_program("python3")?;
    let salt_hex: String = salt.iter().map(|b| format!("{b:02x}")).collect();
    let script = "import hashlib,hmac,sys\n\
        h,pw,salt,i=sys.argv[1],sys.argv[2].encode(),bytes.fromhex(sys.argv[3]),int(sys.argv[4])\n\
        sp=hashlib.pbkdf2_hmac(h,pw,salt,i)\n\
        ck=hmac.new(sp,b'Client Key',h).digest()\n\
        print(hashlib.new(h,ck).hexdigest(),hmac.new(sp,b'Server Key',h).hexdigest())";
    let output =
        Command::new(python).args(["-c", script, hash, password, &salt_hex, &iterations.to_string()]).output().ok()?;
    let text = String::from_utf8(output.stdout).ok()?;
    let mut parts = text.split_whitespace();
    Some((parts.next()?.to_owned(), parts.next()?.to_owned()))
}

/// jid, subscription, ask, name, groups.
type RosterRow<'a> = (&'a str, Subscription, bool, Option<&'a str>, Vec<&'a str>);

fn hex(bytes: &[u8]) -> String {
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}

#[test]
fn reads_what_prosody_writes() {
    let (Some(prosodyctl), Some(lua)) =
        (find_program("prosodyctl"), find_program("lua5.4").or_else(|| find_program("lua")))
    else {
        assert!(!require_services(), "XMPPD_REQUIRE_SERVICES=1 but prosodyctl or lua5.4 is not installed");
        eprintln!("SKIPPED reads_what_prosody_writes: prosodyctl or lua5.4 not installed");
        return;
    };
    let source = prosody_source_dir(&prosodyctl).unwrap_or_else(|| PathBuf::from("/usr/lib/prosody"));
    let dir = tempfile::tempdir().unwrap();
    let data = dir.path().join("data");
    fs::create_dir(&data).unwrap();
    let config = dir.path().join("prosody.cfg.lua");
    fs::write(
        &config,
        format!(
            "data_path = {data:?}\npidfile = {pid:?}\nrun_as_root = true\nlog = {{ error = {log:?} }}\n\
             certificates = {certs:?}\n\
             VirtualHost \"example.com\"\nauthentication = \"internal_hashed\"\n\
             VirtualHost \"verona.lit\"\nauthentication = \"internal_hashed\"\npassword_hash = \"SHA-256\"\n",
            data = data.display().to_string(),
            pid = dir.path().join("prosody.pid").display().to_string(),
            log = dir.path().join("prosody.log").display().to_string(),
            certs = dir.path().display().to_string(),
        ),
    )
    .unwrap();
    let accounts = [
        ("romeo", "example.com", "s3cr3t wherefore"),
        ("juliet", "example.com", "pässwörd"),
        ("mercutio", "verona.lit", "a plague"),
    ];
    for (user, host, password) in accounts {
        let output = Command::new(&prosodyctl)
            .arg("--config")
            .arg(&config)
            .args(["register", user, host, password])
            .output()
            .unwrap();
        assert!(
            output.status.success()
                && data.join(host.replace('.', "%2e")).join(format!("accounts/{user}.dat")).is_file(),
            "prosodyctl register {user} {host} failed: {}{}",
            String::from_utf8_lossy(&output.stdout),
            String::from_utf8_lossy(&output.stderr)
        );
    }
    let script = dir.path().join("populate.lua");
    fs::write(&script, POPULATE).unwrap();
    let output = Command::new(&lua).arg(&script).arg(&source).arg(&data).output().unwrap();
    assert!(output.status.success(), "populate.lua failed: {}", String::from_utf8_lossy(&output.stderr));

    let (users, errors) = collect(ProsodyReader::open(&data).unwrap());
    assert!(errors.is_empty(), "{errors:?}");
    let names: Vec<String> = users.iter().map(|(host, user)| format!("{}@{host}", user.username)).collect();
    assert_eq!(names, ["juliet@example.com", "romeo@example.com", "mercutio@verona.lit"]);

    // SCRAM: Prosody's keys must verify the password.
    for ((_, user), (_, _, password)) in users.iter().zip([accounts[1], accounts[0], accounts[2]]) {
        let Some(Password::Scram(entries)) = &user.password else {
            panic!("{} has no SCRAM credentials", user.username)
        };
        let [entry] = entries.as_slice() else { panic!("one SCRAM entry expected") };
        let hash = if user.username == "mercutio" { ScramHash::Sha256 } else { ScramHash::Sha1 };
        assert_eq!(entry.mechanism_hash, hash);
        assert!(entry.iterations >= 4096);
        assert_eq!(entry.salt.len(), 36, "Prosody's salt is a UUID string");
        let name = if hash == ScramHash::Sha1 { "sha1" } else { "sha256" };
        match python_scram(name, password, &entry.salt, entry.iterations) {
            Some((stored, server)) => {
                assert_eq!(hex(&entry.stored_key), stored, "StoredKey of {}", user.username);
                assert_eq!(hex(&entry.server_key), server, "ServerKey of {}", user.username);
                let (wrong, _) = python_scram(name, "wrong", &entry.salt, entry.iterations).unwrap();
                assert_ne!(hex(&entry.stored_key), wrong);
            }
            None => eprintln!("python3 not available: SCRAM keys not verified against the password"),
        }
    }

    let romeo = &users[1].1;
    let roster: Vec<RosterRow<'_>> = romeo
        .roster
        .iter()
        .map(|item| {
            (
                item.jid.as_str(),
                item.subscription,
                item.ask,
                item.name.as_deref(),
                item.groups.iter().map(String::as_str).collect(),
            )
        })
        .collect();
    assert_eq!(
        roster,
        [
            ("benvolio@montague.lit", Subscription::None, true, None, vec![]),
            ("juliet@example.com", Subscription::Both, false, Some("Juliet"), vec!["Friends", "Lovers"]),
            ("mercutio@verona.lit", Subscription::From, false, None, vec!["Friends"]),
        ]
    );
    assert_eq!(romeo.pending_in.len(), 2);
    let nurse = &romeo.pending_in[0];
    assert_eq!(nurse.from.as_str(), "nurse@example.com");
    assert_eq!(nurse.status.as_deref(), Some("It's me, \"Nurse\" ☺"));
    let presence = xmppd_xml::Element::parse_standalone(&nurse.stanza, "jabber:client").unwrap();
    assert!(presence.is("presence", "jabber:client"));
    assert_eq!(presence.attr("type"), Some("subscribe"));
    assert_eq!(romeo.pending_in[1].from.as_str(), "tybalt@capulet.lit");
    // Stored as `true`: the request Prosody's mod_storage_xep0227 would export.
    assert_eq!(romeo.pending_in[1].stanza, b"<presence from='tybalt@capulet.lit' type='subscribe'/>");

    let vcard = romeo.vcard.as_ref().unwrap();
    assert!(vcard.is("vCard", "vcard-temp"));
    assert_eq!(vcard.get_child("FN", "vcard-temp").unwrap().text(), "Romeo Montague");
    assert_eq!(vcard.get_child("N", "vcard-temp").unwrap().get_child("GIVEN", "vcard-temp").unwrap().text(), "Romeo");
    assert_eq!(vcard.get_child("NICKNAME", "vcard-temp").unwrap().text(), "R. <&> \"M\"\n\tline");

    assert_eq!(romeo.private.len(), 2);
    let bookmarks = &romeo.private[0];
    assert!(bookmarks.is("storage", "storage:bookmarks"));
    let conference = bookmarks.get_child("conference", "storage:bookmarks").unwrap();
    assert_eq!(conference.attr("jid"), Some("room@muc.example.com"));
    assert_eq!(conference.attr("autojoin"), Some("true"));
    assert!(romeo.private[1].is("storage", "storage:rosternotes"));

    assert_eq!(romeo.offline.len(), 2);
    assert_eq!(romeo.offline[0].stamp, Timestamp::from_unix_ms(1_700_000_001_500));
    assert_eq!(romeo.offline[1].stamp, Timestamp::from_unix_ms(1_700_000_002_500));
    let message = xmppd_xml::Element::parse_standalone(&romeo.offline[0].stanza, "jabber:client").unwrap();
    assert!(message.is("message", "jabber:client"));
    assert_eq!(message.attr("stamp"), None, "Prosody's internal stamp attribute is dropped");
    assert_eq!(message.attr("xml:lang"), Some("en"));
    assert_eq!(message.get_child("body", "jabber:client").unwrap().text(), "Wherefore art thou?");

    let juliet = &users[0].1;
    assert!(juliet.roster.is_empty() && juliet.vcard.is_none() && juliet.offline.is_empty());

    // The same pipeline as XEP-0227 files: write the users as PIEFXIS and
    // read them back unchanged.
    let mut writer = Writer::new(Vec::new());
    let mut current: Option<&DomainJid> = None;
    for (host, user) in &users {
        if current != Some(host) {
            if current.is_some() {
                writer.end_host().unwrap();
            }
            writer.begin_host(host).unwrap();
            current = Some(host);
        }
        writer.write_user(user).unwrap();
    }
    writer.end_host().unwrap();
    let xml = writer.finish().unwrap();
    let again: Vec<(DomainJid, UserData)> = Reader::new(xml.as_slice()).map(Result::unwrap).collect();
    assert_eq!(again, users);
}
