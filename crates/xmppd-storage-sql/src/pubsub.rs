//! [`PubsubStore`](xmppd_storage::PubsubStore) for both dialects.
//!
//! The statements are the same text in SQLite and PostgreSQL (`$n`
//! placeholders, `RETURNING`), so one macro writes the implementation for
//! each backend; only how a write transaction starts and how the node row
//! is locked differ. A node's configuration is one JSON column (the
//! options are many and grow with XEP-0060 revisions; no query filters on
//! them), decoded with `serde_json`.

use xmppd_storage::{ImportedNode, NodeConfig, PubsubItem, StorageError, validate};

/// `SELECT item_id, publisher, published_ms, payload FROM pep_items`.
pub(crate) type ItemRow = (String, Option<String>, i64, Vec<u8>);

/// Encodes a node configuration for the `config` column.
pub(crate) fn encode_config(config: &NodeConfig) -> Result<String, StorageError> {
    serde_json::to_string(config).map_err(|error| StorageError::Backend(error.into()))
}

/// Decodes the `config` column.
pub(crate) fn decode_config(text: &str) -> Result<NodeConfig, StorageError> {
    serde_json::from_str(text).map_err(|error| StorageError::Corrupt(format!("node configuration: {error}")))
}

/// Decodes an item row.
pub(crate) fn item(row: ItemRow) -> PubsubItem {
    let (id, publisher, published_ms, payload) = row;
    PubsubItem { id, publisher, published_ms, payload }
}

/// The items of an imported node that its `max_items` keeps: the newest,
/// still oldest first.
pub(crate) fn kept_items(node: &ImportedNode) -> &[PubsubItem] {
    let keep = node.config.max_items.map_or(usize::MAX, |max| max as usize);
    let skip = node.items.len().saturating_sub(keep);
    node.items.get(skip..).unwrap_or_default()
}

/// Checks the address of a node.
pub(crate) fn check_node(host: &str, user: &str, node: &str) -> Result<(), StorageError> {
    validate::host(host)?;
    validate::username(user)?;
    validate::pubsub_node(node)
}

/// `max_items` as an SQL `LIMIT` (`None` is unlimited).
pub(crate) fn limit(max_items: Option<u32>) -> i64 {
    max_items.map_or(i64::MAX, i64::from)
}

/// Writes the `impl PubsubStore` of a backend. `$backend` must have
/// `read_pool()` and `write_pool()` (pools for reads and for single-statement
/// writes), `begin_write()` (a write transaction) and a `db_error` function
/// in scope; `$connection` is its connection type; `$lock` is appended to the statement that reads the node
/// row inside a write, to serialise writers of one node.
macro_rules! impl_pubsub_store {
    ($backend:ty, $connection:ty, $lock:literal) => {
        impl $backend {
            /// Removes the oldest items of a node beyond `max_items`, in
            /// the caller's transaction; returns their ids.
            async fn trim_pep_items(
                connection: &mut $connection,
                host: &str,
                user: &str,
                node: &str,
                max_items: Option<u32>,
            ) -> Result<Vec<String>, xmppd_storage::StorageError> {
                if max_items.is_none() {
                    return Ok(Vec::new());
                }
                sqlx::query_scalar(
                    "DELETE FROM pep_items WHERE host = $1 AND username = $2 AND node = $3 AND seq NOT IN \
                     (SELECT seq FROM pep_items WHERE host = $1 AND username = $2 AND node = $3 \
                      ORDER BY seq DESC LIMIT $4) RETURNING item_id",
                )
                .bind(host)
                .bind(user)
                .bind(node)
                .bind($crate::pubsub::limit(max_items))
                .fetch_all(&mut *connection)
                .await
                .map_err(db_error)
            }

            /// The node's configuration read inside a write transaction,
            /// locking the node row where the dialect can.
            async fn locked_pep_node(
                connection: &mut $connection,
                host: &str,
                user: &str,
                node: &str,
            ) -> Result<Option<xmppd_storage::NodeConfig>, xmppd_storage::StorageError> {
                let config: Option<String> = sqlx::query_scalar(concat!(
                    "SELECT config FROM pep_nodes WHERE host = $1 AND username = $2 AND node = $3",
                    $lock
                ))
                .bind(host)
                .bind(user)
                .bind(node)
                .fetch_optional(&mut *connection)
                .await
                .map_err(db_error)?;
                config.as_deref().map($crate::pubsub::decode_config).transpose()
            }

            /// Writes the PEP nodes of one imported account, in the
            /// caller's transaction (old rows of the name already removed).
            async fn import_pep_nodes(
                connection: &mut $connection,
                host: &str,
                user: &str,
                nodes: &[xmppd_storage::ImportedNode],
            ) -> Result<(), xmppd_storage::StorageError> {
                for node in nodes {
                    sqlx::query("INSERT INTO pep_nodes (host, username, node, config) VALUES ($1, $2, $3, $4)")
                        .bind(host)
                        .bind(user)
                        .bind(node.name.as_str())
                        .bind($crate::pubsub::encode_config(&node.config)?)
                        .execute(&mut *connection)
                        .await
                        .map_err(db_error)?;
                    for item in $crate::pubsub::kept_items(node) {
                        sqlx::query(
                            "INSERT INTO pep_items (host, username, node, item_id, publisher, published_ms, payload) \
                             VALUES ($1, $2, $3, $4, $5, $6, $7)",
                        )
                        .bind(host)
                        .bind(user)
                        .bind(node.name.as_str())
                        .bind(item.id.as_str())
                        .bind(item.publisher.as_deref())
                        .bind(item.published_ms)
                        .bind(item.payload.as_slice())
                        .execute(&mut *connection)
                        .await
                        .map_err(db_error)?;
                    }
                }
                Ok(())
            }
        }

        #[async_trait::async_trait]
        impl xmppd_storage::PubsubStore for $backend {
            async fn node(
                &self,
                host: &str,
                user: &str,
                node: &str,
            ) -> Result<Option<xmppd_storage::NodeConfig>, xmppd_storage::StorageError> {
                $crate::pubsub::check_node(host, user, node)?;
                let config: Option<String> =
                    sqlx::query_scalar("SELECT config FROM pep_nodes WHERE host = $1 AND username = $2 AND node = $3")
                        .bind(host)
                        .bind(user)
                        .bind(node)
                        .fetch_optional(self.read_pool())
                        .await
                        .map_err(db_error)?;
                config.as_deref().map($crate::pubsub::decode_config).transpose()
            }

            async fn nodes(
                &self,
                host: &str,
                user: &str,
            ) -> Result<Vec<xmppd_storage::PubsubNode>, xmppd_storage::StorageError> {
                xmppd_storage::validate::host(host)?;
                xmppd_storage::validate::username(user)?;
                let rows: Vec<(String, String)> = sqlx::query_as(
                    "SELECT node, config FROM pep_nodes WHERE host = $1 AND username = $2 ORDER BY node",
                )
                .bind(host)
                .bind(user)
                .fetch_all(self.read_pool())
                .await
                .map_err(db_error)?;
                rows.into_iter()
                    .map(|(name, config)| {
                        Ok(xmppd_storage::PubsubNode { name, config: $crate::pubsub::decode_config(&config)? })
                    })
                    .collect()
            }

            async fn create_node(
                &self,
                host: &str,
                user: &str,
                node: &str,
                config: &xmppd_storage::NodeConfig,
            ) -> Result<(), xmppd_storage::StorageError> {
                $crate::pubsub::check_node(host, user, node)?;
                xmppd_storage::validate::node_config(config)?;
                let created = sqlx::query(
                    "INSERT INTO pep_nodes (host, username, node, config) VALUES ($1, $2, $3, $4) \
                     ON CONFLICT DO NOTHING",
                )
                .bind(host)
                .bind(user)
                .bind(node)
                .bind($crate::pubsub::encode_config(config)?)
                .execute(self.write_pool())
                .await
                .map_err(db_error)?
                .rows_affected();
                if created == 0 {
                    return Err(xmppd_storage::StorageError::AlreadyExists);
                }
                Ok(())
            }

            async fn configure_node(
                &self,
                host: &str,
                user: &str,
                node: &str,
                config: &xmppd_storage::NodeConfig,
            ) -> Result<(), xmppd_storage::StorageError> {
                $crate::pubsub::check_node(host, user, node)?;
                xmppd_storage::validate::node_config(config)?;
                let mut tx = self.begin_write().await?;
                let updated =
                    sqlx::query("UPDATE pep_nodes SET config = $4 WHERE host = $1 AND username = $2 AND node = $3")
                        .bind(host)
                        .bind(user)
                        .bind(node)
                        .bind($crate::pubsub::encode_config(config)?)
                        .execute(&mut *tx)
                        .await
                        .map_err(db_error)?
                        .rows_affected();
                if updated == 0 {
                    return Err(xmppd_storage::StorageError::NotFound);
                }
                Self::trim_pep_items(&mut tx, host, user, node, config.max_items).await?;
                tx.commit().await.map_err(db_error)
            }

            async fn delete_node(
                &self,
                host: &str,
                user: &str,
                node: &str,
            ) -> Result<bool, xmppd_storage::StorageError> {
                $crate::pubsub::check_node(host, user, node)?;
                // Items go with the node through ON DELETE CASCADE.
                let deleted = sqlx::query("DELETE FROM pep_nodes WHERE host = $1 AND username = $2 AND node = $3")
                    .bind(host)
                    .bind(user)
                    .bind(node)
                    .execute(self.write_pool())
                    .await
                    .map_err(db_error)?
                    .rows_affected();
                Ok(deleted > 0)
            }

            async fn publish(
                &self,
                host: &str,
                user: &str,
                node: &str,
                item: &xmppd_storage::PubsubItem,
                ceiling: u32,
            ) -> Result<Vec<String>, xmppd_storage::StorageError> {
                $crate::pubsub::check_node(host, user, node)?;
                xmppd_storage::validate::pubsub_item(item)?;
                let mut tx = self.begin_write().await?;
                let config = Self::locked_pep_node(&mut tx, host, user, node)
                    .await?
                    .ok_or(xmppd_storage::StorageError::NotFound)?;
                // Deleted and inserted again: a new `seq` makes it newest.
                sqlx::query("DELETE FROM pep_items WHERE host = $1 AND username = $2 AND node = $3 AND item_id = $4")
                    .bind(host)
                    .bind(user)
                    .bind(node)
                    .bind(item.id.as_str())
                    .execute(&mut *tx)
                    .await
                    .map_err(db_error)?;
                sqlx::query(
                    "INSERT INTO pep_items (host, username, node, item_id, publisher, published_ms, payload) \
                     VALUES ($1, $2, $3, $4, $5, $6, $7)",
                )
                .bind(host)
                .bind(user)
                .bind(node)
                .bind(item.id.as_str())
                .bind(item.publisher.as_deref())
                .bind(item.published_ms)
                .bind(item.payload.as_slice())
                .execute(&mut *tx)
                .await
                .map_err(db_error)?;
                let keep = config.max_items.map_or(ceiling, |max| max.min(ceiling));
                let removed = Self::trim_pep_items(&mut tx, host, user, node, Some(keep)).await?;
                tx.commit().await.map_err(db_error)?;
                Ok(removed)
            }

            async fn items(
                &self,
                host: &str,
                user: &str,
                node: &str,
                limit: Option<u32>,
            ) -> Result<Vec<xmppd_storage::PubsubItem>, xmppd_storage::StorageError> {
                $crate::pubsub::check_node(host, user, node)?;
                let rows: Vec<$crate::pubsub::ItemRow> = sqlx::query_as(
                    "SELECT item_id, publisher, published_ms, payload FROM pep_items \
                     WHERE host = $1 AND username = $2 AND node = $3 ORDER BY seq DESC LIMIT $4",
                )
                .bind(host)
                .bind(user)
                .bind(node)
                .bind($crate::pubsub::limit(limit))
                .fetch_all(self.read_pool())
                .await
                .map_err(db_error)?;
                Ok(rows.into_iter().map($crate::pubsub::item).collect())
            }

            async fn item(
                &self,
                host: &str,
                user: &str,
                node: &str,
                id: &str,
            ) -> Result<Option<xmppd_storage::PubsubItem>, xmppd_storage::StorageError> {
                $crate::pubsub::check_node(host, user, node)?;
                let row: Option<$crate::pubsub::ItemRow> = sqlx::query_as(
                    "SELECT item_id, publisher, published_ms, payload FROM pep_items \
                     WHERE host = $1 AND username = $2 AND node = $3 AND item_id = $4",
                )
                .bind(host)
                .bind(user)
                .bind(node)
                .bind(id)
                .fetch_optional(self.read_pool())
                .await
                .map_err(db_error)?;
                Ok(row.map($crate::pubsub::item))
            }

            async fn retract(
                &self,
                host: &str,
                user: &str,
                node: &str,
                id: &str,
            ) -> Result<bool, xmppd_storage::StorageError> {
                $crate::pubsub::check_node(host, user, node)?;
                let deleted = sqlx::query(
                    "DELETE FROM pep_items WHERE host = $1 AND username = $2 AND node = $3 AND item_id = $4",
                )
                .bind(host)
                .bind(user)
                .bind(node)
                .bind(id)
                .execute(self.write_pool())
                .await
                .map_err(db_error)?
                .rows_affected();
                Ok(deleted > 0)
            }

            async fn purge(&self, host: &str, user: &str, node: &str) -> Result<u64, xmppd_storage::StorageError> {
                $crate::pubsub::check_node(host, user, node)?;
                let deleted = sqlx::query("DELETE FROM pep_items WHERE host = $1 AND username = $2 AND node = $3")
                    .bind(host)
                    .bind(user)
                    .bind(node)
                    .execute(self.write_pool())
                    .await
                    .map_err(db_error)?
                    .rows_affected();
                Ok(deleted)
            }
        }
    };
}
pub(crate) use impl_pubsub_store;
