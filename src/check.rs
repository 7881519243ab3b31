//! `windflow check` (every WindFlow object against its rows and its children) and `windflow
//! resync` (rebuild the rows from the objects). Both work on the objects as JSON documents,
//! whatever their kind; only `list_all`, and the comparison of children, talk to clusters.

use std::collections::BTreeSet;
use std::fmt;

use futures::future::BoxFuture;
use kube::api::{Api, DynamicObject, ListParams};
use kube::{Client, ResourceExt};
use serde_json::{Map, Value, json};
use sqlx::types::Json;
use sqlx::{AssertSqlSafe, PgConnection, PgPool};
use uuid::Uuid;

use crate::kinds::index::{Index, as_mirrored};
use crate::kinds::{self, Inputs, Kind, KindId, Visitor, place, placement, prepare, visit};
use crate::mirror::store::{self, StoreError};
use crate::mirror::{AuditedObject, audit_row};
use crate::provision::apply::ApplyError;
use crate::provision::clusters::{ClusterError, Clusters};
use crate::provision::probe::{ProbeError, probe};
use crate::provision::{Config, Destination};
use crate::reconcile::{Outcome, sync};
use crate::{describe, describe_document};

/// One way a row differs from its object.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Difference {
    /// `Kind namespace/name`, or the table and id of a row without an object.
    pub object: String,
    pub problem: String,
    /// The object's row, when it has one that differs.
    pub row: Option<(KindId, Uuid)>,
}

impl fmt::Display for Difference {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}: {}", self.object, self.problem)
    }
}

/// What `run` does.
pub enum Mode<'a> {
    /// `windflow check`: compare rows and children (built with the operator's provisioning
    /// settings, the chart's values).
    Check(&'a Config),
    /// `windflow resync`: rebuild the rows.
    Resync,
}

/// `windflow check` or `windflow resync` ([`Mode`]) on every WindFlow object in the cluster.
/// Prints each difference (or what could not be repaired) and a total; returns how many there
/// are.
pub async fn run(database_url: &str, connections: u32, migrate: bool, mode: Mode<'_>) -> anyhow::Result<usize> {
    let pool = store::pool(database_url, connections)?;
    store::prepare(&pool, migrate).await?;
    let client = Client::try_default().await?;
    let objects = list_all(&client).await?;
    let (problems, what) = match mode {
        Mode::Resync => (resync(&pool, &objects).await?, "could not be repaired"),
        Mode::Check(provisioning) => {
            let mut problems = check(&pool, &objects).await?;
            problems.extend(check_children(&client, &objects, provisioning).await?);
            (problems, "differences")
        }
    };
    for problem in &problems {
        println!("{problem}");
    }
    eprintln!("{} objects, {} {what}", objects.len(), problems.len());
    Ok(problems.len())
}

/// Every WindFlow object in the cluster, as JSON documents.
pub async fn list_all(client: &Client) -> Result<Vec<Value>, kube::Error> {
    let mut documents = vec![];
    for kind in KindId::ALL {
        let resource = kind.api_resource();
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
    let index = Index::from_documents(&documents.iter().map(as_mirrored).collect::<Vec<_>>());
    let mut conn = pool.acquire().await.map_err(StoreError::Unavailable)?;
    let mut differences = vec![];
    for doc in documents {
        match visit(doc, Compare { conn: &mut conn, index: &index }) {
            Ok(compared) => differences.extend(compared.await?),
            Err(problem) => differences.push(Difference { object: describe_document(doc), problem, row: None }),
        }
    }
    for (kind, id, name) in strays(&mut conn, documents).await? {
        differences.push(Difference {
            object: format!("{kind} {name} (row {id} of {})", kind.table()),
            problem: "the row has no object in the cluster".into(),
            row: None,
        });
    }
    Ok(differences)
}

/// Compares every object's children, on every cluster it is placed on, with what it asks for
/// now: missing, differing, left over (a paused object's drift too: what resuming it repairs).
/// Objects being deleted, and objects whose children cannot be built (their status says why),
/// are not compared; a cluster that cannot be reached is a difference.
pub async fn check_children(
    client: &Client,
    documents: &[Value],
    config: &Config,
) -> Result<Vec<Difference>, kube::Error> {
    let index = Index::from_documents(documents);
    // `check` is a command, not the operator: its requests are not exported.
    let requests = crate::metrics::ApiRequests::default();
    let clusters = Clusters::new(client.clone(), config.probe_deny.clone(), requests.clone());
    let mut differences = vec![];
    for doc in documents {
        let compared = ChildrenOf { client, index: &index, clusters: &clusters, config, requests: &requests };
        if let Ok(compared) = visit(doc, compared) {
            let found = compared.await?;
            differences.extend(found.into_iter().map(|problem| Difference {
                object: describe_document(doc),
                problem,
                row: None,
            }));
        }
    }
    Ok(differences)
}

/// [`children_differences`] for an object of any kind.
struct ChildrenOf<'a> {
    client: &'a Client,
    index: &'a Index,
    clusters: &'a Clusters,
    config: &'a Config,
    requests: &'a crate::metrics::ApiRequests,
}

impl<'a> Visitor for ChildrenOf<'a> {
    type Output = BoxFuture<'a, Result<Vec<String>, kube::Error>>;

    fn visit<K: Kind>(self, obj: K) -> Self::Output {
        Box::pin(async move { children_differences(&self, &obj).await })
    }
}

/// How the children of `obj` differ from what it asks for, as the reconcile builds them: on
/// each of its clusters, with what that cluster serves and, for an existing cluster, what its
/// health check sees.
async fn children_differences<K: Kind>(at: &ChildrenOf<'_>, obj: &K) -> Result<Vec<String>, kube::Error> {
    let (Some(owner), false) = (obj.uid(), K::CHILD_TYPES.is_empty()) else { return Ok(vec![]) };
    if obj.meta().deletion_timestamp.is_some() {
        return Ok(vec![]);
    }
    let Ok(placement) = place(obj, at.index) else { return Ok(vec![]) };
    let report = match obj.probe_target() {
        None => None,
        Some(Ok(target)) => {
            match probe(at.client, &target, &at.config.probe_deny, &at.config.probe_limits, at.requests).await {
                Ok(report) => Some(report),
                Err(ProbeError::Kube(error)) => return Err(error),
                Err(_) => return Ok(vec![]),
            }
        }
        Some(Err(_)) => return Ok(vec![]),
    };
    let mut differences = vec![];
    for cluster in &placement.clusters {
        let on = |problem: &str| match cluster {
            Destination::Management => problem.to_owned(),
            workload => format!("on {}: {problem}", workload.name()),
        };
        let provider = match placement::provider(at.index, at.clusters, cluster).await {
            Ok(provider) => provider,
            Err(ClusterError::Kube(error)) => return Err(error),
            Err(error) => {
                differences.push(format!("children on {cluster} not compared: {error}"));
                continue;
            }
        };
        let unserved = provider.unserved(obj.consults()).await?;
        let kept = match provider.names_of(&owner, K::KEPT_CHILDREN).await {
            Ok(kept) => kept,
            Err(ApplyError::Kube(error)) => return Err(error),
            Err(error) => {
                differences.push(on(&error.to_string()));
                continue;
            }
        };
        let inputs = Inputs {
            report: report.as_ref(),
            unserved: &unserved,
            kept: &kept,
            ..Inputs::offline(at.index, at.config)
        };
        let Ok(children) = kinds::children(obj, &placement, &inputs) else { return Ok(vec![]) };
        let wanted: Vec<DynamicObject> =
            children.into_iter().filter(|child| child.cluster == *cluster).map(|child| child.object).collect();
        match provider.compare(&owner, K::CHILD_TYPES, &wanted).await {
            Ok(found) => differences.extend(found.iter().map(|problem| on(problem))),
            Err(ApplyError::Kube(error)) => return Err(error),
            // Nothing is applied until it is installed; the status says so.
            Err(ApplyError::NotInstalled(_)) => {}
            Err(error) => differences.push(on(&error.to_string())),
        }
    }
    Ok(differences)
}

/// [`compare`] for an object of any kind.
struct Compare<'a> {
    conn: &'a mut PgConnection,
    index: &'a Index,
}

impl<'a> Visitor for Compare<'a> {
    type Output = BoxFuture<'a, Result<Vec<Difference>, StoreError>>;

    fn visit<K: Kind>(self, obj: K) -> Self::Output {
        Box::pin(async move { compare(self.conn, self.index, &obj).await })
    }
}

/// Columns the object alone cannot tell: a password hash comes from a Secret.
const FROM_ELSEWHERE: &[&str] = &["hashed_password"];

async fn compare<K: Kind>(conn: &mut PgConnection, index: &Index, obj: &K) -> Result<Vec<Difference>, StoreError> {
    let object = describe(K::kind(&()), obj.namespace().as_deref(), &obj.name_any());
    let id: Uuid = obj.uid().and_then(|uid| uid.parse().ok()).unwrap_or_default();
    let differ = |problem: String| Difference { object: object.clone(), problem, row: Some((K::ID, id)) };
    let table = K::ID.table();
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
    // A row behind the object is no difference by itself: the mirror does not write a row
    // again when only the resourceVersion moved (a status write moves it). Its columns tell.
    let resolved = index.resolve(obj.meta(), &obj.references());
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

/// Rows the mirror wrote (they have a Kubernetes name) whose object is not among `documents`.
async fn strays(conn: &mut PgConnection, documents: &[Value]) -> Result<Vec<(KindId, Uuid, String)>, StoreError> {
    let present: BTreeSet<String> =
        documents.iter().filter_map(|d| d["metadata"]["uid"].as_str().map(str::to_owned)).collect();
    let mut found = vec![];
    // Children before parents: the order stray rows can be deleted in.
    for kind in KindId::ALL.iter().rev() {
        let statement = format!(
            "SELECT id, coalesce(k8s_namespace || '/', '') || k8s_name FROM {} WHERE k8s_name IS NOT NULL",
            kind.table()
        );
        let rows: Vec<(Uuid, String)> =
            sqlx::query_as(AssertSqlSafe(statement)).fetch_all(&mut *conn).await.map_err(StoreError::Unavailable)?;
        found.extend(
            rows.into_iter().filter(|(id, _)| !present.contains(&id.to_string())).map(|(id, n)| (*kind, id, n)),
        );
    }
    Ok(found)
}

/// Mirrors an object of any kind; says why it cannot be, if so.
struct Mirror<'a> {
    pool: &'a PgPool,
    index: &'a Index,
}

impl<'a> Visitor for Mirror<'a> {
    type Output = BoxFuture<'a, Result<Option<String>, StoreError>>;

    fn visit<K: Kind>(self, obj: K) -> Self::Output {
        Box::pin(async move {
            Ok(match sync(self.pool, self.index, &obj, None, None).await?.0 {
                Outcome::Mirrored(_) => None,
                Outcome::Blocked(verdict) | Outcome::Early(verdict) => {
                    Some(format!("{}: {}", verdict.reason, verdict.message))
                }
            })
        })
    }
}

/// Rebuilds the rows from `documents`: rows that differ from their object lose their fence (the
/// mirror writes nothing for a resourceVersion it has seen), every object is mirrored (passes
/// repeat until no more can be, as parents come first), then rows without an object are
/// deleted, children first, each with its `delete` audit row. Returns what could not be done.
pub async fn resync(pool: &PgPool, documents: &[Value]) -> Result<Vec<Difference>, StoreError> {
    let differing: BTreeSet<(KindId, Uuid)> = check(pool, documents).await?.into_iter().filter_map(|d| d.row).collect();
    for (kind, id) in differing {
        let statement = format!("UPDATE {} SET k8s_resource_version = -1 WHERE id = $1", kind.table());
        sqlx::query(AssertSqlSafe(statement)).bind(id).execute(pool).await.map_err(StoreError::Unavailable)?;
    }
    // What the caches would hold: an object mirrored here counts as mirrored for the next
    // pass, as the operator's status patch would make it.
    let mut known: Vec<Value> = documents.to_vec();
    let mut pending: Vec<usize> = (0..documents.len()).collect();
    let mut blocked: Vec<Difference> = vec![];
    while !pending.is_empty() {
        let index = Index::from_documents(&known);
        let mut left = vec![];
        blocked.clear();
        for &position in &pending {
            let doc = &documents[position];
            let problem = match visit(doc, Mirror { pool, index: &index }) {
                Ok(mirrored) => mirrored.await?,
                Err(problem) => Some(problem),
            };
            match problem {
                Some(problem) => {
                    blocked.push(Difference { object: describe_document(doc), problem, row: None });
                    left.push(position);
                }
                None => known[position] = as_mirrored(doc),
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
    for (kind, id, name) in strays {
        let (namespace, name) = name.split_once('/').map_or((None, name.as_str()), |(ns, n)| (Some(ns), n));
        // The organization of the audit row is read from the deleted row itself.
        let gone = AuditedObject { kind: kind.entity().kind, id, namespace, name };
        let audit = audit_row(&gone, Some("windflow resync"), None, i64::MAX);
        match store::delete(pool, kind.table(), &audit).await {
            Ok(_) => {}
            Err(StoreError::StillReferenced(message)) => {
                blocked.push(Difference { object: format!("{kind} {name}"), problem: message, row: None })
            }
            Err(error) => return Err(error),
        }
    }
    Ok(blocked)
}
