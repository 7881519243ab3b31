//! A real control plane on loopback: etcd, kube-apiserver (secure serving, RBAC, client
//! certificates), kube-controller-manager, kube-scheduler and kwok playing the kubelet of a
//! few fake nodes. One per test binary, started by the first test that asks for it.
//!
//! Binaries come from the Go module `e2e/controlplane/` (built by its `build.sh` into a cache,
//! once per pin), `KUBEBUILDER_ASSETS` (envtest's etcd, kube-apiserver and kubectl) overriding
//! those it holds. `WINDFLOW_E2E_KUBECONFIG` runs the suite against an existing cluster (kind,
//! k3d) instead.
//!
//! No process outlives the test binary: each is started from one thread that lives as long as
//! the binary and asks the kernel to kill the process when that thread ends
//! (`PR_SET_PDEATHSIG`), whether the tests pass, fail or panic.
#![allow(dead_code)] // the tests and the convergence benchmark each use their own part

use std::net::TcpListener;
use std::os::unix::process::CommandExt;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Output, Stdio};
use std::sync::mpsc;
use std::time::{Duration, Instant};

use k8s_openapi::api::core::v1::Node;
use kube::api::{Api, PostParams};
use kube::config::{KubeConfigOptions, Kubeconfig};
use kube::{Client, Config};
use rcgen::{
    BasicConstraints, CertificateParams, CertifiedIssuer, DnType, ExtendedKeyUsagePurpose, IsCa, KeyPair,
    KeyUsagePurpose,
};
use serde_json::json;
use tokio::sync::OnceCell;

/// Fake nodes kwok keeps Ready.
pub const NODES: usize = 3;
/// Static PersistentVolumes for claims to bind to.
const STATIC_VOLUMES: usize = 8;
const READY_WITHIN: Duration = Duration::from_secs(120);

/// A running control plane (or an existing cluster): where it is and how to reach it as admin.
pub struct ControlPlane {
    /// An admin kubeconfig file.
    pub kubeconfig: PathBuf,
    /// The directory of `kubectl` and the other binaries.
    pub bin: PathBuf,
    /// The API server's URL.
    pub server: String,
    /// The API server's CA certificate, PEM.
    pub ca_pem: String,
    /// Where the harness keeps its files.
    pub dir: PathBuf,
    /// etcd and the API server, when the harness started them.
    core: Option<std::sync::Mutex<Option<Core>>>,
}

/// etcd and the API server: how each was started, to start it again, and the running process.
struct Core {
    bin: PathBuf,
    etcd: (Vec<String>, Child),
    apiserver: (Vec<String>, Child),
    etcd_client_port: u16,
}

static PLANE: OnceCell<ControlPlane> = OnceCell::const_new();
static WORKLOAD: OnceCell<ControlPlane> = OnceCell::const_new();

/// The control plane of this test binary, started on first use.
pub async fn control_plane() -> &'static ControlPlane {
    PLANE
        .get_or_init(|| async {
            match std::env::var_os("WINDFLOW_E2E_KUBECONFIG") {
                Some(path) => existing(PathBuf::from(path)),
                None => start().await,
            }
        })
        .await
}

/// A second control plane, playing a workload cluster WindFlow places applications on: the
/// sample's ContainerCluster `main` (see `install::ClusterApi`). Started on first use, like the
/// first.
pub async fn workload_plane() -> &'static ControlPlane {
    WORKLOAD.get_or_init(start).await
}

/// The workload control plane, if a test of this binary started it.
pub fn started_workload_plane() -> Option<&'static ControlPlane> {
    WORKLOAD.get()
}

impl ControlPlane {
    /// Freezes (`SIGSTOP`) or resumes (`SIGCONT`) the API server: a cluster that stops
    /// answering without closing its connections, the hardest case for a client.
    pub fn freeze_apiserver(&self, frozen: bool) {
        let pid = self.with_core(|core| core.apiserver.1.id());
        let signal = if frozen { libc::SIGSTOP } else { libc::SIGCONT };
        // SAFETY: kill(2) on a process this binary started.
        let sent = unsafe { libc::kill(pid as libc::pid_t, signal) };
        assert_eq!(sent, 0, "signal {signal} to the API server {pid}");
    }

    /// Restarts the API server, and etcd too when `etcd` holds what to do while etcd is back
    /// and the API server not yet: both stop (SIGTERM) and stay stopped for `down`, as in an
    /// upgrade of the control plane. With [`Etcd::Compacted`] etcd's history is compacted to
    /// its latest revision, so that every watch resuming from before the restart is answered
    /// `410 Gone` and must list again. Returns once the API server is ready.
    pub async fn restart_apiserver(&self, etcd: Option<Etcd>, down: Duration) {
        let mut core = self.core.as_ref().and_then(|core| core.lock().expect("core").take()).expect("a core");
        stop(&mut core.apiserver.1);
        if etcd.is_some() {
            stop(&mut core.etcd.1);
        }
        tokio::time::sleep(down).await;
        if let Some(etcd) = etcd {
            core.etcd.1 = core.start("etcd", &core.etcd.0, &self.dir);
            if etcd == Etcd::Compacted {
                compact(core.etcd_client_port).await;
            }
        }
        core.apiserver.1 = core.start("kube-apiserver", &core.apiserver.0, &self.dir);
        let mut processes = [("etcd", core.etcd.1), ("kube-apiserver", core.apiserver.1)];
        wait_until_ready(self, &mut processes).await;
        let [(_, etcd), (_, apiserver)] = processes;
        (core.etcd.1, core.apiserver.1) = (etcd, apiserver);
        *self.core.as_ref().expect("a core").lock().expect("core") = Some(core);
    }

    fn with_core<T>(&self, read: impl FnOnce(&Core) -> T) -> T {
        let core = self.core.as_ref().expect("a control plane the harness started").lock().expect("core");
        read(core.as_ref().expect("etcd and the API server running"))
    }

    /// An admin client.
    pub async fn client(&self) -> Client {
        client_from(&self.kubeconfig).await
    }

    /// `kubectl` with the admin kubeconfig.
    pub fn kubectl(&self) -> Command {
        let mut command = Command::new(self.bin.join("kubectl"));
        command.env("KUBECONFIG", &self.kubeconfig);
        command
    }
}

pub async fn client_from(kubeconfig: &Path) -> Client {
    let kubeconfig = Kubeconfig::read_from(kubeconfig).expect("a kubeconfig");
    let config = Config::from_custom_kubeconfig(kubeconfig, &KubeConfigOptions::default()).await.expect("config");
    Client::try_from(config).expect("a client")
}

/// What happens to etcd in [`ControlPlane::restart_apiserver`].
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Etcd {
    Restarted,
    /// Restarted, then compacted to its latest revision.
    Compacted,
}

impl Core {
    fn start(&self, name: &str, args: &[String], dir: &Path) -> Child {
        let mut command = Command::new(binary(&self.bin, name));
        command.args(args);
        // A log of its own: the first run's stays as it was.
        let log = dir.join(format!("{name}.restarted.log"));
        launch(name, command, &log)
    }
}

/// SIGTERM, then SIGKILL if the process has not exited within 30 s; returns once it has.
fn stop(process: &mut Child) {
    // SAFETY: kill(2) on a process this binary started and has not waited for.
    unsafe { libc::kill(process.id() as libc::pid_t, libc::SIGTERM) };
    let deadline = Instant::now() + Duration::from_secs(30);
    while process.try_wait().ok().flatten().is_none() {
        if Instant::now() > deadline {
            let _ = process.kill();
            let _ = process.wait();
            return;
        }
        std::thread::sleep(Duration::from_millis(100));
    }
}

/// Compacts etcd's history to its latest revision, through its JSON gateway.
async fn compact(port: u16) {
    let deadline = Instant::now() + READY_WITHIN;
    let answer = loop {
        // Any range answers with the store's current revision in its header.
        match etcd_post(port, "/v3/kv/range", r#"{"key":"AA=="}"#) {
            Some(answer) => break answer,
            None => assert!(Instant::now() < deadline, "etcd did not answer within {READY_WITHIN:?}"),
        }
        tokio::time::sleep(Duration::from_millis(200)).await;
    };
    let revision = answer["header"]["revision"].as_str().expect("a revision").to_owned();
    let compacted =
        etcd_post(port, "/v3/kv/compaction", &json!({ "revision": revision, "physical": true }).to_string());
    assert!(compacted.is_some(), "etcd compacts to revision {revision}");
}

/// POSTs `body` to etcd's JSON gateway; the answer, if it answered 200.
fn etcd_post(port: u16, path: &str, body: &str) -> Option<serde_json::Value> {
    use std::io::{Read, Write};
    let mut stream = std::net::TcpStream::connect(("127.0.0.1", port)).ok()?;
    let request = format!(
        "POST {path} HTTP/1.1\r\nHost: 127.0.0.1\r\nContent-Type: application/json\r\nContent-Length: {}\r\n\
         Connection: close\r\n\r\n{body}",
        body.len()
    );
    stream.write_all(request.as_bytes()).ok()?;
    let mut response = String::new();
    stream.read_to_string(&mut response).ok()?;
    let (head, body) = response.split_once("\r\n\r\n")?;
    head.starts_with("HTTP/1.1 200").then(|| serde_json::from_str(body).ok()).flatten()
}

fn existing(kubeconfig: PathBuf) -> ControlPlane {
    let bin = binaries();
    let dir = tempfile::Builder::new().prefix("windflow-e2e-").tempdir().expect("a temp dir").keep();
    let config = Kubeconfig::read_from(&kubeconfig).expect("WINDFLOW_E2E_KUBECONFIG names a kubeconfig");
    let cluster = config.clusters.first().and_then(|c| c.cluster.clone()).expect("a cluster in the kubeconfig");
    let ca_pem = cluster
        .certificate_authority_data
        .map(|data| String::from_utf8(base64_decode(&data)).expect("PEM"))
        .unwrap_or_default();
    ControlPlane { kubeconfig, bin, server: cluster.server.unwrap_or_default(), ca_pem, dir, core: None }
}

fn base64_decode(text: &str) -> Vec<u8> {
    use base64::Engine;
    base64::engine::general_purpose::STANDARD.decode(text.trim()).expect("base64")
}

/// Where the binaries are: built from `e2e/controlplane/` unless `WINDFLOW_CONTROLPLANE_BIN`
/// names a directory that holds them all.
fn binaries() -> PathBuf {
    if let Some(dir) = std::env::var_os("WINDFLOW_CONTROLPLANE_BIN") {
        return PathBuf::from(dir);
    }
    let script = Path::new(env!("CARGO_MANIFEST_DIR")).join("e2e/controlplane/build.sh");
    let output = Command::new("bash")
        .arg(&script)
        .stderr(Stdio::inherit())
        .output()
        .unwrap_or_else(|error| panic!("cannot run {}: {error}", script.display()));
    assert!(
        output.status.success(),
        "building the control plane failed: `bash {}` (the Go module e2e/controlplane, which pins \
         k8s.io/kubernetes, go.etcd.io/etcd/server/v3 and sigs.k8s.io/kwok) exited with {}; its output is above",
        script.display(),
        output.status
    );
    PathBuf::from(String::from_utf8_lossy(&output.stdout).trim())
}

/// The binary `name`: from `KUBEBUILDER_ASSETS` when it holds it (envtest's etcd, kube-apiserver,
/// kubectl), else from the pinned build.
fn binary(bin: &Path, name: &str) -> PathBuf {
    let envtest = std::env::var_os("KUBEBUILDER_ASSETS").map(|dir| PathBuf::from(dir).join(name));
    let path = envtest.filter(|path| path.exists()).unwrap_or_else(|| bin.join(name));
    assert!(path.exists(), "no {name} at {}: build e2e/controlplane (bash e2e/controlplane/build.sh)", path.display());
    path
}

/// Runs `command`, panicking with its output unless it succeeds.
pub fn run(mut command: Command) -> String {
    let output = command.output().unwrap_or_else(|error| panic!("cannot run {command:?}: {error}"));
    assert!(output.status.success(), "{command:?} failed: {}", both(&output));
    String::from_utf8_lossy(&output.stdout).into_owned()
}

/// Standard output and error, for messages.
pub fn both(output: &Output) -> String {
    format!("{}{}", String::from_utf8_lossy(&output.stdout), String::from_utf8_lossy(&output.stderr))
}

/// A free port on loopback.
pub fn free_port() -> u16 {
    TcpListener::bind("127.0.0.1:0").and_then(|l| l.local_addr()).expect("a free local port").port()
}

/// Starts processes from one thread that lives as long as the test binary, so that the kernel
/// kills them when the binary ends however it ends.
struct Launcher(mpsc::Sender<(Command, mpsc::Sender<std::io::Result<Child>>)>);

impl Launcher {
    fn new() -> Self {
        let (requests, incoming) = mpsc::channel::<(Command, mpsc::Sender<std::io::Result<Child>>)>();
        std::thread::spawn(move || {
            // Children are kept (not waited for) so that this thread owns them until the end.
            let mut children = vec![];
            for (mut command, reply) in incoming {
                // SAFETY: prctl is async-signal-safe and touches only the child.
                unsafe {
                    command.pre_exec(|| {
                        if libc::prctl(libc::PR_SET_PDEATHSIG, libc::SIGKILL) != 0 {
                            return Err(std::io::Error::last_os_error());
                        }
                        Ok(())
                    });
                }
                let child = command.spawn();
                if let Ok(child) = &child {
                    children.push(child.id());
                }
                let _ = reply.send(child);
            }
            // The sender lives in a static: this loop ends only with the process.
            drop(children);
        });
        Self(requests)
    }

    fn spawn(&self, name: &str, mut command: Command, log: &Path) -> Child {
        let file = std::fs::File::create(log).expect("a log file");
        command.stdin(Stdio::null()).stdout(file.try_clone().expect("log")).stderr(file);
        let (reply, answer) = mpsc::channel();
        self.0.send((command, reply)).expect("the launcher thread");
        answer.recv().expect("the launcher answers").unwrap_or_else(|error| panic!("cannot start {name}: {error}"))
    }
}

static LAUNCHER: std::sync::OnceLock<std::sync::Mutex<Launcher>> = std::sync::OnceLock::new();

/// Starts `command` as a process that cannot outlive the test binary; its output goes to `log`.
pub fn launch(name: &str, command: Command, log: &Path) -> Child {
    let launcher = LAUNCHER.get_or_init(|| std::sync::Mutex::new(Launcher::new()));
    launcher.lock().expect("launcher").spawn(name, command, log)
}

struct Pki {
    ca: String,
    serving_cert: String,
    serving_key: String,
    admin_cert: String,
    admin_key: String,
    service_account_key: String,
    service_account_public_key: String,
}

fn pki() -> Pki {
    let mut ca = CertificateParams::new(vec![]).expect("params");
    ca.distinguished_name.push(DnType::CommonName, "windflow-e2e-ca");
    ca.is_ca = IsCa::Ca(BasicConstraints::Unconstrained);
    ca.key_usages = vec![KeyUsagePurpose::KeyCertSign, KeyUsagePurpose::CrlSign, KeyUsagePurpose::DigitalSignature];
    let ca = CertifiedIssuer::self_signed(ca, KeyPair::generate().expect("key")).expect("the CA");

    let serving_key = KeyPair::generate().expect("key");
    let mut serving =
        CertificateParams::new(vec!["localhost".into(), "127.0.0.1".into(), "kubernetes.default.svc".into()])
            .expect("params");
    serving.distinguished_name.push(DnType::CommonName, "kube-apiserver");
    serving.extended_key_usages = vec![ExtendedKeyUsagePurpose::ServerAuth];
    let serving_cert = serving.signed_by(&serving_key, &ca).expect("the serving certificate");

    // system:masters: the admin the tests act as (kubectl, helm, the test's own client).
    let admin_key = KeyPair::generate().expect("key");
    let mut admin = CertificateParams::new(vec![]).expect("params");
    admin.distinguished_name.push(DnType::CommonName, "windflow-e2e-admin");
    admin.distinguished_name.push(DnType::OrganizationName, "system:masters");
    admin.extended_key_usages = vec![ExtendedKeyUsagePurpose::ClientAuth];
    let admin_cert = admin.signed_by(&admin_key, &ca).expect("the admin certificate");
    // Signs ServiceAccount tokens; the API server verifies them with its public half.
    let service_account = KeyPair::generate().expect("key");

    Pki {
        ca: ca.pem(),
        serving_cert: serving_cert.pem(),
        serving_key: serving_key.serialize_pem(),
        admin_cert: admin_cert.pem(),
        admin_key: admin_key.serialize_pem(),
        service_account_key: service_account.serialize_pem(),
        service_account_public_key: service_account.public_key_pem(),
    }
}

/// A kubeconfig for `server` with the CA and either a client certificate or a token.
pub fn kubeconfig(server: &str, ca_pem: &str, user: serde_json::Value) -> String {
    use base64::Engine;
    let ca = base64::engine::general_purpose::STANDARD.encode(ca_pem);
    serde_json::to_string(&json!({
        "apiVersion": "v1", "kind": "Config", "current-context": "e2e",
        "clusters": [{ "name": "e2e", "cluster": { "server": server, "certificate-authority-data": ca } }],
        "users": [{ "name": "e2e", "user": user }],
        "contexts": [{ "name": "e2e", "context": { "cluster": "e2e", "user": "e2e" } }],
    }))
    .expect("kubeconfig")
}

async fn start() -> ControlPlane {
    let bin = binaries();
    // Under the target directory, kept after the run: the processes' logs are what a failed
    // test is read with. etcd's data is not, and goes when a later run starts.
    let root = Path::new(env!("CARGO_TARGET_TMPDIR"));
    let dir = tempfile::Builder::new().prefix(PLANE_PREFIX).tempdir_in(root).expect("a temp dir").keep();
    hold(&dir);
    remove_ended_stores(root);
    let file = |name: &str, text: &str| {
        let path = dir.join(name);
        std::fs::write(&path, text).expect("write");
        path
    };
    let pki = pki();
    let ca = file("ca.crt", &pki.ca);
    let serving_cert = file("apiserver.crt", &pki.serving_cert);
    let serving_key = file("apiserver.key", &pki.serving_key);
    let service_account_key = file("service-account.key", &pki.service_account_key);
    let service_account_public_key = file("service-account.pub", &pki.service_account_public_key);
    let api_port = free_port();
    let server = format!("https://127.0.0.1:{api_port}");
    use base64::Engine;
    let encode = |pem: &str| base64::engine::general_purpose::STANDARD.encode(pem);
    let admin = file(
        "admin.kubeconfig",
        &kubeconfig(
            &server,
            &pki.ca,
            json!({ "client-certificate-data": encode(&pki.admin_cert), "client-key-data": encode(&pki.admin_key) }),
        ),
    );

    let (etcd_client, etcd_peer) = (free_port(), free_port());
    let etcd_args: Vec<String> = vec![
        format!("--data-dir={}", dir.join("etcd").display()),
        format!("--listen-client-urls=http://127.0.0.1:{etcd_client}"),
        format!("--advertise-client-urls=http://127.0.0.1:{etcd_client}"),
        format!("--listen-peer-urls=http://127.0.0.1:{etcd_peer}"),
        format!("--initial-advertise-peer-urls=http://127.0.0.1:{etcd_peer}"),
        format!("--initial-cluster=default=http://127.0.0.1:{etcd_peer}"),
        // A throwaway store: durability costs seconds on a busy disk and buys nothing here.
        "--unsafe-no-fsync=true".into(),
        "--log-level=warn".into(),
    ];
    let mut etcd = Command::new(binary(&bin, "etcd"));
    etcd.args(&etcd_args);
    let mut processes = vec![("etcd", launch("etcd", etcd, &dir.join("etcd.log")))];

    let apiserver_args: Vec<String> = vec![
        format!("--etcd-servers=http://127.0.0.1:{etcd_client}"),
        "--bind-address=127.0.0.1".into(),
        "--advertise-address=127.0.0.1".into(),
        format!("--secure-port={api_port}"),
        format!("--cert-dir={}", dir.join("certs").display()),
        format!("--tls-cert-file={}", serving_cert.display()),
        format!("--tls-private-key-file={}", serving_key.display()),
        format!("--client-ca-file={}", ca.display()),
        "--authorization-mode=RBAC".into(),
        format!("--service-account-key-file={}", service_account_public_key.display()),
        format!("--service-account-signing-key-file={}", service_account_key.display()),
        "--service-account-issuer=https://kubernetes.default.svc".into(),
        "--service-cluster-ip-range=10.96.0.0/16".into(),
        "--allow-privileged=true".into(),
        "--v=1".into(),
    ];
    let mut apiserver = Command::new(binary(&bin, "kube-apiserver"));
    apiserver.args(&apiserver_args);
    processes.push(("kube-apiserver", launch("kube-apiserver", apiserver, &dir.join("kube-apiserver.log"))));
    let mut plane = ControlPlane {
        kubeconfig: admin.clone(),
        bin: bin.clone(),
        server,
        ca_pem: pki.ca.clone(),
        dir: dir.clone(),
        core: None,
    };
    let client = wait_until_ready(&plane, &mut processes).await;

    let mut controller_manager = Command::new(binary(&bin, "kube-controller-manager"));
    controller_manager.args(component_flags(&admin)).args([
        format!("--service-account-private-key-file={}", service_account_key.display()),
        format!("--root-ca-file={}", ca.display()),
        "--use-service-account-credentials=true".into(),
    ]);
    let log = dir.join("kube-controller-manager.log");
    processes.push(("kube-controller-manager", launch("kube-controller-manager", controller_manager, &log)));

    let mut scheduler = Command::new(binary(&bin, "kube-scheduler"));
    scheduler.args(component_flags(&admin));
    processes.push(("kube-scheduler", launch("kube-scheduler", scheduler, &dir.join("kube-scheduler.log"))));

    let mut kwok = Command::new(binary(&bin, "kwok"));
    kwok.args([
        format!("--kubeconfig={}", admin.display()),
        format!("--config={}", bin.join("kwok-stages.yaml").display()),
        "--manage-all-nodes=false".into(),
        "--manage-nodes-with-annotation-selector=kwok.x-k8s.io/node=fake".into(),
        "--cidr=10.244.0.0/16".into(),
        // kwok renews the nodes' Leases itself: without them the node lifecycle controller
        // takes the nodes for gone after its grace period and marks their pods not ready.
        "--node-lease-duration-seconds=40".into(),
        "--node-ip=127.0.0.1".into(),
        format!("--node-port={}", free_port()),
        format!("--server-address=127.0.0.1:{}", free_port()),
    ]);
    processes.push(("kwok", launch("kwok", kwok, &dir.join("kwok.log"))));

    add_nodes(&client, &mut processes, &dir).await;
    add_storage(&client).await;
    let mut core = processes.into_iter().take(2).map(|(_, child)| child);
    let (etcd, apiserver) = (core.next().expect("etcd"), core.next().expect("the API server"));
    let core =
        Core { bin, etcd: (etcd_args, etcd), apiserver: (apiserver_args, apiserver), etcd_client_port: etcd_client };
    plane.core = Some(std::sync::Mutex::new(Some(core)));
    plane
}

const PLANE_PREFIX: &str = "controlplane-";
/// The file a control plane's directory is locked by while its test binary runs.
const IN_USE: &str = "in-use.lock";

/// Marks `dir` as in use until this test binary ends: the kernel drops the lock when the
/// process exits, however it exits.
fn hold(dir: &Path) {
    let lock = std::fs::File::create(dir.join(IN_USE)).expect("the lock file");
    lock.try_lock().expect("a new directory's lock");
    // Open, and so locked, for as long as the process lives.
    std::mem::forget(lock);
}

/// Removes the etcd data (hundreds of MB after a long test) of every control plane whose test
/// binary has ended, keeping its logs.
fn remove_ended_stores(root: &Path) {
    let Ok(entries) = std::fs::read_dir(root) else { return };
    let planes = entries.flatten().filter(|entry| entry.file_name().to_string_lossy().starts_with(PLANE_PREFIX));
    for plane in planes.map(|entry| entry.path()) {
        // A directory without the lock file predates it, or is being made and has no etcd yet.
        let ended = std::fs::File::open(plane.join(IN_USE)).map_or(true, |lock| lock.try_lock().is_ok());
        if ended {
            // Best effort: another run may be removing it too.
            let _ = std::fs::remove_dir_all(plane.join("etcd"));
        }
    }
}

#[test]
fn only_the_etcd_data_of_ended_control_planes_is_removed() {
    let root = tempfile::tempdir().expect("a temp dir");
    let plane = |name: &str| {
        let dir = root.path().join(name);
        std::fs::create_dir_all(dir.join("etcd/member")).expect("etcd's directory");
        std::fs::write(dir.join("etcd.log"), "log").expect("a log");
        dir
    };
    let (running, ended, older, other) =
        (plane("controlplane-running"), plane("controlplane-ended"), plane("controlplane-older"), plane("elsewhere"));
    // The running plane's lock stays held by this open file; the ended one's was let go.
    let held = std::fs::File::create(running.join(IN_USE)).expect("a lock file");
    held.try_lock().expect("the lock");
    std::fs::File::create(ended.join(IN_USE)).expect("a lock file");

    remove_ended_stores(root.path());
    let has_etcd = |dir: &Path| dir.join("etcd/member").exists();
    assert!(has_etcd(&running) && has_etcd(&other), "a running plane and a directory of no plane keep their data");
    assert!(!has_etcd(&ended) && !has_etcd(&older), "ended planes lose their etcd data");
    assert!([&running, &ended, &older].iter().all(|dir| dir.join("etcd.log").exists()), "logs are kept");
}

/// Fake nodes `kwok-node-N` for N in `indexes`, which kwok keeps Ready.
pub async fn add_fake_nodes(client: &Client, indexes: std::ops::Range<usize>) {
    let nodes: Api<Node> = Api::all(client.clone());
    for index in indexes {
        let node: Node = serde_json::from_value(json!({
            "apiVersion": "v1", "kind": "Node",
            "metadata": {
                "name": format!("kwok-node-{index}"),
                "annotations": { "kwok.x-k8s.io/node": "fake", "node.alpha.kubernetes.io/ttl": "0" },
                "labels": { "type": "kwok", "kubernetes.io/hostname": format!("kwok-node-{index}") },
            },
            "status": {
                "allocatable": { "cpu": "32", "memory": "256Gi", "pods": "110" },
                "capacity": { "cpu": "32", "memory": "256Gi", "pods": "110" },
            },
        }))
        .expect("a node");
        nodes.create(&PostParams::default(), &node).await.expect("a fake node");
    }
}

/// Static storage, as a cluster without a provisioner has it: a default StorageClass that
/// allows expansion and volumes for claims to bind to (the controller manager binds them).
async fn add_storage(client: &Client) {
    use k8s_openapi::api::storage::v1::StorageClass;
    let class: StorageClass = serde_json::from_value(json!({
        "metadata": { "name": "standard", "annotations": { "storageclass.kubernetes.io/is-default-class": "true" } },
        "provisioner": "kubernetes.io/no-provisioner",
        "volumeBindingMode": "Immediate",
        "allowVolumeExpansion": true,
    }))
    .expect("a class");
    Api::<StorageClass>::all(client.clone()).create(&PostParams::default(), &class).await.expect("the default class");
    add_static_volumes(client, 0..STATIC_VOLUMES).await;
}

/// The next number of a static volume no test has used.
static NEXT_VOLUME: std::sync::atomic::AtomicUsize = std::sync::atomic::AtomicUsize::new(1000);

/// `count` static PersistentVolumes no test has used: a released volume is not bound again
/// (there is no provisioner to recycle it), so each scenario brings its own.
pub async fn add_fresh_volumes(client: &Client, count: usize) {
    let first = NEXT_VOLUME.fetch_add(count, std::sync::atomic::Ordering::Relaxed);
    add_static_volumes(client, first..first + count).await;
}

/// Static PersistentVolumes `static-N` for N in `indexes`, of the default class.
pub async fn add_static_volumes(client: &Client, indexes: std::ops::Range<usize>) {
    use k8s_openapi::api::core::v1::PersistentVolume;
    let volumes: Api<PersistentVolume> = Api::all(client.clone());
    for index in indexes {
        let volume: PersistentVolume = serde_json::from_value(json!({
            "metadata": { "name": format!("static-{index}") },
            "spec": {
                "storageClassName": "standard",
                "capacity": { "storage": "100Gi" },
                "accessModes": ["ReadWriteOnce", "ReadWriteMany"],
                "persistentVolumeReclaimPolicy": "Delete",
                "hostPath": { "path": format!("/tmp/windflow-e2e/static-{index}") },
            },
        }))
        .expect("a volume");
        volumes.create(&PostParams::default(), &volume).await.expect("a static volume");
    }
}

/// Panics, naming it and its log, when one of `processes` has exited.
fn all_running(processes: &mut [(&str, Child)], dir: &Path) {
    for (name, process) in processes.iter_mut() {
        if let Ok(Some(status)) = process.try_wait() {
            let log = dir.join(format!("{name}.log"));
            let text = std::fs::read_to_string(&log).unwrap_or_default();
            let tail: Vec<&str> = text.lines().rev().take(15).collect();
            let tail: Vec<&str> = tail.into_iter().rev().collect();
            panic!("{name} exited with {status}; the end of {}:\n{}", log.display(), tail.join("\n"));
        }
    }
}

/// What the controller manager and the scheduler share: the admin kubeconfig for everything,
/// one instance (no election), their own serving on a free loopback port.
fn component_flags(admin: &Path) -> Vec<String> {
    vec![
        format!("--kubeconfig={}", admin.display()),
        format!("--authentication-kubeconfig={}", admin.display()),
        format!("--authorization-kubeconfig={}", admin.display()),
        "--leader-elect=false".into(),
        "--bind-address=127.0.0.1".into(),
        format!("--secure-port={}", free_port()),
        "--v=1".into(),
    ]
}

/// Polls `/readyz` until the API server answers ready.
async fn wait_until_ready(plane: &ControlPlane, processes: &mut [(&str, Child)]) -> Client {
    let dir = &plane.dir;
    let deadline = Instant::now() + READY_WITHIN;
    let mut last = String::new();
    while Instant::now() < deadline {
        all_running(processes, dir);
        let client = plane.client().await;
        let request = http::Request::get("/readyz").body(vec![]).expect("request");
        match client.request_text(request).await {
            Ok(text) if text.trim() == "ok" => return client,
            Ok(text) => last = text,
            Err(error) => last = error.to_string(),
        }
        tokio::time::sleep(Duration::from_millis(500)).await;
    }
    panic!("the API server was not ready within {READY_WITHIN:?}: {last}; logs in {}", dir.display());
}

/// Fake nodes for kwok, then waits until they are Ready (kwok manages them) and the default
/// ServiceAccount exists (the controller manager runs).
async fn add_nodes(client: &Client, processes: &mut [(&str, Child)], dir: &Path) {
    add_fake_nodes(client, 0..NODES).await;
    let nodes: Api<Node> = Api::all(client.clone());
    let deadline = Instant::now() + READY_WITHIN;
    loop {
        let ready = nodes
            .list(&Default::default())
            .await
            .expect("nodes")
            .items
            .iter()
            .filter(|node| {
                node.status
                    .as_ref()
                    .and_then(|s| s.conditions.as_ref())
                    .is_some_and(|conditions| conditions.iter().any(|c| c.type_ == "Ready" && c.status == "True"))
            })
            .count();
        let accounts: Api<k8s_openapi::api::core::v1::ServiceAccount> = Api::namespaced(client.clone(), "default");
        let controllers_run = accounts.get_opt("default").await.ok().flatten().is_some();
        if ready >= NODES && controllers_run {
            return;
        }
        all_running(processes, dir);
        assert!(
            Instant::now() < deadline,
            "{ready} of {NODES} kwok nodes Ready, default ServiceAccount: {controllers_run} (see kwok.log and \
             kube-controller-manager.log)"
        );
        tokio::time::sleep(Duration::from_millis(500)).await;
    }
}
