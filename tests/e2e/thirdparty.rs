//! The APIs WindFlow provisions into, as they really are: their CRDs (from the projects' own
//! Go modules, `e2e/controlplane/thirdparty.txt`) installed without their controllers, and
//! every child `windflow render` builds from the sample platform accepted by the API server
//! with strict field validation.

use std::collections::BTreeSet;
use std::process::Command;

use k8s_openapi::apiextensions_apiserver::pkg::apis::apiextensions::v1::CustomResourceDefinition;
use kube::ResourceExt;
use kube::api::Api;
use serde_json::Value;

use crate::controlplane::{both, run};
use crate::{established, turn};

/// API groups whose CRDs the module proxy does not serve (KubeVirt, Multus): their children are
/// checked offline only (`render`, the builders' unit tests).
const NOT_SERVED: &[&str] = &["kubevirt.io", "k8s.cni.cncf.io"];

fn group_of(doc: &Value) -> &str {
    doc["apiVersion"].as_str().and_then(|v| v.rsplit_once('/')).map_or("", |(group, _)| group)
}

#[tokio::test]
async fn every_child_passes_strict_validation_of_the_apis_it_targets() {
    let (_turn, plane) = turn().await;
    // What an earlier scenario left (its tenant namespaces) would collide with these.
    crate::install::reset(plane).await;
    // On an existing cluster (WINDFLOW_E2E_KUBECONFIG), CRDs already there are left alone: only
    // the missing ones are installed, and only those are removed afterwards.
    let crds: Api<CustomResourceDefinition> = Api::all(plane.client().await);
    let mut installed = vec![];
    for entry in std::fs::read_dir(plane.bin.join("thirdparty")).expect("the third-party CRDs") {
        let path = entry.expect("entry").path();
        let crd: CustomResourceDefinition =
            serde_yaml::from_str(&std::fs::read_to_string(&path).expect("read")).expect("a CRD");
        if crds.get_opt(&crd.name_any()).await.expect("get").is_none() {
            installed.push(path);
        }
    }
    for path in &installed {
        let mut install = plane.kubectl();
        install.args(["apply", "--server-side", "-f"]).arg(path);
        run(install);
    }
    let names = installed.iter().map(|path| {
        let crd: CustomResourceDefinition =
            serde_yaml::from_str(&std::fs::read_to_string(path).expect("read")).expect("a CRD");
        crd.name_any()
    });
    established(plane, names).await;

    let render = Command::new(env!("CARGO_BIN_EXE_windflow"))
        .args(["render", "-f", concat!(env!("CARGO_MANIFEST_DIR"), "/examples")])
        .output()
        .expect("windflow render");
    assert!(render.status.success(), "render: {}", both(&render));
    let mut children = crate::support::documents(&String::from_utf8_lossy(&render.stdout));
    // The same child on two clusters (an environment's namespace where its stacks run) is one
    // object to check here.
    let mut seen = BTreeSet::new();
    children.retain(|doc| {
        let key = ["/apiVersion", "/kind", "/metadata/namespace", "/metadata/name"].map(|p| doc.pointer(p).cloned());
        seen.insert(format!("{key:?}"))
    });
    let (unchecked, checked): (Vec<Value>, Vec<Value>) =
        children.into_iter().partition(|doc| NOT_SERVED.contains(&group_of(doc)));
    let groups: BTreeSet<&str> = checked.iter().map(group_of).collect();
    for group in ["cluster.x-k8s.io", "cert-manager.io", "externaldns.k8s.io", "", "apps", "networking.k8s.io"] {
        assert!(groups.contains(group), "the sample provisions into {group:?}: {groups:?}");
    }
    eprintln!("{} children checked strictly, {} of groups not served here", checked.len(), unchecked.len());

    // Namespaced children need their namespaces: the Namespaces WindFlow would create.
    let namespaces: Vec<&str> = checked
        .iter()
        .filter(|doc| doc["kind"] == "Namespace")
        .filter_map(|doc| doc["metadata"]["name"].as_str())
        .collect();
    for namespace in &namespaces {
        let mut create = plane.kubectl();
        create.args(["create", "namespace", namespace]);
        run(create);
    }
    let dry_run = |docs: &[Value], name: &str| {
        let file = plane.dir.join(name);
        let yaml: Vec<String> = docs.iter().map(|doc| serde_yaml::to_string(doc).expect("yaml")).collect();
        std::fs::write(&file, yaml.join("---\n")).expect("write");
        let mut apply = plane.kubectl();
        apply
            .args([
                "apply",
                "--server-side",
                "--dry-run=server",
                "--validate=strict",
                "--field-manager=windflow-operator",
            ])
            .arg("-f")
            .arg(&file);
        apply.output().expect("kubectl runs")
    };
    let accepted = dry_run(&checked, "children.yaml");
    assert!(accepted.status.success(), "children refused by the real APIs: {}", both(&accepted));

    // Strict validation is on: the same child with a misspelt field is refused.
    let mut misspelt = checked.iter().find(|doc| doc["kind"] == "Certificate").expect("a Certificate").clone();
    misspelt["spec"]["dnsNamez"] = misspelt["spec"]["dnsNames"].clone();
    let refused = dry_run(&[misspelt], "misspelt.yaml");
    assert!(!refused.status.success() && both(&refused).contains("dnsNamez"), "{}", both(&refused));

    for namespace in &namespaces {
        let mut delete = plane.kubectl();
        delete.args(["delete", "namespace", namespace, "--wait=true", "--timeout=120s"]);
        run(delete);
    }
    // The other scenarios run without the third-party APIs.
    for path in &installed {
        let mut uninstall = plane.kubectl();
        uninstall.args(["delete", "--wait=true", "-f"]).arg(path);
        run(uninstall);
    }
}
