use clap::Parser;
use windflow::cli::{Cli, Command};
use windflow::{check, mirror::store, operator, render, telemetry};

/// jemalloc: the resident memory follows the caches as they shrink (see Cargo.toml).
#[global_allocator]
static ALLOCATOR: tikv_jemallocator::Jemalloc = tikv_jemallocator::Jemalloc;

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    let cli = Cli::parse();
    let _telemetry = telemetry::init(&cli.log, cli.log_format);
    match cli.command {
        Command::Run(args) => operator::run(args).await,
        Command::Crds { apply: true, .. } => windflow::apply_crds(kube::Client::try_default().await?).await,
        Command::Crds { out_dir: Some(dir), .. } => windflow::write_crds(&dir),
        Command::Crds { out_dir: None, .. } => {
            print!("{}", windflow::crds_yaml()?);
            Ok(())
        }
        Command::Selftest { readyz } => windflow::self_test(kube::Client::try_default().await?, &readyz).await,
        Command::WorkloadRbac => {
            let role = windflow::rbac::cluster_role("windflow-workload", &windflow::rbac::workload_access());
            print!("{}", serde_yaml::to_string(&role)?);
            Ok(())
        }
        Command::Render(args) => exit_on_problems(render::run(&args.files, &args.provision.config())),
        Command::Check(args) => {
            let client = kube::Client::try_default().await?;
            let provisioning = args.provision.config_for_tenants(&client, &args.database.database_url).await?;
            let mode = check::Mode::Check(&provisioning);
            let database = &args.database;
            exit_on_problems(
                check::run(&database.database_url, database.database_connections, database.migrate, mode).await?,
            )
        }
        Command::Resync(args) => {
            let (url, connections) = (&args.database_url, args.database_connections);
            exit_on_problems(check::run(url, connections, args.migrate, check::Mode::Resync).await?)
        }
        Command::Migrate(args) => {
            let pool = store::pool(&args.database.database_url, args.database.database_connections)?;
            store::migrate(&pool).await?;
            tracing::info!("migrations applied");
            if let Some(role) = &args.runtime_role {
                store::grant_runtime(&pool, role).await?;
                tracing::info!(role, "the runtime role may run the operator");
            }
            Ok(())
        }
    }
}

/// `render`, `check` and `resync` exit with 1 when they found problems.
fn exit_on_problems(problems: usize) -> anyhow::Result<()> {
    if problems > 0 {
        std::process::exit(1);
    }
    Ok(())
}
