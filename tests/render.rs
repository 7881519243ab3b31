//! `windflow render`, as users run it: on the sample platform, and on bad manifests.

use std::io::Write;
use std::process::{Command, Output, Stdio};

fn render(args: &[&str], stdin: &str) -> Output {
    let mut child = Command::new(env!("CARGO_BIN_EXE_windflow"))
        .arg("render")
        .args(args)
        .current_dir(env!("CARGO_MANIFEST_DIR"))
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("windflow runs");
    child.stdin.take().expect("stdin").write_all(stdin.as_bytes()).expect("write stdin");
    child.wait_with_output().expect("windflow exits")
}

/// The sample platform with `replace` applied to its text, as standard input.
fn edited(replace: &[(&str, &str)]) -> String {
    let mut text =
        std::fs::read_to_string(concat!(env!("CARGO_MANIFEST_DIR"), "/examples/platform.yaml")).expect("sample");
    for (from, to) in replace {
        assert!(text.contains(from), "the sample holds {from:?}");
        text = text.replacen(from, to, 1);
    }
    text
}

#[test]
fn the_sample_platform_renders_every_child() {
    let output = render(
        &["-f", "examples", "--storage-class", "ceph=rook-ceph-block", "--pod-network-encryption", "wireguard"],
        "",
    );
    let stdout = String::from_utf8_lossy(&output.stdout);
    assert!(output.status.success(), "{}", String::from_utf8_lossy(&output.stderr));
    let docs: Vec<serde_yaml::Value> = serde_yaml::Deserializer::from_str(&stdout)
        .map(|d| serde::Deserialize::deserialize(d).expect("yaml"))
        .collect();
    let count = |kind: &str| docs.iter().filter(|d| d["kind"].as_str() == Some(kind)).count();
    // Production's namespace, quota and limits are on the management cluster and on main, where
    // its stack runs.
    assert_eq!(count("Namespace"), 4, "the tenant namespace and two environments, production twice");
    for (kind, expected) in [
        ("ResourceQuota", 3),
        ("LimitRange", 3),
        ("PersistentVolumeClaim", 2),
        // The backend network's, and the VM's own for its fixed address.
        ("NetworkAttachmentDefinition", 2),
        ("VirtualMachine", 1),
        ("Cluster", 1),
        ("Deployment", 3),
        ("Service", 3),
        ("HTTPRoute", 1),
        ("Certificate", 2),
        ("DNSEndpoint", 1),
        ("Role", 4),
        ("RoleBinding", 4),
    ] {
        assert_eq!(count(kind), expected, "{kind}");
    }
    assert!(stdout.contains("storageClassName: rook-ceph-block"));
    // Where each child runs is said beside it: the stack's on main, the rest with the operator.
    assert!(stdout.contains("# provisioned by Volume acme/pgdata on cluster main\n"), "{stdout}");
    assert!(stdout.contains("# provisioned by Application acme/api on cluster main\n"), "{stdout}");
    assert!(stdout.contains("# provisioned by Environment acme/production on cluster main\n"), "{stdout}");
    assert!(stdout.contains("# provisioned by Environment acme/production\n"), "{stdout}");
    assert!(stdout.contains("# provisioned by ContainerCluster acme/main\n"), "{stdout}");
    assert!(!stdout.contains("not provisioned"), "{stdout}");
}

/// What the installation does not provide (here, an encrypting pod network) is said where the
/// children would be, and the rest renders: the manifests are not at fault.
#[test]
fn what_the_installation_does_not_provide_is_noted_not_fatal() {
    let output = render(&["-f", "examples"], "");
    let stdout = String::from_utf8_lossy(&output.stdout);
    assert!(output.status.success(), "{}", String::from_utf8_lossy(&output.stderr));
    assert!(
        stdout.contains(
            "# not provisioned by this installation: Network acme/frontend: spec.encryptionEnabled: the cluster's \
             pod network is not known to encrypt traffic"
        ),
        "{stdout}"
    );
    assert!(stdout.contains("# provisioned by Network acme/backend"));
}

#[test]
fn a_bad_manifest_exits_non_zero_with_one_line_per_problem() {
    let stdin = edited(&[
        ("volumeType: ceph, sizeGb: 50", "volumeType: ceph, sizeGb: 0"),
        (
            "spec: { elementRef: { name: backbone }, networkType: overlay }",
            "spec: { elementRef: { name: nowhere }, networkType: overlay }",
        ),
        ("metadata: { name: rack-1, namespace: acme }", "metadata: { name: rack-1, namespace: other-tenant }"),
        ("subjects: { users: [alice]", "subjects: { users: [mallory]"),
    ]);
    let output = render(&["-f", "-"], &stdin);
    assert_eq!(output.status.code(), Some(1));
    assert!(output.stdout.is_empty(), "nothing is rendered from bad manifests");
    let stderr = String::from_utf8_lossy(&output.stderr);
    let lines: Vec<&str> = stderr.lines().collect();
    let expected = [
        "-: Volume acme/pgdata: /spec/sizeGb: 0 is less than the minimum of 0.01",
        "-: Network acme/frontend: spec.elementRef: Element \"nowhere\" is not in these manifests in namespace acme",
        "-: PhysicalHost other-tenant/rack-1: metadata.namespace: namespace \"other-tenant\" belongs to no Organization",
        "-: Policy acme/deployers: spec.subjects.users[0]: User \"mallory\" is not in these manifests",
    ];
    for line in expected {
        assert!(lines.iter().any(|l| l.starts_with(line)), "expected a line starting {line:?} in:\n{stderr}");
    }
    assert_eq!(lines.len(), expected.len(), "one line per problem:\n{stderr}");
}

#[test]
fn what_only_the_builder_knows_is_reported_with_the_field() {
    let stdin = edited(&[("    host: shop.acme.example\n", "")]);
    let output = render(&["-f", "-"], &stdin);
    assert_eq!(output.status.code(), Some(1));
    assert_eq!(
        String::from_utf8_lossy(&output.stderr).trim(),
        "-: Gateway acme/public: spec.gatewayConfig.host: an http gateway names the host it serves"
    );
}

#[test]
fn a_user_who_is_not_a_member_cannot_be_named_in_a_tenant() {
    let stdin = edited(&[("    - { user: bob, role: viewer }\n", "")]);
    let output = render(&["-f", "-"], &stdin);
    assert_eq!(output.status.code(), Some(1));
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(stderr.contains("Group acme/platform-team: spec.members"), "{stderr}");
    assert!(stderr.contains("User \"bob\" is not a member of Organization \"acme\""), "{stderr}");
}

#[test]
fn a_missing_file_is_named() {
    let output = render(&["-f", "no/such/file.yaml"], "");
    assert_eq!(output.status.code(), Some(1));
    assert!(String::from_utf8_lossy(&output.stderr).starts_with("no/such/file.yaml: "));
}
