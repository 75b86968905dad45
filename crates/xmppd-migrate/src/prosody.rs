//! Prosody's internal file storage (`storage = "internal"`, the default),
//! read without Prosody and without executing anything.
//!
//! # Layout
//!
//! `util/datamanager.lua` (`getpath`) stores
//! `DATA_DIR/<host>/<store>/<user>.<ext>`, where host and user are
//! %-encoded (`encode`: every byte that is not `%w` becomes `%xx`, lowercase
//! hex, so `example.com` is `example%2ecom`) and the store name keeps `_`
//! and alphanumerics (`store_encode`). Key-value stores (`ext` = `dat`) hold
//! one Lua chunk `return <value>;` written by `util/serialization.lua`;
//! archive stores (`ext` = `list`, with a binary `.lidx` index that is not
//! needed) hold one `item(<value>);` call per item (`list_append`,
//! `list_store`).
//!
//! The stores read here, per account:
//!
//! * `accounts` (`mod_auth_internal_hashed.lua`): `stored_key` and
//!   `server_key` in lowercase hex, `salt` as a raw string (a UUID),
//!   `iteration_count`; SCRAM-SHA-1 unless the host set
//!   `password_hash = "SHA-256"`, which the hex length tells apart.
//!   `mod_auth_internal_plain.lua` (and accounts not yet upgraded) keep
//!   `password` in plaintext.
//! * `roster` (`core/rostermanager.lua`): a map from contact JID to
//!   `{subscription, ask, name, approved, groups = {[group] = true}}`; the
//!   key `false` holds `{version, pending = {[jid] = stanza | true}}`
//!   (a legacy top-level `pending` key is accepted too).
//! * `vcard` (`mod_vcard.lua`): the `<vCard/>` as a "preserialized" stanza
//!   (`util/stanza.lua`: `{name, attr, [1] = child or text, …}`).
//! * `private` (`mod_private.lua`, a map store over the key-value file):
//!   `{["name:namespace"] = stanza}`.
//! * `offline` (`mod_offline.lua` through `mod_storage_internal.lua`'s
//!   archive): `.list` items that are preserialized `<message/>`s with the
//!   extra fields `key`, `when` (seconds since the epoch, possibly
//!   fractional) and `with`, and the attribute `stamp`.
//! * `pep` (`mod_pep.lua`'s `node_config` map store and `known_nodes`,
//!   the same key-value file; checked with Prosody 13.0): a map from node
//!   name to `{name, config = {…}, affiliations, subscribers}` as
//!   `util/pubsub.lua`'s `save_node_to_store` writes it, or `true` for a
//!   node of before 0.11. `config` keys are the `name`s of
//!   `node_config_form` (`mod_pubsub/pubsub.lib.lua`): `access_model`,
//!   `max_items`, `notify_items` for `pubsub#deliver_notifications`,
//!   `include_payload` for `pubsub#deliver_payloads`… They become a
//!   `pubsub#node_config` form (XEP-0227 §4.10.1); affiliations and
//!   subscribers are not read.
//! * `pep_<node>` (the items of each node, an archive of the `pep_data`
//!   driver, so `.list` files; the store name is `store_encode`d): one
//!   preserialized payload per item, oldest first, with `key` (the item
//!   id), `with` (the publisher), `when` and the added attribute `stamp`,
//!   which is removed.
//!
//! Errors follow [`Reader`](crate::Reader): an unusable account is reported
//! as [`Error::InvalidUser`] (with the file and the line and column in it)
//! and skipped; a host directory whose name is not a domain is
//! [`Error::InvalidHost`]; a directory that cannot be listed is a fatal
//! [`Error::Io`] that ends the iteration. Locations of file-level errors
//! (no position inside the file) have line and column 0.

use std::collections::HashMap;
use std::fmt;
use std::fs;
use std::io::Read as _;
use std::path::{Path, PathBuf};
use std::sync::Arc;

use xmppd_jid::{BareJid, DomainJid, Jid, nodeprep};
use xmppd_xml::Element;

use crate::error::{Error, Location};
use xmppd_proto::data_form::{DataForm, Field, FormType};

use crate::model::UserData;
use crate::model::{
    OfflineEntry, Password, PendingSubscription, PepItem, PepNode, RosterEntry, ScramEntry, ScramHash, Subscription,
};
use crate::ns;
use crate::reader::NodeConfigCheck;
use crate::timestamp::Timestamp;

/// The deepest nesting of tables (and parentheses) the Lua parser accepts.
/// Prosody's serializer stops at 127 (`maxdepth`).
pub const MAX_DEPTH: usize = 128;

/// The default size limit of one storage file, in bytes.
pub const DEFAULT_MAX_FILE_BYTES: u64 = 64 * 1024 * 1024;

const XML_NS: &str = "http://www.w3.org/XML/1998/namespace";

// ---------------------------------------------------------------------------
// Lua values
// ---------------------------------------------------------------------------

/// A Lua value as found in Prosody's storage files.
#[derive(Debug, Clone, PartialEq)]
pub enum LuaValue {
    /// `nil`.
    Nil,
    /// `true` or `false`.
    Bool(bool),
    /// An integer.
    Int(i64),
    /// A float (including `(1/0)`, `(-1/0)` and `(0/0)`).
    Float(f64),
    /// A string: raw bytes, as Lua strings are.
    Str(Vec<u8>),
    /// A table.
    Table(LuaTable),
}

impl LuaValue {
    /// The string, if this is a string that is valid UTF-8.
    pub fn as_str(&self) -> Option<&str> {
        match self {
            LuaValue::Str(bytes) => std::str::from_utf8(bytes).ok(),
            _ => None,
        }
    }

    /// The table, if this is one.
    pub fn as_table(&self) -> Option<&LuaTable> {
        match self {
            LuaValue::Table(table) => Some(table),
            _ => None,
        }
    }

    /// The number as an `f64`, if this is a number.
    pub fn as_f64(&self) -> Option<f64> {
        match self {
            LuaValue::Int(value) => Some(*value as f64),
            LuaValue::Float(value) => Some(*value),
            _ => None,
        }
    }

    /// The number as an integer, if this is an integer or an integral float.
    pub fn as_i64(&self) -> Option<i64> {
        match self {
            LuaValue::Int(value) => Some(*value),
            LuaValue::Float(value) if value.fract() == 0.0 && value.abs() < 9.0e18 => Some(*value as i64),
            _ => None,
        }
    }

    fn type_name(&self) -> &'static str {
        match self {
            LuaValue::Nil => "nil",
            LuaValue::Bool(_) => "boolean",
            LuaValue::Int(_) | LuaValue::Float(_) => "number",
            LuaValue::Str(_) => "string",
            LuaValue::Table(_) => "table",
        }
    }
}

/// A table key. As in Lua, a float key with an integral value is the integer
/// key; `nil` and NaN are not keys.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub enum LuaKey {
    /// `true` or `false`.
    Bool(bool),
    /// An integer.
    Int(i64),
    /// A non-integral float, by its bits.
    Float(u64),
    /// A string.
    Str(Vec<u8>),
    /// A table used as a key (never looked up; kept to preserve the entry).
    Table(usize),
}

impl LuaKey {
    /// The string, if this is a UTF-8 string key.
    pub fn as_str(&self) -> Option<&str> {
        match self {
            LuaKey::Str(bytes) => std::str::from_utf8(bytes).ok(),
            _ => None,
        }
    }
}

/// A Lua table: its entries in file order, later assignments to the same key
/// replacing earlier ones (a `nil` value removes the key).
#[derive(Debug, Clone, Default, PartialEq)]
pub struct LuaTable {
    entries: Vec<(LuaKey, LuaValue)>,
    index: HashMap<LuaKey, usize>,
}

impl LuaTable {
    fn set(&mut self, key: LuaKey, value: LuaValue) {
        match self.index.get(&key) {
            Some(&slot) => {
                if let Some(entry) = self.entries.get_mut(slot) {
                    entry.1 = value;
                }
            }
            None => {
                if value != LuaValue::Nil {
                    self.index.insert(key.clone(), self.entries.len());
                    self.entries.push((key, value));
                }
            }
        }
    }

    /// The value of `key`, if present.
    pub fn get(&self, key: &LuaKey) -> Option<&LuaValue> {
        let slot = *self.index.get(key)?;
        self.entries.get(slot).map(|(_, value)| value).filter(|value| **value != LuaValue::Nil)
    }

    /// The value of the string key `key`.
    pub fn get_str(&self, key: &str) -> Option<&LuaValue> {
        self.get(&LuaKey::Str(key.as_bytes().to_vec()))
    }

    /// All entries with a value, in file order.
    pub fn iter(&self) -> impl Iterator<Item = (&LuaKey, &LuaValue)> {
        self.entries.iter().filter(|(_, value)| *value != LuaValue::Nil).map(|(key, value)| (key, value))
    }

    /// The sequence `t[1], t[2], …` up to the first missing index (what
    /// Lua's `ipairs` visits).
    pub fn array(&self) -> impl Iterator<Item = &LuaValue> {
        (1..).map_while(|index| self.get(&LuaKey::Int(index)))
    }

    /// The number of entries with a value.
    pub fn len(&self) -> usize {
        self.iter().count()
    }

    /// Whether the table has no entries.
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }
}

// ---------------------------------------------------------------------------
// The parser
// ---------------------------------------------------------------------------

/// A syntax error in Lua data, or data outside what the parser accepts.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct LuaError {
    /// 1-based line.
    pub line: u64,
    /// 1-based column, in characters.
    pub column: u64,
    /// 0-based byte offset.
    pub offset: u64,
    /// What is wrong.
    pub message: String,
}

impl fmt::Display for LuaError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "line {}, column {}: {}", self.line, self.column, self.message)
    }
}

impl std::error::Error for LuaError {}

/// Parses a key-value store file: `return <value>;`.
///
/// Only data is accepted: literals (`nil`, booleans, numbers, strings with
/// all of Lua 5.4's escapes, long strings), table constructors, unary minus
/// on numbers and the parenthesised divisions Prosody writes for infinities
/// and NaN. Nothing is executed; nesting is limited to [`MAX_DEPTH`].
pub fn parse_dat(data: &[u8]) -> Result<LuaValue, LuaError> {
    let mut parser = Parser::new(data);
    parser.skip_space()?;
    parser.expect_name("return")?;
    let value = parser.value()?;
    parser.skip_space()?;
    if parser.peek() == Some(b';') {
        parser.bump();
    }
    parser.skip_space()?;
    if parser.peek().is_some() {
        return Err(parser.error("unexpected data after the returned value"));
    }
    Ok(value)
}

/// Parses an archive store file: a sequence of `item(<value>);`. Each item
/// comes with the line it starts on.
pub fn parse_list(data: &[u8]) -> Result<Vec<(u64, LuaValue)>, LuaError> {
    let mut parser = Parser::new(data);
    let mut items = Vec::new();
    loop {
        parser.skip_space()?;
        if parser.peek().is_none() {
            return Ok(items);
        }
        let line = parser.line;
        parser.expect_name("item")?;
        parser.skip_space()?;
        parser.expect(b'(')?;
        let value = parser.value()?;
        parser.skip_space()?;
        parser.expect(b')')?;
        parser.skip_space()?;
        if parser.peek() == Some(b';') {
            parser.bump();
        }
        items.push((line, value));
    }
}

struct Parser<'a> {
    data: &'a [u8],
    pos: usize,
    line: u64,
    line_start: usize,
    depth: usize,
    tables: usize,
}

impl<'a> Parser<'a> {
    fn new(data: &'a [u8]) -> Parser<'a> {
        Parser { data, pos: 0, line: 1, line_start: 0, depth: 0, tables: 0 }
    }

    fn peek(&self) -> Option<u8> {
        self.data.get(self.pos).copied()
    }

    fn peek_at(&self, ahead: usize) -> Option<u8> {
        self.data.get(self.pos + ahead).copied()
    }

    fn bump(&mut self) -> Option<u8> {
        let byte = self.peek()?;
        self.pos += 1;
        if byte == b'\n' {
            self.line += 1;
            self.line_start = self.pos;
        }
        Some(byte)
    }

    fn error(&self, message: impl Into<String>) -> LuaError {
        let start = self.line_start.min(self.data.len());
        let end = self.pos.min(self.data.len());
        let column = self.data.get(start..end).map_or(0, |line| line.iter().filter(|b| (**b & 0xC0) != 0x80).count());
        LuaError { line: self.line, column: column as u64 + 1, offset: self.pos as u64, message: message.into() }
    }

    fn expect(&mut self, byte: u8) -> Result<(), LuaError> {
        if self.peek() == Some(byte) {
            self.bump();
            Ok(())
        } else {
            Err(self.error(format!("expected '{}', found {}", byte as char, self.describe_here())))
        }
    }

    fn describe_here(&self) -> String {
        match self.peek() {
            None => "end of file".to_owned(),
            Some(byte) if byte.is_ascii_graphic() => format!("'{}'", byte as char),
            Some(byte) => format!("byte 0x{byte:02x}"),
        }
    }

    fn expect_name(&mut self, name: &str) -> Result<(), LuaError> {
        let start = self.pos;
        match self.name() {
            Some(found) if found == name => Ok(()),
            _ => {
                self.pos = start;
                Err(self.error(format!("expected '{name}', found {}", self.describe_here())))
            }
        }
    }

    /// A Lua name (`[A-Za-z_][A-Za-z0-9_]*`), if one starts here.
    fn name(&mut self) -> Option<&'a str> {
        let first = self.peek()?;
        if !(first.is_ascii_alphabetic() || first == b'_') {
            return None;
        }
        let start = self.pos;
        while self.peek().is_some_and(|b| b.is_ascii_alphanumeric() || b == b'_') {
            self.pos += 1;
        }
        self.data.get(start..self.pos).and_then(|name| std::str::from_utf8(name).ok())
    }

    fn skip_space(&mut self) -> Result<(), LuaError> {
        loop {
            match self.peek() {
                Some(b' ' | b'\t' | b'\r' | b'\n' | 0x0b | 0x0c) => {
                    self.bump();
                }
                Some(b'-') if self.peek_at(1) == Some(b'-') => {
                    self.bump();
                    self.bump();
                    if self.peek() == Some(b'[') && self.long_bracket_level().is_some() {
                        self.long_string()?;
                    } else {
                        while self.peek().is_some_and(|b| b != b'\n') {
                            self.bump();
                        }
                    }
                }
                _ => return Ok(()),
            }
        }
    }

    fn enter(&mut self) -> Result<(), LuaError> {
        self.depth += 1;
        if self.depth > MAX_DEPTH {
            return Err(self.error(format!("nested deeper than {MAX_DEPTH} levels")));
        }
        Ok(())
    }

    fn value(&mut self) -> Result<LuaValue, LuaError> {
        self.skip_space()?;
        // Unary minus, counted without recursion ("--" would be a comment).
        let mut negate = false;
        let mut minus = false;
        while self.peek() == Some(b'-') {
            self.bump();
            negate = !negate;
            minus = true;
            self.skip_space()?;
        }
        let value = match self.peek() {
            None => return Err(self.error("unexpected end of file, expected a value")),
            Some(b'{') => {
                self.enter()?;
                let table = self.table()?;
                self.depth -= 1;
                LuaValue::Table(table)
            }
            Some(b'"' | b'\'') => LuaValue::Str(self.short_string()?),
            Some(b'[') if self.long_bracket_level().is_some() => LuaValue::Str(self.long_string()?),
            Some(b'0'..=b'9') => self.number()?,
            Some(b'.') if self.peek_at(1).is_some_and(|b| b.is_ascii_digit()) => self.number()?,
            Some(b'(') => {
                self.enter()?;
                self.bump();
                let value = self.value()?;
                self.skip_space()?;
                let value = if self.peek() == Some(b'/') {
                    self.bump();
                    let divisor = self.value()?;
                    match (value.as_f64(), divisor.as_f64()) {
                        (Some(a), Some(b)) => LuaValue::Float(a / b),
                        _ => return Err(self.error("division of a value that is not a number")),
                    }
                } else {
                    value
                };
                self.skip_space()?;
                self.expect(b')')?;
                self.depth -= 1;
                value
            }
            Some(_) => {
                let start = self.pos;
                match self.name() {
                    Some("nil") => LuaValue::Nil,
                    Some("true") => LuaValue::Bool(true),
                    Some("false") => LuaValue::Bool(false),
                    Some(other) => {
                        let other = other.to_owned();
                        self.pos = start;
                        return Err(self.error(format!("'{other}' is not a literal (only data is accepted)")));
                    }
                    None => return Err(self.error(format!("unexpected {}, expected a value", self.describe_here()))),
                }
            }
        };
        if !minus {
            return Ok(value);
        }
        match value {
            LuaValue::Int(number) if negate => {
                Ok(number.checked_neg().map_or(LuaValue::Float(-(number as f64)), LuaValue::Int))
            }
            LuaValue::Float(number) if negate => Ok(LuaValue::Float(-number)),
            LuaValue::Int(_) | LuaValue::Float(_) => Ok(value),
            other => Err(self.error(format!("unary minus on a {}", other.type_name()))),
        }
    }

    fn table(&mut self) -> Result<LuaTable, LuaError> {
        self.expect(b'{')?;
        self.tables += 1;
        let table_id = self.tables;
        let mut table = LuaTable::default();
        let mut next_index: i64 = 1;
        loop {
            self.skip_space()?;
            match self.peek() {
                Some(b'}') => {
                    self.bump();
                    return Ok(table);
                }
                None => return Err(self.error("unexpected end of file inside a table")),
                _ => {}
            }
            if self.peek() == Some(b'[') && self.long_bracket_level().is_none() {
                // [key] = value
                self.bump();
                let key_value = self.value()?;
                self.skip_space()?;
                self.expect(b']')?;
                self.skip_space()?;
                self.expect(b'=')?;
                let key = self.key(key_value, table_id)?;
                let value = self.value()?;
                table.set(key, value);
            } else if let Some(key) = self.name_key()? {
                let value = self.value()?;
                table.set(key, value);
            } else {
                let value = self.value()?;
                table.set(LuaKey::Int(next_index), value);
                next_index = next_index.saturating_add(1);
            }
            self.skip_space()?;
            match self.peek() {
                Some(b',' | b';') => {
                    self.bump();
                }
                Some(b'}') => {}
                _ => return Err(self.error(format!("expected ',', ';' or '}}', found {}", self.describe_here()))),
            }
        }
    }

    /// `name =` (not `==`): the key, with the `=` consumed.
    fn name_key(&mut self) -> Result<Option<LuaKey>, LuaError> {
        let start = (self.pos, self.line, self.line_start);
        let Some(name) = self.name() else { return Ok(None) };
        if matches!(name, "nil" | "true" | "false") {
            (self.pos, self.line, self.line_start) = start;
            return Ok(None);
        }
        let key = LuaKey::Str(name.as_bytes().to_vec());
        self.skip_space()?;
        if self.peek() == Some(b'=') && self.peek_at(1) != Some(b'=') {
            self.bump();
            return Ok(Some(key));
        }
        (self.pos, self.line, self.line_start) = start;
        Ok(None)
    }

    fn key(&self, value: LuaValue, table_id: usize) -> Result<LuaKey, LuaError> {
        match value {
            LuaValue::Nil => Err(self.error("table index is nil")),
            LuaValue::Bool(b) => Ok(LuaKey::Bool(b)),
            LuaValue::Int(i) => Ok(LuaKey::Int(i)),
            LuaValue::Float(f) if f.is_nan() => Err(self.error("table index is NaN")),
            LuaValue::Float(f) if f.fract() == 0.0 && (-9.2e18..=9.2e18).contains(&f) => Ok(LuaKey::Int(f as i64)),
            LuaValue::Float(f) => Ok(LuaKey::Float(f.to_bits())),
            LuaValue::Str(s) => Ok(LuaKey::Str(s)),
            // Tables are distinct keys; give each its own identity.
            LuaValue::Table(_) => Ok(LuaKey::Table(table_id.wrapping_mul(1 << 20).wrapping_add(self.pos))),
        }
    }

    /// `[` `=`* `[`: the level, if a long bracket starts here.
    fn long_bracket_level(&self) -> Option<usize> {
        if self.peek() != Some(b'[') {
            return None;
        }
        let mut level = 0;
        while self.peek_at(1 + level) == Some(b'=') {
            level += 1;
        }
        (self.peek_at(1 + level) == Some(b'[')).then_some(level)
    }

    fn long_string(&mut self) -> Result<Vec<u8>, LuaError> {
        let level = self.long_bracket_level().ok_or_else(|| self.error("expected a long bracket"))?;
        for _ in 0..level + 2 {
            self.bump();
        }
        // A newline right after the opening bracket is skipped.
        if self.peek() == Some(b'\r') {
            self.bump();
            if self.peek() == Some(b'\n') {
                self.bump();
            }
        } else if self.peek() == Some(b'\n') {
            self.bump();
            if self.peek() == Some(b'\r') {
                self.bump();
            }
        }
        let mut out = Vec::new();
        loop {
            match self.peek() {
                None => return Err(self.error("unfinished long string or comment")),
                Some(b']') => {
                    let closes =
                        (0..level).all(|i| self.peek_at(1 + i) == Some(b'=')) && self.peek_at(1 + level) == Some(b']');
                    if closes {
                        for _ in 0..level + 2 {
                            self.bump();
                        }
                        return Ok(out);
                    }
                    out.push(b']');
                    self.bump();
                }
                Some(byte) => {
                    out.push(byte);
                    self.bump();
                }
            }
        }
    }

    fn short_string(&mut self) -> Result<Vec<u8>, LuaError> {
        let quote = self.bump().ok_or_else(|| self.error("expected a string"))?;
        let mut out = Vec::new();
        loop {
            let Some(byte) = self.peek() else {
                return Err(self.error("unfinished string"));
            };
            match byte {
                b'\n' | b'\r' => return Err(self.error("unfinished string (newline inside a quoted string)")),
                b'\\' => {
                    self.bump();
                    self.escape(&mut out)?;
                }
                _ if byte == quote => {
                    self.bump();
                    return Ok(out);
                }
                _ => {
                    out.push(byte);
                    self.bump();
                }
            }
        }
    }

    /// One escape sequence, after the backslash (Lua 5.4 manual §3.1).
    fn escape(&mut self, out: &mut Vec<u8>) -> Result<(), LuaError> {
        let Some(byte) = self.peek() else {
            return Err(self.error("unfinished string"));
        };
        let simple = match byte {
            b'a' => Some(0x07),
            b'b' => Some(0x08),
            b'f' => Some(0x0c),
            b'n' => Some(b'\n'),
            b'r' => Some(b'\r'),
            b't' => Some(b'\t'),
            b'v' => Some(0x0b),
            b'\\' => Some(b'\\'),
            b'"' => Some(b'"'),
            b'\'' => Some(b'\''),
            _ => None,
        };
        if let Some(value) = simple {
            self.bump();
            out.push(value);
            return Ok(());
        }
        match byte {
            b'\n' | b'\r' => {
                self.bump();
                if let Some(next) = self.peek()
                    && (next == b'\n' || next == b'\r')
                    && next != byte
                {
                    self.bump();
                }
                out.push(b'\n');
            }
            b'x' => {
                self.bump();
                let mut value = 0u8;
                for _ in 0..2 {
                    let digit = self
                        .peek()
                        .and_then(|b| (b as char).to_digit(16))
                        .ok_or_else(|| self.error("hexadecimal digit expected in \\x escape"))?;
                    self.bump();
                    value = value * 16 + digit as u8;
                }
                out.push(value);
            }
            b'z' => {
                self.bump();
                while self.peek().is_some_and(|b| matches!(b, b' ' | b'\t' | b'\r' | b'\n' | 0x0b | 0x0c)) {
                    self.bump();
                }
            }
            b'0'..=b'9' => {
                let mut value = 0u32;
                let mut digits = 0;
                while digits < 3 && self.peek().is_some_and(|b| b.is_ascii_digit()) {
                    value = value * 10 + u32::from(self.peek().unwrap_or(b'0') - b'0');
                    self.bump();
                    digits += 1;
                }
                let value = u8::try_from(value).map_err(|_| self.error("decimal escape too large"))?;
                out.push(value);
            }
            b'u' => {
                self.bump();
                self.expect(b'{')?;
                let mut value = 0u32;
                let mut digits = 0;
                while let Some(digit) = self.peek().and_then(|b| (b as char).to_digit(16)) {
                    value = value
                        .checked_mul(16)
                        .and_then(|v| v.checked_add(digit))
                        .filter(|v| *v <= 0x7FFF_FFFF)
                        .ok_or_else(|| self.error("UTF-8 value too large in \\u escape"))?;
                    self.bump();
                    digits += 1;
                }
                if digits == 0 {
                    return Err(self.error("hexadecimal digit expected in \\u escape"));
                }
                self.expect(b'}')?;
                let character =
                    char::from_u32(value).ok_or_else(|| self.error("\\u escape is not a Unicode scalar value"))?;
                let mut buffer = [0u8; 4];
                out.extend_from_slice(character.encode_utf8(&mut buffer).as_bytes());
            }
            _ => return Err(self.error("invalid escape sequence")),
        }
        Ok(())
    }

    fn number(&mut self) -> Result<LuaValue, LuaError> {
        let start = self.pos;
        if self.peek() == Some(b'0') && matches!(self.peek_at(1), Some(b'x' | b'X')) {
            self.pos += 2;
            let digits_start = self.pos;
            let mut value: i64 = 0;
            while let Some(digit) = self.peek().and_then(|b| (b as char).to_digit(16)) {
                // Lua wraps hexadecimal integers around.
                value = value.wrapping_mul(16).wrapping_add(i64::from(digit));
                self.pos += 1;
            }
            if self.pos == digits_start {
                return Err(self.error("malformed number"));
            }
            if self.peek().is_some_and(|b| b.is_ascii_alphanumeric() || b == b'_' || b == b'.') {
                return Err(self.error("malformed number (hexadecimal floats are not supported)"));
            }
            return Ok(LuaValue::Int(value));
        }
        let mut float = false;
        while let Some(byte) = self.peek() {
            match byte {
                b'0'..=b'9' => {}
                b'.' => float = true,
                b'e' | b'E' => {
                    float = true;
                    if matches!(self.peek_at(1), Some(b'+' | b'-')) {
                        self.pos += 1;
                    }
                }
                _ => break,
            }
            self.pos += 1;
        }
        if self.peek().is_some_and(|b| b.is_ascii_alphanumeric() || b == b'_') {
            return Err(self.error("malformed number"));
        }
        let text = self.data.get(start..self.pos).and_then(|t| std::str::from_utf8(t).ok()).unwrap_or_default();
        if !float && let Ok(value) = text.parse::<i64>() {
            return Ok(LuaValue::Int(value));
        }
        // Decimal integers that overflow are floats in Lua too.
        text.parse::<f64>().map(LuaValue::Float).map_err(|_| self.error(format!("malformed number '{text}'")))
    }
}

// ---------------------------------------------------------------------------
// Stanzas
// ---------------------------------------------------------------------------

/// Converts a "preserialized" stanza (`util/stanza.lua`, `preserialize`:
/// `{name = …, attr = {…}, [1] = child or text, …}`) to an element. An
/// element without an `xmlns` attribute inherits `parent_ns`, as in
/// Prosody. Namespaced attributes (`"namespace\1name"`, or the legacy
/// `"namespace|name"`) get a declared prefix (`xml:` for the XML
/// namespace). Every string must be UTF-8 and use only XML characters.
pub fn stanza_to_element(table: &LuaTable, parent_ns: &str) -> Result<Element, String> {
    let name = match table.get_str("name") {
        Some(value) => xml_string(value, "element name")?,
        None => return Err("stanza table without a 'name'".to_owned()),
    };
    if name.is_empty() || name.contains(|c: char| c.is_whitespace() || "<>&\"'/=".contains(c)) {
        return Err(format!("invalid element name '{name}'"));
    }
    let attrs = match table.get_str("attr") {
        None => None,
        Some(LuaValue::Table(attrs)) => Some(attrs),
        Some(other) => return Err(format!("<{name}/> has an 'attr' that is a {}", other.type_name())),
    };
    let ns = match attrs.and_then(|attrs| attrs.get_str("xmlns")) {
        Some(value) => xml_string(value, "namespace")?,
        None => parent_ns.to_owned(),
    };
    let mut element = Element::new(name.as_str(), ns.as_str());
    let mut prefixes = 0;
    let mut sorted: Vec<(String, String)> = Vec::new();
    for (key, value) in attrs.into_iter().flat_map(LuaTable::iter) {
        let Some(key) = key.as_str() else {
            // util/stanza.lua's deserialize ignores non-string keys too.
            continue;
        };
        if key == "xmlns" {
            continue;
        }
        let value = match value {
            LuaValue::Int(_) | LuaValue::Float(_) => format_number(value),
            other => xml_string(other, "attribute value")?,
        };
        sorted.push((key.to_owned(), value));
    }
    // Lua tables have no order; sort for a stable result.
    sorted.sort();
    for (key, value) in sorted {
        let split = key.split_once('\u{1}').or_else(|| key.split_once('|'));
        match split {
            Some((attr_ns, local)) => {
                if attr_ns == XML_NS {
                    element.set_attr(format!("xml:{local}"), value);
                } else {
                    prefixes += 1;
                    let prefix = format!("ns{prefixes}");
                    element.set_attr(format!("xmlns:{prefix}"), attr_ns);
                    element.set_attr(format!("{prefix}:{local}"), value);
                }
            }
            None => {
                xml_string(&LuaValue::Str(key.as_bytes().to_vec()), "attribute name")?;
                element.set_attr(key, value);
            }
        }
    }
    for child in table.array() {
        match child {
            LuaValue::Str(_) => element.push_text(&xml_string(child, "text")?),
            LuaValue::Table(child) => element.push_child(stanza_to_element(child, &ns)?),
            other => return Err(format!("<{name}/> has a child that is a {}", other.type_name())),
        }
    }
    Ok(element)
}

fn format_number(value: &LuaValue) -> String {
    match value {
        LuaValue::Int(i) => i.to_string(),
        LuaValue::Float(f) => f.to_string(),
        _ => String::new(),
    }
}

/// A Lua string as XML character data.
fn xml_string(value: &LuaValue, what: &str) -> Result<String, String> {
    let LuaValue::Str(bytes) = value else {
        return Err(format!("{what} is a {}, not a string", value.type_name()));
    };
    let text = std::str::from_utf8(bytes).map_err(|_| format!("{what} is not valid UTF-8"))?;
    if let Some(bad) = text
        .chars()
        .find(|c| !(matches!(c, '\t' | '\n' | '\r') || (*c >= ' ' && !matches!(c, '\u{FFFE}' | '\u{FFFF}'))))
    {
        return Err(format!("{what} contains U+{:04X}, which XML cannot carry", u32::from(bad)));
    }
    Ok(text.to_owned())
}

// ---------------------------------------------------------------------------
// The reader
// ---------------------------------------------------------------------------

/// Reads every account of a Prosody data directory (`data_path`), host by
/// host and user by user, in name order. See the [module](self) for the
/// files it reads.
#[derive(Debug)]
pub struct ProsodyReader {
    hosts: std::vec::IntoIter<PathBuf>,
    current: Option<HostState>,
    max_file_bytes: u64,
    check_node_config: Option<NodeConfigCheck>,
    /// Skipped records of the user read last, then that user.
    queued: std::collections::VecDeque<Result<(DomainJid, UserData), Error>>,
    done: bool,
}

#[derive(Debug)]
struct HostState {
    domain: DomainJid,
    dir: PathBuf,
    /// (file stem as stored, decoded name)
    users: std::vec::IntoIter<(String, String)>,
}

/// A per-user problem: the message and where.
struct UserError {
    file: PathBuf,
    line: u64,
    column: u64,
    offset: u64,
    message: String,
}

impl UserError {
    fn at(file: &Path, message: impl Into<String>) -> UserError {
        UserError { file: file.to_owned(), line: 0, column: 0, offset: 0, message: message.into() }
    }

    fn lua(file: &Path, error: LuaError) -> UserError {
        UserError {
            file: file.to_owned(),
            line: error.line,
            column: error.column,
            offset: error.offset,
            message: error.message,
        }
    }

    fn item(file: &Path, line: u64, message: impl Into<String>) -> UserError {
        UserError { file: file.to_owned(), line, column: 1, offset: 0, message: message.into() }
    }
}

fn location(path: &Path, line: u64, column: u64, offset: u64) -> Location {
    Location { file: Some(Arc::from(path.display().to_string())), line, column, offset }
}

fn io_error(path: &Path, source: std::io::Error) -> Error {
    Error::Io { location: Some(location(path, 0, 0, 0)), source }
}

/// `util/datamanager.lua`'s `decode`: `%xx` to the byte.
fn decode_name(encoded: &str) -> Option<String> {
    let bytes = encoded.as_bytes();
    let mut out = Vec::with_capacity(bytes.len());
    let mut index = 0;
    while let Some(&byte) = bytes.get(index) {
        if byte == b'%'
            && let Some(hex) = bytes.get(index + 1..index + 3)
            && let Some(value) = std::str::from_utf8(hex).ok().and_then(|hex| u8::from_str_radix(hex, 16).ok())
        {
            out.push(value);
            index += 3;
            continue;
        }
        out.push(byte);
        index += 1;
    }
    String::from_utf8(out).ok()
}

impl ProsodyReader {
    /// Lists the host directories of `data_dir`. Fails (with
    /// [`Error::Io`]) if the directory cannot be read.
    pub fn open(data_dir: impl AsRef<Path>) -> Result<ProsodyReader, Error> {
        let data_dir = data_dir.as_ref();
        let entries = fs::read_dir(data_dir).map_err(|error| io_error(data_dir, error))?;
        let mut hosts = Vec::new();
        for entry in entries {
            let entry = entry.map_err(|error| io_error(data_dir, error))?;
            let name = entry.file_name();
            let Some(name) = name.to_str() else { continue };
            if name.starts_with('.') || name == "_global" {
                continue;
            }
            if entry.file_type().is_ok_and(|kind| kind.is_dir()) {
                hosts.push(entry.path());
            }
        }
        hosts.sort();
        Ok(ProsodyReader {
            hosts: hosts.into_iter(),
            current: None,
            max_file_bytes: DEFAULT_MAX_FILE_BYTES,
            check_node_config: None,
            queued: std::collections::VecDeque::new(),
            done: false,
        })
    }

    /// Sets the check of PEP node configurations: a node it refuses is
    /// skipped with its items and reported as [`Error::InvalidRecord`].
    pub fn with_node_config_check(mut self, check: NodeConfigCheck) -> ProsodyReader {
        self.check_node_config = Some(check);
        self
    }

    /// Sets the size limit of one storage file (default
    /// [`DEFAULT_MAX_FILE_BYTES`]); a user with a larger file is skipped.
    pub fn with_max_file_bytes(mut self, bytes: u64) -> ProsodyReader {
        self.max_file_bytes = bytes;
        self
    }

    /// Opens the next host directory that has an `accounts` store.
    fn next_host(&mut self) -> Option<Result<(), Error>> {
        loop {
            let dir = self.hosts.next()?;
            let accounts = dir.join("accounts");
            let entries = match fs::read_dir(&accounts) {
                Ok(entries) => entries,
                // Components and hosts without accounts have no such store.
                Err(error) if error.kind() == std::io::ErrorKind::NotFound => continue,
                Err(error) => return Some(Err(io_error(&accounts, error))),
            };
            let raw = dir.file_name().and_then(|name| name.to_str()).unwrap_or_default();
            let decoded = decode_name(raw);
            let domain = match decoded.as_deref().map(str::parse::<DomainJid>) {
                Some(Ok(domain)) => domain,
                Some(Err(error)) => {
                    return Some(Err(Error::InvalidHost {
                        location: location(&dir, 0, 0, 0),
                        message: format!("'{}' is not a domain: {error}", decoded.unwrap_or_default()),
                    }));
                }
                None => {
                    return Some(Err(Error::InvalidHost {
                        location: location(&dir, 0, 0, 0),
                        message: "the directory name does not decode to UTF-8".to_owned(),
                    }));
                }
            };
            let mut users = Vec::new();
            for entry in entries {
                let entry = match entry {
                    Ok(entry) => entry,
                    Err(error) => return Some(Err(io_error(&accounts, error))),
                };
                let file_name = entry.file_name();
                let Some(stem) = file_name.to_str().and_then(|name| name.strip_suffix(".dat")) else { continue };
                if stem.is_empty() {
                    continue;
                }
                users.push((stem.to_owned(), decode_name(stem).unwrap_or_default()));
            }
            users.sort();
            self.current = Some(HostState { domain, dir, users: users.into_iter() });
            return Some(Ok(()));
        }
    }

    fn read_file(&self, path: &Path) -> Result<Option<Vec<u8>>, UserError> {
        let mut file = match fs::File::open(path) {
            Ok(file) => file,
            Err(error) if error.kind() == std::io::ErrorKind::NotFound => return Ok(None),
            Err(error) => return Err(UserError::at(path, format!("cannot open: {error}"))),
        };
        let mut data = Vec::new();
        file.by_ref()
            .take(self.max_file_bytes.saturating_add(1))
            .read_to_end(&mut data)
            .map_err(|error| UserError::at(path, format!("read error: {error}")))?;
        if data.len() as u64 > self.max_file_bytes {
            return Err(UserError::at(path, format!("larger than the limit of {} bytes", self.max_file_bytes)));
        }
        Ok(Some(data))
    }

    fn read_dat(&self, path: &Path) -> Result<Option<LuaValue>, UserError> {
        match self.read_file(path)? {
            None => Ok(None),
            Some(data) => match parse_dat(&data).map_err(|error| UserError::lua(path, error))? {
                LuaValue::Nil => Ok(None),
                value => Ok(Some(value)),
            },
        }
    }

    /// One account and the records of it that were skipped.
    fn read_user(&self, host: &HostState, stem: &str, name: &str) -> Result<(UserData, Vec<UserError>), UserError> {
        let account_path = host.dir.join("accounts").join(format!("{stem}.dat"));
        if name.is_empty() {
            return Err(UserError::at(&account_path, "the file name does not decode to a UTF-8 user name"));
        }
        let username = nodeprep(name)
            .map_err(|error| UserError::at(&account_path, format!("invalid user name '{name}': {error}")))?;
        let mut user = UserData { username: username.into_owned(), ..UserData::default() };
        let store = |store: &str, ext: &str| host.dir.join(store).join(format!("{stem}.{ext}"));

        if let Some(account) = self.read_dat(&account_path)? {
            user.password = password(&account).map_err(|message| UserError::at(&account_path, message))?;
        }

        let roster_path = store("roster", "dat");
        if let Some(value) = self.read_dat(&roster_path)? {
            let own = format!("{}@{}", user.username, host.domain);
            roster(&value, &own, &mut user).map_err(|message| UserError::at(&roster_path, message))?;
        }

        let vcard_path = store("vcard", "dat");
        if let Some(value) = self.read_dat(&vcard_path)? {
            let table = value.as_table().ok_or_else(|| UserError::at(&vcard_path, "the vCard is not a table"))?;
            // An empty table is what is left of a deleted vCard.
            if !table.is_empty() {
                let vcard =
                    stanza_to_element(table, ns::VCARD).map_err(|message| UserError::at(&vcard_path, message))?;
                if vcard.is("vCard", ns::VCARD) {
                    user.vcard = Some(vcard);
                } else {
                    user.unsupported.push(vcard);
                }
            }
        }

        let private_path = store("private", "dat");
        if let Some(value) = self.read_dat(&private_path)? {
            let table =
                value.as_table().ok_or_else(|| UserError::at(&private_path, "the private store is not a table"))?;
            let mut items: Vec<(String, Element)> = Vec::new();
            for (key, value) in table.iter() {
                let key = key.as_str().unwrap_or_default().to_owned();
                let item = value
                    .as_table()
                    .ok_or_else(|| UserError::at(&private_path, format!("private item '{key}' is not a table")))?;
                let element = stanza_to_element(item, "")
                    .map_err(|message| UserError::at(&private_path, format!("private item '{key}': {message}")))?;
                items.push((key, element));
            }
            items.sort_by(|a, b| a.0.cmp(&b.0));
            user.private = items.into_iter().map(|(_, element)| element).collect();
        }

        let offline_path = store("offline", "list");
        if let Some(data) = self.read_file(&offline_path)? {
            let items = parse_list(&data).map_err(|error| UserError::lua(&offline_path, error))?;
            for (line, item) in items {
                let entry = offline(&item).map_err(|message| UserError::item(&offline_path, line, message))?;
                user.offline.push(entry);
            }
        }

        let mut skipped = Vec::new();
        let pep_path = store("pep", "dat");
        if let Some(value) = self.read_dat(&pep_path)? {
            let table = value.as_table().ok_or_else(|| UserError::at(&pep_path, "the pep store is not a table"))?;
            let mut nodes: Vec<(&str, &LuaValue)> = Vec::new();
            for (key, value) in table.iter() {
                match key.as_str() {
                    Some(name) if !name.is_empty() => nodes.push((name, value)),
                    _ => skipped.push(UserError::at(&pep_path, "a PEP node whose name is not a string")),
                }
            }
            nodes.sort_by(|a, b| a.0.cmp(b.0));
            for (name, value) in nodes {
                match self.pep_node(host, stem, name, value, &mut skipped) {
                    Ok(node) => user.pep.push(node),
                    Err(error) => skipped.push(error),
                }
            }
        }
        Ok((user, skipped))
    }

    /// One PEP node of the `pep` store and its `pep_<node>` items; items
    /// that cannot be read are added to `skipped`.
    fn pep_node(
        &self,
        host: &HostState,
        stem: &str,
        name: &str,
        value: &LuaValue,
        skipped: &mut Vec<UserError>,
    ) -> Result<PepNode, UserError> {
        let pep_path = host.dir.join("pep").join(format!("{stem}.dat"));
        let config = match value {
            // COMPAT: before Prosody 0.11 the store only said that the node
            // existed (mod_pep's nodestore reads `true` as defaults).
            LuaValue::Bool(true) => None,
            LuaValue::Table(node) => match node.get_str("config") {
                None => None,
                Some(LuaValue::Table(config)) => Some(
                    node_config_form(config)
                        .map_err(|message| UserError::at(&pep_path, format!("PEP node '{name}': {message}")))?,
                ),
                Some(other) => {
                    return Err(UserError::at(
                        &pep_path,
                        format!("PEP node '{name}' has a config that is a {}", other.type_name()),
                    ));
                }
            },
            other => {
                return Err(UserError::at(&pep_path, format!("PEP node '{name}' is a {}", other.type_name())));
            }
        };
        if let (Some(form), Some(check)) = (&config, self.check_node_config) {
            check(form).map_err(|reason| UserError::at(&pep_path, format!("PEP node '{name}': {reason}")))?;
        }
        let items_path = host.dir.join(format!("pep_{}", store_encode(name))).join(format!("{stem}.list"));
        let mut items: Vec<PepItem> = Vec::new();
        if let Some(data) = self.read_file(&items_path)? {
            let list = parse_list(&data).map_err(|error| UserError::lua(&items_path, error))?;
            for (line, item) in list {
                let item = match pep_item(&item) {
                    Ok(item) => item,
                    Err(message) => {
                        skipped.push(UserError::item(&items_path, line, format!("PEP node '{name}': {message}")));
                        continue;
                    }
                };
                // Prosody replaces an item on republication: the last copy
                // is the current one.
                items.retain(|other| other.id != item.id);
                items.push(item);
            }
        }
        Ok(PepNode { name: name.to_owned(), config, items })
    }
}

impl Iterator for ProsodyReader {
    type Item = Result<(DomainJid, UserData), Error>;

    fn next(&mut self) -> Option<Self::Item> {
        if let Some(item) = self.queued.pop_front() {
            return Some(item);
        }
        loop {
            if self.done {
                return None;
            }
            if let Some(host) = &mut self.current {
                if let Some((stem, name)) = host.users.next() {
                    let Some(host) = self.current.as_ref() else { continue };
                    return Some(match self.read_user(host, &stem, &name) {
                        Ok((user, skipped)) => {
                            for error in skipped {
                                self.queued.push_back(Err(Error::InvalidRecord {
                                    location: location(&error.file, error.line, error.column, error.offset),
                                    host: host.domain.to_string(),
                                    user: user.username.clone(),
                                    message: error.message,
                                }));
                            }
                            self.queued.push_back(Ok((host.domain.clone(), user)));
                            return self.queued.pop_front();
                        }
                        Err(error) => Err(Error::InvalidUser {
                            location: location(&error.file, error.line, error.column, error.offset),
                            host: host.domain.to_string(),
                            user: name,
                            message: error.message,
                        }),
                    });
                }
                self.current = None;
            }
            match self.next_host() {
                None => {
                    self.done = true;
                    return None;
                }
                Some(Ok(())) => {}
                Some(Err(error)) => {
                    if error.is_fatal() {
                        self.done = true;
                    }
                    return Some(Err(error));
                }
            }
        }
    }
}

fn string_field<'t>(table: &'t LuaTable, key: &str) -> Result<Option<&'t str>, String> {
    match table.get_str(key) {
        None => Ok(None),
        Some(value) => value.as_str().map(Some).ok_or_else(|| format!("'{key}' is not a UTF-8 string")),
    }
}

/// The `accounts` store (`mod_auth_internal_hashed.lua`,
/// `mod_auth_internal_plain.lua`).
fn password(account: &LuaValue) -> Result<Option<Password>, String> {
    let table = account.as_table().ok_or("the account is not a table")?;
    let stored_key = string_field(table, "stored_key")?;
    let server_key = string_field(table, "server_key")?;
    if let (Some(stored_key), Some(server_key)) = (stored_key, server_key) {
        let salt = match table.get_str("salt") {
            Some(LuaValue::Str(salt)) if !salt.is_empty() => salt.clone(),
            _ => return Err("SCRAM keys without a salt".to_owned()),
        };
        let iterations = table
            .get_str("iteration_count")
            .and_then(LuaValue::as_i64)
            .and_then(|count| u32::try_from(count).ok())
            .filter(|count| *count > 0)
            .ok_or("SCRAM keys without a valid iteration_count")?;
        let stored_key = decode_hex(stored_key).ok_or("stored_key is not hexadecimal")?;
        let server_key = decode_hex(server_key).ok_or("server_key is not hexadecimal")?;
        // The store does not say which hash the host used
        // (password_hash = "SHA-1" or "SHA-256"); the key length does.
        let mechanism_hash = [ScramHash::Sha1, ScramHash::Sha256]
            .into_iter()
            .find(|hash| hash.output_len() == stored_key.len())
            .filter(|hash| hash.output_len() == server_key.len())
            .ok_or_else(|| format!("SCRAM keys of unexpected length {} bytes", stored_key.len()))?;
        return Ok(Some(Password::Scram(vec![ScramEntry {
            mechanism_hash,
            iterations,
            salt,
            stored_key,
            server_key,
        }])));
    }
    // mod_auth_internal_plain, or an account not yet upgraded.
    Ok(string_field(table, "password")?.map(|password| Password::Plain(password.to_owned())))
}

fn decode_hex(text: &str) -> Option<Vec<u8>> {
    if !text.len().is_multiple_of(2) {
        return None;
    }
    (0..text.len())
        .step_by(2)
        .map(|index| text.get(index..index + 2).and_then(|pair| u8::from_str_radix(pair, 16).ok()))
        .collect()
}

/// The `roster` store (`core/rostermanager.lua`).
fn roster(value: &LuaValue, own_jid: &str, user: &mut UserData) -> Result<(), String> {
    let table = value.as_table().ok_or("the roster is not a table")?;
    let mut pending: Option<&LuaTable> = None;
    let mut entries: Vec<RosterEntry> = Vec::new();
    for (key, item) in table.iter() {
        let jid_text = match key {
            LuaKey::Bool(false) => {
                let meta = item.as_table().ok_or("the roster metadata ([false]) is not a table")?;
                if let Some(LuaValue::Table(table)) = meta.get_str("pending") {
                    pending = Some(table);
                }
                continue;
            }
            LuaKey::Str(_) => key.as_str().ok_or("a roster JID is not UTF-8")?,
            _ => return Err("a roster key is neither a JID nor false".to_owned()),
        };
        let item = item.as_table().ok_or_else(|| format!("roster item '{jid_text}' is not a table"))?;
        // COMPAT: before Prosody 0.9 the pending requests were under the
        // key "pending" (rostermanager's load_roster migrates them).
        if jid_text == "pending" && !matches!(item.get_str("subscription"), Some(LuaValue::Str(_))) {
            pending = pending.or(Some(item));
            continue;
        }
        let jid: BareJid =
            jid_text.parse().map_err(|error| format!("roster item JID '{jid_text}' is invalid: {error}"))?;
        // mod_storage_xep0227 skips self-contacts too.
        if jid.as_str() == own_jid {
            continue;
        }
        let subscription = match string_field(item, "subscription")? {
            None => Subscription::None,
            Some(value) => Subscription::parse(value)
                .ok_or_else(|| format!("roster item '{jid}' has an unknown subscription '{value}'"))?,
        };
        let ask = match string_field(item, "ask")? {
            None => false,
            Some("subscribe") => true,
            Some(value) => return Err(format!("roster item '{jid}' has an unknown ask value '{value}'")),
        };
        // rostermanager compares item.approved == "true".
        let approved = matches!(item.get_str("approved"), Some(LuaValue::Bool(true)))
            || string_field(item, "approved").ok().flatten() == Some("true");
        let name = string_field(item, "name")?.filter(|name| !name.is_empty()).map(str::to_owned);
        let mut groups = Vec::new();
        if let Some(LuaValue::Table(set)) = item.get_str("groups") {
            for (group, member) in set.iter() {
                if *member == LuaValue::Bool(false) {
                    continue;
                }
                let group =
                    group.as_str().ok_or_else(|| format!("roster item '{jid}' has a group that is not a string"))?;
                xml_string(&LuaValue::Str(group.as_bytes().to_vec()), "group name")?;
                if !group.is_empty() {
                    groups.push(group.to_owned());
                }
            }
        }
        groups.sort();
        if let Some(name) = &name {
            xml_string(&LuaValue::Str(name.as_bytes().to_vec()), "roster item name")?;
        }
        if entries.iter().any(|entry| entry.jid == jid) {
            return Err(format!("two roster items for '{jid}'"));
        }
        entries.push(RosterEntry { jid, name, subscription, ask, approved, groups });
    }
    entries.sort_by(|a, b| a.jid.as_str().cmp(b.jid.as_str()));
    user.roster = entries;

    let mut requests = Vec::new();
    for (key, request) in pending.into_iter().flat_map(LuaTable::iter) {
        let text = key.as_str().ok_or("a pending subscription key is not a JID")?;
        let from: Jid =
            text.parse().map_err(|error| format!("subscription request from '{text}' is invalid: {error}"))?;
        let from = from.to_bare();
        let (status, stanza) = match request {
            LuaValue::Table(table) => {
                let presence = stanza_to_element(table, ns::CLIENT)
                    .map_err(|message| format!("subscription request from '{text}': {message}"))?;
                let status = presence.get_child("status", presence.ns()).map(Element::text);
                let mut stanza = Vec::new();
                presence.write_to(&mut stanza, ns::CLIENT);
                (status, stanza)
            }
            // `true`: a request whose stanza was not kept; mod_storage_xep0227
            // exports it as a bare subscription request.
            _ => {
                let presence = Element::builder("presence", ns::CLIENT)
                    .attr("from", from.as_str())
                    .attr("type", "subscribe")
                    .build();
                let mut stanza = Vec::new();
                presence.write_to(&mut stanza, ns::CLIENT);
                (None, stanza)
            }
        };
        requests.push(PendingSubscription { from, status, stanza });
    }
    requests.sort_by(|a, b| a.from.as_str().cmp(b.from.as_str()));
    user.pending_in = requests;
    Ok(())
}

/// One item of the `offline` archive (`mod_storage_internal.lua`,
/// `archive:append`).
fn offline(item: &LuaValue) -> Result<OfflineEntry, String> {
    let table = item.as_table().ok_or("an offline item is not a table")?;
    let mut message = stanza_to_element(table, ns::CLIENT).map_err(|message| format!("offline message: {message}"))?;
    let stamp_attr = message.remove_attr("stamp");
    // COMPAT: Prosody 0.9 also kept a XEP-0091 stamp.
    message.remove_attr("stamp_legacy");
    let stamp = match table.get_str("when").and_then(LuaValue::as_f64) {
        Some(when) if when.is_finite() => Timestamp::from_unix_ms((when * 1000.0).round() as i64),
        _ => stamp_attr.as_deref().and_then(Timestamp::parse),
    };
    if message.name() != "message" {
        return Err(format!("an offline item is a <{}/>, not a <message/>", message.name()));
    }
    let mut stanza = Vec::new();
    message.write_to(&mut stanza, ns::CLIENT);
    Ok(OfflineEntry { stamp, stanza })
}

/// `util/datamanager.lua`'s `store_encode`: every byte but `_` and ASCII
/// alphanumerics becomes `%xx` (lowercase hex).
fn store_encode(name: &str) -> String {
    let mut out = String::with_capacity(name.len());
    for byte in name.bytes() {
        if byte == b'_' || byte.is_ascii_alphanumeric() {
            out.push(char::from(byte));
        } else {
            out.push_str(&format!("%{byte:02x}"));
        }
    }
    out
}

/// The XEP-0060 field of a key of Prosody's node configuration
/// (`node_config_form` in `mod_pubsub/pubsub.lib.lua`: its `name`s).
fn node_config_var(key: &str) -> String {
    match key {
        "payload_type" => "pubsub#type".to_owned(),
        "notify_items" => "pubsub#deliver_notifications".to_owned(),
        "include_payload" => "pubsub#deliver_payloads".to_owned(),
        other => format!("pubsub#{other}"),
    }
}

/// A Prosody node configuration table as a submitted
/// `pubsub#node_config` form (XEP-0060 §16.4.3, XEP-0227 §4.10.1), fields
/// in key order. Booleans are `1`/`0`, numbers decimal (`max_items` may be
/// `"max"`), lists (`roster_groups_allowed`) one value each.
fn node_config_form(config: &LuaTable) -> Result<DataForm, String> {
    let mut fields: Vec<(String, Vec<String>)> = Vec::new();
    for (key, value) in config.iter() {
        let Some(key) = key.as_str() else { continue };
        let values = match value {
            LuaValue::Bool(flag) => vec![if *flag { "1" } else { "0" }.to_owned()],
            LuaValue::Int(_) | LuaValue::Float(_) => vec![format_number(value)],
            LuaValue::Str(_) => vec![xml_string(value, key)?],
            LuaValue::Table(list) => {
                list.array().map(|entry| xml_string(entry, key)).collect::<Result<Vec<String>, String>>()?
            }
            LuaValue::Nil => continue,
        };
        fields.push((node_config_var(key), values));
    }
    fields.sort();
    let mut form =
        DataForm::new(FormType::Submit).with_field(Field::form_type("http://jabber.org/protocol/pubsub#node_config"));
    for (var, values) in fields {
        form.fields.push(Field { var: Some(var), values, ..Field::default() });
    }
    Ok(form)
}

/// One item of a `pep_<node>` archive (`mod_pubsub/pubsub.lib.lua`,
/// `archive_itemstore`, through `mod_storage_internal.lua`'s
/// `archive:append`): the preserialized payload with `key`, `with`, `when`
/// and the attribute `stamp` added.
fn pep_item(item: &LuaValue) -> Result<PepItem, String> {
    let table = item.as_table().ok_or("a PEP item is not a table")?;
    let id = match table.get_str("key") {
        Some(key) => xml_string(key, "item id")?,
        None => return Err("an item without a key (id)".to_owned()),
    };
    if id.is_empty() {
        return Err("an item with an empty id".to_owned());
    }
    let publisher = match table.get_str("with") {
        Some(with) => Some(xml_string(with, "publisher")?),
        None => None,
    };
    let mut payload = stanza_to_element(table, "").map_err(|message| format!("item '{id}': {message}"))?;
    let stamp = payload.remove_attr("stamp");
    let published = match table.get_str("when").and_then(LuaValue::as_f64) {
        Some(when) if when.is_finite() => Timestamp::from_unix_ms((when * 1000.0).round() as i64),
        _ => stamp.as_deref().and_then(Timestamp::parse),
    };
    Ok(PepItem { id, publisher, published, payload: Some(payload) })
}
