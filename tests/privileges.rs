//! Least privilege in PostgreSQL (migration 0015), on every server the tests have
//! ([`support::servers`]): Debian's PostgreSQL 15, and in CI a current one too. The operator
//! runs as a login granted `windflow_runtime`: it owns nothing and holds no CREATEROLE, yet
//! mirrors the sample platform, refreshes the views and makes, rotates and drops tenant logins.
//! Neither it nor a tenant login can become more.

mod support;

use sqlx::PgPool;
use sqlx::postgres::{PgConnectOptions, PgPoolOptions};
use support::{Cluster, TestDb, database_on, platform, servers};
use uuid::Uuid;
use windflow::mirror::{store, tenants, views};

/// A pool of `role` (with `password`) on `db`'s server, to `database`.
async fn login(db: &TestDb, database: &str, role: &str, password: &str) -> PgPool {
    let options: PgConnectOptions = db.url.parse().expect("the test database's URL");
    PgPoolOptions::new()
        .max_connections(2)
        .connect_with(options.username(role).password(password).database(database))
        .await
        .unwrap_or_else(|e| panic!("{role} connects: {e}"))
}

/// What would make `pool`'s role more than it is: each must fail.
async fn cannot_escalate(pool: &PgPool, who: &str, other_role: &str) {
    for statement in [
        "GRANT pg_execute_server_program TO CURRENT_USER".to_owned(),
        "GRANT pg_read_server_files TO CURRENT_USER".to_owned(),
        "COPY (SELECT 1) TO PROGRAM 'true'".to_owned(),
        format!("ALTER ROLE {other_role} PASSWORD 'taken-over'"),
        "CREATE FUNCTION escalate() RETURNS int LANGUAGE sql AS 'SELECT 1'".to_owned(),
        "CREATE ROLE someone_else LOGIN".to_owned(),
    ] {
        let done = sqlx::raw_sql(sqlx::AssertSqlSafe(statement.clone())).execute(pool).await;
        assert!(done.is_err(), "{who} could run: {statement}");
    }
}

#[tokio::test]
async fn the_runtime_role_owns_nothing_and_neither_it_nor_a_tenant_becomes_more() {
    for server in servers() {
        let db = database_on(server.as_deref()).await;
        let version: String = sqlx::query_scalar("SHOW server_version").fetch_one(&db.pool).await.expect("version");
        eprintln!(
            "PostgreSQL {version} ({})",
            server.as_ref().map_or("local binaries".into(), |b| b.display().to_string())
        );
        if server.is_some() {
            let major: u32 = version.split('.').next().and_then(|m| m.parse().ok()).expect("a major version");
            assert!(major >= 17, "WINDFLOW_TEST_POSTGRES names a current PostgreSQL, not {version}");
        }

        // As the README prescribes: a migration role with CREATEROLE that owns the database,
        // and a runtime login, made by the server's administrator; the migration role migrates
        // and grants the runtime role what it needs.
        let unique = Uuid::new_v4().simple().to_string();
        let (migration, runtime, database) = (
            format!("windflow_migration_{unique}"),
            format!("windflow_runtime_{unique}"),
            format!("windflow_{unique}"),
        );
        for statement in [
            format!("CREATE ROLE {migration} LOGIN CREATEROLE PASSWORD 'migration-password'"),
            format!("CREATE DATABASE {database} OWNER {migration}"),
            format!("CREATE ROLE {runtime} LOGIN PASSWORD 'runtime-password'"),
            // Roles are the server's: another WindFlow database there (the test's own) made the
            // group roles already, and PostgreSQL 16 and later let only who holds ADMIN on a
            // role grant it.
            format!("GRANT windflow_tenant, windflow_runtime TO {migration} WITH ADMIN OPTION"),
        ] {
            sqlx::raw_sql(sqlx::AssertSqlSafe(statement)).execute(&db.pool).await.expect("as the administrator");
        }
        let migrator = login(&db, &database, &migration, "migration-password").await;
        store::migrate(&migrator).await.expect("migrated without a superuser");
        store::grant_runtime(&migrator, &runtime).await.expect("granted");
        let operator = login(&db, &database, &runtime, "runtime-password").await;
        store::prepare(&operator, false).await.expect("the schema is migrated, and the runtime role sees it");
        assert!(store::migrate(&operator).await.is_err(), "the runtime role cannot migrate");

        // It owns nothing and holds no CREATEROLE.
        let (owned, createrole): (i64, bool) = sqlx::query_as(
            "SELECT (SELECT count(*) FROM pg_class WHERE relowner = current_user::regrole) \
                  + (SELECT count(*) FROM pg_proc WHERE proowner = current_user::regrole), \
                    (SELECT rolcreaterole FROM pg_roles WHERE rolname = current_user)",
        )
        .fetch_one(&operator)
        .await
        .expect("its catalog rows");
        assert_eq!((owned, createrole), (0, false));

        // Yet it does all the operator does: mirrors the sample, refreshes the views, makes,
        // rotates and drops a tenant's login.
        let mut cluster = Cluster::new(&operator);
        cluster.converge(&platform()).await;
        views::refresh(&operator).await.expect("the views are refreshed through their owner's function");
        let organization: Uuid = sqlx::query_scalar("SELECT id FROM organizations WHERE name = 'acme'")
            .fetch_one(&operator)
            .await
            .expect("acme's row");
        let tenant = tenants::ensure(&operator, organization, "first-password", false).await.expect("a login");
        tenants::ensure(&operator, organization, "second-password", true).await.expect("rotated");
        let acme = login(&db, &database, &tenant, "second-password").await;
        let rows: i64 = sqlx::query_scalar("SELECT count(*) FROM environments").fetch_one(&acme).await.expect("rows");
        assert!(rows > 0, "the tenant reads its rows");
        // A tenant holds no statement, and no idle transaction, for long.
        for (setting, bound) in [("statement_timeout", "30s"), ("idle_in_transaction_session_timeout", "1min")] {
            let value: String = sqlx::query_scalar(sqlx::AssertSqlSafe(format!("SHOW {setting}")))
                .fetch_one(&acme)
                .await
                .expect("a setting");
            assert_eq!(value, bound, "{setting}");
        }
        let deleted = sqlx::query("DELETE FROM audit_logs").execute(&operator).await;
        assert!(deleted.is_err(), "the audit trail is never deleted");

        cannot_escalate(&operator, "the runtime role", &tenant).await;
        cannot_escalate(&acme, "a tenant login", &runtime).await;

        acme.close().await;
        tenants::drop_login(&operator, organization).await.expect("dropped");
        let left: bool = sqlx::query_scalar("SELECT EXISTS (SELECT FROM pg_roles WHERE rolname = $1)")
            .bind(&tenant)
            .fetch_one(&operator)
            .await
            .expect("roles");
        assert!(!left, "the login is gone");
    }
}
