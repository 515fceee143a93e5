//! `storage.postgres`: the Python backend's table, so existing databases and their
//! queries keep working: `id UUID PRIMARY KEY, vcon TEXT (the spec version), uuid
//! UUID, created_at TIMESTAMP, updated_at TIMESTAMP, subject TEXT, vcon_json JSONB`,
//! upserted on `id`. One column is added (`vcon_text TEXT`, nullable): the document
//! exactly as written, because JSONB reorders keys; `get` prefers it. The table is
//! created (and the column added) on first use; the pool opens lazily, so a
//! database that is down is a storage failure, not a config error.

use std::time::Duration;

use async_trait::async_trait;
use chrono::{DateTime, NaiveDate, NaiveDateTime, Utc};
use serde::Deserialize;
use serde_json::Value;
use sqlx::postgres::{PgConnectOptions, PgPool, PgPoolOptions, PgSslMode};
use tokio::sync::OnceCell;

use crate::{Storage, StorageError};

/// Options of `storage.postgres` (the Python names and defaults).
#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct PostgresOptions {
    /// Accepted for compatibility; unused.
    pub name: Option<String>,
    /// Database name.
    pub database: String,
    /// User.
    pub user: String,
    /// Password.
    pub password: String,
    /// Host.
    pub host: String,
    /// Port (a number or a numeric string).
    #[serde(deserialize_with = "crate::options::port")]
    pub port: u16,
    /// Table name (letters, digits and `_`).
    pub table_name: String,
    /// TLS to the server, with libpq's (and psycopg's) names and meanings:
    /// `disable`, `allow`, `prefer` (the default: TLS when the server offers it,
    /// unchecked), `require` (TLS, unchecked), `verify-ca` (the certificate is
    /// checked against `sslrootcert`, else the bundled web roots) or
    /// `verify-full` (that, and the host name too).
    pub sslmode: Option<String>,
    /// PEM file of the CA(s) the server's certificate is checked against
    /// (managed databases publish theirs).
    pub sslrootcert: Option<String>,
    /// PEM client certificate, for servers that require one (with `sslkey`).
    pub sslcert: Option<String>,
    /// The client certificate's PEM private key.
    pub sslkey: Option<String>,
}

impl Default for PostgresOptions {
    fn default() -> Self {
        Self {
            name: None,
            database: "vcon_db".into(),
            user: "postgres".into(),
            password: String::new(),
            host: "localhost".into(),
            port: 5432,
            table_name: "vcons".into(),
            sslmode: None,
            sslrootcert: None,
            sslcert: None,
            sslkey: None,
        }
    }
}

/// The PostgreSQL storage.
#[derive(Debug, Clone)]
pub struct PostgresStorage {
    name: String,
    table: String,
    connect: PgConnectOptions,
    pool: std::sync::Arc<OnceCell<PgPool>>,
}

impl PostgresStorage {
    /// Check the options and prepare a lazy pool (no connection is made yet).
    pub fn new(name: &str, value: Value) -> Result<Self, StorageError> {
        let invalid = |message: String| StorageError::Options { storage: name.to_string(), message };
        let options: PostgresOptions = if value.is_null() {
            PostgresOptions::default()
        } else {
            serde_json::from_value(value).map_err(|e| invalid(e.to_string()))?
        };
        let table = &options.table_name;
        if table.is_empty()
            || !table.chars().all(|c| c.is_ascii_alphanumeric() || c == '_')
            || table.starts_with(|c: char| c.is_ascii_digit())
        {
            return Err(invalid(format!("table_name `{table}` must be letters, digits and `_`")));
        }
        let mut connect = PgConnectOptions::new()
            .host(&options.host)
            .port(options.port)
            .username(&options.user)
            .password(&options.password)
            .database(&options.database);
        if let Some(mode) = &options.sslmode {
            let mode = mode.parse::<PgSslMode>().map_err(|_| {
                invalid(format!(
                    "sslmode `{mode}` is not one of disable, allow, prefer, require, verify-ca, verify-full"
                ))
            })?;
            connect = connect.ssl_mode(mode);
        }
        for (key, path) in
            [("sslrootcert", &options.sslrootcert), ("sslcert", &options.sslcert), ("sslkey", &options.sslkey)]
        {
            if let Some(path) = path
                && !std::path::Path::new(path).is_file()
            {
                return Err(invalid(format!("{key} `{path}` is not a readable file")));
            }
        }
        if let Some(path) = &options.sslrootcert {
            connect = connect.ssl_root_cert(path);
        }
        match (&options.sslcert, &options.sslkey) {
            (Some(cert), Some(key)) => connect = connect.ssl_client_cert(cert).ssl_client_key(key),
            (None, None) => {}
            _ => return Err(invalid("`sslcert` and `sslkey` go together: set both or neither".into())),
        }
        Ok(Self { name: name.to_string(), table: table.clone(), connect, pool: Default::default() })
    }

    fn db_error(&self, operation: &'static str) -> impl FnOnce(sqlx::Error) -> StorageError + '_ {
        move |e| StorageError::Backend { storage: self.name.clone(), operation, message: e.to_string() }
    }

    /// The pool, created on first use together with the table (the Python DDL)
    /// and the added column; a failure is retried on the next use.
    async fn pool(&self) -> Result<&PgPool, StorageError> {
        self.pool
            .get_or_try_init(|| async {
                let pool = PgPoolOptions::new()
                    .max_connections(8)
                    .acquire_timeout(Duration::from_secs(5))
                    .connect_with(self.connect.clone())
                    .await
                    .map_err(self.db_error("connect"))?;
                let table = &self.table;
                let ddl = format!(
                    r#"CREATE TABLE IF NOT EXISTS "{table}" (
                        "id" UUID NOT NULL PRIMARY KEY,
                        "vcon" TEXT NOT NULL,
                        "uuid" UUID NOT NULL,
                        "created_at" TIMESTAMP NOT NULL,
                        "updated_at" TIMESTAMP,
                        "subject" TEXT,
                        "vcon_json" JSONB
                    );
                    ALTER TABLE "{table}" ADD COLUMN IF NOT EXISTS "vcon_text" TEXT"#
                );
                sqlx::raw_sql(&ddl).execute(&pool).await.map_err(self.db_error("create table"))?;
                Ok(pool)
            })
            .await
    }
}

/// `created_at` as the Python backend stores it: the date-time as written, offset
/// dropped (a timezone-less TIMESTAMP); the time of saving when unreadable.
fn naive_created_at(value: Option<&Value>) -> NaiveDateTime {
    let text = value.and_then(Value::as_str).unwrap_or_default().trim();
    DateTime::parse_from_rfc3339(text)
        .map(|t| t.naive_local())
        .or_else(|_| NaiveDateTime::parse_from_str(&text.replacen(' ', "T", 1), "%Y-%m-%dT%H:%M:%S%.f"))
        .or_else(|_| NaiveDate::parse_from_str(text, "%Y-%m-%d").map(|d| d.and_hms_opt(0, 0, 0).unwrap_or_default()))
        .unwrap_or_else(|_| Utc::now().naive_utc())
}

#[async_trait]
impl Storage for PostgresStorage {
    fn name(&self) -> &str {
        &self.name
    }

    async fn save(&self, uuid: &str, vcon_json: &str) -> Result<(), StorageError> {
        let pool = self.pool().await?;
        let id = uuid::Uuid::parse_str(uuid).map_err(|e| StorageError::Backend {
            storage: self.name.clone(),
            operation: "save",
            message: format!("`{uuid}` is not a uuid: {e}"),
        })?;
        let document: Value = serde_json::from_str(vcon_json).unwrap_or(Value::Null);
        let version = document.get("vcon").and_then(Value::as_str).unwrap_or("0.4.0").to_string();
        let subject = document.get("subject").and_then(Value::as_str).map(String::from);
        let created_at = naive_created_at(document.get("created_at"));
        let sql = format!(
            r#"INSERT INTO "{}" ("id", "vcon", "uuid", "created_at", "updated_at", "subject", "vcon_json", "vcon_text")
               VALUES ($1, $2, $1, $3, $4, $5, $6, $7)
               ON CONFLICT ("id") DO UPDATE SET "vcon" = EXCLUDED."vcon", "uuid" = EXCLUDED."uuid",
                 "created_at" = EXCLUDED."created_at", "updated_at" = EXCLUDED."updated_at",
                 "subject" = EXCLUDED."subject", "vcon_json" = EXCLUDED."vcon_json", "vcon_text" = EXCLUDED."vcon_text""#,
            self.table
        );
        sqlx::query(&sql)
            .bind(id)
            .bind(version)
            .bind(created_at)
            .bind(Utc::now().naive_utc())
            .bind(subject)
            .bind(sqlx::types::Json(&document))
            .bind(vcon_json)
            .execute(pool)
            .await
            .map_err(self.db_error("upsert"))?;
        Ok(())
    }

    async fn get(&self, uuid: &str) -> Result<Option<String>, StorageError> {
        let Ok(id) = uuid::Uuid::parse_str(uuid) else { return Ok(None) };
        let pool = self.pool().await?;
        let sql = format!(r#"SELECT COALESCE("vcon_text", "vcon_json"::text) FROM "{}" WHERE "id" = $1"#, self.table);
        sqlx::query_scalar::<_, Option<String>>(&sql)
            .bind(id)
            .fetch_optional(pool)
            .await
            .map(Option::flatten)
            .map_err(self.db_error("select"))
    }

    async fn delete(&self, uuid: &str) -> Result<bool, StorageError> {
        let Ok(id) = uuid::Uuid::parse_str(uuid) else { return Ok(false) };
        let pool = self.pool().await?;
        let sql = format!(r#"DELETE FROM "{}" WHERE "id" = $1"#, self.table);
        let result = sqlx::query(&sql).bind(id).execute(pool).await.map_err(self.db_error("delete"))?;
        Ok(result.rows_affected() > 0)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn created_at_keeps_the_written_time_and_drops_the_offset() {
        let at = |v: Value| naive_created_at(Some(&v)).to_string();
        assert_eq!(at(json!("2024-03-05T10:00:00+02:00")), "2024-03-05 10:00:00");
        assert_eq!(at(json!("2024-03-05T10:00:00.5Z")), "2024-03-05 10:00:00.500");
        assert_eq!(at(json!("2024-03-05")), "2024-03-05 00:00:00");
    }

    #[test]
    fn options_are_checked_when_the_config_loads() {
        assert!(PostgresStorage::new("pg", json!({"port": "5432", "host": "127.0.0.1"})).is_ok());
        assert!(PostgresStorage::new("pg", json!({"table_name": "vcons; drop table x"})).is_err());
        assert!(PostgresStorage::new("pg", json!({"port": "not-a-port"})).is_err());
        assert!(PostgresStorage::new("pg", json!({"hostname": "typo"})).is_err());
    }
}
