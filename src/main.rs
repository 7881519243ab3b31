use clap::Parser;
use windflow::cli::{Cli, Command, DatabaseArgs};
use windflow::{check, mirror::store, operator, render, telemetry};

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    let cli = Cli::parse();
    let _telemetry = telemetry::init(&cli.log, cli.log_format);
    match cli.command {
        Command::Run(args) => operator::run(args).await,
        Command::Crds { out_dir: Some(dir) } => windflow::write_crds(&dir),
        Command::Crds { out_dir: None } => {
            print!("{}", windflow::crds_yaml()?);
            Ok(())
        }
        Command::Render(args) => {
            let rendered = render::read(&args.files).and_then(|found| render::render(&found, &args.provision.config()));
            match rendered {
                Ok(yaml) => print!("{yaml}"),
                Err(problems) => {
                    for problem in problems {
                        eprintln!("{problem}");
                    }
                    std::process::exit(1);
                }
            }
            Ok(())
        }
        Command::Check(args) => compare(args, false).await,
        Command::Resync(args) => compare(args, true).await,
        Command::Migrate(args) => {
            let pool = store::pool(&args.database_url, args.database_connections)?;
            store::migrate(&pool).await?;
            tracing::info!("migrations applied");
            Ok(())
        }
    }
}

/// `check`, or with `repair` `resync`: every WindFlow object in the cluster against its rows.
/// Prints each difference (or what could not be repaired); exits with 1 when there is any.
async fn compare(args: DatabaseArgs, repair: bool) -> anyhow::Result<()> {
    let pool = store::pool(&args.database_url, args.database_connections)?;
    store::migrate(&pool).await?;
    let objects = check::list_all(&kube::Client::try_default().await?).await?;
    let problems = if repair { check::resync(&pool, &objects).await? } else { check::check(&pool, &objects).await? };
    for problem in &problems {
        println!("{problem}");
    }
    let what = if repair { "could not be repaired" } else { "differences" };
    eprintln!("{} objects, {} {what}", objects.len(), problems.len());
    if !problems.is_empty() {
        std::process::exit(1);
    }
    Ok(())
}
