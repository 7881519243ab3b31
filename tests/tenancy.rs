//! Tenant SQL access on a real PostgreSQL: three organizations, each with the sample's objects
//! in every mirrored table, and each with its own login as the operator makes it. Each login
//! sees exactly its organization's rows, through any query, and no escape works.

mod support;

use std::collections::BTreeMap;

use sqlx::postgres::{PgConnectOptions, PgPool, PgPoolOptions};
use sqlx::{AssertSqlSafe, Row};
use uuid::Uuid;
use windflow::mirror::tenants;

const ORGANIZATIONS: [&str; 3] = ["acme", "globex", "initech"];
const RANDOM_QUERIES: usize = 10_000;
/// The random queries' seed: `WINDFLOW_TENANCY_SEED` replays another.
const SEED: u64 = 20261203;

/// A login and what it may see.
struct Tenant {
    organization: Uuid,
    role: String,
    password: String,
    pool: PgPool,
}

async fn connect(url: &str, role: &str, password: &str) -> Result<PgPool, sqlx::Error> {
    let options: PgConnectOptions = url.parse()?;
    PgPoolOptions::new().max_connections(1).connect_with(options.username(role).password(password)).await
}

/// The tables a tenant reads its organization's rows of: every table with `organization_id`.
async fn tenant_tables(owner: &PgPool) -> Vec<String> {
    sqlx::query_scalar(
        "SELECT c.table_name::text FROM information_schema.columns c JOIN information_schema.tables t \
         USING (table_schema, table_name) WHERE c.table_schema = current_schema() \
         AND c.column_name = 'organization_id' AND t.table_type = 'BASE TABLE' ORDER BY 1",
    )
    .fetch_all(owner)
    .await
    .expect("tables")
}

async fn count(pool: &PgPool, sql: String) -> Result<i64, sqlx::Error> {
    sqlx::query_scalar(AssertSqlSafe(sql)).fetch_one(pool).await
}

/// The platform of three organizations mirrored, the views refreshed, a login per tenant.
async fn tenants(db: &support::TestDb) -> Vec<Tenant> {
    let mut docs = support::stored(ORGANIZATIONS.iter().flat_map(|org| support::platform_of(org)).collect());
    // Tagged elements and policies too, so that every join table has rows.
    for doc in docs.iter_mut().filter(|doc| doc["kind"] == "Element" || doc["kind"] == "Policy") {
        doc["spec"]["tags"] = serde_json::json!(["critical"]);
    }
    support::converged(&db.pool, &docs).await;
    // What rollouts write: their steps and logs.
    for sql in [
        "INSERT INTO deployment_events (deployment_id, organization_id, event_type, message, step) \
         SELECT id, organization_id, 'started', 'fixture', 'started' FROM deployments",
        "INSERT INTO deployment_logs (deployment_id, organization_id, message) \
         SELECT id, organization_id, 'fixture' FROM deployments",
    ] {
        sqlx::query(sql).execute(&db.pool).await.expect("rollout rows");
    }
    for view in ["active_deployments", "organization_resources"] {
        sqlx::query(AssertSqlSafe(format!("REFRESH MATERIALIZED VIEW {view}")))
            .execute(&db.pool)
            .await
            .expect("refresh");
    }
    sqlx::query("ANALYZE").execute(&db.pool).await.expect("analyze");
    let mut tenants = vec![];
    for name in ORGANIZATIONS {
        let organization: Uuid = sqlx::query_scalar("SELECT id FROM organizations WHERE name = $1")
            .bind(name)
            .fetch_one(&db.pool)
            .await
            .expect("the organization");
        let password = tenants::new_password().expect("a password");
        let role = tenants::ensure(&db.pool, organization, &password, true).await.expect("a login");
        let pool = connect(&db.url, &role, &password).await.expect("the tenant logs in");
        tenants.push(Tenant { organization, role, password, pool });
    }
    tenants
}

#[tokio::test]
async fn each_tenant_login_sees_exactly_its_organizations_rows() {
    let db = support::database().await;
    let tenants = tenants(&db).await;
    let tables = tenant_tables(&db.pool).await;
    assert!(tables.len() >= 30, "every mirrored table: {tables:?}");
    let mut seen: BTreeMap<String, i64> = BTreeMap::new();
    for tenant in &tenants {
        let org = tenant.organization;
        for table in &tables {
            let own = count(&db.pool, format!("SELECT count(*) FROM {table} WHERE organization_id = '{org}'"))
                .await
                .expect("own");
            let visible = count(&tenant.pool, format!("SELECT count(*) FROM {table}")).await.expect("visible");
            assert_eq!(visible, own, "{} in {table}", tenant.role);
            let foreign =
                count(&tenant.pool, format!("SELECT count(*) FROM {table} WHERE organization_id <> '{org}'")).await;
            assert_eq!(foreign.expect("foreign"), 0, "{} in {table}", tenant.role);
            *seen.entry(table.clone()).or_default() += visible;
        }
        // Its organization, its members, its rows of both views.
        assert_eq!(count(&tenant.pool, "SELECT count(*) FROM organizations".into()).await.expect("orgs"), 1);
        let members =
            count(&db.pool, format!("SELECT count(*) FROM user_organizations WHERE organization_id = '{org}'"))
                .await
                .expect("members");
        let everything = sqlx::query("SELECT * FROM users").fetch_all(&tenant.pool).await;
        assert!(everything.is_err(), "SELECT * of users names hashed_password, which is not granted");
        let users = count(&tenant.pool, "SELECT count(id) FROM users".into()).await.expect("users");
        assert_eq!(users, members);
        let hash = count(&tenant.pool, "SELECT count(hashed_password) FROM users".into()).await;
        assert!(hash.is_err_and(|e| e.to_string().contains("permission denied")), "no password hash");
        for view in ["tenant_organization_resources", "tenant_active_deployments"] {
            let other = count(&tenant.pool, format!("SELECT count(*) FROM {view} WHERE organization_id <> '{org}'"));
            assert_eq!(other.await.expect(view), 0, "{view}");
        }
        let resources =
            count(&tenant.pool, "SELECT count(*) FROM tenant_organization_resources".into()).await.expect("resources");
        assert_eq!(resources, 1);
        let matview = count(&tenant.pool, "SELECT count(*) FROM organization_resources".into()).await;
        assert!(matview.is_err(), "the materialized view itself is not granted");
    }
    // Every table had rows to hide: each tenant saw its own, none saw another's.
    let empty: Vec<&String> = seen.iter().filter(|(_, rows)| **rows == 0).map(|(table, _)| table).collect();
    assert!(empty.is_empty(), "the platform fills every table: {empty:?}");
    eprintln!("{} tables, {} rows, each seen by its tenant only", tables.len(), seen.values().sum::<i64>());
}

/// A random read-only query over `tables`: a table, maybe joined to another (or to
/// organizations) on anything, filtered or not, with the organization of every row it returns.
fn random_query(rng: &mut fastrand::Rng, tables: &[String], organizations: &[Uuid]) -> String {
    let first = &tables[rng.usize(..tables.len())];
    let other = organizations[rng.usize(..organizations.len())];
    let filter = match rng.u8(..6) {
        0 => String::new(),
        1 => format!(" WHERE a.organization_id = '{other}'"),
        2 => format!(" WHERE a.organization_id = '{other}' OR true"),
        3 => " WHERE a.organization_id IN (SELECT id FROM organizations)".into(),
        4 => format!(" WHERE NOT (a.organization_id = '{other}')"),
        _ => " WHERE a.organization_id IS NOT NULL".into(),
    };
    match rng.u8(..5) {
        0 => format!("SELECT a.organization_id FROM {first} a{filter}"),
        1 => {
            let second = &tables[rng.usize(..tables.len())];
            format!(
                "SELECT a.organization_id, b.organization_id FROM {first} a CROSS JOIN {second} b{filter} LIMIT 200"
            )
        }
        2 => format!("SELECT o.id FROM organizations o LEFT JOIN {first} a ON a.organization_id = o.id{filter}"),
        3 => {
            let view = ["tenant_organization_resources", "tenant_active_deployments"][rng.usize(..2)];
            format!("SELECT a.organization_id FROM {first} a{filter} UNION ALL SELECT organization_id FROM {view}")
        }
        _ => format!(
            "SELECT a.organization_id FROM {first} a{filter} UNION SELECT r.organization_id FROM tenant_roles r"
        ),
    }
}

#[tokio::test]
async fn ten_thousand_random_queries_return_only_the_tenants_rows() {
    let db = support::database().await;
    let tenants = tenants(&db).await;
    let tables = tenant_tables(&db.pool).await;
    let organizations: Vec<Uuid> = tenants.iter().map(|t| t.organization).collect();
    let seed = std::env::var("WINDFLOW_TENANCY_SEED").ok().and_then(|s| s.parse().ok()).unwrap_or(SEED);
    let mut rng = fastrand::Rng::with_seed(seed);
    let mut rows = 0usize;
    for i in 0..RANDOM_QUERIES {
        let tenant = &tenants[i % tenants.len()];
        let sql = random_query(&mut rng, &tables, &organizations);
        let result = sqlx::query(AssertSqlSafe(sql.clone())).fetch_all(&tenant.pool).await;
        let result = result.unwrap_or_else(|e| panic!("seed {seed}, query {i} as {}: {sql}: {e}", tenant.role));
        for row in result {
            for column in 0..row.len() {
                let organization: Option<Uuid> = row.try_get(column).expect("an organization id");
                assert!(
                    organization.is_none_or(|o| o == tenant.organization),
                    "seed {seed}, query {i} as {}: {sql} returned {organization:?}",
                    tenant.role
                );
                rows += 1;
            }
        }
    }
    eprintln!("{RANDOM_QUERIES} random queries (seed {seed}) returned {rows} organization ids, all the tenant's own");
    assert!(rows > RANDOM_QUERIES, "the queries return rows to check");
}

#[tokio::test]
async fn no_escape_works() {
    let db = support::database().await;
    let tenants = tenants(&db).await;
    let (acme, globex) = (&tenants[0], &tenants[1]);
    let mut session = acme.pool.acquire().await.expect("a session");
    let visible = "SELECT count(*) FROM volumes WHERE organization_id <> $1";
    let foreign = |n: i64| assert_eq!(n, 0, "another organization's volumes");

    // Another tenant's role, or a superuser's, cannot be taken.
    for escape in
        [format!("SET ROLE {}", globex.role), "SET SESSION AUTHORIZATION postgres".into(), "SET ROLE postgres".into()]
    {
        let refused = sqlx::query(AssertSqlSafe(escape.clone())).execute(&mut *session).await;
        assert!(refused.is_err(), "{escape}");
    }
    // The group role has no organization: nothing.
    sqlx::query("SET ROLE windflow_tenant").execute(&mut *session).await.expect("its own group");
    let none: i64 = sqlx::query_scalar("SELECT count(*) FROM volumes").fetch_one(&mut *session).await.expect("count");
    assert_eq!(none, 0, "windflow_tenant itself sees nothing");
    // Settings: the old key, any other, RESET: the rows stay the login's.
    for setting in [
        format!("SELECT set_config('windflow.organization_id', '{}', false)", globex.organization),
        "SELECT set_config('role', 'postgres', false)".into(),
        "RESET ROLE".into(),
        "RESET ALL".into(),
    ] {
        let _ = sqlx::query(AssertSqlSafe(setting)).execute(&mut *session).await;
        let n: i64 = sqlx::query_scalar(visible).bind(acme.organization).fetch_one(&mut *session).await.expect("count");
        foreign(n);
    }
    // The operator's functions are not the tenant's to call.
    for call in [
        format!("SELECT windflow_tenant_login('{}', 'x', true)", globex.organization),
        format!("SELECT windflow_drop_tenant_login('{}')", globex.organization),
        format!("SELECT windflow_tenant_login_allowed('{}', true)", globex.organization),
        format!("SELECT create_deployment('{}', '{}', '{{}}')", Uuid::new_v4(), Uuid::new_v4()),
    ] {
        let refused = sqlx::query(AssertSqlSafe(call.clone())).execute(&mut *session).await;
        assert!(refused.is_err_and(|e| e.to_string().contains("permission denied")), "{call}");
    }
    // Statistics of tables under row-level security are not shown.
    let stats: i64 = sqlx::query_scalar("SELECT count(*) FROM pg_stats WHERE tablename IN ('volumes', 'users')")
        .fetch_one(&mut *session)
        .await
        .expect("pg_stats");
    assert_eq!(stats, 0, "pg_stats shows nothing of the tenant tables");
    // No write of any kind.
    for write in [
        "INSERT INTO tags (name) VALUES ('mine')",
        "UPDATE volumes SET size_gb = 1",
        "DELETE FROM volumes",
        "TRUNCATE volumes",
        "INSERT INTO tenant_roles (role_name, organization_id) SELECT current_user, id FROM organizations",
        "UPDATE tenant_roles SET organization_id = organization_id",
        "CREATE TABLE mine (id int)",
        "CREATE FUNCTION mine() RETURNS int LANGUAGE sql AS 'SELECT 1'",
        "REFRESH MATERIALIZED VIEW organization_resources",
    ] {
        let refused = sqlx::query(write).execute(&mut *session).await;
        assert!(refused.is_err(), "{write}");
    }
    drop(session);

    // A rotated password: the old one no longer logs in, the new one does.
    let rotated = tenants::new_password().expect("a password");
    tenants::ensure(&db.pool, globex.organization, &rotated, true).await.expect("rotated");
    assert!(connect(&db.url, &globex.role, &globex.password).await.is_err(), "the old password is refused");
    let again = connect(&db.url, &globex.role, &rotated).await.expect("the new password logs in");
    let n: i64 = sqlx::query_scalar(visible).bind(globex.organization).fetch_one(&again).await.expect("count");
    foreign(n);
    // Its organization gone, the login is gone.
    again.close().await;
    tenants::drop_login(&db.pool, globex.organization).await.expect("dropped");
    assert!(connect(&db.url, &globex.role, &rotated).await.is_err(), "a dropped login cannot log in");
}

/// A managed PostgreSQL gives no superuser: the migrations and the logins work for a role that
/// has CREATEROLE and owns its database, and nothing more.
#[tokio::test]
async fn migrations_and_logins_need_only_createrole() {
    let db = support::database().await;
    let password = tenants::new_password().expect("a password");
    for sql in [
        format!("CREATE ROLE windflow_operator LOGIN CREATEROLE PASSWORD '{password}'"),
        "CREATE DATABASE managed OWNER windflow_operator".into(),
    ] {
        sqlx::query(AssertSqlSafe(sql)).execute(&db.pool).await.expect("as the server's administrator");
    }
    let options: PgConnectOptions = db.url.parse().expect("url");
    let operator = PgPoolOptions::new()
        .connect_with(options.clone().username("windflow_operator").password(&password).database("managed"))
        .await
        .expect("the operator logs in");
    let superuser: bool = sqlx::query_scalar("SELECT rolsuper FROM pg_roles WHERE rolname = current_user")
        .fetch_one(&operator)
        .await
        .expect("role");
    assert!(!superuser);
    windflow::mirror::store::migrate(&operator).await.expect("the migrations apply without a superuser");
    let docs = support::stored(support::platform_of("acme"));
    support::converged(&operator, &docs).await;
    let organization: Uuid =
        sqlx::query_scalar("SELECT id FROM organizations").fetch_one(&operator).await.expect("the organization");
    let tenant_password = tenants::new_password().expect("a password");
    let role = tenants::ensure(&operator, organization, &tenant_password, true).await.expect("a login");
    let tenant = PgPoolOptions::new()
        .connect_with(options.username(&role).password(&tenant_password).database("managed"))
        .await
        .expect("the tenant logs in");
    let volumes: i64 = sqlx::query_scalar("SELECT count(*) FROM volumes").fetch_one(&tenant).await.expect("volumes");
    assert_eq!(volumes, 2, "the sample's two volumes");
    tenants::drop_login(&operator, organization).await.expect("dropped without a superuser");
}
