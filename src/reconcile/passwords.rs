//! Users' password Secrets, read once per version. A metadata watch of their one namespace
//! (`security.userSecretNamespace`) tells each Secret's resourceVersion: what was read at that
//! version is not read again, and a Secret that changes wakes the Users naming it, so that a
//! new password is mirrored at once rather than at the next resync.

use std::collections::HashMap;
use std::sync::{Arc, Mutex, PoisonError};

use futures::{Stream, StreamExt};
use k8s_openapi::api::core::v1::Secret;
use kube::api::{Api, PartialObjectMeta};
use kube::runtime::reflector::{self, ObjectRef, Store, store::Writer};
use kube::runtime::{WatchStreamExt, watcher};
use kube::{Client, ResourceExt};
use tracing::warn;

/// What was read of each Secret, by (Secret, key): the version read, and the text found there.
type ReadAt = HashMap<(String, String), (String, Option<String>)>;
type Read = Arc<Mutex<ReadAt>>;

/// The versions of the Secrets in the Users' Secret namespace, and what was read of them.
pub struct Passwords {
    versions: Store<PartialObjectMeta<Secret>>,
    /// Taken by the one watch that fills `versions`.
    writer: Mutex<Option<Writer<PartialObjectMeta<Secret>>>>,
    read: Read,
}

impl Default for Passwords {
    fn default() -> Self {
        let (versions, writer) = reflector::store();
        Self { versions, writer: Mutex::new(Some(writer)), read: Read::default() }
    }
}

impl Passwords {
    /// The text at `key` of Secret `namespace/name`, `None` if either is missing: as read at the
    /// version the watch holds, else read now (the watch has not listed it yet, or it changed).
    pub async fn read(&self, client: &Client, namespace: &str, name: &str, key: &str) -> kube::Result<Option<String>> {
        let entry = (name.to_owned(), key.to_owned());
        let version =
            self.versions.get(&ObjectRef::new(name).within(namespace)).and_then(|secret| secret.resource_version());
        if let Some(version) = version
            && let Some((read_at, text)) = locked(&self.read).get(&entry)
            && *read_at == version
        {
            return Ok(text.clone());
        }
        let secret = Api::<Secret>::namespaced(client.clone(), namespace).get_opt(name).await?;
        let text = secret.as_ref().and_then(|secret| text_at(secret, key));
        match secret.and_then(|secret| secret.resource_version()) {
            Some(version) => locked(&self.read).insert(entry, (version, text.clone())),
            None => locked(&self.read).remove(&entry),
        };
        Ok(text)
    }

    /// The names of the Secrets in `namespace` that changed: created, edited or deleted, or, when
    /// the watch lists again, found at another version than the one read. It fills the versions
    /// [`Passwords::read`] trusts: the first caller gets the watch, any other nothing.
    pub fn changes(&self, client: Client, namespace: &str) -> impl Stream<Item = String> + Send + 'static {
        let writer = self.writer.lock().unwrap_or_else(PoisonError::into_inner).take();
        let Some(writer) = writer else { return futures::stream::empty().left_stream() };
        let read = self.read.clone();
        // Metadata only: the watch holds no password.
        let secrets =
            watcher(Api::<PartialObjectMeta<Secret>>::namespaced(client, namespace), watcher::Config::default());
        reflector::reflector(writer, secrets)
            .default_backoff()
            .filter_map(move |event| {
                let changed = match event {
                    Ok(watcher::Event::Apply(secret) | watcher::Event::Delete(secret)) => Some(secret.name_any()),
                    Ok(watcher::Event::InitApply(secret)) => stale(&read, &secret),
                    Ok(watcher::Event::Init | watcher::Event::InitDone) => None,
                    Err(error) => {
                        warn!(%error, "cannot watch Users' password Secrets: they are read at every reconcile meanwhile");
                        None
                    }
                };
                std::future::ready(changed)
            })
            .right_stream()
    }
}

fn locked(read: &Read) -> std::sync::MutexGuard<'_, ReadAt> {
    read.lock().unwrap_or_else(PoisonError::into_inner)
}

/// The Secret's name, if something was read of it at another version.
fn stale(read: &Read, secret: &PartialObjectMeta<Secret>) -> Option<String> {
    let (name, version) = (secret.name_any(), secret.resource_version());
    let stale = locked(read)
        .iter()
        .any(|((read_name, _), (read_at, _))| *read_name == name && Some(read_at) != version.as_ref());
    stale.then_some(name)
}

/// The text at `key` of the Secret, if it is there and is text.
fn text_at(secret: &Secret, key: &str) -> Option<String> {
    let bytes = secret.data.as_ref()?.get(key)?;
    String::from_utf8(bytes.0.clone()).ok()
}

#[cfg(test)]
mod tests {
    use super::*;
    use kube::api::ObjectMeta;

    fn version_of(name: &str, version: &str) -> PartialObjectMeta<Secret> {
        PartialObjectMeta {
            types: None,
            metadata: ObjectMeta {
                name: Some(name.into()),
                resource_version: Some(version.into()),
                ..ObjectMeta::default()
            },
            _phantom: std::marker::PhantomData,
        }
    }

    /// Listed again, a Secret wakes its Users only if what was read of it is of another version.
    #[test]
    fn a_secret_listed_again_is_stale_only_at_another_version_than_read() {
        let read = Read::default();
        assert_eq!(stale(&read, &version_of("carol-login", "7")), None, "never read");
        locked(&read).insert(("carol-login".into(), "hash".into()), ("7".into(), Some("$argon2id$".into())));
        assert_eq!(stale(&read, &version_of("carol-login", "7")), None, "read at this version");
        assert_eq!(stale(&read, &version_of("carol-login", "9")), Some("carol-login".into()), "changed meanwhile");
        assert_eq!(stale(&read, &version_of("dave-login", "9")), None, "another Secret");
    }

    #[test]
    fn the_text_at_a_key() {
        let secret = Secret {
            data: Some([("hash".to_owned(), k8s_openapi::ByteString(b"$argon2id$".to_vec()))].into()),
            ..Secret::default()
        };
        assert_eq!(text_at(&secret, "hash").as_deref(), Some("$argon2id$"));
        assert_eq!(text_at(&secret, "other"), None);
        assert_eq!(text_at(&Secret::default(), "hash"), None);
    }
}
