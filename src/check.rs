//! `windflow check` (every WindFlow object against its rows) and `windflow resync` (rebuild
//! the rows from the objects). Both work on the objects as JSON documents, whatever their kind;
//! only `list_all` talks to the cluster.

use std::collections::BTreeSet;
use std::fmt;

use kube::api::{Api, DynamicObject, ListParams};
use kube::{Client, ResourceExt};
use serde_json::{Map, Value, json};
use sqlx::types::Json;
use sqlx::{AssertSqlSafe, PgConnection, PgPool};
use uuid::Uuid;

use crate::api::*;
use crate::mirror::store::{self, StoreError};
use crate::mirror::{AuditedObject, Mirrored, Target, audit_row, prepare};
use crate::reconcile::catalog::{Catalog, as_mirrored};
use crate::reconcile::{Outcome, sync};

/// Runs `$body` with `$obj` bound to the document `$doc` deserialized as its kind; `$other`
/// for a document of no WindFlow kind.
#[macro_export]
macro_rules! with_kind {
    ($doc:expr, |$obj:ident| $body:expr, $other:expr) => {
        $crate::with_kind!(@kinds $doc, $obj, $body, $other, Organization, User, Tag, Function, Group, Policy,
            Environment, Element, ContainerCluster, ContainerNode, VM, PhysicalHost, Network, Volume, Gateway, Domain,
            DnsRecord, DnssecKey, Stack, Application, Deployment)
    };
    (@kinds $doc:expr, $obj:ident, $body:expr, $other:expr, $($kind:ident),*) => {
        match $doc["kind"].as_str().unwrap_or_default() {
            $(stringify!($kind) => match serde_json::from_value::<$crate::api::$kind>($doc.clone()) {
                Ok($obj) => $body,
                Err(error) => $other(error.to_string()),
            },)*
            other => $other(format!("{other:?} is not a WindFlow kind")),
        }
    };
}

/// One way a row differs from its object.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Difference {
    /// `Kind namespace/name`, or the table and id of a row without an object.
    pub object: String,
    pub problem: String,
    /// The object's row, when it has one that differs.
    pub row: Option<(Target, Uuid)>,
}

impl fmt::Display for Difference {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}: {}", self.object, self.problem)
    }
}

/// Every WindFlow object in the cluster, as JSON documents.
pub async fn list_all(client: &Client) -> Result<Vec<Value>, kube::Error> {
    let mut documents = vec![];
    for crd in crds() {
        let resource = api_resource(&crd);
        let list = Api::<DynamicObject>::all_with(client.clone(), &resource).list(&ListParams::default()).await?;
        for mut item in list.items {
            item.types =
                Some(kube::api::TypeMeta { api_version: resource.api_version.clone(), kind: resource.kind.clone() });
            documents.push(serde_json::to_value(item).unwrap_or_default());
        }
    }
    Ok(documents)
}

/// Compares every object with its rows, and finds rows whose object is gone.
pub async fn check(pool: &PgPool, documents: &[Value]) -> Result<Vec<Difference>, StoreError> {
    // Rows are compared with what the objects say, whatever the statuses say of the rows.
    let catalog = Catalog::from_documents(&documents.iter().map(as_mirrored).collect::<Vec<_>>());
    let mut conn = pool.acquire().await.map_err(StoreError::Unavailable)?;
    let mut differences = vec![];
    for doc in documents {
        let unknown = |problem: String| Ok(vec![Difference { object: describe_document(doc), problem, row: None }]);
        let found: Result<Vec<Difference>, StoreError> =
            with_kind!(doc, |obj| compare(&mut conn, &catalog, &obj).await, unknown);
        differences.extend(found?);
    }
    for (target, id, name) in strays(&mut conn, documents).await? {
        differences.push(Difference {
            object: format!("{target} {name} (row {id} of {})", target.table()),
            problem: "the row has no object in the cluster".into(),
            row: None,
        });
    }
    Ok(differences)
}

/// Columns the object alone cannot tell: a password hash comes from a Secret.
const FROM_ELSEWHERE: &[&str] = &["hashed_password"];

async fn compare<K: Mirrored>(
    conn: &mut PgConnection,
    catalog: &Catalog,
    obj: &K,
) -> Result<Vec<Difference>, StoreError> {
    let object = describe(K::kind(&()), obj.namespace().as_deref(), &obj.name_any());
    let id: Uuid = obj.uid().and_then(|uid| uid.parse().ok()).unwrap_or_default();
    let differ = |problem: String| Difference { object: object.clone(), problem, row: Some((K::TARGET, id)) };
    let table = K::TARGET.table();
    let row: Option<Value> = fetch_row(conn, table, id).await?;
    let Some(row) = row else {
        return Ok(vec![Difference { object, problem: "no row".into(), row: None }]);
    };
    let mut differences = vec![];
    let version = obj.resource_version().unwrap_or_default();
    let listed = version.parse::<i64>().unwrap_or_default();
    // A running operator mirrored a change made after the list: the row is ahead of what
    // was listed, not behind what it should hold.
    if row["k8s_resource_version"].as_i64().is_some_and(|held| held > listed) {
        return Ok(vec![]);
    }
    if row["k8s_resource_version"] != json!(listed) {
        differences.push(differ(format!(
            "the row holds resourceVersion {}, the object is at {version}",
            row["k8s_resource_version"]
        )));
        // Older rows differ in every field that changed since: the version says it all.
        return Ok(differences);
    }
    let resolved = catalog.resolve(obj.namespace().as_deref(), &obj.references());
    let prepared = match prepare(obj, &resolved) {
        Ok(prepared) => prepared,
        Err(error) => {
            return Ok(vec![Difference { object, problem: format!("cannot be mirrored: {error}"), row: None }]);
        }
    };
    let expected = normalized(conn, table, std::slice::from_ref(&prepared.rows.row)).await?;
    for (column, value) in expected.iter().flatten() {
        if FROM_ELSEWHERE.contains(&column.as_str()) || column == "k8s_resource_version" {
            continue;
        }
        if row.get(column) != Some(value) {
            differences.push(differ(format!("{column}: the row has {}, the object says {value}", row[column])));
        }
    }
    for join in &prepared.rows.joins {
        let columns: Vec<&str> = join.table.key.iter().chain(join.table.values).copied().collect();
        let project =
            |row: &Map<String, Value>| -> Value { json!(columns.iter().map(|c| row.get(*c)).collect::<Vec<_>>()) };
        let wanted: BTreeSet<String> =
            normalized(conn, join.table.table, &join.rows).await?.iter().map(|row| project(row).to_string()).collect();
        let statement = format!("SELECT to_jsonb(j) FROM {} j WHERE j.{} = $1", join.table.table, join.table.owner);
        let held: Vec<Value> = sqlx::query_scalar(AssertSqlSafe(statement))
            .bind(id)
            .fetch_all(&mut *conn)
            .await
            .map_err(StoreError::Unavailable)?;
        let held: BTreeSet<String> =
            held.iter().filter_map(Value::as_object).map(|row| project(row).to_string()).collect();
        for missing in wanted.difference(&held) {
            differences.push(differ(format!("{}: no row for {missing}", join.table.table)));
        }
        for extra in held.difference(&wanted) {
            differences.push(differ(format!("{}: a row for {extra} the object does not list", join.table.table)));
        }
    }
    Ok(differences)
}

async fn fetch_row(conn: &mut PgConnection, table: &str, id: Uuid) -> Result<Option<Value>, StoreError> {
    let statement = format!("SELECT to_jsonb(t) FROM {table} t WHERE t.id = $1");
    sqlx::query_scalar(AssertSqlSafe(statement)).bind(id).fetch_optional(conn).await.map_err(StoreError::Unavailable)
}

/// Rows as PostgreSQL stores them (types, precision, formats), to compare like with like: each
/// keeps the columns it was given. One query for all of them.
async fn normalized(
    conn: &mut PgConnection,
    table: &str,
    rows: &[Map<String, Value>],
) -> Result<Vec<Map<String, Value>>, StoreError> {
    let statement = format!(
        "SELECT coalesce(jsonb_agg(to_jsonb(jsonb_populate_record(NULL::{table}, r)) ORDER BY n), '[]') \
         FROM jsonb_array_elements($1) WITH ORDINALITY AS given(r, n)"
    );
    let stored: Value = sqlx::query_scalar(AssertSqlSafe(statement))
        .bind(Json(rows))
        .fetch_one(conn)
        .await
        .map_err(StoreError::Unavailable)?;
    let stored = stored.as_array().cloned().unwrap_or_default();
    Ok(rows
        .iter()
        .zip(stored)
        .map(|(given, stored)| {
            given.keys().filter_map(|column| Some((column.clone(), stored.get(column)?.clone()))).collect()
        })
        .collect())
}

/// Every kind, children before parents (the order stray rows can be deleted in).
const KINDS: &[Target] = &[
    Target::Deployment,
    Target::Application,
    Target::Stack,
    Target::DnssecKey,
    Target::DnsRecord,
    Target::Domain,
    Target::Gateway,
    Target::Volume,
    Target::Network,
    Target::PhysicalHost,
    Target::VM,
    Target::ContainerNode,
    Target::ContainerCluster,
    Target::Element,
    Target::Environment,
    Target::Policy,
    Target::Group,
    Target::Function,
    Target::Tag,
    Target::User,
    Target::Organization,
];

/// Rows the mirror wrote (they have a Kubernetes name) whose object is not among `documents`.
async fn strays(conn: &mut PgConnection, documents: &[Value]) -> Result<Vec<(Target, Uuid, String)>, StoreError> {
    let present: BTreeSet<String> =
        documents.iter().filter_map(|d| d["metadata"]["uid"].as_str().map(str::to_owned)).collect();
    let mut found = vec![];
    for target in KINDS {
        let statement = format!(
            "SELECT id, coalesce(k8s_namespace || '/', '') || k8s_name FROM {} WHERE k8s_name IS NOT NULL",
            target.table()
        );
        let rows: Vec<(Uuid, String)> =
            sqlx::query_as(AssertSqlSafe(statement)).fetch_all(&mut *conn).await.map_err(StoreError::Unavailable)?;
        found.extend(
            rows.into_iter().filter(|(id, _)| !present.contains(&id.to_string())).map(|(id, n)| (*target, id, n)),
        );
    }
    Ok(found)
}

/// Rebuilds the rows from `documents`: rows that differ from their object lose their fence (the
/// mirror writes nothing for a resourceVersion it has seen), every object is mirrored (passes
/// repeat until no more can be, as parents come first), then rows without an object are
/// deleted, children first, each with its `delete` audit row. Returns what could not be done.
pub async fn resync(pool: &PgPool, documents: &[Value]) -> Result<Vec<Difference>, StoreError> {
    let differing: BTreeSet<(Target, Uuid)> = check(pool, documents).await?.into_iter().filter_map(|d| d.row).collect();
    for (target, id) in differing {
        let statement = format!("UPDATE {} SET k8s_resource_version = -1 WHERE id = $1", target.table());
        sqlx::query(AssertSqlSafe(statement)).bind(id).execute(pool).await.map_err(StoreError::Unavailable)?;
    }
    // What the caches would hold: an object mirrored here counts as mirrored for the next
    // pass, as the operator's status patch would make it.
    let mut known: Vec<Value> = documents.to_vec();
    let mut pending: Vec<usize> = (0..documents.len()).collect();
    let mut blocked: Vec<Difference> = vec![];
    while !pending.is_empty() {
        let catalog = Catalog::from_documents(&known);
        let mut left = vec![];
        blocked.clear();
        for &index in &pending {
            let doc = &documents[index];
            let outcome: Result<Option<String>, StoreError> = with_kind!(
                doc,
                |obj| match sync(pool, &catalog, &obj, None).await?.0 {
                    Outcome::Mirrored(_) => Ok(None),
                    Outcome::Blocked(verdict) => Ok(Some(format!("{}: {}", verdict.reason, verdict.message))),
                },
                |problem: String| Ok(Some(problem))
            );
            match outcome? {
                Some(problem) => {
                    blocked.push(Difference { object: describe_document(doc), problem, row: None });
                    left.push(index);
                }
                None => known[index] = as_mirrored(doc),
            }
        }
        if left.len() == pending.len() {
            break;
        }
        pending = left;
    }
    let mut conn = pool.acquire().await.map_err(StoreError::Unavailable)?;
    let strays = strays(&mut conn, documents).await?;
    drop(conn);
    for (target, id, name) in strays {
        let (namespace, name) = name.split_once('/').map_or((None, name.as_str()), |(ns, n)| (Some(ns), n));
        // The organization of the audit row is read from the deleted row itself.
        let gone = AuditedObject { target, id, namespace, name };
        let audit = audit_row(&gone, Some("windflow resync"), None, i64::MAX);
        match store::delete(pool, target, &audit).await {
            Ok(_) => {}
            Err(StoreError::StillReferenced(message)) => {
                blocked.push(Difference { object: format!("{target} {name}"), problem: message, row: None })
            }
            Err(error) => return Err(error),
        }
    }
    Ok(blocked)
}
