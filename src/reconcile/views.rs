//! The materialized views are refreshed after changes, debounced: once the changes have been
//! quiet for a moment, and at least every [`LONGEST_DELAY`] while they go on. Requests that
//! arrive while one refresh waits or runs make one more refresh, not one each. Each refresh
//! tells which organizations' counts it changed, so that only those are reconciled.

use std::collections::HashMap;
use std::time::Duration;

use futures::Stream;
use sqlx::PgPool;
use tokio::sync::{Notify, broadcast};
use tokio::time::Instant;
use tracing::{debug, warn};
use uuid::Uuid;

use crate::mirror::views;
use crate::mirror::views::OrganizationResources;

/// The quiet period after a change before the views are refreshed.
pub const DEBOUNCE: Duration = Duration::from_secs(2);
/// How long changes that never go quiet (a platform being applied) hold a refresh back: each
/// refresh recomputes the views whole, and changes the status of every organization it
/// counts anew.
pub const LONGEST_DELAY: Duration = Duration::from_secs(30);

pub struct ViewRefresh {
    wanted: Notify,
    refreshed: broadcast::Sender<Changed>,
}

/// The organizations whose counts a refresh changed.
#[derive(Clone, Debug, PartialEq)]
pub enum Changed {
    Organizations(Vec<Uuid>),
    /// Refreshes were missed, or the counts could not be read: any may have.
    Unknown,
}

impl Changed {
    /// Whether the organization `id` may show other counts now.
    pub fn includes(&self, id: Option<Uuid>) -> bool {
        match self {
            Self::Organizations(changed) => id.is_some_and(|id| changed.contains(&id)),
            Self::Unknown => true,
        }
    }
}

impl Default for ViewRefresh {
    fn default() -> Self {
        Self { wanted: Notify::new(), refreshed: broadcast::channel(16).0 }
    }
}

impl ViewRefresh {
    /// Something the views count changed.
    pub fn request(&self) {
        self.wanted.notify_one();
    }

    /// Refreshes after each burst of requests ([`settled`]), and tells which organizations'
    /// counts changed; a failed refresh is tried again after the next quiet period.
    pub async fn run(&self, pool: &PgPool, quiet: Duration, longest: Duration) {
        let mut shown: HashMap<Uuid, OrganizationResources> = HashMap::new();
        loop {
            self.wanted.notified().await;
            settled(&self.wanted, quiet, longest).await;
            if let Err(error) = views::refresh(pool).await {
                warn!(%error, "could not refresh the materialized views");
                self.wanted.notify_one();
                continue;
            }
            debug!("materialized views refreshed");
            let changed = match views::all_organization_resources(pool).await {
                Ok(counts) => {
                    let changed = changed_counts(&shown, &counts);
                    shown = counts;
                    Changed::Organizations(changed)
                }
                Err(error) => {
                    warn!(%error, "could not read the organizations' counts");
                    Changed::Unknown
                }
            };
            // Nobody listening is fine.
            if changed != Changed::Organizations(vec![]) {
                let _ = self.refreshed.send(changed);
            }
        }
    }

    /// One item after each refresh that changed some organization's counts.
    pub fn refreshed(&self) -> impl Stream<Item = Changed> + Send + 'static {
        futures::stream::unfold(self.refreshed.subscribe(), |mut receiver| async move {
            match receiver.recv().await {
                Ok(changed) => Some((changed, receiver)),
                Err(broadcast::error::RecvError::Lagged(_)) => Some((Changed::Unknown, receiver)),
                Err(broadcast::error::RecvError::Closed) => None,
            }
        })
    }
}

/// Returns once no request has come for `quiet`, or `longest` after it was called, whichever
/// is first.
async fn settled(wanted: &Notify, quiet: Duration, longest: Duration) {
    let deadline = Instant::now() + longest;
    loop {
        let until = (Instant::now() + quiet).min(deadline);
        tokio::select! {
            // The time first: past the deadline, requests keep coming in vain.
            biased;
            () = tokio::time::sleep_until(until) => return,
            () = wanted.notified() => {}
        }
    }
}

/// The organizations whose counts in `now` differ from `before` (or are new there).
fn changed_counts(
    before: &HashMap<Uuid, OrganizationResources>,
    now: &HashMap<Uuid, OrganizationResources>,
) -> Vec<Uuid> {
    now.iter().filter(|(id, counts)| before.get(id) != Some(counts)).map(|(id, _)| *id).collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    /// How long [`settled`] takes while `changes` changes come one second apart.
    async fn settled_amid(changes: usize) -> Duration {
        let wanted = Notify::new();
        let start = Instant::now();
        let changing = async {
            for _ in 0..changes {
                tokio::time::sleep(Duration::from_secs(1)).await;
                wanted.notify_one();
            }
            std::future::pending::<()>().await;
        };
        tokio::select! {
            () = settled(&wanted, DEBOUNCE, LONGEST_DELAY) => {}
            () = changing => {}
        }
        start.elapsed()
    }

    #[tokio::test(start_paused = true)]
    async fn a_burst_is_refreshed_once_quiet_or_after_the_longest_delay() {
        assert_eq!(settled_amid(0).await, DEBOUNCE, "one change: once quiet");
        assert_eq!(settled_amid(100).await, LONGEST_DELAY, "changes that never stop: after the longest delay");
        assert_eq!(settled_amid(5).await, Duration::from_secs(5) + DEBOUNCE, "changes that stop: quiet after the last");
    }

    #[test]
    fn only_the_organizations_whose_counts_changed_are_told() {
        let (acme, globex) = (Uuid::new_v4(), Uuid::new_v4());
        let counts = |stacks| OrganizationResources { stacks, ..OrganizationResources::default() };
        let before = HashMap::from([(acme, counts(1)), (globex, counts(2))]);
        let now = HashMap::from([(acme, counts(1)), (globex, counts(3))]);
        assert_eq!(changed_counts(&before, &now), [globex]);
        assert_eq!(changed_counts(&before, &before), Vec::<Uuid>::new());
        assert_eq!(changed_counts(&HashMap::new(), &HashMap::from([(acme, counts(1))])), [acme], "a new one");
        assert!(Changed::Organizations(vec![globex]).includes(Some(globex)));
        assert!(!Changed::Organizations(vec![globex]).includes(Some(acme)));
        assert!(Changed::Unknown.includes(None));
    }
}
