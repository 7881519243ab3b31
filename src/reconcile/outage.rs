//! Objects whose reconcile lost the database, woken together as soon as it answers again.
//!
//! Through an outage of minutes their backoff grows to minutes too: left to it, the backlog
//! would be written minutes after the database's return. One probe asks the database while
//! anything waits for it, and nothing otherwise. The set holds each waiting object once, so
//! what it holds is bounded by the objects, not by the outage's length.

use std::collections::BTreeSet;
use std::sync::Mutex;
use std::time::Duration;

use sqlx::PgPool;
use tokio::sync::Notify;

use crate::kinds::KindId;

/// How often the database is asked whether it answers again, while objects wait for it.
pub const PROBE_INTERVAL: Duration = Duration::from_secs(1);

/// An object by kind, name and namespace.
pub type Waiting = (KindId, String, Option<String>);

/// The objects waiting for the database.
#[derive(Default)]
pub struct DatabaseWaiters {
    waiting: Mutex<BTreeSet<Waiting>>,
    added: Notify,
}

impl DatabaseWaiters {
    /// `object` lost the database; it is woken when the database answers again.
    pub fn wait(&self, object: Waiting) {
        self.held().insert(object);
        self.added.notify_one();
    }

    /// How many objects wait for the database.
    pub fn len(&self) -> usize {
        self.held().len()
    }

    /// Whether no object waits for the database.
    pub fn is_empty(&self) -> bool {
        self.held().is_empty()
    }

    /// Waits until objects wait and the database answers them; takes those objects.
    pub async fn returned(&self, pool: &PgPool) -> BTreeSet<Waiting> {
        loop {
            if self.is_empty() {
                // A wait() since the last take left a permit: this returns at once then.
                self.added.notified().await;
                continue;
            }
            tokio::time::sleep(PROBE_INTERVAL).await;
            if answers(pool).await {
                return std::mem::take(&mut *self.held());
            }
        }
    }

    fn held(&self) -> std::sync::MutexGuard<'_, BTreeSet<Waiting>> {
        self.waiting.lock().unwrap_or_else(std::sync::PoisonError::into_inner)
    }
}

/// Whether the database answers a query within the probe interval.
async fn answers(pool: &PgPool) -> bool {
    let probe = sqlx::query("SELECT 1").execute(pool);
    matches!(tokio::time::timeout(PROBE_INTERVAL, probe).await, Ok(Ok(_)))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn each_object_waits_once_however_often_it_fails() {
        let waiters = DatabaseWaiters::default();
        for _ in 0..1000 {
            waiters.wait((KindId::Volume, "pgdata".into(), Some("acme".into())));
            waiters.wait((KindId::Organization, "acme".into(), None));
        }
        assert_eq!(waiters.len(), 2);
    }

    #[tokio::test]
    async fn nothing_is_taken_while_the_database_does_not_answer() {
        // A pool whose server is a port nobody listens on: the probe never answers.
        let gone = sqlx::postgres::PgPoolOptions::new()
            .acquire_timeout(Duration::from_millis(100))
            .connect_lazy("postgresql://nobody@127.0.0.1:1/none")
            .expect("a lazy pool");
        let waiters = DatabaseWaiters::default();
        waiters.wait((KindId::Stack, "shop".into(), Some("acme".into())));
        let waited = tokio::time::timeout(3 * PROBE_INTERVAL, waiters.returned(&gone)).await;
        assert!(waited.is_err(), "nothing is taken while the database does not answer");
        assert_eq!(waiters.len(), 1, "and the object still waits");
    }
}
