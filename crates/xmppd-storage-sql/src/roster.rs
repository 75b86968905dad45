//! [`RosterStore`](xmppd_storage::RosterStore) for both dialects: the
//! statements are the same text in SQLite and PostgreSQL, so one macro
//! writes the implementation; what differs is behind functions with the
//! same names in each dialect module (`begin_read`, `begin_write`,
//! `read_pool`, `write_pool`, `insert_roster_groups`, `load_roster_items`,
//! `bump_roster_version`, `import_roster_chunk`, `bump_import_versions`,
//! `check_owner`, `db_error`). The key-value store and the roster row
//! helpers are shared the same way.

/// Writes the `impl RosterStore` of a backend (see the module docs).
macro_rules! impl_roster_store {
    ($backend:ty) => {
        #[async_trait::async_trait]
        impl xmppd_storage::RosterStore for $backend {
            async fn roster(&self, host: &str, user: &str) -> Result<Roster, StorageError> {
                check_owner(host, user)?;
                let mut tx = self.begin_read().await?;
                let version = stored_roster_version(&mut tx, host, user).await?;
                let items = load_roster_items(&mut tx, host, user, None).await?;
                tx.commit().await.map_err(db_error)?;
                Ok(Roster { version: version.map_or(Ok(0), |version| to_u64(version, "roster version"))?, items })
            }

            async fn item(&self, host: &str, user: &str, contact: &str) -> Result<Option<RosterItem>, StorageError> {
                check_owner(host, user)?;
                validate::contact(contact)?;
                let mut tx = self.begin_read().await?;
                let items = load_roster_items(&mut tx, host, user, Some(contact)).await?;
                tx.commit().await.map_err(db_error)?;
                Ok(items.into_iter().next())
            }

            async fn put_item(
                &self,
                host: &str,
                user: &str,
                item: &RosterItem,
                max_items: Option<u64>,
            ) -> Result<u64, StorageError> {
                check_owner(host, user)?;
                validate::roster_item(item)?;
                let mut tx = self.begin_write().await?;
                let version = bump_roster_version(&mut tx, host, user).await?;
                if let Some(max_items) = max_items {
                    let (exists, count): (bool, i64) = sqlx::query_as(
                        "SELECT EXISTS (SELECT 1 FROM roster_items WHERE host = $1 AND username = $2 AND contact = $3), \
                         (SELECT COUNT(*) FROM roster_items WHERE host = $1 AND username = $2)",
                    )
                    .bind(host)
                    .bind(user)
                    .bind(item.contact.as_str())
                    .fetch_one(&mut *tx)
                    .await
                    .map_err(db_error)?;
                    if !exists && to_u64(count, "roster item count")? >= max_items {
                        // Dropping the transaction rolls the version bump back.
                        return Err(StorageError::LimitExceeded);
                    }
                }
                sqlx::query(
                    "INSERT INTO roster_items (host, username, contact, name, subscription, ask, approved, version) \
                     VALUES ($1, $2, $3, $4, $5, $6, $7, $8) \
                     ON CONFLICT (host, username, contact) DO UPDATE SET name = excluded.name, \
                     subscription = excluded.subscription, ask = excluded.ask, approved = excluded.approved, \
                     version = excluded.version",
                )
                .bind(host)
                .bind(user)
                .bind(item.contact.as_str())
                .bind(item.name.as_deref())
                .bind(item.subscription.as_str())
                .bind(item.ask)
                .bind(item.approved)
                .bind(i64::try_from(version).unwrap_or(i64::MAX))
                .execute(&mut *tx)
                .await
                .map_err(db_error)?;
                sqlx::query("DELETE FROM roster_removed WHERE host = $1 AND username = $2 AND contact = $3")
                    .bind(host)
                    .bind(user)
                    .bind(item.contact.as_str())
                    .execute(&mut *tx)
                    .await
                    .map_err(db_error)?;
                sqlx::query("DELETE FROM roster_groups WHERE host = $1 AND username = $2 AND contact = $3")
                    .bind(host)
                    .bind(user)
                    .bind(item.contact.as_str())
                    .execute(&mut *tx)
                    .await
                    .map_err(db_error)?;
                insert_roster_groups(&mut tx, host, user, item).await?;
                tx.commit().await.map_err(db_error)?;
                Ok(version)
            }

            async fn remove_item(&self, host: &str, user: &str, contact: &str) -> Result<Option<u64>, StorageError> {
                check_owner(host, user)?;
                validate::contact(contact)?;
                let mut tx = self.begin_write().await?;
                // Version row first, the lock order of put_item (deleting the item
                // first could deadlock with a concurrent put of the same contact);
                // rolled back if nothing is removed.
                let version = bump_roster_version(&mut tx, host, user).await?;
                let deleted = sqlx::query("DELETE FROM roster_items WHERE host = $1 AND username = $2 AND contact = $3")
                    .bind(host)
                    .bind(user)
                    .bind(contact)
                    .execute(&mut *tx)
                    .await
                    .map_err(db_error)?
                    .rows_affected();
                if deleted == 0 {
                    tx.rollback().await.map_err(db_error)?;
                    return Ok(None);
                }
                // RFC 6121 §2.6.3: remembered for interim pushes.
                sqlx::query(
                    "INSERT INTO roster_removed (host, username, contact, version) VALUES ($1, $2, $3, $4) \
                     ON CONFLICT (host, username, contact) DO UPDATE SET version = excluded.version",
                )
                .bind(host)
                .bind(user)
                .bind(contact)
                .bind(i64::try_from(version).unwrap_or(i64::MAX))
                .execute(&mut *tx)
                .await
                .map_err(db_error)?;
                tx.commit().await.map_err(db_error)?;
                Ok(Some(version))
            }

            async fn changes_since(
                &self,
                host: &str,
                user: &str,
                since: u64,
            ) -> Result<Option<(u64, Vec<RosterChange>)>, StorageError> {
                check_owner(host, user)?;
                let Ok(since_value) = i64::try_from(since) else { return Ok(None) };
                let mut tx = self.begin_read().await?;
                let Some(version) = stored_roster_version(&mut tx, host, user).await? else { return Ok(None) };
                if since_value == 0 || since_value > version {
                    return Ok(None);
                }
                let written: Vec<(String, i64)> = sqlx::query_as(
                    "SELECT contact, version FROM roster_items WHERE host = $1 AND username = $2 \
                         AND (version > $3 OR version = 0)",
                )
                .bind(host)
                .bind(user)
                .bind(since_value)
                .fetch_all(&mut *tx)
                .await
                .map_err(db_error)?;
                if written.iter().any(|(_, version)| *version == 0) {
                    // Written before the history was kept, or by a bulk import.
                    return Ok(None);
                }
                let removed: Vec<(String, i64)> = sqlx::query_as(
                    "SELECT contact, version FROM roster_removed WHERE host = $1 AND username = $2 AND version > $3",
                )
                .bind(host)
                .bind(user)
                .bind(since_value)
                .fetch_all(&mut *tx)
                .await
                .map_err(db_error)?;
                let items =
                    if written.is_empty() { Vec::new() } else { load_roster_items(&mut tx, host, user, None).await? };
                tx.commit().await.map_err(db_error)?;
                let changes = crate::rows::roster_changes(items, written, removed)?;
                Ok(Some((to_u64(version, "roster version")?, changes)))
            }

            async fn import_rosters(&self, host: &str, rosters: &[ImportedRoster]) -> Result<(), StorageError> {
                validate::roster_import(host, rosters)?;
                let rows = sorted_import(rosters);
                if rows.is_empty() {
                    return Ok(());
                }
                let mut users: Vec<&str> = rows.iter().map(|(user, _)| *user).collect();
                users.dedup();
                // One write transaction: dropped without commit on any error, which
                // rolls everything back.
                let mut tx = self.begin_write().await?;
                let existing = bump_import_versions(&mut tx, host, &users).await?;
                for chunk in rows.chunks(ROSTER_IMPORT_CHUNK) {
                    // 0: the bulk import keeps no history (RFC 6121 §2.6.3 pushes fall
                    // back to the full roster until the items are written again).
                    import_roster_chunk(&mut tx, host, chunk, &existing, 0).await?;
                }
                tx.commit().await.map_err(db_error)
            }

            async fn add_pending_in(&self, host: &str, user: &str, pending: &PendingIn) -> Result<(), StorageError> {
                check_owner(host, user)?;
                validate::contact(&pending.contact)?;
                if let Some(status) = &pending.status {
                    validate::status(status)?;
                }
                if let Some(stanza) = &pending.stanza {
                    validate::pending_stanza(stanza)?;
                }
                sqlx::query(
                    "INSERT INTO roster_pending_in (host, username, contact, status, stanza) VALUES ($1, $2, $3, $4, $5) \
                     ON CONFLICT (host, username, contact) DO UPDATE SET status = excluded.status, stanza = excluded.stanza",
                )
                .bind(host)
                .bind(user)
                .bind(pending.contact.as_str())
                .bind(pending.status.as_deref())
                .bind(pending.stanza.as_deref())
                .execute(self.write_pool())
                .await
                .map_err(db_error)?;
                Ok(())
            }

            async fn remove_pending_in(&self, host: &str, user: &str, contact: &str) -> Result<bool, StorageError> {
                check_owner(host, user)?;
                validate::contact(contact)?;
                let deleted = sqlx::query("DELETE FROM roster_pending_in WHERE host = $1 AND username = $2 AND contact = $3")
                    .bind(host)
                    .bind(user)
                    .bind(contact)
                    .execute(self.write_pool())
                    .await
                    .map_err(db_error)?
                    .rows_affected();
                Ok(deleted > 0)
            }

            async fn pending_in(&self, host: &str, user: &str) -> Result<Vec<PendingIn>, StorageError> {
                check_owner(host, user)?;
                let rows: Vec<(String, Option<String>, Option<Vec<u8>>)> = sqlx::query_as(
                    "SELECT contact, status, stanza FROM roster_pending_in WHERE host = $1 AND username = $2 \
                     ORDER BY contact",
                )
                .bind(host)
                .bind(user)
                .fetch_all(self.read_pool())
                .await
                .map_err(db_error)?;
                Ok(rows.into_iter().map(|(contact, status, stanza)| PendingIn { contact, status, stanza }).collect())
            }
        }
    };
}
pub(crate) use impl_roster_store;

/// Writes `check_store` and the `impl KeyValueStore` of a backend (same SQL
/// in both dialects; `read_pool`/`write_pool` as for the roster store).
macro_rules! impl_kv_store {
    ($backend:ty) => {
        fn check_store(host: &str, user: &str, store: &str) -> Result<(), StorageError> {
            validate::host(host)?;
            validate::kv_owner(user)?;
            validate::kv_store(store)
        }

        #[async_trait::async_trait]
        impl xmppd_storage::KeyValueStore for $backend {
            async fn get(
                &self,
                host: &str,
                user: &str,
                store: &str,
                key: &str,
            ) -> Result<Option<Vec<u8>>, StorageError> {
                check_store(host, user, store)?;
                validate::kv_key(key)?;
                sqlx::query_scalar("SELECT value FROM kv WHERE host = $1 AND username = $2 AND store = $3 AND key = $4")
                    .bind(host)
                    .bind(user)
                    .bind(store)
                    .bind(key)
                    .fetch_optional(self.read_pool())
                    .await
                    .map_err(db_error)
            }

            async fn set(
                &self,
                host: &str,
                user: &str,
                store: &str,
                key: &str,
                value: &[u8],
            ) -> Result<(), StorageError> {
                check_store(host, user, store)?;
                validate::kv_key(key)?;
                sqlx::query(
                    "INSERT INTO kv (host, username, store, key, value) VALUES ($1, $2, $3, $4, $5) \
                     ON CONFLICT (host, username, store, key) DO UPDATE SET value = excluded.value",
                )
                .bind(host)
                .bind(user)
                .bind(store)
                .bind(key)
                .bind(value)
                .execute(self.write_pool())
                .await
                .map_err(db_error)?;
                Ok(())
            }

            async fn delete(&self, host: &str, user: &str, store: &str, key: &str) -> Result<bool, StorageError> {
                check_store(host, user, store)?;
                validate::kv_key(key)?;
                let deleted =
                    sqlx::query("DELETE FROM kv WHERE host = $1 AND username = $2 AND store = $3 AND key = $4")
                        .bind(host)
                        .bind(user)
                        .bind(store)
                        .bind(key)
                        .execute(self.write_pool())
                        .await
                        .map_err(db_error)?
                        .rows_affected();
                Ok(deleted > 0)
            }

            async fn list_keys(&self, host: &str, user: &str, store: &str) -> Result<Vec<String>, StorageError> {
                check_store(host, user, store)?;
                sqlx::query_scalar("SELECT key FROM kv WHERE host = $1 AND username = $2 AND store = $3 ORDER BY key")
                    .bind(host)
                    .bind(user)
                    .bind(store)
                    .fetch_all(self.read_pool())
                    .await
                    .map_err(db_error)
            }

            async fn clear_store(&self, host: &str, user: &str, store: &str) -> Result<u64, StorageError> {
                check_store(host, user, store)?;
                let deleted = sqlx::query("DELETE FROM kv WHERE host = $1 AND username = $2 AND store = $3")
                    .bind(host)
                    .bind(user)
                    .bind(store)
                    .execute(self.write_pool())
                    .await
                    .map_err(db_error)?
                    .rows_affected();
                Ok(deleted)
            }
        }

        fn check_owner(host: &str, user: &str) -> Result<(), StorageError> {
            validate::host(host)?;
            validate::username(user)
        }
    };
}
pub(crate) use impl_kv_store;

/// Writes `check_owner`, `stored_roster_version`, `load_roster_items` and
/// `bump_roster_version` for
/// a dialect whose connection type is `$connection`.
macro_rules! roster_row_functions {
    ($connection:ty) => {
        /// The stored roster version (RFC 6121 §2.6), `None` for a roster
        /// never written.
        async fn stored_roster_version(
            connection: &mut $connection,
            host: &str,
            user: &str,
        ) -> Result<Option<i64>, StorageError> {
            sqlx::query_scalar("SELECT version FROM roster_versions WHERE host = $1 AND username = $2")
                .bind(host)
                .bind(user)
                .fetch_optional(&mut *connection)
                .await
                .map_err(db_error)
        }

        /// Reads the items of one roster (or only `contact`'s), sorted by contact,
        /// with their groups. Run inside one snapshot transaction.
        async fn load_roster_items(
            connection: &mut $connection,
            host: &str,
            user: &str,
            contact: Option<&str>,
        ) -> Result<Vec<RosterItem>, StorageError> {
            let (items, groups): (Vec<ItemRow>, Vec<GroupRow>) = match contact {
                None => (
                    sqlx::query_as(
                        "SELECT contact, name, subscription, ask, approved FROM roster_items \
                         WHERE host = $1 AND username = $2 ORDER BY contact",
                    )
                    .bind(host)
                    .bind(user)
                    .fetch_all(&mut *connection)
                    .await
                    .map_err(db_error)?,
                    sqlx::query_as(
                        "SELECT contact, name FROM roster_groups \
                         WHERE host = $1 AND username = $2 ORDER BY contact, position",
                    )
                    .bind(host)
                    .bind(user)
                    .fetch_all(&mut *connection)
                    .await
                    .map_err(db_error)?,
                ),
                Some(contact) => (
                    sqlx::query_as(
                        "SELECT contact, name, subscription, ask, approved FROM roster_items \
                         WHERE host = $1 AND username = $2 AND contact = $3",
                    )
                    .bind(host)
                    .bind(user)
                    .bind(contact)
                    .fetch_all(&mut *connection)
                    .await
                    .map_err(db_error)?,
                    sqlx::query_as(
                        "SELECT contact, name FROM roster_groups \
                         WHERE host = $1 AND username = $2 AND contact = $3 ORDER BY position",
                    )
                    .bind(host)
                    .bind(user)
                    .bind(contact)
                    .fetch_all(&mut *connection)
                    .await
                    .map_err(db_error)?,
                ),
            };
            roster_items(items, groups)
        }

        /// Bumps the roster version of (host, user), creating it at 1, and returns
        /// the new value. Every roster write does this first, so the version is
        /// bumped in the same transaction as the change it stands for; in
        /// PostgreSQL the row lock it takes (held to the end of the transaction)
        /// serializes the writers of one roster, which makes versions distinct and
        /// the `max_items` count exact.
        async fn bump_roster_version(
            connection: &mut $connection,
            host: &str,
            user: &str,
        ) -> Result<u64, StorageError> {
            let version: i64 = sqlx::query_scalar(
                "INSERT INTO roster_versions (host, username, version) VALUES ($1, $2, 1) \
                 ON CONFLICT (host, username) DO UPDATE SET version = roster_versions.version + 1 \
                 RETURNING version",
            )
            .bind(host)
            .bind(user)
            .fetch_one(&mut *connection)
            .await
            .map_err(db_error)?;
            to_u64(version, "roster version")
        }
    };
}
pub(crate) use roster_row_functions;
