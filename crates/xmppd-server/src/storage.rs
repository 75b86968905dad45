//! Opening the configured storage backend.

use xmppd_core::{Config, Stores};
use xmppd_storage_sql::{SqlConfig, SqlStorage};

/// Connects to the backend named in `[storage]` and runs migrations.
pub async fn open(config: &Config) -> Result<Stores, String> {
    Ok(Stores::of(&connect(config).await?))
}

async fn connect(config: &Config) -> Result<SqlStorage, String> {
    let sql_config = match config.storage.backend.as_str() {
        "postgres" => SqlConfig::Postgres {
            url: config.storage.url.clone().unwrap_or_default(),
            max_connections: config.storage.max_connections,
        },
        _ => {
            let path = config.storage.path.clone().unwrap_or_else(|| config.server.data_dir.join("xmppd.sqlite3"));
            if let Some(parent) = path.parent() {
                std::fs::create_dir_all(parent).map_err(|e| format!("cannot create {}: {e}", parent.display()))?;
            }
            SqlConfig::Sqlite { path }
        }
    };
    SqlStorage::connect(sql_config).await.map_err(|e| format!("storage: {e}"))
}
