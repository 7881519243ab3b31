//! Shared test helpers: a throwaway PostgreSQL, and fixtures from YAML.
#![allow(dead_code)] // each test binary uses its own part of the helpers

pub mod argocd;
pub mod bad;

use std::collections::HashMap;
use std::sync::Arc;

use futures::future::BoxFuture;
use serde::Deserialize;
use serde_json::{Value, json};
use sqlx::PgPool;
use uuid::Uuid;
pub use windflow::kinds::index::{Index, as_mirrored};
use windflow::kinds::{self, Kind, Visitor};
use windflow::mirror::store;
use windflow::reconcile::{Outcome, sync};

/// A migrated database that lives as long as the value: a fresh database on `DATABASE_URL`'s
/// server when it is set, else a throwaway server started from the local binaries (as the
/// `postgres` user when running as root).
pub struct TestDb {
    pub pool: PgPool,
    /// Where the database is, for a process of its own.
    pub url: String,
    /// The same database as the operator's runtime login sees it: a role that owns nothing,
    /// granted `windflow_runtime` (migration 0015), as `windflow migrate --runtime-role` does.
    pub runtime_url: String,
    /// The server started again after [`TestDb::stop_server`], which pgtemp does not know of.
    restarted: Option<std::process::Child>,
    /// Dropped after `restarted` is stopped: it removes the data directory.
    server: Option<pgtemp::PgTempDB>,
}

impl TestDb {
    /// The throwaway server's data directory.
    fn data_dir(&self) -> std::path::PathBuf {
        self.server.as_ref().expect("a throwaway server (not DATABASE_URL's) to stop and start").data_dir()
    }

    /// Stops the server as an outage does: a fast shutdown, which ends every session at once.
    /// Returns once it has exited.
    pub fn stop_server(&mut self) {
        let data = self.data_dir();
        let pid_file = data.join("postmaster.pid");
        let pid: i32 = std::fs::read_to_string(&pid_file)
            .ok()
            .and_then(|text| text.lines().next()?.trim().parse().ok())
            .expect("a running server's postmaster.pid");
        // SAFETY: kill(2) on the postmaster of this test's server.
        assert_eq!(unsafe { libc::kill(pid, libc::SIGINT) }, 0, "SIGINT to the postmaster {pid}");
        let deadline = std::time::Instant::now() + std::time::Duration::from_secs(30);
        while pid_file.exists() {
            assert!(std::time::Instant::now() < deadline, "the server did not stop within 30 s");
            std::thread::sleep(std::time::Duration::from_millis(100));
        }
        if let Some(mut restarted) = self.restarted.take() {
            let _ = restarted.wait();
        }
    }

    /// Starts the server stopped by [`TestDb::stop_server`] again, with the command line it
    /// ran with (`postmaster.opts`), as the data directory's owner; returns once it accepts
    /// connections. The process dies with the test's runtime thread, however the test ends.
    pub fn start_server(&mut self) {
        use std::os::unix::fs::MetadataExt;
        use std::os::unix::process::CommandExt;
        let data = self.data_dir();
        let opts = std::fs::read_to_string(data.join("postmaster.opts")).expect("postmaster.opts");
        // `/path/postgres "-c" "port=…" … "-D" "…"`: the program, then each argument quoted.
        let (program, args) = opts.trim().split_once(" \"").expect("postmaster.opts");
        let args: Vec<&str> = args.trim_end_matches('"').split("\" \"").collect();
        let owner = std::fs::metadata(&data).expect("the data directory");
        let log = std::fs::File::create(data.with_file_name("restarted.log")).expect("a log file");
        let mut command = std::process::Command::new(program);
        command.args(&args).stdin(std::process::Stdio::null()).stdout(log.try_clone().expect("log")).stderr(log);
        // SAFETY: the calls are async-signal-safe and touch only the child.
        unsafe {
            command.uid(owner.uid()).gid(owner.gid()).pre_exec(|| {
                if libc::prctl(libc::PR_SET_PDEATHSIG, libc::SIGKILL) != 0 {
                    return Err(std::io::Error::last_os_error());
                }
                Ok(())
            });
        }
        self.restarted = Some(command.spawn().expect("the server starts again"));
        let deadline = std::time::Instant::now() + std::time::Duration::from_secs(30);
        let port: u16 = self.url.parse::<sqlx::postgres::PgConnectOptions>().expect("the URL").get_port();
        while std::net::TcpStream::connect(("127.0.0.1", port)).is_err() {
            assert!(std::time::Instant::now() < deadline, "the server did not start within 30 s");
            std::thread::sleep(std::time::Duration::from_millis(100));
        }
    }
}

impl Drop for TestDb {
    fn drop(&mut self) {
        if self.restarted.is_some() {
            self.stop_server();
        }
    }
}

/// The operator's login in the tests (its password is its name).
const RUNTIME_LOGIN: &str = "windflow_test_runtime";

pub async fn database() -> TestDb {
    database_on(None).await
}

/// The servers the tests run on: the local binaries (or `DATABASE_URL`'s), and the binaries of
/// each directory `WINDFLOW_TEST_POSTGRES` lists (colon-separated; `.ci/run` installs a
/// current PostgreSQL there).
pub fn servers() -> Vec<Option<std::path::PathBuf>> {
    let others = std::env::var("WINDFLOW_TEST_POSTGRES").unwrap_or_default();
    std::iter::once(None).chain(others.split(':').filter(|dir| !dir.is_empty()).map(|dir| Some(dir.into()))).collect()
}

/// [`database`] on the server of the binaries in `bin`, if given.
pub async fn database_on(bin: Option<&std::path::Path>) -> TestDb {
    let (url, server) = match std::env::var("DATABASE_URL").ok().filter(|_| bin.is_none()) {
        Some(base) => {
            let admin = PgPool::connect(&base).await.expect("connect to DATABASE_URL");
            let name = format!("windflow_test_{}", Uuid::new_v4().simple());
            sqlx::query(sqlx::AssertSqlSafe(format!("CREATE DATABASE {name}")))
                .execute(&admin)
                .await
                .expect("create database");
            let url = match base.rsplit_once('/') {
                Some((server, _)) => format!("{server}/{name}"),
                None => base.clone(),
            };
            (url, None)
        }
        None => {
            // pgtemp turns autovacuum off; on, as on a real server, tables get analyzed as they
            // grow and plans stay right for their size.
            // Nobody reads the server's log pipe, and a full pipe stops the server: log only
            // what ends it.
            // Passwords are checked (tenant logins are tested by them), as on a real server.
            let mut builder = pgtemp::PgTempDB::builder();
            if let Some(bin) = bin {
                builder = builder.with_bin_path(bin);
            }
            let server = builder
                .with_initdb_arg("auth-host", "scram-sha-256")
                .with_config_param("autovacuum", "on")
                .with_config_param("log_min_messages", "fatal")
                .with_config_param("log_min_error_statement", "panic")
                .start_async()
                .await;
            (server.connection_uri(), Some(server))
        }
    };
    // The operator's own pool settings.
    let pool = store::pool(&url, 8).expect("a pool for the test database");
    store::migrate(&pool).await.expect("migrations apply");
    // Roles are the server's: one runtime login serves every test database on it.
    sqlx::raw_sql(sqlx::AssertSqlSafe(format!(
        "DO $$ BEGIN IF NOT EXISTS (SELECT FROM pg_roles WHERE rolname = '{RUNTIME_LOGIN}') THEN \
            CREATE ROLE {RUNTIME_LOGIN} LOGIN PASSWORD '{RUNTIME_LOGIN}'; END IF; END $$"
    )))
    .execute(&pool)
    .await
    .expect("the runtime login");
    store::grant_runtime(&pool, RUNTIME_LOGIN).await.expect("granted");
    let options: sqlx::postgres::PgConnectOptions = url.parse().expect("the database's URL");
    let runtime_url = format!(
        "postgresql://{RUNTIME_LOGIN}:{RUNTIME_LOGIN}@{}:{}/{}",
        options.get_host(),
        options.get_port(),
        options.get_database().unwrap_or("postgres")
    );
    TestDb { pool, url, runtime_url, restarted: None, server }
}

/// Every document of a multi-document YAML file.
pub fn documents(yaml: &str) -> Vec<Value> {
    serde_yaml::Deserializer::from_str(yaml)
        .map(|doc| serde_json::to_value(serde_yaml::Value::deserialize(doc).expect("yaml document")).expect("json"))
        .filter(|v: &Value| !v.is_null())
        .collect()
}

/// The sample's documents for `organization`: its own copy of every namespaced object and of
/// its Organization; the cluster-scoped Users, Functions and Tags stay the sample's, shared.
pub fn platform_of(organization: &str) -> Vec<Value> {
    let text = include_str!("../../examples/platform.yaml").replace("acme", organization);
    documents(&text)
        .into_iter()
        .filter(|doc| {
            organization == "acme" || doc["metadata"]["namespace"].is_string() || doc["kind"] == "Organization"
        })
        .collect()
}

/// The sample object of that kind and name.
pub fn find<'a>(docs: &'a [Value], kind: &str, name: &str) -> &'a Value {
    docs.iter().find(|d| d["kind"] == kind && d["metadata"]["name"] == name).expect("fixture object")
}

/// The sample platform of `examples/`, each object with a uid and resourceVersion 1, as the
/// API server would give them.
pub fn platform() -> Vec<Value> {
    stored(documents(include_str!("../../examples/platform.yaml")))
}

/// `docs` as the API server stores them: a uid, resourceVersion 1, generation 1.
pub fn stored(docs: Vec<Value>) -> Vec<Value> {
    docs.into_iter()
        .map(|mut doc| {
            doc["metadata"]["uid"] = Value::String(Uuid::new_v4().to_string());
            doc["metadata"]["resourceVersion"] = Value::String("1".into());
            doc["metadata"]["generation"] = Value::from(1);
            doc
        })
        .collect()
}

/// What a test has applied, as the API server holds it and the operator's caches see it,
/// and the database the objects are mirrored into.
pub struct Cluster<'a> {
    pub pool: &'a PgPool,
    objects: Vec<Value>,
}

impl<'a> Cluster<'a> {
    pub fn new(pool: &'a PgPool) -> Self {
        Self { pool, objects: vec![] }
    }

    /// Holds `doc`, in place of the object of its kind, namespace and name.
    pub fn apply(&mut self, doc: &Value) {
        self.objects.retain(|held| !same_object(held, doc));
        self.objects.push(doc.clone());
    }

    /// What the operator's caches would hold.
    pub fn index(&self) -> Index {
        Index::from_documents(&self.objects)
    }

    /// The objects as the caches hold them, with the statuses the mirror gave them.
    pub fn objects(&self) -> &[Value] {
        &self.objects
    }

    /// Applies `doc` and runs the reconcile's mirror path on it (dereference from the applied
    /// objects, build, write). A `doc` without a status keeps the one the held object has, as
    /// the API server keeps it across spec changes; once mirrored, the held object's status
    /// says so, as the operator's status patch would.
    pub async fn mirror(&mut self, doc: &Value) -> Outcome {
        let mut doc = doc.clone();
        if doc.get("status").is_none()
            && let Some(status) = self.held(&doc).and_then(|held| held.get("status")).cloned()
        {
            doc["status"] = status;
        }
        self.apply(&doc);
        let outcome = mirror_with(self.pool, &self.index(), &doc).await;
        if matches!(outcome, Outcome::Mirrored(_)) {
            self.apply(&as_mirrored(&doc));
        }
        outcome
    }

    /// The held object of `doc`'s kind, namespace and name.
    fn held(&self, doc: &Value) -> Option<&Value> {
        self.objects.iter().find(|held| same_object(held, doc))
    }

    /// Applies every object, then mirrors them over and over in the given order until all are
    /// mirrored: objects whose parents are not mirrored yet wait, as when GitOps applies in any
    /// order. Returns the passes.
    pub async fn converge(&mut self, docs: &[Value]) -> usize {
        docs.iter().for_each(|doc| self.apply(doc));
        for pass in 1..=docs.len() + 1 {
            let mut pending = 0;
            for doc in docs {
                if !matches!(self.mirror(doc).await, Outcome::Mirrored(_)) {
                    pending += 1;
                }
            }
            if pending == 0 {
                return pass;
            }
        }
        panic!("the platform did not converge");
    }
}

/// Whether two manifests are the same object: kind, namespace and name.
fn same_object(a: &Value, b: &Value) -> bool {
    ["/kind", "/metadata/namespace", "/metadata/name"].iter().all(|at| a.pointer(at) == b.pointer(at))
}

/// Runs the reconcile's mirror path on any kind, dereferencing from `index`.
pub async fn mirror_with(pool: &PgPool, index: &Index, doc: &Value) -> Outcome {
    mirror_as(pool, index, doc, None).await
}

/// [`mirror_with`] by an operator whose Kubernetes username is `operator`.
pub async fn mirror_as(pool: &PgPool, index: &Index, doc: &Value, operator: Option<&str>) -> Outcome {
    struct Mirror<'a>(&'a PgPool, &'a Index, Option<&'a str>);
    impl<'a> Visitor for Mirror<'a> {
        type Output = BoxFuture<'a, Outcome>;
        fn visit<K: Kind>(self, obj: K) -> Self::Output {
            Box::pin(async move { sync(self.0, self.1, &obj, None, self.2).await.expect("database reachable").0 })
        }
    }
    kinds::visit(doc, Mirror(pool, index, operator)).unwrap_or_else(|e| panic!("{e}")).await
}

/// `docs`, all applied and mirrored (see [`Cluster::converge`]), as the caches then hold them.
pub async fn converged(pool: &PgPool, docs: &[Value]) -> Vec<Value> {
    let mut cluster = Cluster::new(pool);
    cluster.converge(docs).await;
    cluster.objects().to_vec()
}

/// Runs the finalizer's deletion path on any kind, the deleter dereferenced from `index`.
pub async fn remove(pool: &PgPool, index: &Index, doc: &Value) -> bool {
    remove_as(pool, index, doc, None).await
}

/// [`remove`] by an operator whose Kubernetes username is `operator`.
pub async fn remove_as(pool: &PgPool, index: &Index, doc: &Value, operator: Option<&str>) -> bool {
    struct Remove<'a>(&'a PgPool, &'a Index, Option<&'a str>);
    impl<'a> Visitor for Remove<'a> {
        type Output = BoxFuture<'a, bool>;
        fn visit<K: Kind>(self, obj: K) -> Self::Output {
            Box::pin(async move { windflow::reconcile::remove(self.0, self.1, &obj, self.2).await.expect("delete") })
        }
    }
    kinds::visit(doc, Remove(pool, index, operator)).unwrap_or_else(|e| panic!("{e}")).await
}

pub fn with_version(doc: &Value, version: u64) -> Value {
    let mut doc = doc.clone();
    doc["metadata"]["resourceVersion"] = Value::String(version.to_string());
    doc
}

/// Rows inserted, updated and deleted in every table since the statistics began, as
/// PostgreSQL counts them (a backend reports its counts when it ends, or idle within 10 s).
pub async fn rows_changed(pool: &PgPool) -> i64 {
    let query = "SELECT coalesce(sum(n_tup_ins + n_tup_upd + n_tup_del), 0)::bigint FROM pg_stat_user_tables";
    sqlx::query_scalar(query).fetch_one(pool).await.expect("the row counts")
}

pub async fn count(pool: &PgPool, table: &str) -> i64 {
    sqlx::query_scalar(sqlx::AssertSqlSafe(format!("SELECT count(*) FROM {table}")))
        .fetch_one(pool)
        .await
        .expect("count")
}

/// Serves `routes` (path → JSON or text body, a number: the status it answers, or
/// `{"$status": code, "$body": text}`) over HTTP/1.1 on a free local port; returns its URL.
/// Unknown paths are 404.
pub async fn serve(routes: HashMap<&'static str, Value>) -> String {
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.expect("a local port");
    let url = format!("http://{}", listener.local_addr().expect("address"));
    let routes = Arc::new(routes);
    tokio::spawn(async move {
        while let Ok((mut stream, _)) = listener.accept().await {
            let routes = routes.clone();
            tokio::spawn(async move {
                use tokio::io::{AsyncReadExt, AsyncWriteExt};
                let mut head = Vec::new();
                let mut byte = [0u8; 1];
                while !head.ends_with(b"\r\n\r\n") && stream.read(&mut byte).await.unwrap_or(0) == 1 {
                    head.push(byte[0]);
                }
                let head = String::from_utf8_lossy(&head);
                let path = head.split_whitespace().nth(1).unwrap_or("/").split('?').next().unwrap_or("/").to_owned();
                let (status, body) = match routes.get(path.as_str()) {
                    Some(Value::String(text)) => ("200 OK".to_owned(), text.clone()),
                    Some(Value::Object(answer)) if answer.contains_key("$status") => (
                        format!("{} Answered", answer["$status"]),
                        answer["$body"].as_str().unwrap_or_default().to_owned(),
                    ),
                    // A number is the status the path answers, with a Status as body.
                    Some(Value::Number(code)) => {
                        (format!("{code} Answered"), json!({ "kind": "Status", "code": code }).to_string())
                    }
                    Some(json) => ("200 OK".to_owned(), json.to_string()),
                    None => ("404 Not Found".to_owned(), json!({ "message": "page not found" }).to_string()),
                };
                let response = format!(
                    "HTTP/1.1 {status}\r\ncontent-type: application/json\r\ncontent-length: {}\r\nconnection: close\r\n\r\n{body}",
                    body.len()
                );
                let _ = stream.write_all(response.as_bytes()).await;
            });
        }
    });
    url
}

/// A one-manager, one-worker swarm's engine API.
pub fn swarm_engine() -> HashMap<&'static str, Value> {
    HashMap::from([
        ("/_ping", Value::String("OK".into())),
        (
            "/info",
            json!({ "Name": "manager-1", "ServerVersion": "27.3.1", "NCPU": 4, "MemTotal": 8_000_000_000u64,
                    "OperatingSystem": "Debian GNU/Linux 12",
                    "Swarm": { "LocalNodeState": "active", "ControlAvailable": true } }),
        ),
        (
            "/nodes",
            json!([
                { "ID": "abc", "Spec": { "Role": "manager" }, "UpdatedAt": "2026-12-03T09:58:00.123456789Z",
                  "Description": { "Hostname": "manager-1", "Platform": { "OS": "linux" },
                                   "Resources": { "NanoCPUs": 4_000_000_000u64, "MemoryBytes": 8_000_000_000u64 },
                                   "Engine": { "EngineVersion": "27.3.1" } },
                  "Status": { "State": "ready", "Addr": "10.0.0.5" } },
                { "ID": "def", "Spec": { "Role": "worker" },
                  "Description": { "Hostname": "worker-1" },
                  "Status": { "State": "down", "Addr": "10.0.0.6" } },
            ]),
        ),
    ])
}

/// The `helm` the tests run (`HELM`, else `helm` on PATH), from the repository's root.
pub fn helm() -> std::process::Command {
    let mut helm = std::process::Command::new(std::env::var("HELM").unwrap_or_else(|_| "helm".into()));
    helm.current_dir(env!("CARGO_MANIFEST_DIR"));
    helm
}
