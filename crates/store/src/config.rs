//! The `[database]` section of Herald's configuration.

use serde::{Deserialize, Serialize, Serializer};
use std::fmt;
use std::path::PathBuf;

/// Where Herald keeps its data and how it connects.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct DatabaseConfig {
    /// `sqlite://path/to/file.db` (embedded default) or `postgres://user:pass@host/db`.
    pub url: DatabaseUrl,
    /// PostgreSQL schema to use instead of `public` (tests use one per test).
    pub schema: Option<String>,
    /// Connections in the pool.
    pub max_connections: u32,
    /// How long to wait for a connection, in seconds.
    pub connect_timeout_seconds: u64,
    /// SQLite: how long a writer waits for the lock before giving up, in milliseconds.
    pub busy_timeout_ms: u64,
    /// Log every SQL statement at debug level.
    pub log_statements: bool,
    /// `herald serve` applies pending migrations itself; when false it waits until someone
    /// else (`herald migrate up`, a deployment's migration job) has brought the schema up to date.
    pub migrate_on_start: bool,
}

impl Default for DatabaseConfig {
    fn default() -> Self {
        Self {
            url: DatabaseUrl::sqlite_file("data/herald.db"),
            schema: None,
            max_connections: 16,
            connect_timeout_seconds: 10,
            busy_timeout_ms: 5_000,
            log_statements: false,
            migrate_on_start: true,
        }
    }
}

/// A database URL checked when the configuration is read, so a typo fails start-up.
/// `Debug` hides the password.
#[derive(Clone, PartialEq, Eq)]
pub struct DatabaseUrl(String);

impl DatabaseUrl {
    /// Parses and checks a URL: `sqlite:` with a file path (or `:memory:`), or `postgres://`.
    pub fn parse(raw: &str) -> Result<Self, String> {
        let raw = raw.trim();
        if let Some(rest) = raw.strip_prefix("sqlite:") {
            let path = rest.trim_start_matches("//");
            let path = path.split('?').next().unwrap_or_default();
            if path.is_empty() {
                return Err(format!(
                    "`{raw}` names no file; use e.g. sqlite://data/herald.db"
                ));
            }
            return Ok(Self(raw.to_string()));
        }
        if raw.starts_with("postgres://") || raw.starts_with("postgresql://") {
            let url = url::Url::parse(raw)
                .map_err(|e| format!("not a valid PostgreSQL URL ({e}); use postgres://user:password@host:5432/database"))?;
            if url.host_str().is_none_or(str::is_empty) {
                return Err("the PostgreSQL URL names no host".into());
            }
            if url.path().trim_start_matches('/').is_empty() {
                return Err("the PostgreSQL URL names no database".into());
            }
            return Ok(Self(raw.to_string()));
        }
        Err(format!(
            "unsupported database URL `{}`; use sqlite://path/to/herald.db or postgres://user:password@host/database",
            redact(raw)
        ))
    }

    /// A URL for an SQLite file at `path`.
    pub fn sqlite_file(path: impl Into<PathBuf>) -> Self {
        Self(format!("sqlite://{}", path.into().display()))
    }

    /// The URL as given, password included: for the connector only.
    pub fn as_str(&self) -> &str {
        &self.0
    }

    /// True for a PostgreSQL URL.
    pub fn is_postgres(&self) -> bool {
        self.0.starts_with("postgres")
    }

    /// The file an SQLite URL points at, or `None` for PostgreSQL and in-memory databases.
    pub fn sqlite_path(&self) -> Option<PathBuf> {
        let rest = self.0.strip_prefix("sqlite:")?;
        let path = rest.trim_start_matches("//").split('?').next()?;
        (path != ":memory:").then(|| PathBuf::from(path))
    }
}

fn redact(raw: &str) -> String {
    match url::Url::parse(raw) {
        Ok(mut url) if url.password().is_some() => {
            let _ = url.set_password(Some("***"));
            url.to_string()
        }
        _ => raw.to_string(),
    }
}

impl fmt::Debug for DatabaseUrl {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{:?}", redact(&self.0))
    }
}

impl fmt::Display for DatabaseUrl {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&redact(&self.0))
    }
}

/// Written out (by `herald config`) with the password replaced by `***`.
impl Serialize for DatabaseUrl {
    fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        serializer.serialize_str(&redact(&self.0))
    }
}

impl<'de> Deserialize<'de> for DatabaseUrl {
    fn deserialize<D: serde::Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        let raw = String::deserialize(deserializer)?;
        Self::parse(&raw).map_err(serde::de::Error::custom)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sqlite_urls_name_their_file() {
        let url = DatabaseUrl::parse("sqlite://data/herald.db?mode=rwc").unwrap();
        assert_eq!(url.sqlite_path(), Some(PathBuf::from("data/herald.db")));
        assert_eq!(
            DatabaseUrl::parse("sqlite::memory:").unwrap().sqlite_path(),
            None
        );
        assert!(DatabaseUrl::parse("sqlite://").is_err());
    }

    #[test]
    fn postgres_urls_need_host_and_database() {
        assert!(DatabaseUrl::parse("postgres://postgres@127.0.0.1:5432/test").is_ok());
        assert!(DatabaseUrl::parse("postgres://127.0.0.1:5432/").is_err());
        assert!(DatabaseUrl::parse("postgres://:5432/test").is_err());
        assert!(DatabaseUrl::parse("mysql://localhost/db").is_err());
        assert!(DatabaseUrl::parse("not a url").is_err());
    }

    #[test]
    fn debug_hides_the_password() {
        let url = DatabaseUrl::parse("postgres://herald:s3cret@db/herald").unwrap();
        let shown = format!("{url:?} {url}");
        assert!(!shown.contains("s3cret"), "{shown}");
        assert!(
            shown.contains("herald@db") || shown.contains("***"),
            "{shown}"
        );
    }
}
