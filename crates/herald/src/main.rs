//! `herald`: parses the command line and hands over to the library.

use anyhow::Context;
use clap::{Parser, Subcommand};
use herald::config::{Config, LogFormat};
use herald::roles::Roles;
use herald_store::users::Role;
use std::net::SocketAddr;
use std::path::PathBuf;
use std::process::ExitCode;

/// Herald: the backend of a news-reader app.
#[derive(Debug, Parser)]
#[command(version, about, long_about = None)]
struct Cli {
    /// A TOML file layered over config/default.toml (then HERALD__SECTION__KEY variables).
    #[arg(long, global = true, value_name = "FILE")]
    config: Option<PathBuf>,
    /// Log output format (overrides log.format).
    #[arg(long, global = true, value_enum)]
    log_format: Option<LogFormat>,
    #[command(subcommand)]
    command: Command,
}

#[derive(Debug, Subcommand)]
enum Command {
    /// Run Herald: the API, feed ingestion and the notifier, or the roles named.
    Serve {
        /// Roles to run in this process: api, ingest, notifier (comma-separated).
        #[arg(long, default_value = "api,ingest,notifier")]
        roles: Roles,
        /// Address to listen on (overrides http.listen).
        #[arg(long, value_name = "ADDR")]
        listen: Option<SocketAddr>,
    },
    /// Apply or inspect database migrations.
    Migrate {
        #[command(subcommand)]
        action: MigrateAction,
    },
    /// Print the effective configuration, secrets redacted.
    Config,
    /// Create the VAPID and token-signing keys if they do not exist yet, and print the public ones.
    Keys {
        #[command(subcommand)]
        action: KeysAction,
    },
    /// Manage accounts from the command line.
    User {
        #[command(subcommand)]
        action: UserAction,
    },
}

#[derive(Debug, Subcommand)]
enum KeysAction {
    /// Create missing keys (serve does this on first start too) and print the public keys.
    Generate,
}

#[derive(Debug, Subcommand)]
enum UserAction {
    /// Create an account. The password comes from HERALD_PASSWORD, else a prompt (twice).
    Create {
        /// The account's email.
        #[arg(long)]
        email: String,
        /// reader, editor or admin.
        #[arg(long, default_value = "reader")]
        role: Role,
        /// Name shown with comments.
        #[arg(long)]
        display_name: Option<String>,
    },
    /// Change an account's role.
    SetRole {
        /// The account's email.
        #[arg(long)]
        email: String,
        /// reader, editor or admin.
        #[arg(long)]
        role: Role,
    },
}

#[derive(Debug, Subcommand)]
enum MigrateAction {
    /// Apply every pending migration.
    Up,
    /// List migrations and whether each is applied.
    Status,
}

fn main() -> ExitCode {
    let cli = Cli::parse();
    let config = match Config::load(cli.config.as_deref()) {
        Ok(config) => config,
        Err(err) => {
            eprintln!("herald: {err}");
            return ExitCode::from(2);
        }
    };
    herald::telemetry::init(
        cli.log_format.unwrap_or(config.log.format),
        &config.log.level,
    );
    let runtime = match tokio::runtime::Runtime::new() {
        Ok(runtime) => runtime,
        Err(err) => {
            eprintln!("herald: cannot start the async runtime: {err}");
            return ExitCode::FAILURE;
        }
    };
    match runtime.block_on(run(cli.command, config)) {
        Ok(()) => ExitCode::SUCCESS,
        Err(err) => {
            eprintln!("herald: {err:#}");
            ExitCode::FAILURE
        }
    }
}

async fn run(command: Command, mut config: Config) -> anyhow::Result<()> {
    match command {
        Command::Serve { roles, listen } => {
            if let Some(listen) = listen {
                config.http.listen = listen;
            }
            herald::serve(config, roles, None, shutdown_signal()).await
        }
        Command::Migrate { action } => {
            let db = herald_store::connect(&config.database)
                .await
                .with_context(|| format!("cannot open the database at {}", config.database.url))?;
            if matches!(action, MigrateAction::Up) {
                herald_store::migrate::up(&db).await?;
                println!("database at {} is up to date", config.database.url);
            }
            for migration in herald_store::migrate::status(&db).await? {
                let state = if migration.applied {
                    "applied"
                } else {
                    "pending"
                };
                println!("{state:8} {}", migration.name);
            }
            Ok(())
        }
        Command::Config => {
            println!("{config:#?}");
            Ok(())
        }
        Command::Keys {
            action: KeysAction::Generate,
        } => {
            let db = herald::open_database(&config).await?;
            let vapid = herald::vapid_keys(&db).await?;
            let accounts =
                herald_auth::Accounts::start(db, config.auth.clone(), herald::outbound_client()?)
                    .await?;
            println!(
                "VAPID public key (applicationServerKey): {}",
                vapid.public_key_base64url()
            );
            println!("access-token signing keys (JWKS): {}", accounts.jwks());
            Ok(())
        }
        Command::User { action } => {
            let db = herald::open_database(&config).await?;
            match action {
                UserAction::Create {
                    email,
                    role,
                    display_name,
                } => {
                    let password = read_password()?;
                    let user =
                        herald::create_user(&db, &email, &password, role, display_name).await?;
                    println!(
                        "created {} ({}) with id {}",
                        user.email.unwrap_or_default(),
                        user.role,
                        user.id
                    );
                }
                UserAction::SetRole { email, role } => {
                    let email = herald_auth::Email::parse(&email)
                        .map_err(|e| anyhow::anyhow!("--email {e}"))?;
                    let user = herald_store::users::set_role_by_email(&db, email.as_str(), role)
                        .await
                        .map_err(|e| match e {
                            herald_store::StoreError::NotFound => {
                                anyhow::anyhow!("no account has the email {email}")
                            }
                            other => other.into(),
                        })?;
                    println!("{} is now {}", email, user.role);
                }
            }
            Ok(())
        }
    }
}

/// The new account's password: `HERALD_PASSWORD`, else typed twice at a prompt.
fn read_password() -> anyhow::Result<String> {
    if let Ok(password) = std::env::var("HERALD_PASSWORD") {
        return Ok(password);
    }
    let first = rpassword::prompt_password("Password: ")
        .context("cannot read the password; set HERALD_PASSWORD")?;
    let second =
        rpassword::prompt_password("Password again: ").context("cannot read the password")?;
    if first != second {
        anyhow::bail!("the passwords differ; nothing was created");
    }
    Ok(first)
}

/// Resolves on Ctrl-C or SIGTERM.
async fn shutdown_signal() {
    let ctrl_c = async {
        if tokio::signal::ctrl_c().await.is_err() {
            std::future::pending::<()>().await;
        }
    };
    #[cfg(unix)]
    let terminate = async {
        match tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate()) {
            Ok(mut signal) => {
                signal.recv().await;
            }
            Err(_) => std::future::pending::<()>().await,
        }
    };
    #[cfg(not(unix))]
    let terminate = std::future::pending::<()>();
    tokio::select! {
        _ = ctrl_c => tracing::info!("received Ctrl-C"),
        _ = terminate => tracing::info!("received SIGTERM"),
    }
}
