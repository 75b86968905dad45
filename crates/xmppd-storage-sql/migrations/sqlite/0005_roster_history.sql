-- The roster history behind RFC 6121 section 2.6.3 interim pushes, SQLite
-- dialect: the roster version of each item's last write (0 = unknown: rows
-- written before this migration or by a bulk import; then the store cannot
-- tell what changed) and the version at which each removed contact went.
ALTER TABLE roster_items ADD COLUMN version INTEGER NOT NULL DEFAULT 0 CHECK (version >= 0);

CREATE TABLE roster_removed (
    host     TEXT    NOT NULL,
    username TEXT    NOT NULL,
    contact  TEXT    NOT NULL,
    version  INTEGER NOT NULL CHECK (version >= 1),
    PRIMARY KEY (host, username, contact)
) STRICT, WITHOUT ROWID;
