//! The migrations hold the seed's schema: every table, column (with its type), named
//! constraint, index, materialized view and function the seed document gives.

mod support;

use std::collections::BTreeSet;

const SEED: &str = include_str!("../docs/seed-data-model.fr.md");

#[derive(Debug, Default)]
struct SeedSchema {
    /// (table, column, SQL type as the seed writes it)
    columns: Vec<(String, String, String)>,
    constraints: Vec<(String, String)>,
    indexes: Vec<String>,
    views: Vec<String>,
    functions: Vec<String>,
}

fn word_after<'a>(line: &'a str, prefix: &str) -> Option<&'a str> {
    line.trim().strip_prefix(prefix).and_then(|rest| rest.split(|c: char| c.is_whitespace() || c == '(').next())
}

/// Reads the seed's SQL blocks (the last one is cut short in the document: read what is there).
fn seed_schema() -> SeedSchema {
    let mut schema = SeedSchema::default();
    let mut table: Option<String> = None;
    for block in SEED.split("```sql").skip(1) {
        let sql = block.split("```").next().unwrap_or_default();
        for line in sql.lines() {
            let trimmed = line.trim();
            if let Some(name) = word_after(trimmed, "CREATE TABLE ") {
                table = Some(name.to_owned());
            } else if trimmed.starts_with(");") {
                table = None;
            } else if let Some(name) =
                word_after(trimmed, "CREATE INDEX ").or_else(|| word_after(trimmed, "CREATE UNIQUE INDEX "))
            {
                schema.indexes.push(name.to_owned());
            } else if let Some(name) = word_after(trimmed, "CREATE MATERIALIZED VIEW ") {
                schema.views.push(name.to_owned());
            } else if let Some(name) = word_after(trimmed, "CREATE OR REPLACE FUNCTION ") {
                schema.functions.push(name.to_owned());
            } else if let Some(table) = &table {
                if let Some(name) = word_after(trimmed, "CONSTRAINT ") {
                    schema.constraints.push((table.clone(), name.to_owned()));
                } else if !trimmed.is_empty()
                    && !trimmed.starts_with("--")
                    && !trimmed.starts_with("UNIQUE")
                    && !trimmed.starts_with(')')
                {
                    let mut words = trimmed.split_whitespace();
                    if let (Some(column), Some(sql_type)) = (words.next(), words.next())
                        && column.chars().all(|c| c.is_ascii_lowercase() || c == '_')
                    {
                        let sql_type = sql_type.trim_end_matches(',').to_owned();
                        schema.columns.push((table.clone(), column.to_owned(), sql_type));
                    }
                }
            }
        }
    }
    schema
}

/// The seed's type, as `format_type` prints it.
fn postgres_type(seed_type: &str) -> String {
    let lower = seed_type.to_lowercase();
    if let Some(rest) = lower.strip_prefix("varchar") {
        return format!("character varying{rest}");
    }
    if let Some(rest) = lower.strip_prefix("decimal") {
        return format!("numeric{rest}");
    }
    match lower.as_str() {
        "timestamp" => "timestamp with time zone".into(),
        "boolean" | "uuid" | "jsonb" | "text" | "integer" | "inet" | "cidr" => lower,
        other => other.into(),
    }
}

#[test]
fn the_seed_parser_finds_the_whole_schema() {
    let seed = seed_schema();
    let tables: BTreeSet<&str> = seed.columns.iter().map(|(t, _, _)| t.as_str()).collect();
    assert_eq!(tables.len(), 18, "{tables:?}");
    assert!(seed.constraints.len() >= 25, "{:?}", seed.constraints);
    assert_eq!(seed.views, ["active_deployments", "organization_resources"]);
    assert_eq!(seed.functions, ["create_deployment"]);
    assert!(seed.indexes.len() >= 60);
}

/// Whether the catalog query `probe` finds a row for `arguments`.
async fn catalog_has(pool: &sqlx::PgPool, probe: &str, arguments: &[&str]) -> bool {
    let mut query = sqlx::query_scalar(sqlx::AssertSqlSafe(format!("SELECT EXISTS ({probe})")));
    for argument in arguments {
        query = query.bind(*argument);
    }
    query.fetch_one(pool).await.expect("catalog")
}

#[tokio::test]
async fn migrations_hold_every_table_column_constraint_index_view_and_function_of_the_seed() {
    let db = support::database().await;
    let seed = seed_schema();
    for (table, column, seed_type) in &seed.columns {
        let found: Option<String> = sqlx::query_scalar(
            "SELECT format_type(a.atttypid, a.atttypmod) FROM pg_attribute a \
             WHERE a.attrelid = $1::regclass AND a.attname = $2 AND NOT a.attisdropped",
        )
        .bind(table)
        .bind(column)
        .fetch_optional(&db.pool)
        .await
        .expect("catalog");
        assert_eq!(found.as_deref(), Some(postgres_type(seed_type).as_str()), "{table}.{column}");
    }
    for (table, constraint) in &seed.constraints {
        let found = catalog_has(
            &db.pool,
            "SELECT 1 FROM pg_constraint WHERE conrelid = $1::regclass AND conname = $2",
            &[table.as_str(), constraint.as_str()],
        )
        .await;
        assert!(found, "constraint {constraint} on {table}");
    }
    for index in &seed.indexes {
        assert!(
            catalog_has(&db.pool, "SELECT 1 FROM pg_indexes WHERE indexname = $1", &[index.as_str()]).await,
            "index {index}"
        );
    }
    for view in &seed.views {
        let found = catalog_has(&db.pool, "SELECT 1 FROM pg_matviews WHERE matviewname = $1", &[view.as_str()]).await;
        assert!(found, "materialized view {view}");
        // Refreshed concurrently in production: that needs their unique index.
        sqlx::query(sqlx::AssertSqlSafe(format!("REFRESH MATERIALIZED VIEW CONCURRENTLY {view}")))
            .execute(&db.pool)
            .await
            .expect("concurrent refresh");
    }
    for function in &seed.functions {
        let found = catalog_has(&db.pool, "SELECT 1 FROM pg_proc WHERE proname = $1", &[function.as_str()]).await;
        assert!(found, "function {function}");
    }
}

#[tokio::test]
async fn the_tables_the_diagram_names_without_sql_exist() {
    let db = support::database().await;
    for table in [
        "groups",
        "user_groups",
        "policies",
        "rules",
        "functions",
        "tags",
        "user_tags",
        "group_tags",
        "policy_tags",
        "element_tags",
        "environment_tags",
        "policy_users",
        "policy_groups",
        "physical_hosts",
        "dns_records",
        "dnssec_keys",
        "volume_container_clusters",
        "volume_vms",
        "network_container_nodes",
        "network_vms",
        "network_physical_hosts",
        "network_gateways",
        "deployment_logs",
        "audit_logs",
    ] {
        let found = catalog_has(&db.pool, "SELECT 1 WHERE to_regclass($1) IS NOT NULL", &[table]).await;
        assert!(found, "table {table}");
    }
}

#[tokio::test]
async fn every_mirrored_table_is_looked_up_by_name_first() {
    let db = support::database().await;
    let indexes: Vec<(String, Option<String>)> = sqlx::query_as(
        "SELECT c.table_name::text, i.indexdef FROM information_schema.columns c \
         LEFT JOIN pg_indexes i ON i.tablename = c.table_name AND i.indexname = 'idx_' || c.table_name || '_k8s_object' \
         WHERE c.table_schema = current_schema() AND c.column_name = 'k8s_name'",
    )
    .fetch_all(&db.pool)
    .await
    .expect("catalog");
    assert_eq!(indexes.len(), 21, "one table per kind: {indexes:?}");
    for (table, definition) in indexes {
        let definition = definition.unwrap_or_else(|| panic!("{table} has no lookup index"));
        assert!(
            definition.contains("(k8s_name, k8s_namespace) NULLS NOT DISTINCT WHERE (k8s_name IS NOT NULL)"),
            "{table}: {definition}"
        );
    }
}

/// Audit rows written before the mirror redacted password hashes lose them to a migration.
#[tokio::test]
async fn password_hashes_already_in_the_audit_trail_are_redacted() {
    let db = support::database().await;
    let hash = "$argon2id$v=19$m=19456,t=2,p=1$c2FsdA$aGFzaA";
    let changes = serde_json::json!({ "row": {
        "email": { "old": null, "new": "carol@acme.example" },
        "hashed_password": { "old": null, "new": hash },
    } });
    sqlx::query(
        "INSERT INTO audit_logs (actor, action, resource_type, resource_id, resource_name, changes) \
         VALUES ('alice', 'create', 'User', gen_random_uuid(), 'carol', $1)",
    )
    .bind(&changes)
    .execute(&db.pool)
    .await
    .expect("an audit row as written before");
    let redaction = include_str!("../migrations/0013_no_password_hashes_in_the_audit_trail.sql");
    sqlx::raw_sql(sqlx::AssertSqlSafe(redaction)).execute(&db.pool).await.expect("the migration runs");
    let stored: serde_json::Value = sqlx::query_scalar("SELECT changes FROM audit_logs WHERE resource_name = 'carol'")
        .fetch_one(&db.pool)
        .await
        .expect("row");
    assert_eq!(stored["row"]["hashed_password"], "changed");
    assert_eq!(stored["row"]["email"]["new"], "carol@acme.example", "the rest is kept");
    assert!(!stored.to_string().contains("argon2"), "{stored}");
}
