//! `herald`: parses the command line and hands over to the library.

use anyhow::Context;
use clap::{Parser, Subcommand};
use herald::config::{Config, LogFormat};
use herald::roles::Roles;
use herald_store::users::Role;
use std::net::SocketAddr;
use std::path::PathBuf;
use std::process::ExitCode;

/// mimalloc: the fan-out allocates and frees across threads at a high rate; measured on one
/// alert to 100,000 Web Push devices it sent 8% more a second than the system allocator
/// (docs/BENCHMARKS.md, "Notifier").
#[global_allocator]
static GLOBAL: mimalloc::MiMalloc = mimalloc::MiMalloc;

/// Herald: the backend of a news-reader app.
#[derive(Debug, Parser)]
#[command(version, about = "Herald: the backend of a news-reader app", long_about = None)]
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
        /// Also poll sample feeds from config/demo/, served on 127.0.0.1 (allows private feed addresses).
        #[arg(long)]
        demo: bool,
    },
    /// Apply or inspect database migrations.
    Migrate {
        #[command(subcommand)]
        action: MigrateAction,
    },
    /// Print the effective configuration as TOML (secrets redacted), to save and edit.
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
    /// Ask a running Herald whether it is ready (GET /readyz on http.listen); exit 0 if so.
    /// For container health checks, where the image has no shell or curl.
    Probe {
        /// The path to ask: /readyz (ready) or /healthz (alive).
        #[arg(long, default_value = "/readyz")]
        path: String,
        /// Address to ask (default: http.listen, with 0.0.0.0 or :: asked on loopback).
        #[arg(long, value_name = "ADDR")]
        listen: Option<SocketAddr>,
    },
    /// Send breaking alerts from the command line (a running notifier fans them out).
    Alert {
        #[command(subcommand)]
        action: AlertAction,
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
enum AlertAction {
    /// Queue an alert to the followers of the topics; with --wait, show its progress until it ends.
    /// With --article or --story, title, link, image, topics and body come from the article (a
    /// story's newest linked article, under the story's headline); options given override them.
    Send {
        /// Notification title (default: the article's title or the story's headline).
        #[arg(long, required_unless_present_any = ["article", "story"])]
        title: Option<String>,
        /// Where a tap leads, http or https (default: the article's link).
        #[arg(long, required_unless_present_any = ["article", "story"])]
        url: Option<String>,
        /// Topic slug whose followers get it, repeatable (default: the article's or story's topics).
        #[arg(long = "topic", required_unless_present_any = ["article", "story"])]
        topics: Vec<String>,
        /// Notification text (default: the start of the article's summary).
        #[arg(long)]
        body: Option<String>,
        /// normal or high (high may pass quiet hours).
        #[arg(long, default_value = "normal", value_parser = ["very-low", "low", "normal", "high"])]
        urgency: String,
        /// Seconds the alert stays worth delivering (default: push.default_ttl_seconds).
        #[arg(long)]
        ttl: Option<u32>,
        /// The story it is about: each device gets a story once.
        #[arg(long)]
        story: Option<String>,
        /// The article it opens.
        #[arg(long)]
        article: Option<String>,
        /// An https image shown with the notification (default: the article's lead image).
        #[arg(long)]
        image: Option<String>,
        /// Send at this RFC 3339 time (within 30 days) instead of now.
        #[arg(long)]
        send_at: Option<String>,
        /// Deliver at this local time (HH:MM) in each reader's time zone, within a day.
        #[arg(long)]
        local_time: Option<String>,
        /// Wait until the fan-out ends, printing a progress line.
        #[arg(long)]
        wait: bool,
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
        Command::Serve {
            roles,
            listen,
            demo,
        } => {
            if let Some(listen) = listen {
                config.http.listen = listen;
            }
            if demo {
                return herald::demo::serve(config, roles, None, shutdown_signal()).await;
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
        Command::Probe { path, listen } => {
            let mut addr = listen.unwrap_or(config.http.listen);
            if addr.ip().is_unspecified() {
                addr.set_ip(match addr {
                    SocketAddr::V4(_) => std::net::Ipv4Addr::LOCALHOST.into(),
                    SocketAddr::V6(_) => std::net::Ipv6Addr::LOCALHOST.into(),
                });
            }
            let url = format!("http://{addr}{path}");
            let response = reqwest::Client::builder()
                .timeout(std::time::Duration::from_secs(5))
                .build()?
                .get(&url)
                .send()
                .await
                .with_context(|| format!("no answer from {url}; is herald serving there?"))?;
            let status = response.status();
            let body = response.text().await.unwrap_or_default();
            println!("{url}: {status} {body}");
            anyhow::ensure!(status.is_success(), "{url} answered {status}");
            Ok(())
        }
        Command::Config => {
            print!("{}", config.to_toml()?);
            Ok(())
        }
        Command::Keys {
            action: KeysAction::Generate,
        } => {
            let db = herald::open_database(&config).await?;
            let keyring = herald::open_keyring(&config, &db).await?;
            let vapid = herald::vapid_keys(&db, &keyring).await?;
            let accounts = herald_auth::Accounts::start(
                db,
                config.auth.clone(),
                herald::outbound_client()?,
                &keyring,
            )
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
                    let user = herald::set_role(&db, &email, role).await?;
                    println!(
                        "{} is now {}; every session it had has ended",
                        user.email.unwrap_or_default(),
                        user.role
                    );
                }
            }
            Ok(())
        }
        Command::Alert { action } => send_alert(&config, action).await,
    }
}

/// `herald alert send`: the options as an alert request; the library composes and queues it.
async fn send_alert(config: &Config, action: AlertAction) -> anyhow::Result<()> {
    use herald_notifier::fanout::parse_id;
    let AlertAction::Send {
        title,
        url,
        topics,
        body,
        urgency,
        ttl,
        story,
        article,
        image,
        send_at,
        local_time,
        wait,
    } = action;
    let id = |flag: &str, value: Option<String>| {
        value
            .as_deref()
            .map(parse_id)
            .transpose()
            .map_err(|e| anyhow::anyhow!("--{flag} {e}"))
    };
    let request = herald_notifier::draft::AlertRequest {
        article_id: id("article", article)?,
        story_id: id("story", story)?,
        topics: (!topics.is_empty()).then_some(topics),
        title,
        body,
        url,
        image_url: image,
        urgency: Some(urgency),
        ttl_seconds: ttl.map(i64::from),
        send_at,
        deliver_in_local_time: local_time,
    };
    herald::alert_command::send(config, request, wait).await
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
