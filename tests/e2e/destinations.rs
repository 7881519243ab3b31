//! The deny list on a real control plane: the operator finds its own API server with the
//! chart's RBAC, and refuses to reach it, or its database, for a tenant.

use k8s_openapi::api::discovery::v1::EndpointSlice;
use kube::api::{Api, DeleteParams, PostParams};
use serde_json::json;
use windflow::provision::destination::{Refused, own_endpoints, pinned};

use crate::install::install_chart;

#[tokio::test]
async fn own_endpoints_are_found_with_the_charts_rbac_and_refused() {
    let (_turn, plane) = crate::turn().await;
    let kubeconfig = install_chart(plane).await;
    let operator = crate::controlplane::client_from(&kubeconfig).await;
    // This API server advertises a loopback address, which it does not publish: write the
    // EndpointSlice an API server on a node's address keeps.
    let slices: Api<EndpointSlice> = Api::namespaced(plane.client().await, "default");
    let slice = json!({
        "apiVersion": "discovery.k8s.io/v1", "kind": "EndpointSlice", "addressType": "IPv4",
        "metadata": { "name": "kubernetes", "labels": { "kubernetes.io/service-name": "kubernetes" } },
        "endpoints": [{ "addresses": ["192.0.2.10"] }],
        "ports": [{ "name": "https", "port": 6443, "protocol": "TCP" }],
    });
    let slice: EndpointSlice = serde_json::from_value(slice).expect("an EndpointSlice");
    slices.create(&PostParams::default(), &slice).await.expect("the API server's EndpointSlice");
    let own = own_endpoints(&operator, &[]).await;
    slices.delete("kubernetes", &DeleteParams::default()).await.expect("removed");
    let own = own.expect("found with the operator's token");
    // The `kubernetes` Service's address in this control plane's service range, and its endpoint.
    assert_eq!(own, ["10.96.0.1/32".parse().expect("a CIDR"), "192.0.2.10/32".parse().expect("a CIDR")]);
    for url in ["https://10.96.0.1:443", "https://192.0.2.10:6443"] {
        let refused = pinned(&url.parse().expect("a URL"), &own).await;
        assert!(matches!(refused, Err(Refused::Denied { .. })), "{url}: {refused:?}");
    }
    // The database's host, resolved; a Unix socket has no address.
    let with_database =
        own_endpoints(&operator, &[("127.0.0.2", 5432), ("/var/run/postgresql", 5432)]).await.expect("found");
    assert_eq!(with_database, ["10.96.0.1/32".parse().expect("a CIDR"), "127.0.0.2/32".parse().expect("a CIDR")]);
}
