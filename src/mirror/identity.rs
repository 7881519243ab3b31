//! From the user the API server authenticated to the WindFlow login that names a User, and
//! back: the Kubernetes usernames a User's RoleBindings name.

use std::collections::BTreeMap;

use k8s_openapi::api::authentication::v1::UserInfo;

use crate::mirror::actor::Actor;

/// Groups every authenticated requester of a kind has: they say nothing about who acted.
const COMMON_GROUPS: &[&str] = &["system:authenticated", "system:unauthenticated", "system:serviceaccounts"];

/// How Kubernetes identities map to WindFlow logins (a User's name or email).
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Identities {
    /// Kubernetes usernames mapped to a login as they are, such as Argo CD's ServiceAccount to
    /// a platform User. Checked first.
    pub map: BTreeMap<String, String>,
    /// The key of the authenticator's extra attributes that holds the login, such as a claim
    /// the structured authentication configuration maps into `extra`. Set, a requester without
    /// it is no User.
    pub extra: Option<String>,
    /// The prefix the authenticator puts before usernames (`oidc:`), removed. Set, a username
    /// without it is no User: another authenticator (a client certificate, a static token)
    /// could name anyone.
    pub prefix: Option<String>,
}

impl Identities {
    /// Who sent a request, with the login their username maps to. `system:` usernames (cluster
    /// components, ServiceAccounts) map to no login unless `map` names them.
    pub fn actor(&self, user: &UserInfo) -> Actor {
        let username = user.username.clone().unwrap_or_default();
        let login = self.login(&username, user.extra.as_ref());
        let groups = user
            .groups
            .iter()
            .flatten()
            .filter(|group| !COMMON_GROUPS.contains(&group.as_str()) && !group.starts_with("system:serviceaccounts:"))
            .cloned()
            .collect();
        Actor { username, groups, login }
    }

    fn login(&self, username: &str, extra: Option<&BTreeMap<String, Vec<String>>>) -> Option<String> {
        if let Some(login) = self.map.get(username) {
            return Some(login.clone());
        }
        if let Some(key) = &self.extra {
            return extra?.get(key)?.first().filter(|login| !login.is_empty()).cloned();
        }
        if username.starts_with("system:") {
            return None;
        }
        let login = match self.prefix.as_deref() {
            Some(prefix) => username.strip_prefix(prefix)?,
            None => username,
        };
        Some(login.to_owned()).filter(|login| !login.is_empty())
    }
}

impl Identities {
    /// The Kubernetes usernames whose requests are the User `name` (of `email`): what its
    /// RoleBindings name. Those `map` names for it; and, unless logins come from `extra` (a
    /// username then says nothing of whose it is), its name and its email behind the prefix,
    /// unless `map` gives that username to someone else.
    pub fn usernames(&self, name: &str, email: Option<&str>) -> Vec<String> {
        let theirs = |login: &str| login == name || email.is_some_and(|email| login.eq_ignore_ascii_case(email));
        let mut usernames: Vec<String> =
            self.map.iter().filter(|(_, login)| theirs(login)).map(|(username, _)| username.clone()).collect();
        if self.extra.is_none() {
            let prefix = self.prefix.as_deref().unwrap_or_default();
            let spelled = std::iter::once(name).chain(email).map(|login| format!("{prefix}{login}"));
            usernames.extend(spelled.filter(|username| {
                !username.starts_with("system:") && self.map.get(username).is_none_or(|login| theirs(login))
            }));
        }
        usernames.sort();
        usernames.dedup();
        usernames
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn user(username: &str, groups: &[&str], extra: &[(&str, &str)]) -> UserInfo {
        UserInfo {
            username: Some(username.into()),
            groups: Some(groups.iter().map(|g| (*g).to_owned()).collect()),
            extra: Some(extra.iter().map(|(k, v)| ((*k).to_owned(), vec![(*v).to_owned()])).collect()),
            uid: None,
        }
    }

    #[test]
    fn a_person_maps_to_their_login_and_the_groups_that_matter() {
        let identities = Identities { prefix: Some("oidc:".into()), ..Identities::default() };
        let actor = identities.actor(&user("oidc:alice@acme.example", &["system:authenticated", "platform"], &[]));
        assert_eq!(actor.username, "oidc:alice@acme.example");
        assert_eq!(actor.login.as_deref(), Some("alice@acme.example"));
        assert_eq!(actor.groups, ["platform"]);
        // Without the prefix, someone another authenticator named: no User.
        assert_eq!(identities.actor(&user("alice@acme.example", &[], &[])).login, None);
        assert_eq!(identities.actor(&user("oidc:", &[], &[])).login, None);
        // Without a prefix configured, the name is the login.
        assert_eq!(Identities::default().actor(&user("bob", &[], &[])).login.as_deref(), Some("bob"));
    }

    #[test]
    fn components_map_to_nobody_unless_named() {
        let argo = "system:serviceaccount:argocd:argocd-application-controller";
        let identities =
            Identities { map: BTreeMap::from([(argo.to_owned(), "platform-bot".to_owned())]), ..Identities::default() };
        let groups = ["system:serviceaccounts", "system:serviceaccounts:argocd", "system:authenticated"];
        let actor = identities.actor(&user(argo, &groups, &[]));
        assert_eq!((actor.login.as_deref(), actor.groups.len()), (Some("platform-bot"), 0));
        let gc = identities.actor(&user("system:serviceaccount:kube-system:generic-garbage-collector", &[], &[]));
        assert_eq!(gc.login, None);
        // Cluster administrators keep the group that makes them so.
        assert_eq!(identities.actor(&user("admin", &["system:masters"], &[])).groups, ["system:masters"]);
    }

    /// RoleBindings name the usernames that map back to the User, and no other.
    #[test]
    fn a_users_usernames_are_those_that_map_to_it() {
        let email = Some("alice@acme.example");
        assert_eq!(Identities::default().usernames("alice", email), ["alice", "alice@acme.example"]);
        let prefixed = Identities { prefix: Some("oidc:".into()), ..Identities::default() };
        assert_eq!(prefixed.usernames("alice", email), ["oidc:alice", "oidc:alice@acme.example"]);
        for username in prefixed.usernames("alice", email) {
            assert_eq!(
                prefixed.actor(&user(&username, &[], &[])).login.as_deref(),
                Some(username.trim_start_matches("oidc:"))
            );
        }
        let argo = "system:serviceaccount:argocd:argocd-application-controller";
        let mapped = Identities {
            map: BTreeMap::from([
                (argo.to_owned(), "alice".to_owned()),
                ("alice".to_owned(), "platform-bot".to_owned()),
            ]),
            ..Identities::default()
        };
        assert_eq!(mapped.usernames("alice", None), [argo], "\"alice\" is the platform bot's");
        let claimed = Identities { extra: Some("windflow.io/login".into()), ..Identities::default() };
        assert!(claimed.usernames("alice", email).is_empty(), "no username says it is alice's");
    }

    #[test]
    fn a_claim_in_extra_names_the_login() {
        let identities = Identities { extra: Some("windflow.io/login".into()), ..Identities::default() };
        let actor = identities.actor(&user("oidc:1234-5678", &[], &[("windflow.io/login", "alice")]));
        assert_eq!(actor.login.as_deref(), Some("alice"));
        // Without the claim, no User: the username is not a login then.
        assert_eq!(identities.actor(&user("alice", &[], &[])).login, None);
        assert_eq!(identities.actor(&user("alice", &[], &[("windflow.io/login", "")])).login, None);
    }
}
