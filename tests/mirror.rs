//! The mirror against a real, throwaway PostgreSQL: every kind, joins, audit, fencing,
//! ordering, conflicts, deletion and tenancy.

mod support;

use k8s_openapi::jiff::{SignedDuration, Timestamp};
use serde_json::{Value, json};
use support::*;
use uuid::Uuid;
use windflow::mirror::store;
use windflow::reason::Reason;
use windflow::reconcile::Outcome;

fn blocked(outcome: Outcome) -> (Reason, String) {
    match outcome {
        Outcome::Blocked(verdict) => (verdict.reason, verdict.message),
        other => panic!("expected a blocked outcome, got {other:?}"),
    }
}

/// What an early object waits for.
fn early(outcome: Outcome) -> (Reason, String) {
    match outcome {
        Outcome::Early(verdict) => (verdict.reason, verdict.message),
        other => panic!("expected an early outcome, got {other:?}"),
    }
}

/// `doc` with a status whose conditions say `reason` (`Synced`, and `Ready` the same).
fn reported(doc: &Value, reason: &str) -> Value {
    let condition = |type_: &str| {
        json!({ "type": type_, "status": "False", "reason": reason, "message": "",
                "lastTransitionTime": "2026-12-05T10:00:00Z" })
    };
    let mut doc = doc.clone();
    doc["status"] = json!({ "conditions": [condition("Synced"), condition("Ready")] });
    doc
}

#[tokio::test]
async fn every_kind_is_mirrored_in_any_order_fenced_then_deleted_with_an_audit_trail() {
    let db = database().await;
    let mut cluster = Cluster::new(&db.pool);
    let mut docs = platform();
    docs.reverse(); // children first: they wait for their parents
    let passes = cluster.converge(&docs).await;
    assert!(passes > 1, "reverse order needs several passes, took {passes}");

    for (table, rows) in [
        ("organizations", 1),
        ("users", 2),
        ("tags", 1),
        ("functions", 2),
        ("groups", 1),
        ("policies", 1),
        ("environments", 2),
        ("elements", 6),
        ("container_clusters", 1),
        ("container_nodes", 1),
        ("vms", 1),
        ("physical_hosts", 1),
        ("networks", 2),
        ("volumes", 2),
        ("gateways", 1),
        ("domains", 1),
        ("dns_records", 1),
        ("dnssec_keys", 1),
        ("stacks", 1),
        ("applications", 3),
        ("deployments", 1),
        ("user_organizations", 2),
        ("user_groups", 2),
        ("user_tags", 1),
        ("group_tags", 1),
        ("environment_tags", 1),
        ("rules", 2),
        ("policy_users", 1),
        ("policy_groups", 1),
        ("volume_container_clusters", 1),
        ("network_container_nodes", 1),
        ("volume_vms", 1),
        ("network_vms", 1),
        ("network_physical_hosts", 1),
        ("network_gateways", 1),
        ("volume_applications", 3),
        ("network_applications", 5),
    ] {
        assert_eq!(count(&db.pool, table).await, rows, "rows of {table}");
    }
    // One create audit row per object; waiting writes nothing.
    assert_eq!(count(&db.pool, "audit_logs").await, docs.len() as i64);
    // Row ids are the objects' uids, and tenant rows carry the organization.
    let volume = find(&docs, "Volume", "pgdata");
    let (organization, namespace): (Option<uuid::Uuid>, Option<String>) =
        sqlx::query_as("SELECT organization_id, k8s_namespace FROM volumes WHERE id = $1::text::uuid")
            .bind(volume["metadata"]["uid"].as_str())
            .fetch_one(&db.pool)
            .await
            .expect("volume row");
    assert!(organization.is_some());
    assert_eq!(namespace.as_deref(), Some("acme"));

    // Seen again at the same resourceVersion: nothing is written.
    for doc in &docs {
        assert_eq!(
            cluster.mirror(doc).await,
            Outcome::Mirrored(windflow::mirror::store::Written { written: false, audited: false })
        );
    }
    // A newer version with the same content (a status write moved it) writes nothing, and an
    // older version than the stored one is not written.
    for doc in &docs {
        let name = format!("{} {}", doc["kind"], doc["metadata"]["name"]);
        let newer = cluster.mirror(&with_version(doc, 3)).await;
        assert!(matches!(newer, Outcome::Mirrored(w) if !w.written && !w.audited), "{name}: {newer:?}");
        let older = cluster.mirror(&with_version(doc, 2)).await;
        assert!(matches!(older, Outcome::Mirrored(w) if !w.written), "{name}: {older:?}");
    }
    assert_eq!(count(&db.pool, "audit_logs").await, docs.len() as i64);

    // Deleting in reverse order of creation removes every row and leaves a delete audit row each.
    let mut creation_order = docs.clone();
    creation_order.reverse();
    let index = cluster.index();
    for doc in creation_order.iter().rev() {
        assert!(
            remove(&db.pool, &index, &with_version(doc, 4)).await,
            "{} {} deleted",
            doc["kind"],
            doc["metadata"]["name"]
        );
    }
    for table in [
        "organizations",
        "users",
        "elements",
        "volumes",
        "applications",
        "user_organizations",
        "rules",
        "volume_applications",
    ] {
        assert_eq!(count(&db.pool, table).await, 0, "rows left in {table}");
    }
    let deletes: i64 = sqlx::query_scalar(
        "SELECT count(*) FROM audit_logs WHERE action = 'delete' AND actor IS DISTINCT FROM 'cascade'",
    )
    .fetch_one(&db.pool)
    .await
    .expect("count");
    assert_eq!(deletes, docs.len() as i64);
    // Deleted dependents first, no object's row went by a cascade: only the rows that are part
    // of one (memberships, mounts, rules...) did, each audited as such.
    let cascaded: Vec<String> =
        sqlx::query_scalar("SELECT DISTINCT resource_type FROM audit_logs WHERE actor = 'cascade' ORDER BY 1")
            .fetch_all(&db.pool)
            .await
            .expect("cascaded");
    assert!(
        !cascaded.is_empty() && cascaded.iter().all(|table| table.contains('_') || table == "rules"),
        "{cascaded:?}"
    );
    let refused = sqlx::query("DELETE FROM audit_logs").execute(&db.pool).await;
    assert!(refused.is_err(), "the audit trail is never deleted");
}

#[tokio::test]
async fn updates_are_fenced_by_resource_version_and_audited_with_a_diff() {
    let db = database().await;
    let mut cluster = Cluster::new(&db.pool);
    let docs = platform();
    cluster.converge(&docs).await;
    let volume = find(&docs, "Volume", "pgdata");

    let mut bigger = with_version(volume, 10);
    bigger["spec"]["sizeGb"] = json!(80);
    assert!(matches!(cluster.mirror(&bigger).await, Outcome::Mirrored(w) if w.written && w.audited));

    // An older version never overwrites a newer row.
    let mut stale = with_version(volume, 9);
    stale["spec"]["sizeGb"] = json!(60);
    assert!(matches!(cluster.mirror(&stale).await, Outcome::Mirrored(w) if !w.written));
    let size: f64 = sqlx::query_scalar("SELECT size_gb::float8 FROM volumes WHERE k8s_name = 'pgdata'")
        .fetch_one(&db.pool)
        .await
        .expect("size");
    assert_eq!(size, 80.0);

    // A newer version with the same content makes no new row version (its `xmin` stays), and
    // no audit row.
    let row_version = || async {
        let xmin: String = sqlx::query_scalar("SELECT xmin::text FROM volumes WHERE k8s_name = 'pgdata'")
            .fetch_one(&db.pool)
            .await
            .expect("the row's version");
        xmin
    };
    let before = row_version().await;
    let same = with_version(&bigger, 11);
    let outcome = cluster.mirror(&same).await;
    assert!(matches!(outcome, Outcome::Mirrored(w) if !w.written && !w.audited), "{outcome:?}");
    assert_eq!(row_version().await, before, "the row was not written again");

    let (action, changes, version): (String, Value, i64) = sqlx::query_as(
        "SELECT action, changes, resource_version FROM audit_logs WHERE resource_type = 'Volume' ORDER BY created_at DESC, resource_version DESC LIMIT 1",
    )
    .fetch_one(&db.pool)
    .await
    .expect("audit row");
    assert_eq!(action, "update");
    assert_eq!(version, 10);
    assert_eq!(changes["row"]["size_gb"], json!({ "old": 50.00, "new": 80.00 }));
    assert_eq!(changes["row"].as_object().map(|m| m.len()), Some(1), "only what changed: {changes}");

    // A create records every column as new, a delete every column as gone; bookkeeping never.
    let created = last_audit(&db.pool, "pgdata", "create").await;
    assert_eq!(created["row"]["size_gb"], json!({ "old": null, "new": 50.00 }));
    assert_eq!(created["row"]["volume_type"], json!({ "old": null, "new": "ceph" }));
    assert!(created["row"].get("k8s_resource_version").is_none(), "{created}");
    assert!(remove(&db.pool, &cluster.index(), &with_version(&same, 12)).await, "deleted");
    let deleted = last_audit(&db.pool, "pgdata", "delete").await;
    assert_eq!(deleted["row"]["size_gb"], json!({ "old": 80.00, "new": null }));
    assert!(deleted["row"].get("k8s_generation").is_none(), "{deleted}");
}

#[tokio::test]
async fn join_rows_follow_the_spec_and_their_changes_are_audited() {
    let db = database().await;
    let mut cluster = Cluster::new(&db.pool);
    let docs = platform();
    cluster.converge(&docs).await;
    let app = find(&docs, "Application", "storefront");

    let mut moved = with_version(app, 5);
    moved["spec"]["volumes"] = json!([
        { "volume": "pgdata", "mountPath": "/srv/data", "mountOptions": { "readOnly": true } },
        { "volume": "pgdata", "mountPath": "/srv/cache" },
    ]);
    moved["spec"]["networks"] = json!([]);
    let outcome = cluster.mirror(&moved).await;
    assert!(matches!(outcome, Outcome::Mirrored(w) if w.audited), "{outcome:?}");
    let paths: Vec<String> = sqlx::query_scalar(
        "SELECT mount_path FROM volume_applications va JOIN applications a ON a.id = va.application_id \
         WHERE a.k8s_name = 'storefront' ORDER BY mount_path",
    )
    .fetch_all(&db.pool)
    .await
    .expect("paths");
    assert_eq!(paths, ["/srv/cache", "/srv/data"]);
    assert_eq!(count(&db.pool, "network_applications").await, 3, "the storefront's two are gone");

    let changes: Value =
        sqlx::query_scalar("SELECT changes FROM audit_logs WHERE resource_type = 'Application' AND action = 'update'")
            .fetch_one(&db.pool)
            .await
            .expect("audit row");
    let joins = &changes["joins"];
    assert_eq!(joins["volume_applications"]["removed"].as_array().map(Vec::len), Some(1));
    assert_eq!(joins["volume_applications"]["written"].as_array().map(Vec::len), Some(2));
    assert_eq!(joins["network_applications"]["removed"].as_array().map(Vec::len), Some(2));
    assert_eq!(changes["row"], json!({}));
}

/// The audit row of `name`'s last write of `action`.
async fn last_audit(pool: &sqlx::PgPool, name: &str, action: &str) -> Value {
    sqlx::query_scalar(
        "SELECT changes FROM audit_logs WHERE resource_name = $1 AND action = $2 \
         ORDER BY created_at DESC, resource_version DESC LIMIT 1",
    )
    .bind(name)
    .bind(action)
    .fetch_one(pool)
    .await
    .expect("audit row")
}

#[tokio::test]
async fn a_create_writes_what_an_upsert_would_and_a_row_written_before_its_status_is_upserted() {
    let db = database().await;
    let mut cluster = Cluster::new(&db.pool);
    let docs = platform();
    cluster.converge(&docs).await;
    let index = cluster.index();
    let group = find(&docs, "Group", "platform-team");

    // Objects of the same spec: one whose status says nothing (the create goes first), one
    // whose status claims a row that is not there (the upsert goes first).
    let twin = |name: &str| {
        let mut doc = group.clone();
        doc["metadata"]["name"] = json!(name);
        doc["metadata"]["uid"] = json!(uuid::Uuid::new_v4().to_string());
        doc
    };
    let (created, upserted) = (twin("by-create"), as_mirrored(&twin("by-upsert")));
    for doc in [&created, &upserted] {
        let outcome = mirror_with(&db.pool, &index, doc).await;
        assert!(matches!(outcome, Outcome::Mirrored(w) if w.written && w.audited), "{outcome:?}");
    }
    let same_object = |doc: &Value, changes: Value| {
        let text = changes.to_string();
        let uid = doc["metadata"]["uid"].as_str().expect("uid");
        let name = doc["metadata"]["name"].as_str().expect("name");
        serde_json::from_str::<Value>(&text.replace(uid, "UID").replace(name, "NAME")).expect("json")
    };
    let by_create = same_object(&created, last_audit(&db.pool, "by-create", "create").await);
    let by_upsert = same_object(&upserted, last_audit(&db.pool, "by-upsert", "create").await);
    assert_eq!(by_create, by_upsert);
    assert_eq!(by_create["joins"]["user_groups"]["written"].as_array().map(Vec::len), Some(2), "{by_create}");
    assert_eq!(by_create["joins"]["user_groups"]["removed"], json!([]));

    // The status never recorded the write (the operator stopped in between): the create finds
    // the row and the upsert takes over, fenced and diffed as ever.
    let again = mirror_with(&db.pool, &index, &created).await;
    assert_eq!(again, Outcome::Mirrored(windflow::mirror::store::Written { written: false, audited: false }));
    let mut fewer = with_version(&created, 2);
    fewer["spec"]["members"] = json!(["alice"]);
    fewer["spec"]["description"] = json!("just alice");
    let outcome = mirror_with(&db.pool, &index, &fewer).await;
    assert!(matches!(outcome, Outcome::Mirrored(w) if w.written && w.audited), "{outcome:?}");
    let update = last_audit(&db.pool, "by-create", "update").await;
    assert_eq!(update["row"], json!({ "description": { "old": null, "new": "just alice" } }));
    assert_eq!(update["joins"]["user_groups"]["removed"].as_array().map(Vec::len), Some(1), "{update}");
    let stale = mirror_with(&db.pool, &index, &with_version(&created, 1)).await;
    assert!(matches!(stale, Outcome::Mirrored(w) if !w.written), "{stale:?}");
    // A change of the join rows alone is a change: the row's own columns are the same.
    let mut both_again = with_version(&fewer, 3);
    both_again["spec"]["members"] = created["spec"]["members"].clone();
    let outcome = mirror_with(&db.pool, &index, &both_again).await;
    assert!(matches!(outcome, Outcome::Mirrored(w) if w.written && w.audited), "{outcome:?}");
    let update = last_audit(&db.pool, "by-create", "update").await;
    assert_eq!(update["joins"]["user_groups"]["written"].as_array().map(Vec::len), Some(1), "{update}");
    assert_eq!(update["row"], json!({}), "{update}");
    let outcome = mirror_with(&db.pool, &index, &with_version(&fewer, 1)).await;
    assert!(matches!(outcome, Outcome::Mirrored(w) if !w.written), "{outcome:?}");
    // Back to one member, as the rest of this test expects.
    let outcome = mirror_with(&db.pool, &index, &with_version(&fewer, 4)).await;
    assert!(matches!(outcome, Outcome::Mirrored(w) if w.written && w.audited), "{outcome:?}");
    let members: i64 = sqlx::query_scalar(
        "SELECT count(*) FROM user_groups ug JOIN groups g ON g.id = ug.group_id WHERE g.k8s_name = 'by-create'",
    )
    .fetch_one(&db.pool)
    .await
    .expect("members");
    assert_eq!(members, 1);
}

#[tokio::test]
async fn children_wait_for_parents_and_tenancy_is_enforced() {
    let db = database().await;
    let mut cluster = Cluster::new(&db.pool);
    let docs = platform();

    // No organization owns the namespace yet.
    let (reason, message) = blocked(cluster.mirror(find(&docs, "Environment", "production")).await);
    assert_eq!(reason, Reason::NoOrganization);
    assert!(message.contains("\"acme\""), "{message}");
    // One does, not mirrored yet: early.
    cluster.apply(find(&docs, "Organization", "acme"));
    let (reason, message) = early(cluster.mirror(find(&docs, "Environment", "production")).await);
    assert_eq!(reason, Reason::NoOrganization);
    assert!(message.contains("\"acme\""), "{message}");
    // What an Environment that had said it waits would hold.
    cluster.apply(&reported(find(&docs, "Environment", "production"), "NoOrganization"));

    cluster.mirror(find(&docs, "Tag", "critical")).await;
    for name in ["alice", "bob"] {
        cluster.mirror(find(&docs, "User", name)).await;
    }
    cluster.mirror(find(&docs, "Organization", "acme")).await;
    let (reason, message) = blocked(cluster.mirror(find(&docs, "Element", "storage")).await);
    assert_eq!(reason, Reason::WaitingForDependency);
    assert!(message.contains("Environment \"production\" (spec.environmentRef)"), "{message}");
    assert_eq!(count(&db.pool, "elements").await, 0);
    assert_eq!(count(&db.pool, "audit_logs").await, 4, "waiting writes nothing");

    // Applied but not mirrored yet: the Environment's status does not say it is. Its row is on
    // its way, so the new Element is early, not blocked: it reports nothing yet.
    cluster.apply(find(&docs, "Environment", "production"));
    let (reason, message) = early(cluster.mirror(find(&docs, "Element", "storage")).await);
    assert_eq!(reason, Reason::WaitingForDependency);
    assert!(message.contains("Environment \"production\" (spec.environmentRef)"), "{message}");
    // An Element that has reported already says it waits.
    let storage = reported(find(&docs, "Element", "storage"), "Mirrored");
    assert_eq!(blocked(cluster.mirror(&storage).await).0, Reason::WaitingForDependency);
    cluster.apply(find(&docs, "Element", "storage"));
    // An Environment whose row cannot be written (it said so) is not on its way.
    cluster.apply(&reported(find(&docs, "Environment", "production"), "InvalidSpec"));
    assert_eq!(blocked(cluster.mirror(find(&docs, "Element", "storage")).await).0, Reason::WaitingForDependency);
    // Nor is one being deleted.
    let mut deleted = find(&docs, "Environment", "production").clone();
    deleted["metadata"]["deletionTimestamp"] = json!("2026-12-05T10:00:00Z");
    cluster.apply(&deleted);
    assert_eq!(blocked(cluster.mirror(find(&docs, "Element", "storage")).await).0, Reason::WaitingForDependency);
    assert_eq!(count(&db.pool, "audit_logs").await, 4, "waiting writes nothing");

    // Its status says mirrored, but the row is not there (a database restored from an older
    // backup): the write's foreign key finds out, the whole statement is undone, and the
    // object waits, naming the parent.
    let mut restored = find(&docs, "Environment", "production").clone();
    restored["status"] = json!({ "mirroredResourceVersion": "1" });
    cluster.apply(&restored);
    let (reason, message) = blocked(cluster.mirror(find(&docs, "Element", "storage")).await);
    assert_eq!(reason, Reason::WaitingForDependency);
    assert!(message.contains("Environment \"production\" (spec.environmentRef)"), "{message}");
    assert_eq!(count(&db.pool, "elements").await, 0);
    assert_eq!(count(&db.pool, "audit_logs").await, 4, "a write refused by a foreign key leaves nothing");

    // The same for the tenant: an Organization said to be mirrored whose row is not there.
    let mut globex = find(&docs, "Organization", "acme").clone();
    globex["metadata"] = json!({ "name": "globex", "uid": uuid::Uuid::new_v4(), "resourceVersion": "1" });
    globex["spec"]["members"] = json!([]);
    globex["status"] = json!({ "mirroredResourceVersion": "1" });
    cluster.apply(&globex);
    let mut production_in_globex = find(&docs, "Environment", "production").clone();
    production_in_globex["metadata"]["namespace"] = json!("globex");
    production_in_globex["metadata"]["uid"] = json!(uuid::Uuid::new_v4());
    let (reason, message) = blocked(cluster.mirror(&production_in_globex).await);
    assert_eq!(reason, Reason::NoOrganization);
    assert!(message.contains("\"globex\""), "{message}");
    assert_eq!(count(&db.pool, "environments").await, 0);

    // A namespace of no organization.
    let mut elsewhere = find(&docs, "Environment", "production").clone();
    elsewhere["metadata"]["namespace"] = json!("kube-system");
    assert_eq!(blocked(cluster.mirror(&elsewhere).await).0, Reason::NoOrganization);
}

#[tokio::test]
async fn specs_that_break_cross_object_rules_are_invalid() {
    let db = database().await;
    let mut cluster = Cluster::new(&db.pool);
    let docs = platform();
    cluster.converge(&docs).await;

    let mut wrong_element = with_version(find(&docs, "Volume", "pgdata"), 3);
    wrong_element["spec"]["elementRef"]["name"] = json!("backbone");
    let (reason, message) = blocked(cluster.mirror(&wrong_element).await);
    assert_eq!(reason, Reason::InvalidSpec);
    assert!(message.contains("of type network"), "{message}");

    let mut viewer = with_version(find(&docs, "Deployment", "shop-1-4-2"), 3);
    viewer["spec"]["triggeredBy"] = json!("bob");
    let (reason, message) = blocked(cluster.mirror(&viewer).await);
    assert_eq!(reason, Reason::InvalidSpec);
    assert!(message.contains("is a viewer"), "{message}");
}

#[tokio::test]
async fn a_unique_value_stays_with_its_first_owner_and_the_conflict_names_it() {
    let db = database().await;
    let mut cluster = Cluster::new(&db.pool);
    let docs = platform();
    cluster.converge(&docs).await;

    let mut second = find(&docs, "User", "bob").clone();
    second["metadata"]["name"] = json!("mallory");
    second["metadata"]["uid"] = json!(uuid::Uuid::new_v4());
    second["spec"]["email"] = json!("alice@acme.example");
    let (reason, message) = blocked(cluster.mirror(&second).await);
    assert_eq!(reason, Reason::Conflict);
    assert!(message.contains("User alice"), "{message}");

    // A second organization whose Domain claims the same fqdn.
    let mut globex = find(&docs, "Organization", "acme").clone();
    globex["metadata"] = json!({ "name": "globex", "uid": uuid::Uuid::new_v4(), "resourceVersion": "1" });
    globex["spec"]["members"] = json!([]);
    cluster.mirror(&globex).await;
    let in_globex = |doc: &Value| {
        let mut doc = doc.clone();
        doc["metadata"]["namespace"] = json!("globex");
        doc["metadata"]["uid"] = json!(uuid::Uuid::new_v4());
        doc
    };
    let production = in_globex(find(&docs, "Environment", "production"));
    let dns = in_globex(find(&docs, "Element", "dns"));
    let domain = in_globex(find(&docs, "Domain", "acme-example"));
    cluster.converge(&[production, dns]).await;
    let (reason, message) = blocked(cluster.mirror(&domain).await);
    assert_eq!(reason, Reason::Conflict);
    assert!(message.contains("Domain acme/acme-example"), "{message}");
    let owner: String =
        sqlx::query_scalar("SELECT k8s_namespace FROM domains").fetch_one(&db.pool).await.expect("domain");
    assert_eq!(owner, "acme");
}

#[tokio::test]
async fn a_user_who_triggered_deployments_cannot_be_deleted_while_they_exist() {
    let db = database().await;
    let mut cluster = Cluster::new(&db.pool);
    let docs = platform();
    cluster.converge(&docs).await;
    let alice = windflow::kinds::User::deserialize_doc(find(&docs, "User", "alice"));
    let refused = windflow::reconcile::remove(&db.pool, &cluster.index(), &alice, None).await;
    assert!(matches!(refused, Err(windflow::mirror::store::StoreError::StillReferenced(_))), "{refused:?}");
    assert_eq!(count(&db.pool, "users").await, 2);
}

trait DeserializeDoc: Sized {
    fn deserialize_doc(doc: &Value) -> Self;
}

impl<K: serde::de::DeserializeOwned> DeserializeDoc for K {
    fn deserialize_doc(doc: &Value) -> Self {
        serde_json::from_value(doc.clone()).expect("fixture")
    }
}

#[tokio::test]
async fn create_deployment_checks_the_stack_and_the_user() {
    let db = database().await;
    let mut cluster = Cluster::new(&db.pool);
    let docs = platform();
    cluster.converge(&docs).await;
    let (stack, alice, bob): (uuid::Uuid, uuid::Uuid, uuid::Uuid) = sqlx::query_as(
        "SELECT (SELECT id FROM stacks), (SELECT id FROM users WHERE username = 'alice'), (SELECT id FROM users WHERE username = 'bob')",
    )
    .fetch_one(&db.pool)
    .await
    .expect("ids");
    let call = "SELECT create_deployment($1, $2, '{}'::jsonb)";
    let draft = sqlx::query(call).bind(stack).bind(alice).execute(&db.pool).await.expect_err("draft stack");
    assert!(draft.to_string().contains("is not deployable"), "{draft}");

    sqlx::query("UPDATE stacks SET status = 'ready'").execute(&db.pool).await.expect("ready");
    let viewer = sqlx::query(call).bind(stack).bind(bob).execute(&db.pool).await.expect_err("viewer");
    assert!(viewer.to_string().contains("deploying needs owner, admin or member"), "{viewer}");
    let id: uuid::Uuid =
        sqlx::query_scalar(call).bind(stack).bind(alice).fetch_one(&db.pool).await.expect("deployment");
    let event: String = sqlx::query_scalar("SELECT event_type FROM deployment_events WHERE deployment_id = $1")
        .bind(id)
        .fetch_one(&db.pool)
        .await
        .expect("event");
    assert_eq!(event, "deployment.created");
}

/// Every kind's typed row, and every join row the sample platform fills, names only columns of
/// its table in the migrated schema: a misspelt field fails here, not as a write retried forever.
#[tokio::test]
async fn every_row_a_kind_builds_names_columns_of_its_table() {
    use std::collections::{BTreeMap, BTreeSet};
    use windflow::kinds::{self, Kind, KindId, Visitor, prepare};
    use windflow::mirror::Prepared;

    struct Prepare<'a>(&'a Index);
    impl Visitor for Prepare<'_> {
        type Output = Prepared;
        fn visit<K: Kind>(self, obj: K) -> Prepared {
            let resolved = self.0.resolve(obj.meta(), &obj.references());
            prepare(&obj, &resolved).expect("the sample is valid")
        }
    }

    let db = database().await;
    let rows: Vec<(String, String)> = sqlx::query_as(
        "SELECT table_name::text, column_name::text FROM information_schema.columns WHERE table_schema = current_schema()",
    )
    .fetch_all(&db.pool)
    .await
    .expect("the schema");
    let mut schema: BTreeMap<String, BTreeSet<String>> = BTreeMap::new();
    for (table, column) in rows {
        schema.entry(table).or_default().insert(column);
    }
    let docs: Vec<Value> = platform().iter().map(as_mirrored).collect();
    let index = Index::from_documents(&docs);
    let mut seen = BTreeSet::new();
    for doc in &docs {
        let prepared = kinds::visit(doc, Prepare(&index)).expect("a WindFlow kind");
        seen.insert(prepared.entity);
        let table = prepared.entity.table;
        let written: Vec<(&str, &serde_json::Map<String, Value>)> = std::iter::once((table, &prepared.rows.row))
            .chain(prepared.rows.joins.iter().flat_map(|join| join.rows.iter().map(|row| (join.table.table, row))))
            .collect();
        for (table, row) in written {
            let columns = schema.get(table).unwrap_or_else(|| panic!("no table {table}"));
            for column in row.keys() {
                assert!(columns.contains(column), "{}: {table}.{column} is not a column", prepared.entity.kind);
            }
        }
    }
    assert_eq!(seen.len(), KindId::ALL.len(), "the sample platform has every kind: {seen:?}");
}

#[tokio::test]
async fn timestamps_say_when_the_object_was_created_changed_and_started() {
    let db = database().await;
    let mut cluster = Cluster::new(&db.pool);
    let mut docs = platform();
    for doc in &mut docs {
        doc["metadata"]["creationTimestamp"] = json!("2026-03-01T08:00:00Z");
    }
    cluster.converge(&docs).await;
    let times = || async {
        sqlx::query_as::<_, (String, String)>(
            "SELECT created_at::text, updated_at::text FROM volumes WHERE k8s_name = 'pgdata'",
        )
        .fetch_one(&db.pool)
        .await
        .expect("the volume's row")
    };

    // created_at is the object's creation, whenever the row was written.
    let (created, first_update) = times().await;
    assert_eq!(created, "2026-03-01 08:00:00+00");
    assert_ne!(first_update, created, "updated_at is the write's time");

    // A change moves updated_at, not created_at; a stale version moves neither.
    let volume = find(&docs, "Volume", "pgdata");
    let mut bigger = with_version(volume, 10);
    bigger["spec"]["sizeGb"] = json!(80);
    assert!(matches!(cluster.mirror(&bigger).await, Outcome::Mirrored(w) if w.written));
    let (created_after, changed) = times().await;
    assert_eq!(created_after, created);
    assert!(changed > first_update, "{changed} after {first_update}");
    assert!(matches!(cluster.mirror(&with_version(volume, 9)).await, Outcome::Mirrored(w) if !w.written));
    assert_eq!(times().await.1, changed, "a stale version writes nothing");

    // A pending rollout has not started: started_at is written by the step that starts it.
    let started: Option<String> =
        sqlx::query_scalar("SELECT started_at::text FROM deployments WHERE k8s_name = 'shop-1-4-2'")
            .fetch_one(&db.pool)
            .await
            .expect("deployment");
    assert_eq!(started, None);
}

/// Who each audit row names: the requester admission recorded for a change of theirs (by User
/// name or email; the Kubernetes name alone when no User matches), the operator for what it
/// observed, the deleter for a delete.
#[tokio::test]
async fn audit_rows_name_who_acted() {
    use windflow::mirror::actor::{Actor, CHANGED_BY, DELETED_BY};
    const OPERATOR: &str = "system:serviceaccount:windflow-system:windflow";

    let db = database().await;
    let mut cluster = Cluster::new(&db.pool);
    let docs = platform();
    cluster.converge(&docs).await;
    let recorded = |username: &str, login: Option<&str>| {
        Actor { username: username.into(), groups: vec!["developers".into()], login: login.map(str::to_owned) }
            .to_annotation()
    };
    let sync = |doc: Value| {
        let (pool, index) = (db.pool.clone(), cluster.index());
        async move { mirror_as(&pool, &index, &doc, Some(OPERATOR)).await }
    };
    let last = |pool: sqlx::PgPool| async move {
        sqlx::query_as::<_, (String, Option<String>, Option<String>, Option<Vec<String>>, Option<String>)>(
            "SELECT a.action, a.actor, a.kubernetes_username, a.kubernetes_groups, u.username \
             FROM audit_logs a LEFT JOIN users u ON u.id = a.user_id \
             WHERE a.resource_name = 'backend' ORDER BY a.created_at DESC, a.resource_version DESC LIMIT 1",
        )
        .fetch_one(&pool)
        .await
        .expect("an audit row")
    };

    // alice changes the spec (generation 2, not yet observed), named by her email.
    let mut network = find(cluster.objects(), "Network", "backend").clone();
    network["metadata"]["generation"] = json!(2);
    network["metadata"]["resourceVersion"] = json!("2");
    network["metadata"]["annotations"] = json!({ CHANGED_BY: recorded("oidc:alice", Some("alice@acme.example")) });
    network["spec"]["crossCluster"] = json!(true);
    assert!(matches!(sync(network.clone()).await, Outcome::Mirrored(_)));
    let (action, _, username, groups, user) = last(db.pool.clone()).await;
    assert_eq!(action, "update");
    assert_eq!((username.as_deref(), user.as_deref()), (Some("oidc:alice"), Some("alice")));
    assert_eq!(groups, Some(vec!["developers".to_owned()]));

    // The operator records what it observed (generation 2 observed): its own change.
    network["metadata"]["resourceVersion"] = json!("3");
    network["status"]["observedGeneration"] = json!(2);
    network["status"]["phase"] = json!("active");
    assert!(matches!(sync(network.clone()).await, Outcome::Mirrored(_)));
    let (_, actor, username, _, user) = last(db.pool.clone()).await;
    assert_eq!((actor.as_deref(), username.as_deref(), user), (Some("windflow-operator"), Some(OPERATOR), None));

    // A change by someone who is no User keeps their Kubernetes name.
    network["metadata"]["generation"] = json!(3);
    network["metadata"]["resourceVersion"] = json!("4");
    network["metadata"]["annotations"] = json!({ CHANGED_BY: recorded("oidc:zoe", Some("zoe")) });
    network["spec"]["crossCluster"] = json!(false);
    assert!(matches!(sync(network.clone()).await, Outcome::Mirrored(_)));
    let (_, _, username, _, user) = last(db.pool.clone()).await;
    assert_eq!((username.as_deref(), user), (Some("oidc:zoe"), None));

    // bob deletes it: admission recorded him, by the object's uid; the delete's audit row
    // names him, whatever the object's annotations say (anyone could have written them).
    let uid = |doc: &Value| doc["metadata"]["uid"].as_str().and_then(|uid| uid.parse().ok()).expect("a uid");
    let bob = Actor { username: "oidc:bob".into(), groups: vec![], login: Some("bob".into()) };
    store::record_deletion(&db.pool, uid(&network), &bob).await.expect("recorded");
    network["metadata"]["resourceVersion"] = json!("5");
    network["metadata"]["deletionTimestamp"] = json!(Timestamp::now().to_string());
    network["metadata"]["annotations"][DELETED_BY] = json!(recorded("oidc:mallory", Some("mallory")));
    assert!(remove_as(&db.pool, &cluster.index(), &network, Some(OPERATOR)).await, "deleted");
    let (action, _, username, _, user) = last(db.pool.clone()).await;
    assert_eq!((action.as_str(), username.as_deref(), user.as_deref()), ("delete", Some("oidc:bob"), Some("bob")));
    assert_eq!(count(&db.pool, "deletion_requests").await, 0, "the record goes with the row");

    // A delete admission did not see names nobody: not the annotation, nor a record of a
    // delete long before (refused after admission, by another webhook).
    let mut frontend = find(cluster.objects(), "Network", "frontend").clone();
    store::record_deletion(&db.pool, uid(&frontend), &bob).await.expect("recorded");
    let later = Timestamp::now().checked_add(SignedDuration::from_mins(10)).expect("a time");
    frontend["metadata"]["deletionTimestamp"] = json!(later.to_string());
    frontend["metadata"]["annotations"] = json!({ DELETED_BY: recorded("oidc:bob", Some("bob")) });
    assert!(remove_as(&db.pool, &cluster.index(), &frontend, Some(OPERATOR)).await, "deleted");
    let named: (Option<String>, Option<Uuid>) = sqlx::query_as(
        "SELECT kubernetes_username, user_id FROM audit_logs WHERE resource_name = 'frontend' AND action = 'delete'",
    )
    .fetch_one(&db.pool)
    .await
    .expect("its delete row");
    assert_eq!(named, (None, None));
}

#[tokio::test]
async fn rows_a_cascade_removes_get_audit_rows_of_their_own_in_the_same_transaction() {
    let db = database().await;
    let mut cluster = Cluster::new(&db.pool);
    cluster.converge(&platform()).await;
    let api = find(cluster.objects(), "Application", "api").clone();
    let id: Uuid = api["metadata"]["uid"].as_str().expect("a uid").parse().expect("a uuid");
    let mounts: Vec<Uuid> = sqlx::query_scalar("SELECT id FROM volume_applications WHERE application_id = $1")
        .bind(id)
        .fetch_all(&db.pool)
        .await
        .expect("its mounts");
    assert_eq!(mounts.len(), 1, "api mounts uploads");
    assert!(remove(&db.pool, &cluster.index(), &api).await, "api's row is deleted");
    // The application's own row: audited by the operator, naming who acted. Its mount and its
    // two network attachments, removed by the foreign keys' cascade: audited as such, in the
    // same transaction (the same time).
    let rows: Vec<(String, String, Uuid, Value, String)> = sqlx::query_as(
        "SELECT coalesce(actor, ''), resource_type, resource_id, changes, created_at::text FROM audit_logs
         WHERE action = 'delete' AND (resource_id = $1 OR changes->'row'->'application_id'->>'old' = $1::text)
         ORDER BY resource_type",
    )
    .bind(id)
    .fetch_all(&db.pool)
    .await
    .expect("audit rows");
    let kinds: Vec<(&str, &str)> = rows.iter().map(|(actor, kind, ..)| (kind.as_str(), actor.as_str())).collect();
    assert_eq!(
        kinds.iter().filter(|(kind, _)| *kind != "Application").copied().collect::<Vec<_>>(),
        [("network_applications", "cascade"), ("network_applications", "cascade"), ("volume_applications", "cascade")],
        "{rows:?}"
    );
    let mount = rows.iter().find(|row| row.1 == "volume_applications").expect("the mount's audit row");
    assert_eq!(mount.2, mounts[0]);
    assert_eq!(mount.3["cascade"], true);
    assert_eq!(mount.3["row"]["mount_path"], json!({ "old": "/srv/uploads", "new": null }));
    let own = rows.iter().find(|row| row.1 == "Application").expect("the application's own audit row");
    assert!(rows.iter().all(|row| row.4 == own.4), "one transaction: {rows:?}");
}
