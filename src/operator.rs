//! `windflow run`: one controller per kind, sharing one context, until SIGTERM.

use std::sync::Arc;

use futures::StreamExt;
use kube::Client;
use kube::runtime::events::{Recorder, Reporter};
use kube::runtime::{Controller, watcher};
use tracing::info;

use crate::api::*;
use crate::cli::RunArgs;
use crate::reconcile::catalog::Catalog;
use crate::reconcile::{self, Context, Reconciled};

/// Runs every controller until a shutdown signal; in-flight reconciles finish first.
pub async fn run(args: RunArgs) -> anyhow::Result<()> {
    let pool = crate::mirror::store::pool(&args.database.database_url, args.database.database_connections)?;
    crate::mirror::store::migrate(&pool).await?;
    let client = Client::try_default().await?;
    let reporter = Reporter { controller: args.controller_name, instance: args.instance };
    // The controllers of the kinds builders read share their caches as the catalog: one watch
    // per kind, whatever reads it.
    let organizations = controller::<Organization>(&client);
    let functions = controller::<Function>(&client);
    let environments = controller::<Environment>(&client);
    let elements = controller::<Element>(&client);
    let stacks = controller::<Stack>(&client);
    let applications = controller::<Application>(&client);
    let domains = controller::<Domain>(&client);
    let catalog = Catalog {
        organizations: organizations.store(),
        functions: functions.store(),
        environments: environments.store(),
        elements: elements.store(),
        stacks: stacks.store(),
        applications: applications.store(),
        domains: domains.store(),
    };
    let recorder = Recorder::new(client.clone(), reporter);
    let ctx = Arc::new(Context::new(client.clone(), pool, recorder, catalog, args.provision.config()));
    info!("starting controllers");
    // Adding a kind: its CRD type, its `Mirrored` and `Provisioning` impls, and one line here.
    futures::join!(
        drive(organizations, &ctx),
        drive(controller::<User>(&client), &ctx),
        drive(controller::<Tag>(&client), &ctx),
        drive(functions, &ctx),
        drive(controller::<Group>(&client), &ctx),
        drive(controller::<Policy>(&client), &ctx),
        drive(environments, &ctx),
        drive(elements, &ctx),
        drive(controller::<ContainerCluster>(&client), &ctx),
        drive(controller::<ContainerNode>(&client), &ctx),
        drive(controller::<VM>(&client), &ctx),
        drive(controller::<PhysicalHost>(&client), &ctx),
        drive(controller::<Network>(&client), &ctx),
        drive(controller::<Volume>(&client), &ctx),
        drive(controller::<Gateway>(&client), &ctx),
        drive(domains, &ctx),
        drive(controller::<DnsRecord>(&client), &ctx),
        drive(controller::<DnssecKey>(&client), &ctx),
        drive(stacks, &ctx),
        drive(applications, &ctx),
        drive(controller::<Deployment>(&client), &ctx),
    );
    info!("controllers stopped");
    Ok(())
}

fn controller<K: Reconciled>(client: &Client) -> Controller<K> {
    Controller::new(kube::Api::<K>::all(client.clone()), watcher::Config::default().any_semantic())
}

async fn drive<K: Reconciled>(controller: Controller<K>, ctx: &Arc<Context>) {
    controller
        .shutdown_on_signal()
        .run(reconcile::reconcile::<K>, reconcile::error_policy::<K>, ctx.clone())
        .for_each(|_| futures::future::ready(()))
        .await;
}
