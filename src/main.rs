use clap::Parser;
use windflow::cli::{Cli, Command};
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
        Command::Check(args) => {
            let pool = store::pool(&args.database_url, args.database_connections)?;
            let objects = check::list_all(&kube::Client::try_default().await?).await?;
            let differences = check::check(&pool, &objects).await?;
            for difference in &differences {
                println!("{difference}");
            }
            eprintln!("{} objects checked, {} differences", objects.len(), differences.len());
            if !differences.is_empty() {
                std::process::exit(1);
            }
            Ok(())
        }
        Command::Resync(args) => {
            let pool = store::pool(&args.database_url, args.database_connections)?;
            store::migrate(&pool).await?;
            let objects = check::list_all(&kube::Client::try_default().await?).await?;
            let blocked = check::resync(&pool, &objects).await?;
            for problem in &blocked {
                println!("{problem}");
            }
            eprintln!("{} objects resynced, {} could not be", objects.len(), blocked.len());
            if !blocked.is_empty() {
                std::process::exit(1);
            }
            Ok(())
        }
        Command::Migrate(args) => {
            let pool = store::pool(&args.database_url, args.database_connections)?;
            store::migrate(&pool).await?;
            tracing::info!("migrations applied");
            Ok(())
        }
    }
}
