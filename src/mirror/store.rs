//! The mirror's database I/O: connect and migrate, write, delete, and which parents are missing.

use std::time::Duration;

use sqlx::postgres::{PgConnection, PgPool, PgPoolOptions};
// Statements are built from our own table and column names (static, or read from the catalog),
// never from object contents, which are always bound parameters.
use sqlx::types::Json;
use sqlx::{AssertSqlSafe, Postgres, Row};

use uuid::Uuid;

use super::{AuditRow, Prepared, sql};

/// The migrations of `migrations/`, embedded in the binary.
pub static MIGRATOR: sqlx::migrate::Migrator = sqlx::migrate!("./migrations");

/// What went wrong in the database, sorted by what the operator should do about it.
#[derive(Debug, thiserror::Error)]
pub enum StoreError {
    /// The database cannot be reached or failed in a way that may pass: retry with backoff.
    #[error("database unavailable: {0}")]
    Unavailable(#[source] sqlx::Error),
    /// Another object already holds a unique value this one asks for; the first keeps it.
    #[error("{0}")]
    Conflict(String),
    /// A row this one points at is gone (deleted since it was resolved): wait for it.
    #[error("{0}")]
    ParentMissing(String),
    /// The database refused a value (a CHECK or a type): the spec must change.
    #[error("{0}")]
    Rejected(String),
    /// Rows that the seed's foreign keys protect still point at this one.
    #[error("{0}")]
    StillReferenced(String),
    #[error("migration failed: {0}")]
    Migrate(#[from] sqlx::migrate::MigrateError),
    /// The schema is older than this binary, and it was not to migrate it.
    #[error("migrations not applied: {0}; run `windflow migrate` as the migration role")]
    NotMigrated(String),
}

impl StoreError {
    /// Whether the database was lost ([`connection_lost`]), as opposed to refusing something.
    pub fn database_lost(&self) -> bool {
        match self {
            Self::Unavailable(error) | Self::Migrate(sqlx::migrate::MigrateError::Execute(error)) => {
                connection_lost(error)
            }
            _ => false,
        }
    }
}

pub type Result<T, E = StoreError> = std::result::Result<T, E>;

/// Where tenants reach the database of `url`: its port and database, at `host` or its own.
pub fn tenant_database(url: &str, host: Option<&str>) -> Result<crate::provision::TenantDatabase> {
    let options: sqlx::postgres::PgConnectOptions = url.parse().map_err(StoreError::Unavailable)?;
    Ok(crate::provision::TenantDatabase {
        host: host.unwrap_or(options.get_host()).to_owned(),
        port: options.get_port(),
        dbname: options.get_database().unwrap_or("postgres").to_owned(),
    })
}

/// A pool that tries once per second for `acquire_timeout` and never blocks startup: the
/// operator runs, reports not ready, and catches up when PostgreSQL is back.
pub fn pool(url: &str, max_connections: u32) -> Result<PgPool> {
    PgPoolOptions::new()
        .max_connections(max_connections)
        .acquire_timeout(Duration::from_secs(5))
        // No ping before each use: a reconcile's write is one round trip and a ping would add
        // another; a dead connection fails the query instead, and that reconcile retries with
        // backoff.
        .test_before_acquire(false)
        .connect_lazy(url)
        .map_err(StoreError::Unavailable)
}

/// Whether `error` says the database was not reached or the connection was cut (the server
/// stopped, restarted or shut the session down), rather than that it refused a statement.
pub fn connection_lost(error: &sqlx::Error) -> bool {
    match error {
        sqlx::Error::Io(_) | sqlx::Error::Tls(_) | sqlx::Error::PoolTimedOut | sqlx::Error::PoolClosed => true,
        // Class 08: connection exceptions; 57P01-57P03: the server shuts down or starts.
        sqlx::Error::Database(db) => {
            db.code().is_some_and(|code| code.starts_with("08") || ["57P01", "57P02", "57P03"].contains(&&*code))
        }
        _ => false,
    }
}

/// [`prepare`], waiting while the database is not reached (it may be starting or failing
/// over): a replica started during an outage stands by until it returns instead of exiting.
/// Anything else (a refused login, missing migrations) fails at once.
pub async fn prepare_when_reached(pool: &PgPool, apply: bool) -> Result<()> {
    let mut delay = Duration::from_secs(1);
    loop {
        match prepare(pool, apply).await {
            Err(error) if error.database_lost() => {
                tracing::warn!(%error, ?delay, "the database is not reached; trying again");
                tokio::time::sleep(delay).await;
                delay = (delay * 2).min(Duration::from_secs(30));
            }
            other => return other,
        }
    }
}

/// Applies the embedded migrations.
pub async fn migrate(pool: &PgPool) -> Result<()> {
    MIGRATOR.run(pool).await?;
    Ok(())
}

/// Applies the embedded migrations (`apply`), or only checks that every one is applied: a
/// runtime role, which owns nothing, cannot apply them (`windflow migrate` does, as the
/// migration role).
pub async fn prepare(pool: &PgPool, apply: bool) -> Result<()> {
    if apply {
        return migrate(pool).await;
    }
    let applied: Vec<i64> = sqlx::query_scalar("SELECT version FROM _sqlx_migrations WHERE success")
        .fetch_all(pool)
        .await
        .map_err(StoreError::Unavailable)?;
    let missing: Vec<String> = MIGRATOR
        .iter()
        .filter(|migration| !applied.contains(&migration.version))
        .map(|migration| format!("{} {}", migration.version, migration.description))
        .collect();
    match missing.is_empty() {
        true => Ok(()),
        false => Err(StoreError::NotMigrated(missing.join(", "))),
    }
}

/// Grants `role` what `windflow run` needs, and nothing more: the role `windflow_runtime`.
pub async fn grant_runtime(pool: &PgPool, role: &str) -> Result<()> {
    let grant: String = sqlx::query_scalar("SELECT format('GRANT windflow_runtime TO %I', $1::text)")
        .bind(role)
        .fetch_one(pool)
        .await
        .map_err(StoreError::Unavailable)?;
    // Built by PostgreSQL's own quoting of the role's name.
    sqlx::query(AssertSqlSafe(grant)).execute(pool).await.map_err(StoreError::Unavailable)?;
    Ok(())
}

/// Which of `rows` (a table, an id) do not exist, as indexes into `rows`: after a write failed
/// on a foreign key, the parents it waits for.
pub async fn absent(conn: &mut PgConnection, rows: &[(&str, Uuid)]) -> Result<Vec<usize>> {
    if rows.is_empty() {
        return Ok(Vec::new());
    }
    let tables: Vec<&str> = rows.iter().map(|(table, _)| *table).collect();
    let mut query = sqlx::query_scalar::<_, i32>(AssertSqlSafe(sql::absent(&tables)));
    for (_, id) in rows {
        query = query.bind(id);
    }
    let absent = query.fetch_all(&mut *conn).await.map_err(StoreError::Unavailable)?;
    Ok(absent.into_iter().filter_map(|i| usize::try_from(i).ok()).collect())
}

/// What a write did.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Written {
    /// The row was new, or newer than the stored one.
    pub written: bool,
    /// Something changed, and an audit row says what.
    pub audited: bool,
}

/// Writes the row, its join rows and the audit row in one transaction.
///
/// An object whose status does not say its row is written is almost always new: the leaner
/// create goes first, and only if a row with its id exists after all (its status was never
/// recorded, the operator stopped in between) does the upsert follow.
pub async fn write(conn: &mut PgConnection, prepared: &Prepared) -> Result<Written> {
    if !prepared.row_recorded {
        let created = run_write(conn, prepared, sql::Write::Create).await?;
        if created.written {
            return Ok(created);
        }
    }
    run_write(conn, prepared, sql::Write::Upsert).await
}

async fn run_write(conn: &mut PgConnection, prepared: &Prepared, mode: sql::Write) -> Result<Written> {
    let table = prepared.entity.table;
    let columns: Vec<&str> = prepared.rows.row.keys().map(String::as_str).collect();
    let tenant = prepared.entity.tenant;
    let joins: Vec<_> = prepared.rows.joins.iter().map(|j| (j.table, tenant)).collect();
    let statement = sql::write(mode, table, &columns, &joins);

    // Bound by reference: the rows are serialized straight from the prepared object.
    let mut query = sqlx::query(AssertSqlSafe(statement)).bind(Json(&prepared.rows.row)).bind(Json(&prepared.audit));
    for join in &prepared.rows.joins {
        query = query.bind(Json(&join.rows));
    }
    match query.fetch_one(&mut *conn).await {
        Ok(result) => Ok(Written {
            written: result.try_get("written").map_err(StoreError::Unavailable)?,
            audited: result.try_get("audited").map_err(StoreError::Unavailable)?,
        }),
        Err(error) => Err(explain(conn, prepared, error).await),
    }
}

/// Deletes the row and leaves a `delete` audit row. Returns whether a row was deleted.
pub async fn delete(pool: &PgPool, table: &str, audit: &AuditRow) -> Result<bool> {
    let statement = sql::delete(table);
    match sqlx::query(AssertSqlSafe(statement)).bind(Json(audit)).fetch_optional(pool).await {
        Ok(row) => Ok(row.is_some()),
        Err(sqlx::Error::Database(db)) if db.code().as_deref() == Some(FOREIGN_KEY_VIOLATION) => {
            Err(StoreError::StillReferenced(format!(
                "other rows still point at this one ({}); delete them first",
                db.constraint().unwrap_or("a foreign key")
            )))
        }
        Err(error) => Err(StoreError::Unavailable(error)),
    }
}

/// How far from an object's `deletionTimestamp` a deletion record may be to name its deleter:
/// admission writes it just before the API server marks the object deleted, on clocks that may
/// differ by a little. An older one is of a delete that did not happen (refused after it, by
/// another webhook); a delete admission did not see names nobody.
const DELETION_RECORD_WINDOW_SECONDS: i32 = 60;

/// Records `actor` as the requester of the deletion of the object `id`, as admission saw it.
pub async fn record_deletion(pool: &PgPool, id: Uuid, actor: &super::actor::Actor) -> Result<()> {
    sqlx::query(
        "INSERT INTO deletion_requests (resource_id, actor) VALUES ($1, $2) \
         ON CONFLICT (resource_id) DO UPDATE SET actor = EXCLUDED.actor, requested_at = NOW()",
    )
    .bind(id)
    .bind(Json(actor))
    .execute(pool)
    .await
    .map_err(StoreError::Unavailable)?;
    Ok(())
}

/// Who admission recorded as requesting the deletion of the object `id`, marked deleted at
/// `deleted_at` (RFC 3339); none when admission did not see it.
pub async fn deleter(pool: &PgPool, id: Uuid, deleted_at: &str) -> Result<Option<super::actor::Actor>> {
    let recorded: Option<Json<super::actor::Actor>> = sqlx::query_scalar(
        "SELECT actor FROM deletion_requests WHERE resource_id = $1 \
           AND requested_at BETWEEN $2::timestamptz - make_interval(secs => $3) \
                                AND $2::timestamptz + make_interval(secs => $3)",
    )
    .bind(id)
    .bind(deleted_at)
    .bind(DELETION_RECORD_WINDOW_SECONDS)
    .fetch_optional(pool)
    .await
    .map_err(StoreError::Unavailable)?;
    Ok(recorded.map(|Json(actor)| actor))
}

const UNIQUE_VIOLATION: &str = "23505";
const FOREIGN_KEY_VIOLATION: &str = "23503";

/// Turns a failed write into what users must see: who holds a unique value, which parent is
/// missing, which value the database refused.
async fn explain(conn: &mut PgConnection, prepared: &Prepared, error: sqlx::Error) -> StoreError {
    let sqlx::Error::Database(db) = &error else {
        return StoreError::Unavailable(error);
    };
    let constraint = db.constraint().unwrap_or("unknown").to_owned();
    match db.code().as_deref() {
        Some(UNIQUE_VIOLATION) => {
            let table = db.table().unwrap_or_default().to_owned();
            let holder = if table == prepared.entity.table {
                holder_of(conn, &table, &constraint, prepared).await
            } else {
                None
            };
            StoreError::Conflict(match holder {
                Some(holder) => format!("{holder} already holds this value ({constraint}); the first owner keeps it"),
                None => format!("a value is already taken ({constraint}): {}", db.message()),
            })
        }
        Some(FOREIGN_KEY_VIOLATION) => StoreError::ParentMissing(format!("a referenced row is gone ({constraint})")),
        Some(code) if code.starts_with("22") || code.starts_with("23") => {
            StoreError::Rejected(format!("the database refused the object ({constraint}): {}", db.message()))
        }
        _ => StoreError::Unavailable(error),
    }
}

/// The object that holds the values of `constraint` that the prepared row asks for, as "Kind ns/name".
async fn holder_of(conn: &mut PgConnection, table: &str, constraint: &str, prepared: &Prepared) -> Option<String> {
    let columns: Vec<String> = sqlx::query_scalar(
        "SELECT a.attname::text FROM pg_index x \
         JOIN pg_class i ON i.oid = x.indexrelid \
         JOIN pg_attribute a ON a.attrelid = x.indrelid AND a.attnum = ANY(x.indkey) \
         WHERE i.relname = $1 ORDER BY array_position(x.indkey, a.attnum)",
    )
    .bind(constraint)
    .fetch_all(&mut *conn)
    .await
    .ok()?;
    if columns.is_empty() {
        return None;
    }
    let list = columns.join(", ");
    let statement = format!(
        "SELECT k8s_namespace, k8s_name FROM {table} \
         WHERE ({list}) = (SELECT {list} FROM jsonb_populate_record(NULL::{table}, $1)) AND id <> $2 LIMIT 1"
    );
    let (namespace, name): (Option<String>, Option<String>) = sqlx::query_as::<Postgres, _>(AssertSqlSafe(statement))
        .bind(Json(&prepared.rows.row))
        .bind(prepared.id)
        .fetch_optional(&mut *conn)
        .await
        .ok()??;
    let name = name?;
    Some(crate::describe(prepared.entity.kind, namespace.as_deref(), &name))
}
