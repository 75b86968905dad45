//! PostgreSQL dialect.
//!
//! One connection pool. Text key columns use the `"C"` collation (see the
//! migration), so lookups and `ORDER BY` are byte-exact whatever the database
//! locale. Bulk imports send whole columns as arrays through `UNNEST`, one
//! round trip per [`BULK_CHUNK`] accounts.

use std::collections::HashSet;
use std::str::FromStr;
use std::time::Duration;

use async_trait::async_trait;
use sqlx::error::DatabaseError;
use sqlx::migrate::Migrator;
use sqlx::postgres::{PgConnectOptions, PgConnection, PgPool, PgPoolOptions};
use sqlx::{Connection, Postgres, QueryBuilder, Transaction};
use xmppd_storage::{
    AccountImport, AuthStore, ImportOutcome, ImportedRoster, NewAccount, OfflineMessage, OfflineStore, PendingIn,
    Roster, RosterChange, RosterItem, StorageError, StoredCredential, validate,
};

use crate::error::{map_sqlx_error, to_iterations, to_u64};
use crate::rows::{GroupRow, ItemRow, roster_items, sorted_import};

static MIGRATOR: Migrator = sqlx::migrate!("migrations/postgres");

/// Accounts sent per `INSERT … SELECT FROM UNNEST` statement in a bulk import.
pub const BULK_CHUNK: usize = 5_000;

/// Roster items sent per `UNNEST` statement in a roster import.
pub const ROSTER_IMPORT_CHUNK: usize = 10_000;

/// How long a caller waits for a free pooled connection (or a new one)
/// before getting a transient error.
pub const ACQUIRE_TIMEOUT: Duration = Duration::from_secs(10);

/// First key of the transaction-level advisory lock that serializes the
/// offline pushes of one user (`"OFFL"`); the second key is a hash of
/// (host, username). Locks taken with two `int4` keys never conflict with the
/// single-`bigint` lock of the sqlx migrator.
const OFFLINE_LOCK_CLASS: i32 = 0x4F46_464C;

/// Statements of [`AuthStore::delete_account`] after the account row itself,
/// all in its transaction. Groups go with their roster items through
/// `ON DELETE CASCADE`. `roster_versions` comes before `roster_items`: the
/// same lock order as the roster writes, which start with the version row.
const DELETE_USER_DATA: [&str; 7] = [
    "DELETE FROM kv WHERE host = $1 AND username = $2",
    "DELETE FROM roster_versions WHERE host = $1 AND username = $2",
    "DELETE FROM roster_items WHERE host = $1 AND username = $2",
    "DELETE FROM roster_pending_in WHERE host = $1 AND username = $2",
    "DELETE FROM offline_messages WHERE host = $1 AND username = $2",
    "DELETE FROM pep_nodes WHERE host = $1 AND username = $2",
    "DELETE FROM roster_removed WHERE host = $1 AND username = $2",
];

/// The PostgreSQL backend.
pub(crate) struct PostgresBackend {
    pool: PgPool,
}

fn db_error(error: sqlx::Error) -> StorageError {
    map_sqlx_error(error, is_transient)
}

/// SQLSTATEs worth retrying (PostgreSQL manual, appendix A): connection
/// exceptions (class 08), serialization failure and deadlock (40001, 40P01),
/// insufficient resources (class 53), lock not available (55P03) and server
/// shutdown or start-up (57P01, 57P02, 57P03).
fn is_transient(error: &dyn DatabaseError) -> bool {
    let Some(code) = error.code() else {
        return false;
    };
    code.starts_with("08")
        || code.starts_with("53")
        || matches!(code.as_ref(), "40001" | "40P01" | "55P03" | "57P01" | "57P02" | "57P03")
}

impl PostgresBackend {
    /// Connects a pool of at most `max_connections` to `url` and applies the
    /// migrations (sqlx serializes concurrent migrators with an advisory
    /// lock).
    pub(crate) async fn connect(url: &str, max_connections: u32) -> Result<Self, StorageError> {
        if max_connections == 0 {
            return Err(StorageError::Config("PostgreSQL max_connections must be at least 1".into()));
        }
        let options = PgConnectOptions::from_str(url).map_err(db_error)?;
        // One direct attempt first: an unreachable server or bad credentials
        // fail at once (the pool would keep retrying until its acquire
        // timeout). The caller may retry a transient failure.
        PgConnection::connect_with(&options).await.map_err(db_error)?.close().await.map_err(db_error)?;
        let pool = PgPoolOptions::new()
            .max_connections(max_connections)
            .acquire_timeout(ACQUIRE_TIMEOUT)
            .connect_with(options)
            .await
            .map_err(db_error)?;
        MIGRATOR.run(&pool).await.map_err(migration_error)?;
        Ok(Self { pool })
    }

    pub(crate) async fn migrate(&self) -> Result<(), StorageError> {
        MIGRATOR.run(&self.pool).await.map_err(migration_error)
    }

    pub(crate) async fn health_check(&self) -> Result<(), StorageError> {
        sqlx::query("SELECT 1").execute(&self.pool).await.map_err(db_error)?;
        Ok(())
    }

    pub(crate) async fn close(&self) {
        self.pool.close().await;
    }

    async fn begin(&self) -> Result<Transaction<'static, Postgres>, StorageError> {
        self.pool.begin().await.map_err(db_error)
    }

    async fn begin_write(&self) -> Result<Transaction<'static, Postgres>, StorageError> {
        self.begin().await
    }

    /// A read transaction: one snapshot for all its statements.
    async fn begin_read(&self) -> Result<Transaction<'static, Postgres>, StorageError> {
        self.begin_snapshot().await
    }

    fn read_pool(&self) -> &PgPool {
        &self.pool
    }

    fn write_pool(&self) -> &PgPool {
        &self.pool
    }

    /// A read-only transaction whose statements all see one snapshot
    /// (`READ COMMITTED` would take a new one per statement).
    async fn begin_snapshot(&self) -> Result<Transaction<'static, Postgres>, StorageError> {
        self.pool.begin_with("BEGIN ISOLATION LEVEL REPEATABLE READ, READ ONLY").await.map_err(db_error)
    }
}

crate::pubsub::impl_pubsub_store!(PostgresBackend, PgConnection, " FOR UPDATE");

fn migration_error(error: sqlx::migrate::MigrateError) -> StorageError {
    StorageError::Migration(Box::new(error))
}

async fn insert_credentials(
    connection: &mut PgConnection,
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

/// Inserts one chunk of a bulk import: the accounts in one statement, then
/// all their credentials in another.
async fn insert_accounts_chunk(
    connection: &mut PgConnection,
    host: &str,
    accounts: &[NewAccount],
) -> Result<(), StorageError> {
    let usernames: Vec<&str> = accounts.iter().map(|(user, _)| user.as_str()).collect();
    sqlx::query("INSERT INTO accounts (host, username) SELECT $1, u FROM UNNEST($2::text[]) AS t(u)")
        .bind(host)
        .bind(usernames)
        .execute(&mut *connection)
        .await
        .map_err(db_error)?;

    let total: usize = accounts.iter().map(|(_, credentials)| credentials.len()).sum();
    if total == 0 {
        return Ok(());
    }
    let mut users = Vec::with_capacity(total);
    let mut mechanisms = Vec::with_capacity(total);
    let mut salts = Vec::with_capacity(total);
    let mut iterations = Vec::with_capacity(total);
    let mut stored_keys = Vec::with_capacity(total);
    let mut server_keys = Vec::with_capacity(total);
    for (user, credentials) in accounts {
        for credential in credentials {
            users.push(user.as_str());
            mechanisms.push(credential.mechanism_hash.as_str());
            salts.push(credential.salt.as_slice());
            iterations.push(i64::from(credential.iterations));
            stored_keys.push(credential.stored_key.as_slice());
            server_keys.push(credential.server_key.as_slice());
        }
    }
    sqlx::query(
        "INSERT INTO credentials \
         (host, username, mechanism, salt, iterations, stored_key, server_key) \
         SELECT $1, u, m, s, i, sk, svk \
         FROM UNNEST($2::text[], $3::text[], $4::bytea[], $5::int8[], $6::bytea[], $7::bytea[]) \
         AS t(u, m, s, i, sk, svk)",
    )
    .bind(host)
    .bind(users)
    .bind(mechanisms)
    .bind(salts)
    .bind(iterations)
    .bind(stored_keys)
    .bind(server_keys)
    .execute(&mut *connection)
    .await
    .map_err(db_error)?;
    Ok(())
}

/// Writes one account of an import with everything it holds, inside the
/// caller's transaction. Returns [`ImportOutcome::AlreadyExists`], having
/// written nothing, if the account exists (or is being created by a
/// concurrent transaction that then commits: the insert waits for it).
async fn import_account_rows(
    connection: &mut PgConnection,
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
    // The lock of OfflineStore::push, so that offline ids still commit in
    // increasing order per user.
    sqlx::query("SELECT pg_advisory_xact_lock($1, hashtext($2 || '/' || $3))")
        .bind(OFFLINE_LOCK_CLASS)
        .bind(host)
        .bind(user)
        .execute(&mut *connection)
        .await
        .map_err(db_error)?;
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
    // One row at a time: ids follow the order of the list.
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
    PostgresBackend::import_pep_nodes(connection, host, user, &account.pep).await?;
    Ok(ImportOutcome::Created)
}

/// Tables of an account's data besides its credentials, emptied for a
/// name an import creates (data left behind without an account is
/// replaced). Groups go with their roster items through `ON DELETE
/// CASCADE`.
const IMPORT_REPLACED_TABLES: [&str; 7] =
    ["kv", "roster_versions", "roster_items", "roster_pending_in", "offline_messages", "pep_nodes", "roster_removed"];

/// The names among `$2` (of host `$1`) that have rows in one of
/// [`IMPORT_REPLACED_TABLES`]: one index probe per name and table. Scalar
/// subqueries with `LIMIT 1` rather than `EXISTS`, which the planner may
/// turn into a hash of the whole table, and does while the tables have no
/// statistics yet (as during the first import into a new database).
fn leftover_query() -> String {
    let probes: Vec<String> = IMPORT_REPLACED_TABLES
        .iter()
        .map(|table| format!("(SELECT true FROM {table} d WHERE d.host = $1 AND d.username = t.u LIMIT 1)"))
        .collect();
    format!("SELECT t.u FROM UNNEST($2::text[]) AS t(u) WHERE COALESCE({}, false)", probes.join(", "))
}

/// Accounts per multi-row statement of [`import_batch_rows`] that binds
/// one value per account.
const IMPORT_NAME_CHUNK: usize = 5_000;

/// Rows per multi-row statement of [`import_batch_rows`] for pending
/// requests and key-value entries: at most 5 bound parameters each.
const IMPORT_ROW_CHUNK: usize = 5_000;

/// Writes validated accounts of an import with everything they hold, in
/// a few multi-row statements, inside the caller's transaction: one
/// outcome per account, in order. An account that exists (or appears
/// earlier in `accounts`) is [`ImportOutcome::AlreadyExists`] and nothing
/// of it is written. On an error the caller must roll back everything this
/// wrote.
async fn import_batch_rows(
    connection: &mut PgConnection,
    host: &str,
    accounts: &[&AccountImport],
) -> Result<Vec<ImportOutcome>, StorageError> {
    let mut names: HashSet<&str> = HashSet::with_capacity(accounts.len());
    let unique: Vec<&str> =
        accounts.iter().map(|account| account.username.as_str()).filter(|name| names.insert(name)).collect();
    let mut created_names: HashSet<String> = HashSet::with_capacity(unique.len());
    for chunk in unique.chunks(IMPORT_NAME_CHUNK) {
        let mut insert = QueryBuilder::<Postgres>::new("INSERT INTO accounts (host, username) ");
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

    // Data left behind without an account is rare: one query finds the
    // names that have some, and only those are emptied. One array
    // parameter: the same prepared statement for every batch.
    let leftover: Vec<String> = sqlx::query_scalar(sqlx::AssertSqlSafe(leftover_query()))
        .bind(host)
        .bind(&users)
        .fetch_all(&mut *connection)
        .await
        .map_err(db_error)?;
    if !leftover.is_empty() {
        for table in IMPORT_REPLACED_TABLES {
            sqlx::query(sqlx::AssertSqlSafe(format!("DELETE FROM {table} WHERE host = $1 AND username = ANY($2)")))
                .bind(host)
                .bind(&leftover)
                .execute(&mut *connection)
                .await
                .map_err(db_error)?;
        }
    }

    let credentials: Vec<(&str, &StoredCredential)> = created
        .iter()
        .flat_map(|account| account.credentials.iter().map(move |credential| (account.username.as_str(), credential)))
        .collect();
    // At most 3 credentials per account: BULK_CHUNK accounts' worth.
    for chunk in credentials.chunks(BULK_CHUNK) {
        let mut insert = QueryBuilder::<Postgres>::new(
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
        let mut insert = QueryBuilder::<Postgres>::new("INSERT INTO roster_versions (host, username, version) ");
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
            QueryBuilder::<Postgres>::new("INSERT INTO roster_pending_in (host, username, contact, status, stanza) ");
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
        let mut insert = QueryBuilder::<Postgres>::new("INSERT INTO kv (host, username, store, key, value) ");
        insert.push_values(chunk, |mut row, (user, (store, key, value))| {
            row.push_bind(host)
                .push_bind(*user)
                .push_bind(store.as_str())
                .push_bind(key.as_str())
                .push_bind(value.as_slice());
        });
        insert.build().execute(&mut *connection).await.map_err(db_error)?;
    }

    // The lock of OfflineStore::push, so that offline ids still commit in
    // increasing order per user; then one row at a time: ids follow the
    // order of the list.
    let with_offline: Vec<&AccountImport> =
        created.iter().copied().filter(|account| !account.offline.is_empty()).collect();
    for account in with_offline {
        let user = account.username.as_str();
        sqlx::query("SELECT pg_advisory_xact_lock($1, hashtext($2 || '/' || $3))")
            .bind(OFFLINE_LOCK_CLASS)
            .bind(host)
            .bind(user)
            .execute(&mut *connection)
            .await
            .map_err(db_error)?;
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
    }
    for account in &created {
        PostgresBackend::import_pep_nodes(connection, host, &account.username, &account.pep).await?;
    }
    Ok(outcomes)
}

/// [`import_account_rows`] inside a savepoint of the caller's transaction:
/// rolled back to if the account exists or one of its statements fails,
/// which is then that account's outcome. The outer error is for the whole
/// transaction (the savepoint itself could not be set, released or rolled
/// back to).
async fn import_account_savepoint(
    connection: &mut PgConnection,
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
impl AuthStore for PostgresBackend {
    async fn create_account(
        &self,
        host: &str,
        user: &str,
        credentials: &[StoredCredential],
    ) -> Result<(), StorageError> {
        validate::host(host)?;
        validate::username(user)?;
        validate::credentials(credentials)?;
        let mut tx = self.begin().await?;
        sqlx::query("INSERT INTO accounts (host, username) VALUES ($1, $2)")
            .bind(host)
            .bind(user)
            .execute(&mut *tx)
            .await
            .map_err(db_error)?;
        insert_credentials(&mut tx, host, user, credentials).await?;
        tx.commit().await.map_err(db_error)
    }

    async fn create_accounts_bulk(&self, host: &str, accounts: &[NewAccount]) -> Result<(), StorageError> {
        validate::host(host)?;
        for (user, credentials) in accounts {
            validate::username(user)?;
            validate::credentials(credentials)?;
        }
        let mut tx = self.begin().await?;
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
        let mut tx = self.begin().await?;
        // The row lock serializes concurrent replacements of the same
        // account, which would otherwise collide on the credentials key.
        let exists = sqlx::query("SELECT 1 FROM accounts WHERE host = $1 AND username = $2 FOR UPDATE")
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
        let mut tx = self.begin().await?;
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
        // One transaction for the batch, a savepoint per account: dropped
        // without commit on a batch-wide error, which rolls everything back.
        let mut tx = self.begin().await?;
        // The tables grow by a batch at a time during an import: a generic
        // plan made while they were small (a sequential scan) would be
        // kept for the whole import. Plan each statement for its values.
        sqlx::query("SET LOCAL plan_cache_mode = force_custom_plan").execute(&mut *tx).await.map_err(db_error)?;
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
            .fetch_optional(&self.pool)
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
        if mechanism_hash.contains('\0') {
            // PostgreSQL text cannot hold NUL; no stored hash name has one.
            return Ok(None);
        }
        let row: Option<(Vec<u8>, i64, Vec<u8>, Vec<u8>)> = sqlx::query_as(
            "SELECT salt, iterations, stored_key, server_key FROM credentials \
             WHERE host = $1 AND username = $2 AND mechanism = $3",
        )
        .bind(host)
        .bind(user)
        .bind(mechanism_hash)
        .fetch_optional(&self.pool)
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
            .fetch_all(&self.pool)
            .await
            .map_err(db_error)
    }

    async fn count_accounts(&self, host: &str) -> Result<u64, StorageError> {
        validate::host(host)?;
        let count: i64 = sqlx::query_scalar("SELECT COUNT(*) FROM accounts WHERE host = $1")
            .bind(host)
            .fetch_one(&self.pool)
            .await
            .map_err(db_error)?;
        to_u64(count, "account count")
    }
}

crate::roster::impl_kv_store!(PostgresBackend);

crate::roster::roster_row_functions!(PgConnection);

/// Bumps the versions of the importing users (given in sorted order, so
/// that concurrent imports lock the version rows in the same order) and
/// returns those whose roster existed before (new version above 1): only
/// they can have items that the import replaces.
async fn bump_import_versions(
    connection: &mut PgConnection,
    host: &str,
    users: &[&str],
) -> Result<HashSet<String>, StorageError> {
    let mut existing = HashSet::new();
    for chunk in users.chunks(ROSTER_IMPORT_CHUNK) {
        let bumped: Vec<(String, i64)> = sqlx::query_as(
            "INSERT INTO roster_versions (host, username, version) \
             SELECT $1, u, 1 FROM UNNEST($2::text[]) WITH ORDINALITY AS t(u, n) ORDER BY n \
             ON CONFLICT (host, username) DO UPDATE SET version = roster_versions.version + 1 \
             RETURNING username, version",
        )
        .bind(host)
        .bind(chunk)
        .fetch_all(&mut *connection)
        .await
        .map_err(db_error)?;
        existing.extend(bumped.into_iter().filter(|(_, version)| *version > 1).map(|(user, _)| user));
    }
    Ok(existing)
}

/// Writes one chunk of a roster import: removes the items it replaces
/// (their groups go by the cascade), then inserts the items and their
/// groups, each with one statement over whole columns sent as arrays.
async fn import_roster_chunk(
    connection: &mut PgConnection,
    host: &str,
    rows: &[(&str, &RosterItem)],
    existing: &HashSet<String>,
    version: i64,
) -> Result<(), StorageError> {
    let (replaced_users, replaced_contacts): (Vec<&str>, Vec<&str>) = rows
        .iter()
        .filter(|(user, _)| existing.contains(*user))
        .map(|(user, item)| (*user, item.contact.as_str()))
        .unzip();
    if !replaced_users.is_empty() {
        sqlx::query(
            "DELETE FROM roster_items r USING UNNEST($2::text[], $3::text[]) AS t(u, c) \
             WHERE r.host = $1 AND r.username = t.u AND r.contact = t.c",
        )
        .bind(host)
        .bind(replaced_users)
        .bind(replaced_contacts)
        .execute(&mut *connection)
        .await
        .map_err(db_error)?;
    }

    let mut users = Vec::with_capacity(rows.len());
    let mut contacts = Vec::with_capacity(rows.len());
    let mut names = Vec::with_capacity(rows.len());
    let mut subscriptions = Vec::with_capacity(rows.len());
    let mut asks = Vec::with_capacity(rows.len());
    let mut approvals = Vec::with_capacity(rows.len());
    for (user, item) in rows {
        users.push(*user);
        contacts.push(item.contact.as_str());
        names.push(item.name.as_deref());
        subscriptions.push(item.subscription.as_str());
        asks.push(item.ask);
        approvals.push(item.approved);
    }
    sqlx::query(
        "INSERT INTO roster_items (host, username, contact, name, subscription, ask, approved, version) \
         SELECT $1, u, c, n, s, a, p, $8 \
         FROM UNNEST($2::text[], $3::text[], $4::text[], $5::text[], $6::bool[], $7::bool[]) AS t(u, c, n, s, a, p)",
    )
    .bind(host)
    .bind(users)
    .bind(contacts)
    .bind(names)
    .bind(subscriptions)
    .bind(asks)
    .bind(approvals)
    .bind(version)
    .execute(&mut *connection)
    .await
    .map_err(db_error)?;

    let total: usize = rows.iter().map(|(_, item)| item.groups.len()).sum();
    if total == 0 {
        return Ok(());
    }
    let mut users = Vec::with_capacity(total);
    let mut contacts = Vec::with_capacity(total);
    let mut positions = Vec::with_capacity(total);
    let mut names = Vec::with_capacity(total);
    for (user, item) in rows {
        for (position, group) in (0i32..).zip(&item.groups) {
            users.push(*user);
            contacts.push(item.contact.as_str());
            positions.push(position);
            names.push(group.as_str());
        }
    }
    sqlx::query(
        "INSERT INTO roster_groups (host, username, contact, position, name) \
         SELECT $1, u, c, p, g FROM UNNEST($2::text[], $3::text[], $4::int4[], $5::text[]) AS t(u, c, p, g)",
    )
    .bind(host)
    .bind(users)
    .bind(contacts)
    .bind(positions)
    .bind(names)
    .execute(&mut *connection)
    .await
    .map_err(db_error)?;
    Ok(())
}

crate::roster::impl_roster_store!(PostgresBackend);

/// Writes the groups of a roster item (RFC 6121 §2.1.2.2) in the client's
/// order: one statement for any number of groups; `WITH ORDINALITY`
/// numbers them in array order (from 1).
async fn insert_roster_groups(
    connection: &mut PgConnection,
    host: &str,
    user: &str,
    item: &RosterItem,
) -> Result<(), StorageError> {
    if item.groups.is_empty() {
        return Ok(());
    }
    sqlx::query(
        "INSERT INTO roster_groups (host, username, contact, position, name) \
         SELECT $1, $2, $3, (g.ordinality - 1)::int, g.name \
         FROM UNNEST($4::text[]) WITH ORDINALITY AS g(name, ordinality)",
    )
    .bind(host)
    .bind(user)
    .bind(item.contact.as_str())
    .bind(item.groups.as_slice())
    .execute(&mut *connection)
    .await
    .map_err(db_error)?;
    Ok(())
}

#[async_trait]
impl OfflineStore for PostgresBackend {
    async fn push(
        &self,
        host: &str,
        user: &str,
        stamp_ms: i64,
        stanza: &[u8],
        max_messages: u64,
    ) -> Result<i64, StorageError> {
        check_owner(host, user)?;
        let mut tx = self.begin().await?;
        // Serialize this user's pushes until commit: under READ COMMITTED two
        // concurrent pushes could otherwise both count `max_messages - 1`.
        // It also makes ids commit in increasing order per user, so a reader
        // never sees a smaller id appear behind one it already removed.
        // A hash collision between two users only makes them wait for each
        // other.
        sqlx::query("SELECT pg_advisory_xact_lock($1, hashtext($2 || '/' || $3))")
            .bind(OFFLINE_LOCK_CLASS)
            .bind(host)
            .bind(user)
            .execute(&mut *tx)
            .await
            .map_err(db_error)?;
        let count: i64 = sqlx::query_scalar("SELECT COUNT(*) FROM offline_messages WHERE host = $1 AND username = $2")
            .bind(host)
            .bind(user)
            .fetch_one(&mut *tx)
            .await
            .map_err(db_error)?;
        if to_u64(count, "offline message count")? >= max_messages {
            return Err(StorageError::LimitExceeded);
        }
        let id: i64 = sqlx::query_scalar(
            "INSERT INTO offline_messages (host, username, stamp_ms, stanza) VALUES ($1, $2, $3, $4) RETURNING id",
        )
        .bind(host)
        .bind(user)
        .bind(stamp_ms)
        .bind(stanza)
        .fetch_one(&mut *tx)
        .await
        .map_err(db_error)?;
        tx.commit().await.map_err(db_error)?;
        Ok(id)
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
        .fetch_all(&self.pool)
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
            .execute(&self.pool)
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
            .fetch_one(&self.pool)
            .await
            .map_err(db_error)?;
        to_u64(count, "offline message count")
    }
}
