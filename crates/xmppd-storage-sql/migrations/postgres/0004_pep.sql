-- Personal eventing nodes (XEP-0163) and their items, PostgreSQL dialect.
-- No foreign key to accounts (like kv): AuthStore::delete_account removes a
-- user's nodes in its own transaction; items go with their node.

-- `config` is the node's NodeConfig as JSON text (see src/pubsub.rs).
CREATE TABLE pep_nodes (
    host     TEXT COLLATE "C" NOT NULL,
    username TEXT COLLATE "C" NOT NULL,
    node     TEXT COLLATE "C" NOT NULL,
    config   TEXT NOT NULL,
    PRIMARY KEY (host, username, node)
);

-- `seq` orders the items of a node by publication: a republished item is
-- deleted and inserted again, so it gets the newest value. Writers of one
-- node are serialised by locking its pep_nodes row.
CREATE TABLE pep_items (
    seq          BIGSERIAL PRIMARY KEY,
    host         TEXT COLLATE "C" NOT NULL,
    username     TEXT COLLATE "C" NOT NULL,
    node         TEXT COLLATE "C" NOT NULL,
    item_id      TEXT COLLATE "C" NOT NULL,
    publisher    TEXT,
    published_ms BIGINT NOT NULL,
    payload      BYTEA  NOT NULL,
    UNIQUE (host, username, node, item_id),
    FOREIGN KEY (host, username, node) REFERENCES pep_nodes (host, username, node) ON DELETE CASCADE
);

CREATE INDEX pep_items_by_node ON pep_items (host, username, node, seq);
