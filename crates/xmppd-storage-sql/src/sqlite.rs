//! SQLite dialect.
//!
//! One database file, opened with WAL journaling, `synchronous = FULL`, a
//! 5 s busy timeout and foreign keys on. Writes go through a pool of exactly
//! one connection, so writers queue in-process instead of fighting over the
//! file lock (SQLite allows one writer at a time anyway); reads use a
//! separate read-only pool of [`READ_POOL_SIZE`] connections, which WAL lets
//! run alongside the writer. Write transactions start with `BEGIN IMMEDIATE`
//! so that another process holding the lock (an admin tool) makes them wait
//! for the busy timeout rather than fail on lock upgrade.
//!
//! With WAL and `synchronous = FULL` the WAL is synced at every commit, so
//! an acknowledged transaction survives a crash of the process and of the
//! machine (power loss, OS crash). `NORMAL` would save that fsync but may
//! roll back the last commits after a power loss, which would break the
//! promise that acknowledged data is never lost.

use std::collections::HashSet;
use std::path::Path;
use std::time::Duration;

use async_trait::async_trait;
use sqlx::error::DatabaseError;
use sqlx::migrate::Migrator;
use sqlx::sqlite::{
    SqliteConnectOptions, SqliteConnection, SqliteJournalMode, SqlitePool, SqlitePoolOptions, SqliteSynchronous,
};
use sqlx::{QueryBuilder, Sqlite, Transaction};
use xmppd_storage::{
    AccountImport, AuthStore, ImportOutcome, ImportedRoster, NewAccount, OfflineMessage, OfflineStore, PendingIn,
    Roster, RosterChange, RosterItem, StorageError, StoredCredential, validate,
};

use crate::error::{map_sqlx_error, to_iterations, to_u64};
use crate::rows::{GroupRow, ItemRow, roster_items, sorted_import};

static MIGRATOR: Migrator = sqlx::migrate!("migrations/sqlite");

/// Connections in the read pool.
pub const READ_POOL_SIZE: u32 = 4;

/// How long a statement waits for another connection's lock before failing
/// with `SQLITE_BUSY` (mapped to a transient error).
pub const BUSY_TIMEOUT: Duration = Duration::from_secs(5);

/// Accounts per multi-row `INSERT` in a bulk import. Each account has at
/// most three credentials (one per SCRAM hash), so a credentials statement
/// binds at most 3 × 7 × 1000 = 21 000 parameters, under SQLite's default
/// limit of 32 766.
pub const BULK_CHUNK: usize = 1_000;

/// Groups per multi-row `INSERT` into `roster_groups`: 5 parameters each,
/// so at most 5 000 bound parameters per statement.
pub const GROUP_CHUNK: usize = 1_000;

/// Roster items per multi-row statement of [`RosterStore::import_rosters`]:
/// 8 bound parameters each, so at most 28 000 per statement, under SQLite's
/// default limit of 32 766.
pub const ROSTER_IMPORT_CHUNK: usize = 3_500;

/// Users per multi-row version upsert of [`RosterStore::import_rosters`]
/// (2 bound parameters each).
const ROSTER_IMPORT_USER_CHUNK: usize = 10_000;

/// Statements of [`AuthStore::delete_account`] after the account row itself,
/// all in its transaction. Groups go with their roster items through
/// `ON DELETE CASCADE`, PEP items with their nodes.
const DELETE_USER_DATA: [&str; 7] = [
    "DELETE FROM kv WHERE host = $1 AND username = $2",
    "DELETE FROM roster_versions WHERE host = $1 AND username = $2",
    "DELETE FROM roster_items WHERE host = $1 AND username = $2",
    "DELETE FROM roster_pending_in WHERE host = $1 AND username = $2",
    "DELETE FROM offline_messages WHERE host = $1 AND username = $2",
    "DELETE FROM pep_nodes WHERE host = $1 AND username = $2",
    "DELETE FROM roster_removed WHERE host = $1 AND username = $2",
];

/// SQLite primary result codes worth retrying: `SQLITE_BUSY` and
/// `SQLITE_LOCKED`.
const TRANSIENT_PRIMARY_CODES: [i32; 2] = [5, 6];

/// The SQLite backend: a one-connection write pool and a read pool on the
/// same file.
pub(crate) struct SqliteBackend {
    write: SqlitePool,
    read: SqlitePool,
    /// Offline pushes go through one writer that commits them in groups
    /// (see [`offline_writer`]).
    offline: tokio::sync::mpsc::Sender<OfflinePush>,
}

/// One queued offline message (XEP-0160) and who waits for its id.
struct OfflinePush {
    host: String,
    user: String,
    stamp_ms: i64,
    stanza: Vec<u8>,
    max_messages: u64,
    reply: tokio::sync::oneshot::Sender<Result<i64, StorageError>>,
}

/// Most offline pushes committed in one transaction.
const OFFLINE_GROUP: usize = 256;

/// Group commit for offline messages: every waiting push is written in one
/// `BEGIN IMMEDIATE` transaction and one fsync (`synchronous = FULL`), and
/// each caller gets its answer only after that commit, so an accepted
/// message is on disk. Under load this turns one fsync per message into one
/// per batch; an idle server commits each push at once (no added delay).
async fn offline_writer(pool: SqlitePool, mut queue: tokio::sync::mpsc::Receiver<OfflinePush>) {
    let mut batch = Vec::with_capacity(OFFLINE_GROUP);
    while queue.recv_many(&mut batch, OFFLINE_GROUP).await > 0 {
        let results = write_offline_group(&pool, &batch).await;
        for (push, result) in batch.drain(..).zip(results) {
            push.reply.send(result).ok();
        }
    }
}

/// Writes a group; one result per push. A database error fails the whole
/// group (nothing of it is committed), so no caller is told a lie.
async fn write_offline_group(pool: &SqlitePool, batch: &[OfflinePush]) -> Vec<Result<i64, StorageError>> {
    let outcome: Result<Vec<Result<i64, StorageError>>, StorageError> = async {
        let mut tx = pool.begin_with("BEGIN IMMEDIATE").await.map_err(db_error)?;
        let mut results = Vec::with_capacity(batch.len());
        for push in batch {
            let count: i64 =
                sqlx::query_scalar("SELECT COUNT(*) FROM offline_messages WHERE host = $1 AND username = $2")
                    .bind(&push.host)
                    .bind(&push.user)
                    .fetch_one(&mut *tx)
                    .await
                    .map_err(db_error)?;
            if to_u64(count, "offline message count")? >= push.max_messages {
                results.push(Err(StorageError::LimitExceeded));
                continue;
            }
            let id: i64 = sqlx::query_scalar(
                "INSERT INTO offline_messages (host, username, stamp_ms, stanza) VALUES ($1, $2, $3, $4) RETURNING id",
            )
            .bind(&push.host)
            .bind(&push.user)
            .bind(push.stamp_ms)
            .bind(&push.stanza)
            .fetch_one(&mut *tx)
            .await
            .map_err(db_error)?;
            results.push(Ok(id));
        }
        tx.commit().await.map_err(db_error)?;
        Ok(results)
    }
    .await;
    match outcome {
        Ok(results) => results,
        Err(error) => {
            let text = error.to_string();
            let transient = error.is_transient();
            batch
                .iter()
                .map(|_| {
                    let source: xmppd_storage::BoxError = text.clone().into();
                    Err(if transient { StorageError::Unavailable(source) } else { StorageError::Backend(source) })
                })
                .collect()
        }
    }
}

fn db_error(error: sqlx::Error) -> StorageError {
    map_sqlx_error(error, is_transient)
}

fn is_transient(error: &dyn DatabaseError) -> bool {
    // sqlx reports the extended result code; its low byte is the primary code.
    error
        .code()
        .and_then(|code| code.parse::<i32>().ok())
        .is_some_and(|code| TRANSIENT_PRIMARY_CODES.contains(&(code & 0xFF)))
}

impl SqliteBackend {
    /// Opens (creating if missing) the database file at `path` and applies
    /// the migrations. The parent directory must exist.
    pub(crate) async fn connect(path: &Path) -> Result<Self, StorageError> {
        let base = SqliteConnectOptions::new()
            .filename(path)
            .busy_timeout(BUSY_TIMEOUT)
            .foreign_keys(true)
            .synchronous(SqliteSynchronous::Full);
        let write = SqlitePoolOptions::new()
            .max_connections(1)
            .min_connections(1)
            .connect_with(base.clone().create_if_missing(true).journal_mode(SqliteJournalMode::Wal))
            .await
            .map_err(db_error)?;
        // Migrate before the readers open: they are read-only and need the
        // file to be in WAL mode already.
        MIGRATOR.run(&write).await.map_err(migration_error)?;
        let read = SqlitePoolOptions::new()
            .max_connections(READ_POOL_SIZE)
            .connect_with(base.read_only(true))
            .await
            .map_err(db_error)?;
        let (offline, queue) = tokio::sync::mpsc::channel(OFFLINE_GROUP * 4);
        tokio::spawn(offline_writer(write.clone(), queue));
        Ok(Self { write, read, offline })
    }

    pub(crate) async fn migrate(&self) -> Result<(), StorageError> {
        MIGRATOR.run(&self.write).await.map_err(migration_error)
    }

    pub(crate) async fn health_check(&self) -> Result<(), StorageError> {
        for pool in [&self.write, &self.read] {
            sqlx::query("SELECT 1").execute(pool).await.map_err(db_error)?;
        }
        Ok(())
    }

    /// A read transaction on the read pool: in WAL mode its statements all
    /// see the snapshot taken by the first one.
    async fn begin_read(&self) -> Result<Transaction<'static, Sqlite>, StorageError> {
        self.read.begin().await.map_err(db_error)
    }

    pub(crate) async fn close(&self) {
        self.read.close().await;
        self.write.close().await;
    }

    async fn begin_write(&self) -> Result<Transaction<'static, Sqlite>, StorageError> {
        self.write.begin_with("BEGIN IMMEDIATE").await.map_err(db_error)
    }

    fn read_pool(&self) -> &SqlitePool {
        &self.read
    }

    fn write_pool(&self) -> &SqlitePool {
        &self.write
    }

    #[cfg(test)]
    pub(crate) fn pools(&self) -> (&SqlitePool, &SqlitePool) {
        (&self.write, &self.read)
    }
}

crate::pubsub::impl_pubsub_store!(SqliteBackend, SqliteConnection, "");

fn migration_error(error: sqlx::migrate::MigrateError) -> StorageError {
    StorageError::Migration(Box::new(error))
}

async fn insert_account(
    connection: &mut SqliteConnection,
    host: &str,
    user: &str,
    credentials: &[StoredCredential],
) -> Result<(), StorageError> {
    sqlx::query("INSERT INTO accounts (host, username) VALUES ($1, $2)")
        .bind(host)
        .bind(user)
        .execute(&mut *connection)
        .await
        .map_err(db_error)?;
    insert_credentials(connection, host, user, credentials).await
}

async fn insert_credentials(
    connection: &mut SqliteConnection,
    host: &str,
    user: &str,
    credentials: &[StoredCredential],
) -> Result<(), StorageError> {
    for credential in credentials {
        sqlx::query(
            "INSERT INTO credentials \
             (host, username, mechanism, salt, iterations, stored_key, server_key) \
             VALUES ($1, $2, $3, $4, $5, $6, $7)",
        )
        .bind(host)
        .bind(user)
        .bind(credential.mechanism_hash.as_str())
        .bind(credential.salt.as_slice())
        .bind(i64::from(credential.iterations))
        .bind(credential.stored_key.as_slice())
        .bind(credential.server_key.as_slice())
        .execute(&mut *connection)
        .await
        .map_err(db_error)?;
    }
    Ok(())
}

/// Inserts one chunk of a bulk import with two multi-row `INSERT`s: one
/// statement per [`BULK_CHUNK`] accounts instead of one per row, which is what
/// dominates the cost (each statement is a round trip to the connection's
/// worker thread).
async fn insert_accounts_chunk(
    connection: &mut SqliteConnection,
    host: &str,
    accounts: &[NewAccount],
) -> Result<(), StorageError> {
    let mut insert = QueryBuilder::<Sqlite>::new("INSERT INTO accounts (host, username) ");
    insert.push_values(accounts, |mut row, (user, _)| {
        row.push_bind(host).push_bind(user.as_str());
    });
    insert.build().execute(&mut *connection).await.map_err(db_error)?;

    if accounts.iter().all(|(_, credentials)| credentials.is_empty()) {
        return Ok(());
    }
    let credentials = accounts.iter().flat_map(|(user, credentials)| credentials.iter().map(move |c| (user, c)));
    let mut insert = QueryBuilder::<Sqlite>::new(
        "INSERT INTO credentials \
         (host, username, mechanism, salt, iterations, stored_key, server_key) ",
    );
    insert.push_values(credentials, |mut row, (user, credential)| {
        row.push_bind(host)
            .push_bind(user.as_str())
            .push_bind(credential.mechanism_hash.as_str())
            .push_bind(credential.salt.as_slice())
            .push_bind(i64::from(credential.iterations))
            .push_bind(credential.stored_key.as_slice())
            .push_bind(credential.server_key.as_slice());
    });
    insert.build().execute(&mut *connection).await.map_err(db_error)?;
    Ok(())
}

/// Writes one account of an import with everything it holds, inside the
/// caller's transaction. Returns [`ImportOutcome::AlreadyExists`], having
/// written nothing, if the account exists.
async fn import_account_rows(
    connection: &mut SqliteConnection,
    host: &str,
    account: &AccountImport,
) -> Result<ImportOutcome, StorageError> {
    let user = account.username.as_str();
    let created = sqlx::query("INSERT INTO accounts (host, username) VALUES ($1, $2) ON CONFLICT DO NOTHING")
        .bind(host)
        .bind(user)
        .execute(&mut *connection)
        .await
        .map_err(db_error)?
        .rows_affected();
    if created == 0 {
        return Ok(ImportOutcome::AlreadyExists);
    }
    // Data left behind without an account is replaced.
    for statement in DELETE_USER_DATA {
        sqlx::query(statement).bind(host).bind(user).execute(&mut *connection).await.map_err(db_error)?;
    }
    insert_credentials(connection, host, user, &account.credentials).await?;
    if !account.roster.is_empty() {
        sqlx::query("INSERT INTO roster_versions (host, username, version) VALUES ($1, $2, 1)")
            .bind(host)
            .bind(user)
            .execute(&mut *connection)
            .await
            .map_err(db_error)?;
        let mut rows: Vec<(&str, &RosterItem)> = account.roster.iter().map(|item| (user, item)).collect();
        rows.sort_unstable_by(|a, b| a.1.contact.cmp(&b.1.contact));
        for chunk in rows.chunks(ROSTER_IMPORT_CHUNK) {
            import_roster_chunk(connection, host, chunk, &HashSet::new(), 1).await?;
        }
    }
    for pending in &account.pending_in {
        sqlx::query(
            "INSERT INTO roster_pending_in (host, username, contact, status, stanza) VALUES ($1, $2, $3, $4, $5)",
        )
        .bind(host)
        .bind(user)
        .bind(pending.contact.as_str())
        .bind(pending.status.as_deref())
        .bind(pending.stanza.as_deref())
        .execute(&mut *connection)
        .await
        .map_err(db_error)?;
    }
    for (store, key, value) in &account.kv {
        sqlx::query("INSERT INTO kv (host, username, store, key, value) VALUES ($1, $2, $3, $4, $5)")
            .bind(host)
            .bind(user)
            .bind(store.as_str())
            .bind(key.as_str())
            .bind(value.as_slice())
            .execute(&mut *connection)
            .await
            .map_err(db_error)?;
    }
    for (stamp_ms, stanza) in &account.offline {
        sqlx::query("INSERT INTO offline_messages (host, username, stamp_ms, stanza) VALUES ($1, $2, $3, $4)")
            .bind(host)
            .bind(user)
            .bind(*stamp_ms)
            .bind(stanza.as_slice())
            .execute(&mut *connection)
            .await
            .map_err(db_error)?;
    }
    SqliteBackend::import_pep_nodes(connection, host, user, &account.pep).await?;
    Ok(ImportOutcome::Created)
}

/// Tables of an account's data besides its credentials, emptied for a
/// name an import creates (data left behind without an account is
/// replaced). Groups go with their roster items through `ON DELETE
/// CASCADE`.
const IMPORT_REPLACED_TABLES: [&str; 7] =
    ["kv", "roster_versions", "roster_items", "roster_pending_in", "offline_messages", "pep_nodes", "roster_removed"];

/// Accounts per multi-row statement of [`import_batch_rows`] that binds
/// one value per account.
const IMPORT_NAME_CHUNK: usize = 5_000;

/// Rows per multi-row statement of [`import_batch_rows`] for pending
/// requests, key-value entries and offline messages: at most 5 bound
/// parameters each.
const IMPORT_ROW_CHUNK: usize = 5_000;

/// Writes validated accounts of an import with everything they hold, in
/// a few multi-row statements, inside the caller's transaction: one
/// outcome per account, in order. An account that exists (or appears
/// earlier in `accounts`) is [`ImportOutcome::AlreadyExists`] and nothing
/// of it is written. On an error the caller must roll back everything this
/// wrote.
async fn import_batch_rows(
    connection: &mut SqliteConnection,
    host: &str,
    accounts: &[&AccountImport],
) -> Result<Vec<ImportOutcome>, StorageError> {
    let mut names: HashSet<&str> = HashSet::with_capacity(accounts.len());
    let unique: Vec<&str> =
        accounts.iter().map(|account| account.username.as_str()).filter(|name| names.insert(name)).collect();
    let mut created_names: HashSet<String> = HashSet::with_capacity(unique.len());
    for chunk in unique.chunks(IMPORT_NAME_CHUNK) {
        let mut insert = QueryBuilder::<Sqlite>::new("INSERT INTO accounts (host, username) ");
        insert.push_values(chunk, |mut row, user| {
            row.push_bind(host).push_bind(*user);
        });
        insert.push(" ON CONFLICT DO NOTHING RETURNING username");
        let rows: Vec<String> = insert.build_query_scalar().fetch_all(&mut *connection).await.map_err(db_error)?;
        created_names.extend(rows);
    }
    // The first record of each created name is the one written.
    let mut outcomes = Vec::with_capacity(accounts.len());
    let mut created: Vec<&AccountImport> = Vec::with_capacity(created_names.len());
    for account in accounts {
        if created_names.remove(account.username.as_str()) {
            outcomes.push(ImportOutcome::Created);
            created.push(account);
        } else {
            outcomes.push(ImportOutcome::AlreadyExists);
        }
    }
    if created.is_empty() {
        return Ok(outcomes);
    }
    let users: Vec<&str> = created.iter().map(|account| account.username.as_str()).collect();

    for table in IMPORT_REPLACED_TABLES {
        for chunk in users.chunks(IMPORT_NAME_CHUNK) {
            let mut delete = QueryBuilder::<Sqlite>::new(format!("DELETE FROM {table} WHERE host = "));
            delete.push_bind(host).push(" AND username IN (");
            let mut list = delete.separated(", ");
            for user in chunk {
                list.push_bind(*user);
            }
            delete.push(")");
            delete.build().execute(&mut *connection).await.map_err(db_error)?;
        }
    }

    let credentials: Vec<(&str, &StoredCredential)> = created
        .iter()
        .flat_map(|account| account.credentials.iter().map(move |credential| (account.username.as_str(), credential)))
        .collect();
    // At most 3 credentials per account: BULK_CHUNK accounts' worth.
    for chunk in credentials.chunks(BULK_CHUNK) {
        let mut insert = QueryBuilder::<Sqlite>::new(
            "INSERT INTO credentials (host, username, mechanism, salt, iterations, stored_key, server_key) ",
        );
        insert.push_values(chunk, |mut row, (user, credential)| {
            row.push_bind(host)
                .push_bind(*user)
                .push_bind(credential.mechanism_hash.as_str())
                .push_bind(credential.salt.as_slice())
                .push_bind(i64::from(credential.iterations))
                .push_bind(credential.stored_key.as_slice())
                .push_bind(credential.server_key.as_slice());
        });
        insert.build().execute(&mut *connection).await.map_err(db_error)?;
    }

    let with_roster: Vec<&str> =
        created.iter().filter(|account| !account.roster.is_empty()).map(|account| account.username.as_str()).collect();
    for chunk in with_roster.chunks(IMPORT_NAME_CHUNK) {
        let mut insert = QueryBuilder::<Sqlite>::new("INSERT INTO roster_versions (host, username, version) ");
        insert.push_values(chunk, |mut row, user| {
            row.push_bind(host).push_bind(*user).push("1");
        });
        insert.build().execute(&mut *connection).await.map_err(db_error)?;
    }
    let mut rows: Vec<(&str, &RosterItem)> = created
        .iter()
        .flat_map(|account| account.roster.iter().map(move |item| (account.username.as_str(), item)))
        .collect();
    rows.sort_unstable_by(|a, b| (a.0, a.1.contact.as_str()).cmp(&(b.0, b.1.contact.as_str())));
    for chunk in rows.chunks(ROSTER_IMPORT_CHUNK) {
        import_roster_chunk(connection, host, chunk, &HashSet::new(), 1).await?;
    }

    let pending: Vec<(&str, &PendingIn)> = created
        .iter()
        .flat_map(|account| account.pending_in.iter().map(move |request| (account.username.as_str(), request)))
        .collect();
    for chunk in pending.chunks(IMPORT_ROW_CHUNK) {
        let mut insert =
            QueryBuilder::<Sqlite>::new("INSERT INTO roster_pending_in (host, username, contact, status, stanza) ");
        insert.push_values(chunk, |mut row, (user, request)| {
            row.push_bind(host)
                .push_bind(*user)
                .push_bind(request.contact.as_str())
                .push_bind(request.status.as_deref())
                .push_bind(request.stanza.as_deref());
        });
        insert.build().execute(&mut *connection).await.map_err(db_error)?;
    }

    let kv: Vec<_> = created
        .iter()
        .flat_map(|account| account.kv.iter().map(move |entry| (account.username.as_str(), entry)))
        .collect();
    for chunk in kv.chunks(IMPORT_ROW_CHUNK) {
        let mut insert = QueryBuilder::<Sqlite>::new("INSERT INTO kv (host, username, store, key, value) ");
        insert.push_values(chunk, |mut row, (user, (store, key, value))| {
            row.push_bind(host)
                .push_bind(*user)
                .push_bind(store.as_str())
                .push_bind(key.as_str())
                .push_bind(value.as_slice());
        });
        insert.build().execute(&mut *connection).await.map_err(db_error)?;
    }

    // In account order, then list order: ids increase in that order.
    let offline: Vec<(&str, &(i64, Vec<u8>))> = created
        .iter()
        .flat_map(|account| account.offline.iter().map(move |message| (account.username.as_str(), message)))
        .collect();
    for chunk in offline.chunks(IMPORT_ROW_CHUNK) {
        let mut insert =
            QueryBuilder::<Sqlite>::new("INSERT INTO offline_messages (host, username, stamp_ms, stanza) ");
        insert.push_values(chunk, |mut row, (user, (stamp_ms, stanza))| {
            row.push_bind(host).push_bind(*user).push_bind(*stamp_ms).push_bind(stanza.as_slice());
        });
        insert.build().execute(&mut *connection).await.map_err(db_error)?;
    }
    for account in &created {
        SqliteBackend::import_pep_nodes(connection, host, &account.username, &account.pep).await?;
    }
    Ok(outcomes)
}

/// [`import_account_rows`] inside a savepoint of the caller's transaction:
/// rolled back to if the account exists or one of its statements fails,
/// which is then that account's outcome. The outer error is for the whole
/// transaction (the savepoint itself could not be set, released or rolled
/// back to).
async fn import_account_savepoint(
    connection: &mut SqliteConnection,
    host: &str,
    account: &AccountImport,
) -> Result<Result<ImportOutcome, StorageError>, StorageError> {
    sqlx::query("SAVEPOINT import_account").execute(&mut *connection).await.map_err(db_error)?;
    let outcome = import_account_rows(connection, host, account).await;
    if !matches!(outcome, Ok(ImportOutcome::Created)) {
        sqlx::query("ROLLBACK TO SAVEPOINT import_account").execute(&mut *connection).await.map_err(db_error)?;
    }
    sqlx::query("RELEASE SAVEPOINT import_account").execute(&mut *connection).await.map_err(db_error)?;
    Ok(outcome)
}

#[async_trait]
impl AuthStore for SqliteBackend {
    async fn create_account(
        &self,
        host: &str,
        user: &str,
        credentials: &[StoredCredential],
    ) -> Result<(), StorageError> {
        validate::host(host)?;
        validate::username(user)?;
        validate::credentials(credentials)?;
        let mut tx = self.begin_write().await?;
        insert_account(&mut tx, host, user, credentials).await?;
        tx.commit().await.map_err(db_error)
    }

    async fn create_accounts_bulk(&self, host: &str, accounts: &[NewAccount]) -> Result<(), StorageError> {
        validate::host(host)?;
        for (user, credentials) in accounts {
            validate::username(user)?;
            validate::credentials(credentials)?;
        }
        let mut tx = self.begin_write().await?;
        for chunk in accounts.chunks(BULK_CHUNK) {
            insert_accounts_chunk(&mut tx, host, chunk).await?;
        }
        tx.commit().await.map_err(db_error)
    }

    async fn set_credentials(
        &self,
        host: &str,
        user: &str,
        credentials: &[StoredCredential],
    ) -> Result<(), StorageError> {
        validate::host(host)?;
        validate::username(user)?;
        validate::credentials(credentials)?;
        let mut tx = self.begin_write().await?;
        let exists = sqlx::query("SELECT 1 FROM accounts WHERE host = $1 AND username = $2")
            .bind(host)
            .bind(user)
            .fetch_optional(&mut *tx)
            .await
            .map_err(db_error)?
            .is_some();
        if !exists {
            return Err(StorageError::NotFound);
        }
        sqlx::query("DELETE FROM credentials WHERE host = $1 AND username = $2")
            .bind(host)
            .bind(user)
            .execute(&mut *tx)
            .await
            .map_err(db_error)?;
        insert_credentials(&mut tx, host, user, credentials).await?;
        tx.commit().await.map_err(db_error)
    }

    async fn delete_account(&self, host: &str, user: &str) -> Result<(), StorageError> {
        validate::host(host)?;
        validate::username(user)?;
        let mut tx = self.begin_write().await?;
        // Credentials go with the account through ON DELETE CASCADE.
        let deleted = sqlx::query("DELETE FROM accounts WHERE host = $1 AND username = $2")
            .bind(host)
            .bind(user)
            .execute(&mut *tx)
            .await
            .map_err(db_error)?
            .rows_affected();
        if deleted == 0 {
            return Err(StorageError::NotFound);
        }
        for statement in DELETE_USER_DATA {
            sqlx::query(statement).bind(host).bind(user).execute(&mut *tx).await.map_err(db_error)?;
        }
        tx.commit().await.map_err(db_error)
    }

    async fn import_accounts(
        &self,
        host: &str,
        accounts: &[AccountImport],
    ) -> Result<Vec<Result<ImportOutcome, StorageError>>, StorageError> {
        validate::host(host)?;
        let checked: Vec<Result<(), StorageError>> =
            accounts.iter().map(|account| validate::account_import(host, account)).collect();
        if checked.iter().all(Result::is_err) {
            return Ok(checked.into_iter().map(|check| check.map(|()| ImportOutcome::AlreadyExists)).collect());
        }
        // One write transaction for the batch, a savepoint per account: dropped
        // without commit on a batch-wide error, which rolls everything back.
        let mut tx = self.begin_write().await?;
        let mut outcomes: Vec<Option<Result<ImportOutcome, StorageError>>> = Vec::with_capacity(accounts.len());
        let mut checked_errors = Vec::with_capacity(accounts.len());
        // (index in `accounts`, account) of the valid ones.
        let mut valid = Vec::with_capacity(accounts.len());
        for (account, check) in accounts.iter().zip(checked) {
            checked_errors.push(check.err());
            if checked_errors.last().is_some_and(Option::is_some) {
                outcomes.push(None);
                continue;
            }
            outcomes.push(None);
            valid.push((outcomes.len() - 1, account));
        }
        // The fast path: the whole batch in a few multi-row statements.
        // Validation was done, so a failure here is rare (disk full, I/O):
        // then the batch goes again account by account, one savepoint each,
        // to tell which one failed.
        sqlx::query("SAVEPOINT import_batch").execute(&mut *tx).await.map_err(db_error)?;
        let accounts_only: Vec<&AccountImport> = valid.iter().map(|(_, account)| *account).collect();
        match import_batch_rows(&mut tx, host, &accounts_only).await {
            Ok(batch) => {
                sqlx::query("RELEASE SAVEPOINT import_batch").execute(&mut *tx).await.map_err(db_error)?;
                for ((slot, _), outcome) in valid.iter().zip(batch) {
                    outcomes[*slot] = Some(Ok(outcome));
                }
            }
            Err(_) => {
                sqlx::query("ROLLBACK TO SAVEPOINT import_batch").execute(&mut *tx).await.map_err(db_error)?;
                sqlx::query("RELEASE SAVEPOINT import_batch").execute(&mut *tx).await.map_err(db_error)?;
                for (slot, account) in &valid {
                    outcomes[*slot] = Some(import_account_savepoint(&mut tx, host, account).await?);
                }
            }
        }
        tx.commit().await.map_err(db_error)?;
        Ok(outcomes
            .into_iter()
            .zip(checked_errors)
            .map(|(outcome, error)| match (outcome, error) {
                (Some(outcome), _) => outcome,
                (None, Some(error)) => Err(error),
                (None, None) => Err(StorageError::Backend("import outcome missing".into())),
            })
            .collect())
    }

    async fn account_exists(&self, host: &str, user: &str) -> Result<bool, StorageError> {
        validate::host(host)?;
        validate::username(user)?;
        let row = sqlx::query("SELECT 1 FROM accounts WHERE host = $1 AND username = $2")
            .bind(host)
            .bind(user)
            .fetch_optional(&self.read)
            .await
            .map_err(db_error)?;
        Ok(row.is_some())
    }

    async fn get_credential(
        &self,
        host: &str,
        user: &str,
        mechanism_hash: &str,
    ) -> Result<Option<StoredCredential>, StorageError> {
        validate::host(host)?;
        validate::username(user)?;
        let row: Option<(Vec<u8>, i64, Vec<u8>, Vec<u8>)> = sqlx::query_as(
            "SELECT salt, iterations, stored_key, server_key FROM credentials \
             WHERE host = $1 AND username = $2 AND mechanism = $3",
        )
        .bind(host)
        .bind(user)
        .bind(mechanism_hash)
        .fetch_optional(&self.read)
        .await
        .map_err(db_error)?;
        row.map(|(salt, iterations, stored_key, server_key)| {
            Ok(StoredCredential {
                mechanism_hash: mechanism_hash.to_owned(),
                salt,
                iterations: to_iterations(iterations)?,
                stored_key,
                server_key,
            })
        })
        .transpose()
    }

    async fn list_accounts(&self, host: &str) -> Result<Vec<String>, StorageError> {
        validate::host(host)?;
        sqlx::query_scalar("SELECT username FROM accounts WHERE host = $1 ORDER BY username")
            .bind(host)
            .fetch_all(&self.read)
            .await
            .map_err(db_error)
    }

    async fn count_accounts(&self, host: &str) -> Result<u64, StorageError> {
        validate::host(host)?;
        let count: i64 = sqlx::query_scalar("SELECT COUNT(*) FROM accounts WHERE host = $1")
            .bind(host)
            .fetch_one(&self.read)
            .await
            .map_err(db_error)?;
        to_u64(count, "account count")
    }
}

crate::roster::impl_kv_store!(SqliteBackend);

crate::roster::roster_row_functions!(SqliteConnection);

/// Bumps the versions of the importing users with multi-row upserts and
/// returns those whose roster existed before (new version above 1): only
/// they can have items that the import replaces.
async fn bump_import_versions(
    connection: &mut SqliteConnection,
    host: &str,
    users: &[&str],
) -> Result<HashSet<String>, StorageError> {
    let mut existing = HashSet::new();
    for chunk in users.chunks(ROSTER_IMPORT_USER_CHUNK) {
        let mut upsert = QueryBuilder::<Sqlite>::new("INSERT INTO roster_versions (host, username, version) ");
        upsert.push_values(chunk, |mut row, user| {
            row.push_bind(host).push_bind(*user).push("1");
        });
        upsert.push(
            " ON CONFLICT (host, username) DO UPDATE SET version = roster_versions.version + 1 \
             RETURNING username, version",
        );
        let bumped: Vec<(String, i64)> = upsert.build_query_as().fetch_all(&mut *connection).await.map_err(db_error)?;
        existing.extend(bumped.into_iter().filter(|(_, version)| *version > 1).map(|(user, _)| user));
    }
    Ok(existing)
}

/// Writes one chunk of a roster import: removes the items it replaces
/// (their groups go by the cascade), then inserts the items and their
/// groups with multi-row `INSERT`s.
async fn import_roster_chunk(
    connection: &mut SqliteConnection,
    host: &str,
    rows: &[(&str, &RosterItem)],
    existing: &HashSet<String>,
    version: i64,
) -> Result<(), StorageError> {
    let replaced: Vec<(&str, &str)> = rows
        .iter()
        .filter(|(user, _)| existing.contains(*user))
        .map(|(user, item)| (*user, item.contact.as_str()))
        .collect();
    if !replaced.is_empty() {
        let mut delete = QueryBuilder::<Sqlite>::new("DELETE FROM roster_items WHERE host = ");
        delete.push_bind(host).push(" AND (username, contact) IN (VALUES ");
        let mut list = delete.separated(", ");
        for (user, contact) in replaced {
            list.push("(").push_bind_unseparated(user).push_unseparated(", ");
            list.push_bind_unseparated(contact).push_unseparated(")");
        }
        delete.push(")");
        delete.build().execute(&mut *connection).await.map_err(db_error)?;
    }

    let mut insert = QueryBuilder::<Sqlite>::new(
        "INSERT INTO roster_items (host, username, contact, name, subscription, ask, approved, version) ",
    );
    insert.push_values(rows, |mut row, (user, item)| {
        row.push_bind(host)
            .push_bind(*user)
            .push_bind(item.contact.as_str())
            .push_bind(item.name.as_deref())
            .push_bind(item.subscription.as_str())
            .push_bind(item.ask)
            .push_bind(item.approved)
            .push_bind(version);
    });
    insert.build().execute(&mut *connection).await.map_err(db_error)?;

    let groups: Vec<(&str, &str, i64, &str)> = rows
        .iter()
        .flat_map(|(user, item)| {
            (0i64..)
                .zip(&item.groups)
                .map(move |(position, group)| (*user, item.contact.as_str(), position, group.as_str()))
        })
        .collect();
    for chunk in groups.chunks(GROUP_CHUNK) {
        let mut insert =
            QueryBuilder::<Sqlite>::new("INSERT INTO roster_groups (host, username, contact, position, name) ");
        insert.push_values(chunk, |mut row, (user, contact, position, name)| {
            row.push_bind(host).push_bind(*user).push_bind(*contact).push_bind(*position).push_bind(*name);
        });
        insert.build().execute(&mut *connection).await.map_err(db_error)?;
    }
    Ok(())
}

crate::roster::impl_roster_store!(SqliteBackend);

/// Writes the groups of a roster item (RFC 6121 §2.1.2.2) in the client's
/// order, in multi-row statements of at most [`GROUP_CHUNK`] rows.
async fn insert_roster_groups(
    connection: &mut SqliteConnection,
    host: &str,
    user: &str,
    item: &RosterItem,
) -> Result<(), StorageError> {
    let positioned: Vec<(i64, &str)> = (0i64..).zip(item.groups.iter().map(String::as_str)).collect();
    for chunk in positioned.chunks(GROUP_CHUNK) {
        let mut insert =
            QueryBuilder::<Sqlite>::new("INSERT INTO roster_groups (host, username, contact, position, name) ");
        insert.push_values(chunk, |mut row, (position, name)| {
            row.push_bind(host).push_bind(user).push_bind(item.contact.as_str()).push_bind(*position).push_bind(*name);
        });
        insert.build().execute(&mut *connection).await.map_err(db_error)?;
    }
    Ok(())
}

#[async_trait]
impl OfflineStore for SqliteBackend {
    async fn push(
        &self,
        host: &str,
        user: &str,
        stamp_ms: i64,
        stanza: &[u8],
        max_messages: u64,
    ) -> Result<i64, StorageError> {
        check_owner(host, user)?;
        // The writer runs the count and the insert in one BEGIN IMMEDIATE
        // transaction (so no other push slips in between) together with
        // the other pushes waiting at that moment.
        let (reply, answer) = tokio::sync::oneshot::channel();
        let push = OfflinePush {
            host: host.to_owned(),
            user: user.to_owned(),
            stamp_ms,
            stanza: stanza.to_vec(),
            max_messages,
            reply,
        };
        let closed = || StorageError::Unavailable("the offline writer has stopped".into());
        self.offline.send(push).await.map_err(|_| closed())?;
        answer.await.map_err(|_| closed())?
    }

    async fn peek(&self, host: &str, user: &str, limit: u32) -> Result<Vec<OfflineMessage>, StorageError> {
        check_owner(host, user)?;
        let rows: Vec<(i64, i64, Vec<u8>)> = sqlx::query_as(
            "SELECT id, stamp_ms, stanza FROM offline_messages \
             WHERE host = $1 AND username = $2 ORDER BY id LIMIT $3",
        )
        .bind(host)
        .bind(user)
        .bind(i64::from(limit))
        .fetch_all(&self.read)
        .await
        .map_err(db_error)?;
        Ok(rows.into_iter().map(|(id, stamp_ms, stanza)| OfflineMessage { id, stamp_ms, stanza }).collect())
    }

    async fn remove_through(&self, host: &str, user: &str, through_id: i64) -> Result<u64, StorageError> {
        check_owner(host, user)?;
        let deleted = sqlx::query("DELETE FROM offline_messages WHERE host = $1 AND username = $2 AND id <= $3")
            .bind(host)
            .bind(user)
            .bind(through_id)
            .execute(&self.write)
            .await
            .map_err(db_error)?
            .rows_affected();
        Ok(deleted)
    }

    async fn count(&self, host: &str, user: &str) -> Result<u64, StorageError> {
        check_owner(host, user)?;
        let count: i64 = sqlx::query_scalar("SELECT COUNT(*) FROM offline_messages WHERE host = $1 AND username = $2")
            .bind(host)
            .bind(user)
            .fetch_one(&self.read)
            .await
            .map_err(db_error)?;
        to_u64(count, "offline message count")
    }
}
