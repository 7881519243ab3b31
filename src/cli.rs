//! The `windflow` command line.

use std::path::PathBuf;

use clap::{Parser, Subcommand, ValueEnum};

/// WindFlow: a multi-tenant deployment platform as a Kubernetes operator.
#[derive(Parser, Debug)]
#[command(name = "windflow", version, about)]
pub struct Cli {
    /// Log filter, as RUST_LOG (e.g. `info,windflow=debug`).
    #[arg(long, env = "WINDFLOW_LOG", default_value = "info", global = true)]
    pub log: String,
    /// Log format.
    #[arg(long, env = "WINDFLOW_LOG_FORMAT", value_enum, default_value_t = LogFormat::Text, global = true)]
    pub log_format: LogFormat,
    #[command(subcommand)]
    pub command: Command,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq, ValueEnum)]
pub enum LogFormat {
    Text,
    Json,
}

#[derive(Subcommand, Debug)]
pub enum Command {
    /// Run the operator: apply migrations, then reconcile every WindFlow kind. Uses KUBECONFIG
    /// or the in-cluster configuration.
    Run(RunArgs),
    /// Print every CRD as YAML (or write one file per kind into a directory).
    Crds {
        /// Write `<plural>.windflow.io.yaml` files here instead of printing.
        #[arg(long)]
        out_dir: Option<PathBuf>,
    },
    /// Apply the database migrations and exit.
    Migrate(DatabaseArgs),
}

#[derive(clap::Args, Debug)]
pub struct DatabaseArgs {
    /// PostgreSQL connection URL.
    #[arg(long, env = "DATABASE_URL", hide_env_values = true)]
    pub database_url: String,
    /// Largest number of database connections.
    #[arg(long, env = "WINDFLOW_DATABASE_CONNECTIONS", default_value_t = 10)]
    pub database_connections: u32,
}

#[derive(clap::Args, Debug)]
pub struct RunArgs {
    #[command(flatten)]
    pub database: DatabaseArgs,
    /// Name of the controller in Events (`reportingController`).
    #[arg(long, env = "WINDFLOW_CONTROLLER_NAME", default_value = "windflow-operator")]
    pub controller_name: String,
    /// This replica's name in Events (`reportingInstance`), usually the pod name.
    #[arg(long, env = "POD_NAME")]
    pub instance: Option<String>,
}
