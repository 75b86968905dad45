-- xmppd storage schema, PostgreSQL dialect. Text keys use the "C" collation,
-- so comparisons and ORDER BY are byte-exact whatever the database locale.

CREATE TABLE accounts (
    host       TEXT COLLATE "C" NOT NULL,
    username   TEXT COLLATE "C" NOT NULL,
    created_at BIGINT NOT NULL DEFAULT (EXTRACT(EPOCH FROM now())::BIGINT),
    PRIMARY KEY (host, username)
);

-- One SCRAM verifier per account and hash function (RFC 5802 section 3).
CREATE TABLE credentials (
    host       TEXT COLLATE "C" NOT NULL,
    username   TEXT COLLATE "C" NOT NULL,
    mechanism  TEXT COLLATE "C" NOT NULL,
    salt       BYTEA  NOT NULL,
    iterations BIGINT NOT NULL CHECK (iterations BETWEEN 1 AND 4294967295),
    stored_key BYTEA  NOT NULL,
    server_key BYTEA  NOT NULL,
    PRIMARY KEY (host, username, mechanism),
    FOREIGN KEY (host, username) REFERENCES accounts (host, username) ON DELETE CASCADE
);

-- Generic module data. No foreign key: username '' holds host-wide entries.
CREATE TABLE kv (
    host     TEXT COLLATE "C" NOT NULL,
    username TEXT COLLATE "C" NOT NULL,
    store    TEXT COLLATE "C" NOT NULL,
    key      TEXT COLLATE "C" NOT NULL,
    value    BYTEA NOT NULL,
    PRIMARY KEY (host, username, store, key)
);
