//! `windflow run`: one controller per kind, sharing one context, until SIGTERM.

use std::sync::Arc;

use futures::StreamExt;
use kube::Client;
use kube::runtime::events::{Recorder, Reporter};
use kube::runtime::{Controller, watcher};
use tracing::info;

use crate::api::*;
use crate::cli::RunArgs;
use crate::mirror::Mirrored;
use crate::mirror::store;
use crate::reconcile::{self, Context, Scoped};

/// Runs every controller until a shutdown signal; in-flight reconciles finish first.
pub async fn run(args: RunArgs) -> anyhow::Result<()> {
    let pool = store::pool(&args.database.database_url, args.database.database_connections)?;
    store::migrate(&pool).await?;
    let client = Client::try_default().await?;
    let reporter = Reporter { controller: args.controller_name, instance: args.instance };
    let ctx = Arc::new(Context::new(client.clone(), pool, Recorder::new(client, reporter)));
    info!("starting controllers");
    // Adding a kind: its CRD type, its `Mirrored` impl, and one line here.
    futures::join!(
        controller::<Organization>(&ctx),
        controller::<User>(&ctx),
        controller::<Tag>(&ctx),
        controller::<Function>(&ctx),
        controller::<Group>(&ctx),
        controller::<Policy>(&ctx),
        controller::<Environment>(&ctx),
        controller::<Element>(&ctx),
        controller::<ContainerCluster>(&ctx),
        controller::<ContainerNode>(&ctx),
        controller::<VM>(&ctx),
        controller::<PhysicalHost>(&ctx),
        controller::<Network>(&ctx),
        controller::<Volume>(&ctx),
        controller::<Gateway>(&ctx),
        controller::<Domain>(&ctx),
        controller::<DnsRecord>(&ctx),
        controller::<DnssecKey>(&ctx),
        controller::<Stack>(&ctx),
        controller::<Application>(&ctx),
        controller::<Deployment>(&ctx),
    );
    info!("controllers stopped");
    Ok(())
}

async fn controller<K: Mirrored + Scoped>(ctx: &Arc<Context>) {
    Controller::new(kube::Api::<K>::all(ctx.client.clone()), watcher::Config::default().any_semantic())
        .shutdown_on_signal()
        .run(reconcile::reconcile::<K>, reconcile::error_policy::<K>, ctx.clone())
        .for_each(|_| futures::future::ready(()))
        .await;
}
