//! What a health check may follow from a tenant's Secret: inline credentials only, sent only to
//! addresses outside the deny list. A kubeconfig can name a command to run (`exec`,
//! `auth-provider`), files to read (`tokenFile`, certificate paths: the operator's own
//! service-account token among them) and a proxy; none of it is run, read or followed.

use std::net::IpAddr;

use ipnet::IpNet;
use kube::config::Kubeconfig;

/// Destinations refused by default: loopback (the operator's own pod), link-local (most cloud
/// metadata services, which hand out the node's credentials) and the metadata services outside
/// it (AWS over IPv6, Alibaba Cloud).
pub const DEFAULT_DENY: &[&str] =
    &["127.0.0.0/8", "::1/128", "169.254.0.0/16", "fe80::/10", "fd00:ec2::254/128", "100.100.100.200/32"];

/// Destinations refused whatever the deny list says: the unspecified addresses, which Linux
/// connects to the operator's own host.
pub const ALWAYS_DENIED: &[&str] = &["0.0.0.0/8", "::/128"];

/// The default deny list, parsed.
pub fn default_deny() -> Vec<IpNet> {
    DEFAULT_DENY.iter().filter_map(|cidr| cidr.parse().ok()).collect()
}

/// The first field of `kubeconfig` that is not inline material (`server`,
/// `certificate-authority-data`, `client-certificate-data`, `client-key-data`, `token`), named
/// as in the kubeconfig; `None` when there is none.
pub fn not_inline(kubeconfig: &Kubeconfig) -> Option<String> {
    for (i, named) in kubeconfig.clusters.iter().enumerate() {
        let Some(cluster) = &named.cluster else { continue };
        let set = [
            ("certificate-authority", cluster.certificate_authority.is_some()),
            ("proxy-url", cluster.proxy_url.is_some()),
            ("insecure-skip-tls-verify", cluster.insecure_skip_tls_verify.is_some()),
            ("tls-server-name", cluster.tls_server_name.is_some()),
            ("disable-compression", cluster.disable_compression.is_some()),
        ];
        if let Some(field) = first_set(&set, &cluster.other) {
            return Some(format!("clusters[{i}].cluster.{field}"));
        }
    }
    for (i, named) in kubeconfig.auth_infos.iter().enumerate() {
        let Some(user) = &named.auth_info else { continue };
        let set = [
            ("exec", user.exec.is_some()),
            ("auth-provider", user.auth_provider.is_some()),
            ("tokenFile", user.token_file.is_some()),
            ("client-certificate", user.client_certificate.is_some()),
            ("client-key", user.client_key.is_some()),
            ("username", user.username.is_some()),
            ("password", user.password.is_some()),
            ("as", user.impersonate.is_some()),
            ("as-uid", user.impersonate_uid.is_some()),
            ("as-groups", user.impersonate_groups.is_some()),
            ("as-user-extra", user.impersonate_user_extra.is_some()),
        ];
        if let Some(field) = first_set(&set, &user.other) {
            return Some(format!("users[{i}].user.{field}"));
        }
    }
    None
}

/// The first of the known `fields` that is set, else the first unknown key.
fn first_set<V>(fields: &[(&str, bool)], unknown: &std::collections::BTreeMap<String, V>) -> Option<String> {
    let known = fields.iter().filter(|(_, set)| *set).map(|(field, _)| (*field).to_owned());
    known.chain(unknown.keys().cloned()).next()
}

/// Why a destination is refused.
#[derive(Debug, PartialEq, Eq, thiserror::Error)]
pub enum Refused {
    #[error("{0} is not an http(s) URL with a host")]
    NotAUrl(String),
    #[error("{host} resolves to {address}, which the operator's deny list ({cidr}) refuses")]
    Denied { host: String, address: IpAddr, cidr: IpNet },
    #[error("{host} resolves to {address}, an unspecified address, which reaches the operator's own host")]
    Unspecified { host: String, address: IpAddr },
    #[error("{0} does not resolve")]
    Unresolved(String),
}

/// The address to connect to for `url`, once every address its host resolves to is outside
/// `deny`: the connection then goes to that address (the host stays the TLS name), so that a
/// second resolution cannot lead elsewhere.
pub async fn pinned(url: &http::Uri, deny: &[IpNet]) -> Result<IpAddr, Refused> {
    let host = url.host().ok_or_else(|| Refused::NotAUrl(url.to_string()))?;
    let bare = host.trim_start_matches('[').trim_end_matches(']');
    let port = url.port_u16().unwrap_or(if url.scheme_str() == Some("http") { 80 } else { 443 });
    let addresses: Vec<IpAddr> = match bare.parse::<IpAddr>() {
        Ok(address) => vec![address],
        Err(_) => tokio::net::lookup_host((bare, port))
            .await
            .map_err(|_| Refused::Unresolved(bare.to_owned()))?
            .map(|socket| socket.ip())
            .collect(),
    };
    for address in &addresses {
        // An IPv4 address written as IPv6 (::ffff:127.0.0.1) is the IPv4 one.
        let canonical = address.to_canonical();
        if ALWAYS_DENIED.iter().filter_map(|cidr| cidr.parse::<IpNet>().ok()).any(|cidr| cidr.contains(&canonical)) {
            return Err(Refused::Unspecified { host: bare.to_owned(), address: canonical });
        }
        if let Some(cidr) = deny.iter().find(|cidr| cidr.contains(&canonical)) {
            return Err(Refused::Denied { host: bare.to_owned(), address: canonical, cidr: *cidr });
        }
    }
    addresses.first().copied().ok_or_else(|| Refused::Unresolved(bare.to_owned()))
}

/// Why the operator's own endpoints could not be found for the deny list.
#[derive(Debug, thiserror::Error)]
pub enum DiscoveryError {
    #[error("cannot read the kubernetes Service or its EndpointSlices in namespace default: {0}")]
    Kube(#[from] kube::Error),
    #[error("the database host {0} does not resolve")]
    Unresolved(String),
}

/// The addresses of what the operator itself talks to, which no tenant may reach through it: the
/// management cluster's API server (the `kubernetes` Service's cluster IPs and its endpoints) and
/// each of `databases` (`(host, port)`; a Unix socket directory has no address).
pub async fn own_endpoints(client: &kube::Client, databases: &[(&str, u16)]) -> Result<Vec<IpNet>, DiscoveryError> {
    use k8s_openapi::api::core::v1::Service;
    use k8s_openapi::api::discovery::v1::EndpointSlice;
    let service = kube::Api::<Service>::namespaced(client.clone(), "default").get("kubernetes").await?;
    let mut addresses: Vec<String> = service.spec.and_then(|spec| spec.cluster_ips).unwrap_or_default();
    let slices = kube::Api::<EndpointSlice>::namespaced(client.clone(), "default")
        .list(&kube::api::ListParams::default().labels("kubernetes.io/service-name=kubernetes"))
        .await?;
    let endpoints = slices.items.into_iter().flat_map(|slice| slice.endpoints.unwrap_or_default());
    addresses.extend(endpoints.flat_map(|endpoint| endpoint.addresses));
    let mut own: Vec<IpAddr> = addresses.iter().filter_map(|address| address.parse().ok()).collect();
    for (host, port) in databases.iter().filter(|(host, _)| !host.starts_with('/')) {
        let resolved = tokio::net::lookup_host((*host, *port))
            .await
            .map_err(|_| DiscoveryError::Unresolved((*host).to_owned()))?;
        own.extend(resolved.map(|socket| socket.ip()));
    }
    let mut own: Vec<IpNet> = own.into_iter().map(|address| IpNet::from(address.to_canonical())).collect();
    own.sort();
    own.dedup();
    Ok(own)
}

/// `url` with its host replaced by `address`.
pub fn with_address(url: &http::Uri, address: IpAddr) -> Result<http::Uri, Refused> {
    let host = match address {
        IpAddr::V4(v4) => v4.to_string(),
        IpAddr::V6(v6) => format!("[{v6}]"),
    };
    let authority = match url.port_u16() {
        Some(port) => format!("{host}:{port}"),
        None => host,
    };
    let path = url.path_and_query().map_or("", |p| p.as_str());
    format!("{}://{authority}{path}", url.scheme_str().unwrap_or("https"))
        .parse()
        .map_err(|_| Refused::NotAUrl(url.to_string()))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn kubeconfig(cluster: &str, user: &str) -> Kubeconfig {
        Kubeconfig::from_yaml(&format!(
            "apiVersion: v1\nkind: Config\ncurrent-context: c\nclusters: [{{ name: c, cluster: {cluster} }}]\n\
             users: [{{ name: u, user: {user} }}]\ncontexts: [{{ name: c, context: {{ cluster: c, user: u }} }}]\n"
        ))
        .expect("a kubeconfig")
    }

    #[test]
    fn only_inline_credentials_are_followed() {
        let inline = kubeconfig(
            "{ server: 'https://10.0.0.1:6443', certificate-authority-data: Y2E= }",
            "{ token: t, client-certificate-data: Y2VydA==, client-key-data: a2V5 }",
        );
        assert_eq!(not_inline(&inline), None);
        for (cluster, user, field) in [
            (
                "{ server: s }",
                "{ exec: { command: sh, apiVersion: client.authentication.k8s.io/v1 } }",
                "users[0].user.exec",
            ),
            ("{ server: s }", "{ auth-provider: { name: gcp } }", "users[0].user.auth-provider"),
            (
                "{ server: s }",
                "{ tokenFile: /var/run/secrets/kubernetes.io/serviceaccount/token }",
                "users[0].user.tokenFile",
            ),
            (
                "{ server: s }",
                "{ client-certificate: /etc/cert, client-key: /etc/key }",
                "users[0].user.client-certificate",
            ),
            ("{ server: s }", "{ as: admin }", "users[0].user.as"),
            ("{ server: s, certificate-authority: /etc/ca }", "{}", "clusters[0].cluster.certificate-authority"),
            ("{ server: s, proxy-url: 'http://10.0.0.9:3128' }", "{}", "clusters[0].cluster.proxy-url"),
            ("{ server: s, someday: x }", "{}", "clusters[0].cluster.someday"),
        ] {
            assert_eq!(not_inline(&kubeconfig(cluster, user)).as_deref(), Some(field), "{cluster} {user}");
        }
    }

    #[tokio::test]
    async fn denied_destinations_are_refused_whatever_their_spelling() {
        let deny = default_deny();
        for url in [
            "https://127.0.0.1:6443",
            "https://169.254.169.254/latest",
            "https://[::1]:6443",
            "https://[::ffff:127.0.0.1]:6443",
            "http://localhost:2375",
            "http://100.100.100.200/latest/meta-data",
            "http://[fd00:ec2::254]/latest",
        ] {
            let refused = pinned(&url.parse().expect("uri"), &deny).await.expect_err(url);
            assert!(matches!(refused, Refused::Denied { .. }), "{url}: {refused}");
        }
        // The unspecified addresses reach the operator's own host: refused even by an empty list.
        for url in ["https://0.0.0.0:6443", "https://[::]:6443", "https://0:6443", "https://[::ffff:0.0.0.0]:6443"] {
            let refused = pinned(&url.parse().expect("uri"), &[]).await.expect_err(url);
            assert!(matches!(refused, Refused::Unspecified { .. }), "{url}: {refused}");
        }
        let allowed = pinned(&"https://10.0.0.1:6443".parse().expect("uri"), &deny).await;
        assert_eq!(allowed, Ok("10.0.0.1".parse().expect("ip")));
        let url: http::Uri = "https://api.example:6443/base".parse().expect("uri");
        let pinned_url = with_address(&url, "10.0.0.1".parse().expect("ip")).expect("pinned");
        assert_eq!(pinned_url.to_string(), "https://10.0.0.1:6443/base");
        let none = pinned(&"http://localhost:2375".parse().expect("uri"), &[]).await;
        assert!(none.is_ok(), "an empty deny list refuses nothing: {none:?}");
    }
}
