-- Rosters (RFC 6121 section 2), pending inbound subscription requests
-- (RFC 6121 section 3.1.3) and offline messages (XEP-0160), PostgreSQL
-- dialect. Text keys use the "C" collation, as in 0001. No foreign key to
-- accounts (like kv): AuthStore::delete_account removes a user's rows from
-- these tables in its own transaction.

-- One row per (host, username) once the roster was first written. The
-- version (RFC 6121 section 2.6) starts at 1 and is bumped in the same
-- transaction as every change of the user's roster_items; its row lock is
-- what serializes concurrent writers of one roster.
CREATE TABLE roster_versions (
    host     TEXT COLLATE "C" NOT NULL,
    username TEXT COLLATE "C" NOT NULL,
    version  BIGINT NOT NULL CHECK (version >= 1),
    PRIMARY KEY (host, username)
);

CREATE TABLE roster_items (
    host         TEXT COLLATE "C" NOT NULL,
    username     TEXT COLLATE "C" NOT NULL,
    contact      TEXT COLLATE "C" NOT NULL,
    name         TEXT,
    subscription TEXT    NOT NULL CHECK (subscription IN ('none', 'to', 'from', 'both')),
    ask          BOOLEAN NOT NULL,
    approved     BOOLEAN NOT NULL,
    PRIMARY KEY (host, username, contact)
);

-- The groups of a roster item, one row per group, in the client's order.
-- A separate table rather than one encoded column: a group name may hold any
-- Unicode text (commas, quotes, brackets, newlines), so a delimited list
-- would need escaping and a JSON column a JSON codec on both dialects, while
-- plain rows keep each name verbatim, keep the order in `position`, and are
-- removed with their item by the cascade. (A TEXT[] column would do here but
-- has no SQLite counterpart; one layout for both dialects is simpler.)
CREATE TABLE roster_groups (
    host     TEXT COLLATE "C" NOT NULL,
    username TEXT COLLATE "C" NOT NULL,
    contact  TEXT COLLATE "C" NOT NULL,
    position INTEGER NOT NULL CHECK (position >= 0),
    name     TEXT    NOT NULL,
    PRIMARY KEY (host, username, contact, position),
    FOREIGN KEY (host, username, contact) REFERENCES roster_items (host, username, contact) ON DELETE CASCADE
);

CREATE TABLE roster_pending_in (
    host     TEXT COLLATE "C" NOT NULL,
    username TEXT COLLATE "C" NOT NULL,
    contact  TEXT COLLATE "C" NOT NULL,
    status   TEXT,
    PRIMARY KEY (host, username, contact)
);

-- Ids come from a sequence, so they are never reused; pushes for one user are
-- serialized (see postgres.rs), so they also commit in id order.
CREATE TABLE offline_messages (
    id       BIGSERIAL PRIMARY KEY,
    host     TEXT COLLATE "C" NOT NULL,
    username TEXT COLLATE "C" NOT NULL,
    stamp_ms BIGINT NOT NULL,
    stanza   BYTEA  NOT NULL
);

CREATE INDEX offline_messages_by_user ON offline_messages (host, username, id);
