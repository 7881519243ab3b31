//! Kubernetes Events, through kube's [`Recorder`]. The recorder keeps each Event it published
//! for six minutes, to count a repeat as a series, and empties that cache only when it
//! publishes again: at rest after a convergence it would hold the Events of the convergence's
//! last minutes (thousands, at 10,000 objects) until the next one. Made anew once it has been
//! quiet longer than it keeps them, it holds none, and forgets nothing it would still use.

use std::sync::{Mutex, MutexGuard, PoisonError};
use std::time::Duration;

use k8s_openapi::api::core::v1::ObjectReference;
use kube::Client;
use kube::runtime::events::{Event, Recorder, Reporter};
use tokio::time::Instant;

/// How long kube's recorder keeps a published Event (its private `CACHE_TTL`, six minutes),
/// with a margin for the publish under way when the quiet began.
const KEPT: Duration = Duration::from_secs(6 * 60 + 30);
/// How often the recorder is looked at.
const LOOK_EVERY: Duration = Duration::from_secs(60);

/// Publishes the operator's Events.
pub struct Announcer {
    client: Client,
    reporter: Reporter,
    current: Mutex<Current>,
}

struct Current {
    recorder: Recorder,
    /// When it last published; `None` for a recorder that has published nothing.
    last_published: Option<Instant>,
}

impl Announcer {
    pub fn new(client: Client, reporter: Reporter) -> Self {
        let recorder = Recorder::new(client.clone(), reporter.clone());
        Self { client, reporter, current: Mutex::new(Current { recorder, last_published: None }) }
    }

    fn locked(&self) -> MutexGuard<'_, Current> {
        self.current.lock().unwrap_or_else(PoisonError::into_inner)
    }

    pub async fn publish(&self, event: &Event, reference: &ObjectReference) -> Result<(), kube::Error> {
        let recorder = {
            let mut current = self.locked();
            current.last_published = Some(Instant::now());
            current.recorder.clone()
        };
        recorder.publish(event, reference).await
    }

    /// Makes the recorder anew if it has published nothing for longer than it keeps Events;
    /// says whether it did.
    fn renew_if_quiet(&self, now: Instant) -> bool {
        let mut current = self.locked();
        let quiet = current.last_published.is_some_and(|at| now.duration_since(at) > KEPT);
        if quiet {
            let recorder = Recorder::new(self.client.clone(), self.reporter.clone());
            *current = Current { recorder, last_published: None };
        }
        quiet
    }

    /// Looks every minute whether the recorder has been quiet long enough to be made anew.
    pub async fn forget_when_quiet(&self) {
        loop {
            tokio::time::sleep(LOOK_EVERY).await;
            self.renew_if_quiet(Instant::now());
        }
    }
}

#[cfg(test)]
mod tests {
    use http::{Request, Response};
    use kube::client::Body;
    use kube::runtime::events::EventType;

    use super::*;

    #[tokio::test]
    async fn the_recorder_is_made_anew_only_after_it_kept_nothing_for_longer_than_it_keeps_events() {
        let (service, mut handle) = tower_test::mock::pair::<Request<Body>, Response<Body>>();
        tokio::spawn(async move {
            while let Some((request, send)) = handle.next_request().await {
                let body = request.into_body().collect_bytes().await.expect("a body");
                send.send_response(Response::builder().body(Body::from(body.to_vec())).expect("a response"));
            }
        });
        let reporter = Reporter { controller: "windflow".into(), instance: None };
        let announcer = Announcer::new(Client::new(service, "default"), reporter);
        let start = Instant::now();
        assert!(!announcer.renew_if_quiet(start + KEPT * 2), "a recorder that published nothing holds nothing");

        let event = Event {
            type_: EventType::Normal,
            reason: "Provisioned".into(),
            note: None,
            action: "Reconcile".into(),
            secondary: None,
        };
        let reference =
            ObjectReference { name: Some("scratch".into()), namespace: Some("acme".into()), ..Default::default() };
        announcer.publish(&event, &reference).await.expect("published");
        let published = Instant::now();
        assert!(!announcer.renew_if_quiet(published + KEPT / 2), "what it keeps may still count a repeat");
        assert!(announcer.renew_if_quiet(published + KEPT + LOOK_EVERY), "quiet for longer than it keeps Events");
        assert!(!announcer.renew_if_quiet(published + KEPT * 3), "made anew once");
    }
}
