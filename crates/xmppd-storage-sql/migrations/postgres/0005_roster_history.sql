-- The roster history behind RFC 6121 section 2.6.3 interim pushes,
-- PostgreSQL dialect: the roster version of each item's last write (0 =
-- unknown: rows written before this migration or by a bulk import; then the
-- store cannot tell what changed) and the version at which each removed
-- contact went.
ALTER TABLE roster_items ADD COLUMN version BIGINT NOT NULL DEFAULT 0 CHECK (version >= 0);

CREATE TABLE roster_removed (
    host     TEXT COLLATE "C" NOT NULL,
    username TEXT COLLATE "C" NOT NULL,
    contact  TEXT COLLATE "C" NOT NULL,
    version  BIGINT NOT NULL CHECK (version >= 1),
    PRIMARY KEY (host, username, contact)
);
