//! `windflow check` and `resync` against a real PostgreSQL: the sample platform's objects as
//! the cluster would list them, and rows changed behind the operator's back.

mod support;

use serde_json::Value;
use support::*;
use windflow::check::{check, resync};

async fn execute(pool: &sqlx::PgPool, statement: &str) {
    sqlx::query(sqlx::AssertSqlSafe(statement.to_owned())).execute(pool).await.expect(statement);
}

#[tokio::test]
async fn check_finds_every_kind_of_drift_and_resync_repairs_it() {
    let db = database().await;
    let objects = converged(&db.pool, &platform()).await;
    let clean = check(&db.pool, &objects).await.expect("database reachable");
    assert!(clean.is_empty(), "a converged mirror has no differences: {clean:#?}");

    // Behind the operator's back: a column, a join row, a whole row, a fence, and an object
    // deleted from the cluster while the operator was down.
    execute(&db.pool, "UPDATE volumes SET size_gb = 1 WHERE k8s_name = 'pgdata'").await;
    execute(&db.pool, "DELETE FROM user_groups").await;
    execute(&db.pool, "DELETE FROM dnssec_keys WHERE k8s_name = 'ksk-2026'").await;
    execute(&db.pool, "UPDATE networks SET k8s_resource_version = 0 WHERE k8s_name = 'frontend'").await;
    let remaining: Vec<_> = objects.iter().filter(|o| o["kind"] != "DnsRecord").cloned().collect();

    let found: Vec<String> =
        check(&db.pool, &remaining).await.expect("checked").iter().map(ToString::to_string).collect();
    let expect = |needle: &str| assert!(found.iter().any(|d| d.contains(needle)), "{needle} in {found:#?}");
    expect("Volume acme/pgdata: size_gb: the row has 1");
    expect("Group acme/platform-team: user_groups: no row for");
    expect("DnssecKey acme/ksk-2026: no row");
    // A row whose version is behind its object's with the same columns is in sync: the mirror
    // does not rewrite a row when only the version moved.
    assert!(!found.iter().any(|d| d.contains("Network acme/frontend")), "{found:#?}");
    expect("DnsRecord acme/www (row");
    assert_eq!(found.len(), 5, "two members lost, four kinds of drift: {found:#?}");

    let blocked = resync(&db.pool, &remaining).await.expect("resynced");
    assert!(blocked.is_empty(), "{blocked:#?}");
    let after = check(&db.pool, &remaining).await.expect("checked");
    assert!(after.is_empty(), "resync leaves nothing to report: {after:#?}");
    let audited: i64 =
        sqlx::query_scalar("SELECT count(*) FROM audit_logs WHERE action = 'delete' AND resource_name = 'www'")
            .fetch_one(&db.pool)
            .await
            .expect("audit");
    assert_eq!(audited, 1, "the stray row's deletion is audited");
}

#[tokio::test]
async fn resync_rebuilds_an_empty_database_whatever_the_statuses_say() {
    let db = database().await;
    // Children first; some objects were never mirrored (no status), the rest were, into a
    // database since lost (their status says so, their rows are gone).
    let mut objects: Vec<Value> =
        platform().iter().enumerate().map(|(i, doc)| if i % 2 == 0 { as_mirrored(doc) } else { doc.clone() }).collect();
    objects.reverse();
    let blocked = resync(&db.pool, &objects).await.expect("resynced");
    assert!(blocked.is_empty(), "{blocked:#?}");
    assert_eq!(count(&db.pool, "audit_logs").await, objects.len() as i64, "one create each");
    let after = check(&db.pool, &objects).await.expect("checked");
    assert!(after.is_empty(), "{after:#?}");
}
