-- Rosters (RFC 6121 section 2), pending inbound subscription requests
-- (RFC 6121 section 3.1.3) and offline messages (XEP-0160), SQLite dialect.
-- No foreign key to accounts (like kv): AuthStore::delete_account removes a
-- user's rows from these tables in its own transaction.

-- One row per (host, username) once the roster was first written. The
-- version (RFC 6121 section 2.6) starts at 1 and is bumped in the same
-- transaction as every change of the user's roster_items.
CREATE TABLE roster_versions (
    host     TEXT    NOT NULL,
    username TEXT    NOT NULL,
    version  INTEGER NOT NULL CHECK (version >= 1),
    PRIMARY KEY (host, username)
) STRICT, WITHOUT ROWID;

CREATE TABLE roster_items (
    host         TEXT    NOT NULL,
    username     TEXT    NOT NULL,
    contact      TEXT    NOT NULL,
    name         TEXT,
    subscription TEXT    NOT NULL CHECK (subscription IN ('none', 'to', 'from', 'both')),
    ask          INTEGER NOT NULL CHECK (ask IN (0, 1)),
    approved     INTEGER NOT NULL CHECK (approved IN (0, 1)),
    PRIMARY KEY (host, username, contact)
) STRICT, WITHOUT ROWID;

-- The groups of a roster item, one row per group, in the client's order.
-- A separate table rather than one encoded column: a group name may hold any
-- Unicode text (commas, quotes, brackets, newlines), so a delimited list
-- would need escaping and a JSON column a JSON codec on both dialects, while
-- plain rows keep each name verbatim, keep the order in `position`, and are
-- removed with their item by the cascade.
CREATE TABLE roster_groups (
    host     TEXT    NOT NULL,
    username TEXT    NOT NULL,
    contact  TEXT    NOT NULL,
    position INTEGER NOT NULL CHECK (position >= 0),
    name     TEXT    NOT NULL,
    PRIMARY KEY (host, username, contact, position),
    FOREIGN KEY (host, username, contact) REFERENCES roster_items (host, username, contact) ON DELETE CASCADE
) STRICT, WITHOUT ROWID;

CREATE TABLE roster_pending_in (
    host     TEXT NOT NULL,
    username TEXT NOT NULL,
    contact  TEXT NOT NULL,
    status   TEXT,
    PRIMARY KEY (host, username, contact)
) STRICT, WITHOUT ROWID;

-- AUTOINCREMENT: ids are never reused, even after the newest messages were
-- removed, so a stale remove_through can never delete a later message.
CREATE TABLE offline_messages (
    id       INTEGER PRIMARY KEY AUTOINCREMENT,
    host     TEXT    NOT NULL,
    username TEXT    NOT NULL,
    stamp_ms INTEGER NOT NULL,
    stanza   BLOB    NOT NULL
) STRICT;

CREATE INDEX offline_messages_by_user ON offline_messages (host, username, id);
