//! The materialized views are refreshed after changes, debounced: requests that arrive while
//! one refresh waits or runs make one more refresh, not one each.

use std::time::Duration;

use futures::Stream;
use sqlx::PgPool;
use tokio::sync::{Notify, broadcast};
use tracing::{debug, warn};

use crate::mirror::views;

/// The quiet period after a change before the views are refreshed.
pub const DEBOUNCE: Duration = Duration::from_secs(2);

pub struct ViewRefresh {
    wanted: Notify,
    refreshed: broadcast::Sender<()>,
}

impl Default for ViewRefresh {
    fn default() -> Self {
        Self { wanted: Notify::new(), refreshed: broadcast::channel(1).0 }
    }
}

impl ViewRefresh {
    /// Something the views count changed.
    pub fn request(&self) {
        self.wanted.notify_one();
    }

    /// Refreshes after each burst of requests, `quiet` after its first one; a failed refresh
    /// is tried again after the next quiet period.
    pub async fn run(&self, pool: &PgPool, quiet: Duration) {
        loop {
            self.wanted.notified().await;
            tokio::time::sleep(quiet).await;
            match views::refresh(pool).await {
                Ok(()) => {
                    debug!("materialized views refreshed");
                    // Nobody listening is fine.
                    let _ = self.refreshed.send(());
                }
                Err(error) => {
                    warn!(%error, "could not refresh the materialized views");
                    self.wanted.notify_one();
                }
            }
        }
    }

    /// One item after each refresh (a burst of them may be one item).
    pub fn refreshed(&self) -> impl Stream<Item = ()> + Send + 'static {
        futures::stream::unfold(self.refreshed.subscribe(), |mut receiver| async move {
            match receiver.recv().await {
                // Lagged: refreshes were missed, one item stands for them all.
                Ok(()) | Err(broadcast::error::RecvError::Lagged(_)) => Some(((), receiver)),
                Err(broadcast::error::RecvError::Closed) => None,
            }
        })
    }
}
