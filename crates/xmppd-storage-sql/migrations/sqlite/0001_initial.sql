-- xmppd storage schema, SQLite dialect. Text keys use the default BINARY
-- collation, so comparisons and ORDER BY are byte-exact.

CREATE TABLE accounts (
    host       TEXT    NOT NULL,
    username   TEXT    NOT NULL,
    created_at INTEGER NOT NULL DEFAULT (unixepoch()),
    PRIMARY KEY (host, username)
) STRICT, WITHOUT ROWID;

-- One SCRAM verifier per account and hash function (RFC 5802 section 3).
CREATE TABLE credentials (
    host       TEXT    NOT NULL,
    username   TEXT    NOT NULL,
    mechanism  TEXT    NOT NULL,
    salt       BLOB    NOT NULL,
    iterations INTEGER NOT NULL CHECK (iterations BETWEEN 1 AND 4294967295),
    stored_key BLOB    NOT NULL,
    server_key BLOB    NOT NULL,
    PRIMARY KEY (host, username, mechanism),
    FOREIGN KEY (host, username) REFERENCES accounts (host, username) ON DELETE CASCADE
) STRICT, WITHOUT ROWID;

-- Generic module data. No foreign key: username '' holds host-wide entries.
CREATE TABLE kv (
    host     TEXT NOT NULL,
    username TEXT NOT NULL,
    store    TEXT NOT NULL,
    key      TEXT NOT NULL,
    value    BLOB NOT NULL,
    PRIMARY KEY (host, username, store, key)
) STRICT, WITHOUT ROWID;
