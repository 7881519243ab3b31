//! The webhook over HTTPS: `/mutate` and `/validate`, with a certificate renewed in place.

use std::net::SocketAddr;
use std::sync::Arc;
use std::time::{Duration, Instant};

use axum::extract::State;
use axum::routing::post;
use axum::{Json, Router};
use axum_server::tls_rustls::RustlsConfig;
use kube::Client;
use kube::api::DynamicObject;
use kube::core::admission::{AdmissionRequest, AdmissionResponse, AdmissionReview, Operation};
use tracing::{error, info, warn};

use super::certificate::{Certificates, Issuing, Served};
use super::{Reader, Result, Settings, record_deletion, review};
use crate::kinds::Index;
use crate::metrics::Metrics;

/// How often the certificate is looked at: renewed when due, reloaded when another replica
/// renewed it, and its CA put back into the webhook configurations.
const REFRESH: Duration = Duration::from_secs(60);
/// How long an unready certificate is waited for before trying again.
const RETRY: Duration = Duration::from_secs(5);

struct Webhook {
    pool: sqlx::PgPool,
    settings: Settings,
    lookup: Reader,
    metrics: Arc<Metrics>,
}

/// Serves admission on `address` until the process ends.
pub async fn serve(
    address: SocketAddr,
    client: Client,
    pool: sqlx::PgPool,
    index: Index,
    settings: Settings,
    certificates: Certificates,
    metrics: Arc<Metrics>,
) -> Result<()> {
    // The process's one TLS provider, as for the operator's client.
    let _ = rustls::crypto::ring::default_provider().install_default();
    let served = loop {
        match ready(&client, &certificates).await {
            Ok(served) => break served,
            Err(error) => warn!(%error, "the admission webhook waits for its certificate"),
        }
        tokio::time::sleep(RETRY).await;
    };
    let tls = RustlsConfig::from_pem(served.certificate.clone(), served.key.clone()).await?;
    metrics.webhook_certificate_expires(served.expires());
    tokio::spawn(refresh(client.clone(), certificates, tls.clone(), served, metrics.clone()));
    let webhook = Arc::new(Webhook { lookup: Reader { index, client }, pool, settings, metrics });
    let app = Router::new().route("/mutate", post(mutate)).route("/validate", post(validate)).with_state(webhook);
    info!(%address, "serving admission");
    axum_server::bind_rustls(address, tls).serve(app.into_make_service()).await?;
    Ok(())
}

/// The current certificate, its CA put into the webhook configurations by the operator.
async fn ready(client: &Client, certificates: &Certificates) -> Result<Served> {
    let served = certificates.current(client).await?;
    if certificates.issuing == Issuing::Operator {
        certificates.inject(client, &served.ca_bundle).await?;
    }
    Ok(served)
}

async fn refresh(
    client: Client,
    certificates: Certificates,
    tls: RustlsConfig,
    mut served: Served,
    metrics: Arc<Metrics>,
) {
    loop {
        tokio::time::sleep(REFRESH).await;
        match ready(&client, &certificates).await {
            Ok(now) if now == served => {}
            Ok(now) => match tls.reload_from_pem(now.certificate.clone(), now.key.clone()).await {
                Ok(()) => {
                    info!("the admission webhook serves its renewed certificate");
                    metrics.webhook_certificate_expires(now.expires());
                    served = now;
                }
                Err(error) => error!(%error, "the renewed webhook certificate cannot be loaded"),
            },
            Err(error) => warn!(%error, "cannot look at the webhook certificate; serving the one loaded"),
        }
    }
}

type Review = Json<AdmissionReview<DynamicObject>>;

async fn mutate(State(webhook): State<Arc<Webhook>>, Json(review): Review) -> Review {
    let started = Instant::now();
    let response = match request(review) {
        Ok(request) => {
            let response = review::mutate(&request, &webhook.settings);
            webhook.metrics.reviewed("mutate", &request.kind.kind, response.allowed, started.elapsed());
            response
        }
        Err(unreadable) => AdmissionResponse::invalid(unreadable),
    };
    Json(response.into_review())
}

async fn validate(State(webhook): State<Arc<Webhook>>, Json(review): Review) -> Review {
    let started = Instant::now();
    let request = match request(review) {
        Ok(request) => request,
        Err(unreadable) => return Json(AdmissionResponse::invalid(unreadable).into_review()),
    };
    let response = match review::validate(&request, &webhook.settings, &webhook.lookup, &webhook.lookup).await {
        Ok(response) => response,
        Err(error) => {
            AdmissionResponse::from(&request).deny(format!("WindFlow admission cannot read the cluster: {error}"))
        }
    };
    let mut response = response;
    if response.allowed && request.operation == Operation::Delete && !request.dry_run {
        let actor = webhook.settings.identities.actor(&request.user_info);
        if let Err(error) = record_deletion(&webhook.pool, &request, &actor).await {
            // Refused rather than left unattributed: the delete's row could not go before the
            // database is back either.
            warn!(%error, name = %request.name, "cannot record who deletes the object");
            response = AdmissionResponse::from(&request)
                .deny(format!("WindFlow cannot record who deletes {} now ({error}); try again", request.name));
        }
    }
    webhook.metrics.reviewed("validate", &request.kind.kind, response.allowed, started.elapsed());
    Json(response.into_review())
}

/// The review's request, or why there is none.
fn request(review: AdmissionReview<DynamicObject>) -> std::result::Result<AdmissionRequest<DynamicObject>, String> {
    review.try_into().map_err(|error: kube::core::admission::ConvertAdmissionReviewError| error.to_string())
}
