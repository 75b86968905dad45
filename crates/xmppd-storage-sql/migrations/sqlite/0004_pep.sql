-- Personal eventing nodes (XEP-0163) and their items, SQLite dialect.
-- No foreign key to accounts (like kv): AuthStore::delete_account removes a
-- user's nodes in its own transaction; items go with their node.

-- `config` is the node's NodeConfig as JSON (see src/pubsub.rs).
CREATE TABLE pep_nodes (
    host     TEXT NOT NULL,
    username TEXT NOT NULL,
    node     TEXT NOT NULL,
    config   TEXT NOT NULL,
    PRIMARY KEY (host, username, node)
) STRICT, WITHOUT ROWID;

-- `seq` orders the items of a node by publication; AUTOINCREMENT never
-- reuses a value, so a republished item (deleted and inserted again) is
-- always the newest.
CREATE TABLE pep_items (
    seq          INTEGER PRIMARY KEY AUTOINCREMENT,
    host         TEXT    NOT NULL,
    username     TEXT    NOT NULL,
    node         TEXT    NOT NULL,
    item_id      TEXT    NOT NULL,
    publisher    TEXT,
    published_ms INTEGER NOT NULL,
    payload      BLOB    NOT NULL,
    UNIQUE (host, username, node, item_id),
    FOREIGN KEY (host, username, node) REFERENCES pep_nodes (host, username, node) ON DELETE CASCADE
) STRICT;

CREATE INDEX pep_items_by_node ON pep_items (host, username, node, seq);
