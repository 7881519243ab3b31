//! The mirror path against local PostgreSQL, side by side with a bare baseline in the same run.
//!
//! `cargo bench --bench mirror [-- OBJECTS]`: mirrors OBJECTS (default 10,000) new objects of
//! mixed kinds exactly as a reconcile writes them (references and tenant dereferenced from the
//! controllers' caches, then row + joins + audit in one transaction), at concurrency 1 and 4,
//! and the same number of bare single-row `INSERT … ON CONFLICT` + audit-insert transactions.
//! New objects' writes start with the create statement; one more path writes them with the
//! upsert, as for objects whose status records a row, to show what the create saves.
//! Prints a Markdown table for docs/BENCHMARKS.md. PostgreSQL: `DATABASE_URL`'s server, else a
//! throwaway one (pgtemp).

#[path = "../tests/support/mod.rs"]
mod support;

use std::future::Future;
use std::time::{Duration, Instant};

use futures::StreamExt;
use futures::future::BoxFuture;
use serde_json::{Value, json};
use sqlx::types::Json;
use sqlx::{AssertSqlSafe, PgPool};
use uuid::Uuid;
use windflow::kinds::index::Index;
use windflow::kinds::{Application, DnsRecord, Group, Kind, Network, Tag, User, Volume, prepare};
use windflow::mirror::actor::{Actor, CHANGED_BY};
use windflow::mirror::{Prepared, store};
use windflow::reconcile::{Outcome, sync};

/// One object of the mix, already deserialized as a reconcile would receive it, whatever its kind.
trait Sample: Sync {
    /// The reconcile's database work for this object, dereferencing from `index`.
    fn sync<'a>(&'a self, pool: &'a PgPool, index: &'a Index) -> BoxFuture<'a, Outcome>;
    /// The object's row and audit metadata, resolved ahead of time for the baseline.
    fn prepare(&self, index: &Index) -> Prepared;
}

impl<K: Kind> Sample for K {
    fn sync<'a>(&'a self, pool: &'a PgPool, index: &'a Index) -> BoxFuture<'a, Outcome> {
        Box::pin(async move { sync(pool, index, self, None, None).await.expect("database reachable").0 })
    }

    fn prepare(&self, index: &Index) -> Prepared {
        let resolved = index.resolve(self.meta(), &self.references());
        prepare(self, &resolved).expect("a valid benchmark object")
    }
}

type Boxed = Box<dyn Sample>;

/// How many turns each path takes; see `main`.
const ROUNDS: usize = 50;

fn boxed<K: Kind>(doc: &Value) -> Boxed {
    Box::new(serde_json::from_value::<K>(doc.clone()).expect("a valid benchmark object"))
}

/// The `index`-th object of run `run`: the kinds in turn, each with a unique name.
fn sample(run: &str, index: usize) -> Boxed {
    let name = format!("{run}-{index}");
    let (kind, spec, build): (&str, Value, fn(&Value) -> Boxed) = match index % 7 {
        0 => ("Tag", json!({ "description": "benchmark" }), boxed::<Tag>),
        1 => ("User", json!({ "email": format!("{name}@acme.example"), "tags": ["critical"] }), boxed::<User>),
        2 => ("Group", json!({ "members": ["alice", "bob"], "tags": ["critical"] }), boxed::<Group>),
        3 => (
            "Volume",
            json!({ "elementRef": { "name": "storage" }, "volumeType": "ceph", "sizeGb": 10 }),
            boxed::<Volume>,
        ),
        4 => ("Network", json!({ "elementRef": { "name": "backbone" }, "networkType": "overlay" }), boxed::<Network>),
        5 => (
            "DnsRecord",
            json!({ "domainRef": { "name": "acme-example" }, "recordName": name, "recordType": "A", "value": "203.0.113.7" }),
            boxed::<DnsRecord>,
        ),
        _ => (
            "Application",
            json!({
                "stackRef": { "name": "shop" }, "applicationType": "container",
                "volumes": [{ "volume": "pgdata", "mountPath": "/data" }], "networks": [{ "network": "backend" }],
            }),
            boxed::<Application>,
        ),
    };
    // Admission's record of the requester: every audit row looks its User up by login.
    let requester =
        Actor { username: "oidc:alice".into(), groups: vec!["developers".into()], login: Some("alice".into()) };
    let mut metadata = json!({ "name": name, "uid": Uuid::new_v4().to_string(), "resourceVersion": "1", "generation": 1,
                               "annotations": { CHANGED_BY: requester.to_annotation() } });
    if !matches!(kind, "Tag" | "User") {
        metadata["namespace"] = "acme".into();
    }
    build(&json!({ "apiVersion": "windflow.io/v1alpha1", "kind": kind, "metadata": metadata, "spec": spec }))
}

/// One object through the mirror path; every one must land.
async fn mirror(pool: &PgPool, index: &Index, sample: &Boxed) {
    let outcome = sample.sync(pool, index).await;
    assert!(matches!(outcome, Outcome::Mirrored(_)), "{outcome:?}");
}

/// The mirror's one write statement alone, for an object resolved ahead as the baseline's are.
async fn write(pool: &PgPool, prepared: &Prepared) {
    let mut conn = pool.acquire().await.expect("a connection");
    let written = store::write(&mut conn, prepared).await.expect("database reachable");
    assert!(written.written && written.audited, "{written:?}");
}

fn samples(run: &str, count: usize) -> Vec<Boxed> {
    (0..count).map(|i| sample(run, i)).collect()
}

fn prepare_all(index: &Index, samples: &[Boxed]) -> Vec<Prepared> {
    samples.iter().map(|sample| sample.prepare(index)).collect()
}

/// The same writes as for objects whose status records a row: the upsert goes first.
fn as_recorded(prepared: Vec<Prepared>) -> Vec<Prepared> {
    prepared.into_iter().map(|p| Prepared { row_recorded: true, ..p }).collect()
}

/// The baseline: the same row into the same table (same keys, foreign keys and indexes) with a
/// bare `INSERT … ON CONFLICT`, then an audit insert holding the row, in one transaction. No
/// resolving, no join rows, no diff: the least a mirror with an audit trail must do.
async fn baseline(pool: &PgPool, prepared: &Prepared) {
    let table = prepared.entity.table;
    let columns: Vec<&str> = prepared.rows.row.keys().map(String::as_str).collect();
    let list = columns.join(", ");
    let updates: Vec<String> = columns.iter().map(|c| format!("{c} = EXCLUDED.{c}")).collect();
    let row = Json(&prepared.rows.row);
    let mut tx = pool.begin().await.expect("begin");
    sqlx::query(AssertSqlSafe(format!(
        "INSERT INTO {table} AS t ({list}) SELECT {list} FROM jsonb_populate_record(NULL::{table}, $1) \
         ON CONFLICT (id) DO UPDATE SET {} WHERE t.k8s_resource_version < EXCLUDED.k8s_resource_version",
        updates.join(", ")
    )))
    .bind(row)
    .execute(&mut *tx)
    .await
    .expect("baseline row");
    sqlx::query(
        "INSERT INTO audit_logs (organization_id, actor, action, resource_type, resource_id, resource_namespace,
                                 resource_name, resource_version, changes)
         SELECT m.organization_id, m.actor, 'create', m.resource_type, m.resource_id, m.resource_namespace,
                m.resource_name, m.resource_version, $2
         FROM jsonb_populate_record(NULL::audit_logs, $1) m",
    )
    .bind(Json(&prepared.audit))
    .bind(row)
    .execute(&mut *tx)
    .await
    .expect("baseline audit row");
    tx.commit().await.expect("commit");
}

/// Latencies and wall time of one path, over every round it ran.
#[derive(Default)]
struct Measured {
    latencies: Vec<Duration>,
    elapsed: Duration,
}

impl Measured {
    /// Runs the jobs, `concurrency` at a time, adding their latencies and wall time.
    async fn run(&mut self, jobs: impl IntoIterator<Item = impl Future<Output = ()>>, concurrency: usize) {
        let started = Instant::now();
        let latencies: Vec<Duration> = futures::stream::iter(jobs)
            .map(|job| async move {
                let begun = Instant::now();
                job.await;
                begun.elapsed()
            })
            .buffer_unordered(concurrency)
            .collect()
            .await;
        self.elapsed += started.elapsed();
        self.latencies.extend(latencies);
    }

    fn per_second(&self) -> f64 {
        self.latencies.len() as f64 / self.elapsed.as_secs_f64()
    }

    fn percentile(&self, q: f64) -> Duration {
        let mut sorted = self.latencies.clone();
        sorted.sort_unstable();
        sorted[((sorted.len() as f64 * q).ceil() as usize).saturating_sub(1)]
    }
}

fn row(path: &str, concurrency: usize, m: &Measured, ratio: Option<f64>) {
    let ratio = ratio.map_or("1.00 (baseline)".to_owned(), |r| format!("{r:.2}"));
    println!(
        "| {path} | {concurrency} | {:.0} | {:.2} | {:.2} | {ratio} |",
        m.per_second(),
        m.percentile(0.50).as_secs_f64() * 1e3,
        m.percentile(0.99).as_secs_f64() * 1e3
    );
}

#[tokio::main]
async fn main() {
    let objects: usize = std::env::args().skip(1).find_map(|a| a.parse().ok()).unwrap_or(10_000);
    let db = support::database().await;
    // The operator's caches hold the platform the samples reference.
    let index = Index::from_documents(&support::converged(&db.pool, &support::platform()).await);

    // Warm every path (connections, plans, caches) before anything is timed.
    let mut warm = Measured::default();
    warm.run(samples("warm", 200).iter().map(|sample| mirror(&db.pool, &index, sample)), 4).await;
    let ahead = prepare_all(&index, &samples("warm-ahead", 200));
    warm.run(ahead.iter().map(|prepared| baseline(&db.pool, prepared)), 4).await;
    let ahead = prepare_all(&index, &samples("warm-write", 200));
    warm.run(ahead.iter().map(|prepared| write(&db.pool, prepared)), 4).await;
    let ahead = as_recorded(prepare_all(&index, &samples("warm-upsert", 200)));
    warm.run(ahead.iter().map(|prepared| write(&db.pool, prepared)), 4).await;

    println!("| path | concurrency | objects/s | p50 ms | p99 ms | of baseline |");
    println!("|---|---|---|---|---|---|");
    for concurrency in [1, 4] {
        let bare_rows = prepare_all(&index, &samples(&format!("baseline-c{concurrency}"), objects));
        let write_rows = prepare_all(&index, &samples(&format!("write-c{concurrency}"), objects));
        let upsert_rows = as_recorded(prepare_all(&index, &samples(&format!("upsert-c{concurrency}"), objects)));
        let mirror_objects = samples(&format!("mirror-c{concurrency}"), objects);
        let mut measured: [Measured; 4] = Default::default();
        // The paths take turns in rounds, each round led by another path, so that all of them
        // meet tables of the same sizes as they grow.
        let chunk = objects.div_ceil(ROUNDS);
        for round in 0..ROUNDS {
            let range = (round * chunk).min(objects)..((round + 1) * chunk).min(objects);
            for turn in 0..measured.len() {
                let path = (round + turn) % measured.len();
                let m = &mut measured[path];
                match path {
                    0 => m.run(bare_rows[range.clone()].iter().map(|p| baseline(&db.pool, p)), concurrency).await,
                    1 => m.run(write_rows[range.clone()].iter().map(|p| write(&db.pool, p)), concurrency).await,
                    2 => m.run(upsert_rows[range.clone()].iter().map(|p| write(&db.pool, p)), concurrency).await,
                    _ => {
                        m.run(mirror_objects[range.clone()].iter().map(|s| mirror(&db.pool, &index, s)), concurrency)
                            .await
                    }
                }
            }
        }
        let [bare, written, upserted, mirrored] = &measured;
        row("baseline: INSERT … ON CONFLICT + audit INSERT", concurrency, bare, None);
        for (path, m) in [
            ("mirror write: row, joins, audit (resolved ahead)", written),
            ("the same, by the upsert (a status that records a row)", upserted),
            ("mirror: resolve + row, joins, audit", mirrored),
        ] {
            row(path, concurrency, m, Some(m.per_second() / bare.per_second()));
        }
    }
    let audited = support::count(&db.pool, "audit_logs").await;
    println!("\n{objects} objects per run and path; {audited} audit rows in all.");
}
