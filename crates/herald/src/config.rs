//! Herald's configuration: `config/default.toml`, then `--config FILE`, then
//! `HERALD__SECTION__KEY` environment variables. Unknown keys and bad values are errors
//! that name the key.

use figment::Figment;
use figment::providers::{Env, Format, Toml};
use herald_api::HttpConfig;
use herald_auth::AuthConfig;
use herald_ingest::config::IngestConfig;
use herald_notifier::config::PushConfig;
use herald_store::DatabaseConfig;
use serde::{Deserialize, Serialize};
use std::path::Path;

/// The defaults, compiled in so the binary runs from any folder.
pub const DEFAULT_TOML: &str = include_str!("../../../config/default.toml");

/// Prefix of the environment variables that override configuration.
pub const ENV_PREFIX: &str = "HERALD__";

/// Every section of the configuration, one typed struct per crate.
#[derive(Debug, Clone, Default, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct Config {
    /// Where data lives.
    pub database: DatabaseConfig,
    /// The HTTP API.
    pub http: HttpConfig,
    /// Accounts and tokens.
    pub auth: AuthConfig,
    /// Logging.
    pub log: LogConfig,
    /// Feed fetching and polling.
    pub ingest: IngestConfig,
    /// Push delivery.
    pub push: PushConfig,
    /// Topics and publishers.
    pub catalog: CatalogConfig,
    /// The reader's site and the newsroom console.
    pub web: herald_web::WebConfig,
    /// The key that encrypts private keys in the database.
    pub secrets: herald_auth::SealingConfig,
}

/// The `[catalog]` section.
#[derive(Debug, Clone, Default, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct CatalogConfig {
    /// Topics and publishers file; the built-in `config/sources.toml` when unset.
    pub sources_file: Option<std::path::PathBuf>,
}

/// The `[log]` section.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct LogConfig {
    /// `tracing` filter used when `RUST_LOG` is not set.
    pub level: String,
    /// Output format.
    pub format: LogFormat,
}

impl Default for LogConfig {
    fn default() -> Self {
        Self {
            level: "info,sqlx=warn,sea_orm=warn,sea_orm_migration=warn".into(),
            format: LogFormat::Pretty,
        }
    }
}

/// How log lines look.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, clap::ValueEnum)]
#[serde(rename_all = "lowercase")]
pub enum LogFormat {
    /// Human-readable, for a terminal.
    Pretty,
    /// One JSON object per line, for a log collector.
    Json,
}

/// A configuration that could not be loaded, in one line that names the key.
#[derive(Debug, thiserror::Error)]
#[error("configuration error: {0}")]
pub struct ConfigError(String);

impl Config {
    /// Loads the layers: defaults, then `file` if given, then the process environment.
    pub fn load(file: Option<&Path>) -> Result<Self, ConfigError> {
        Self::load_from(file, Env::prefixed(ENV_PREFIX).split("__"))
    }

    /// Like [`Config::load`] with explicit environment variables, for tests.
    pub fn load_with_env(file: Option<&Path>, vars: &[(&str, &str)]) -> Result<Self, ConfigError> {
        let mut lines = String::new();
        for (key, value) in vars {
            let key = key.strip_prefix(ENV_PREFIX).unwrap_or(key);
            let path = key.to_ascii_lowercase().replace("__", ".");
            lines.push_str(&format!("{path} = {}\n", toml_value(value)));
        }
        Self::load_from(file, Toml::string(&lines))
    }

    fn load_from(file: Option<&Path>, env: impl figment::Provider) -> Result<Self, ConfigError> {
        let mut figment = Figment::new().merge(Toml::string(DEFAULT_TOML));
        if let Some(path) = file {
            if !path.is_file() {
                return Err(ConfigError(format!(
                    "--config {}: no such file",
                    path.display()
                )));
            }
            figment = figment.merge(Toml::file_exact(path));
        }
        figment
            .merge(env)
            .extract()
            .map_err(|e| ConfigError(describe(e)))
    }
}

impl Config {
    /// The effective configuration as a TOML file an operator can save, edit and pass back
    /// with `--config`; the database password and other secrets are written as `***` or
    /// `[redacted]`.
    pub fn to_toml(&self) -> Result<String, ConfigError> {
        let body = toml::to_string_pretty(self)
            .map_err(|e| ConfigError(format!("cannot write the configuration as TOML: {e}")))?;
        Ok(format!(
            "# Herald's effective configuration (defaults, --config file, HERALD__ variables).\n\
             # Secrets are redacted: put the real values back before using this file.\n\n{body}"
        ))
    }
}

fn describe(err: figment::Error) -> String {
    let mut parts = Vec::new();
    for e in err {
        let key = e.path.join(".");
        let source = e.metadata.as_ref().map(|m| match &m.source {
            Some(figment::Source::File(path)) => path.display().to_string(),
            _ => m.name.to_string(),
        });
        let mut line = match e.kind {
            figment::error::Kind::UnknownField(field, _) => {
                let full = if key.ends_with(&field) || key.is_empty() {
                    if key.is_empty() { field } else { key }
                } else {
                    format!("{key}.{field}")
                };
                format!("unknown key `{full}`")
            }
            kind if key.is_empty() => kind.to_string(),
            kind => format!("`{key}`: {kind}"),
        };
        if let Some(source) = source {
            line.push_str(&format!(" (from {source})"));
        }
        parts.push(line);
    }
    parts.join("; ")
}

// For `load_with_env`: values that look like TOML (numbers, booleans, arrays) pass through.
fn toml_value(raw: &str) -> String {
    if raw.parse::<i64>().is_ok() || raw == "true" || raw == "false" || raw.starts_with('[') {
        raw.to_string()
    } else {
        format!("{raw:?}")
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn defaults_load_and_match_the_built_in_defaults() {
        let config = Config::load_with_env(None, &[]).unwrap();
        let built_in = Config::default();
        assert_eq!(config.database.url, built_in.database.url);
        assert_eq!(config.http.listen, built_in.http.listen);
        assert_eq!(config.http.body_limit_bytes, 64 * 1024);
        assert_eq!(config.auth, built_in.auth);
        assert_eq!(config.push, built_in.push);
        assert_eq!(config.ingest.max_body_bytes, built_in.ingest.max_body_bytes);
        assert_eq!(
            config.ingest.allow_private_addresses,
            built_in.ingest.allow_private_addresses
        );
        assert_eq!(config.log.format, LogFormat::Pretty);
    }

    #[test]
    fn environment_overrides_the_file() {
        let dir = tempfile::tempdir().unwrap();
        let file = dir.path().join("herald.toml");
        std::fs::write(
            &file,
            "[http]\nrequest_timeout_seconds = 5\nbody_limit_bytes = 10\n",
        )
        .unwrap();
        let config =
            Config::load_with_env(Some(&file), &[("HERALD__HTTP__BODY_LIMIT_BYTES", "2048")])
                .unwrap();
        assert_eq!(config.http.request_timeout_seconds, 5);
        assert_eq!(config.http.body_limit_bytes, 2048);
    }

    #[test]
    fn an_unknown_key_is_named() {
        let err = Config::load_with_env(None, &[("HERALD__DATABASE__URLL", "sqlite://x.db")])
            .unwrap_err()
            .to_string();
        assert!(err.contains("`database.urll`"), "{err}");
        assert!(!err.contains('\n'), "{err}");
    }

    #[test]
    fn a_bad_value_is_named() {
        let err = Config::load_with_env(None, &[("HERALD__DATABASE__URL", "mysql://nope")])
            .unwrap_err()
            .to_string();
        assert!(err.contains("database.url"), "{err}");
        let err = Config::load_with_env(None, &[("HERALD__HTTP__LISTEN", "not-an-address")])
            .unwrap_err()
            .to_string();
        assert!(err.contains("http.listen"), "{err}");
    }

    #[test]
    fn a_missing_config_file_is_an_error() {
        let err = Config::load(Some(Path::new("/nonexistent/herald.toml"))).unwrap_err();
        assert!(err.to_string().contains("no such file"));
    }

    #[test]
    fn the_printed_configuration_loads_back_with_secrets_redacted() {
        let config = Config::load_with_env(
            None,
            &[
                (
                    "HERALD__DATABASE__URL",
                    "postgres://herald:s3cret@db/herald",
                ),
                ("HERALD__HTTP__READY_STALL_SECONDS", "45"),
            ],
        )
        .unwrap();
        let printed = config.to_toml().unwrap();
        assert!(!printed.contains("s3cret"), "{printed}");
        assert!(printed.contains("[http]"), "{printed}");
        let dir = tempfile::tempdir().unwrap();
        let file = dir.path().join("effective.toml");
        std::fs::write(&file, &printed).unwrap();
        let again = Config::load_with_env(Some(&file), &[]).unwrap();
        assert_eq!(again.http.ready_stall_seconds, 45);
        assert_eq!(
            again.database.url.to_string(),
            "postgres://herald:***@db/herald"
        );
        assert_eq!(again.to_toml().unwrap(), printed);
    }

    #[test]
    fn secrets_do_not_show_in_debug() {
        let config = Config::load_with_env(
            None,
            &[
                (
                    "HERALD__DATABASE__URL",
                    "postgres://herald:s3cret@db/herald",
                ),
                (
                    "HERALD__SECRETS__KEY",
                    "S3cretS3cretS3cretS3cretS3cretS3cretS3cret0=",
                ),
                ("HERALD__HTTP__METRICS_TOKEN", "scrape-s3cret"),
            ],
        )
        .unwrap();
        assert!(config.secrets.key.is_some() && config.http.metrics_token.is_some());
        let shown = format!("{config:?}{}", config.to_toml().unwrap());
        for secret in ["s3cret", "S3cret"] {
            assert!(!shown.contains(secret), "{shown}");
        }
    }
}
