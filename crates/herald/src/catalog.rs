//! `config/sources.toml`: the topics (and, with ingestion, the publishers) Herald knows,
//! synced into the database at start.

use figment::Figment;
use figment::providers::{Format, Toml};
use herald_store::sources::NewSource;
use herald_store::topics::Topic;
use serde::Deserialize;
use std::path::Path;

/// The catalogue shipped with Herald, used when no `catalog.sources_file` is configured.
pub const DEFAULT_SOURCES_TOML: &str = include_str!("../../../config/sources.toml");

/// The parsed file.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Catalog {
    /// Topics readers can follow.
    #[serde(default)]
    pub topics: Vec<TopicEntry>,
    /// Publishers' feeds Herald polls.
    #[serde(default)]
    pub sources: Vec<SourceEntry>,
}

/// One `[[sources]]` entry.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct SourceEntry {
    name: String,
    feed_url: String,
    #[serde(default)]
    site_url: Option<String>,
    #[serde(default)]
    topics: Vec<String>,
    #[serde(default)]
    language: Option<String>,
    #[serde(default)]
    breaking: bool,
    #[serde(default)]
    poll_interval_seconds: Option<u32>,
}

/// One `[[topics]]` entry.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct TopicEntry {
    slug: String,
    name: String,
    #[serde(default)]
    description: String,
    #[serde(default)]
    keywords: Vec<String>,
    min_sources: u32,
    window_minutes: u32,
}

impl Catalog {
    /// Reads `path`, or the shipped catalogue when `None`.
    pub fn load(path: Option<&Path>) -> anyhow::Result<Self> {
        let figment = match path {
            Some(path) => Figment::from(Toml::file_exact(path)),
            None => Figment::from(Toml::string(DEFAULT_SOURCES_TOML)),
        };
        let catalog: Catalog = figment.extract().map_err(|e| {
            anyhow::anyhow!(
                "{}: {e}",
                path.map_or("built-in sources.toml".into(), |p| p.display().to_string())
            )
        })?;
        catalog.check()?;
        Ok(catalog)
    }

    fn check(&self) -> anyhow::Result<()> {
        for (i, t) in self.topics.iter().enumerate() {
            let slug_ok = !t.slug.is_empty()
                && t.slug.len() <= 64
                && t.slug
                    .chars()
                    .all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || c == '-');
            if !slug_ok {
                anyhow::bail!(
                    "topics[{i}].slug `{}` must be lowercase letters, digits and dashes",
                    t.slug
                );
            }
            if t.min_sources == 0 || t.window_minutes == 0 {
                anyhow::bail!(
                    "topics[{i}] ({}): min_sources and window_minutes must be positive",
                    t.slug
                );
            }
            if self.topics.iter().filter(|o| o.slug == t.slug).count() > 1 {
                anyhow::bail!("topic `{}` is listed twice", t.slug);
            }
        }
        for (i, s) in self.sources.iter().enumerate() {
            if s.name.trim().is_empty() {
                anyhow::bail!("sources[{i}].name must not be empty");
            }
            if let Err(e) = http_url(&s.feed_url) {
                anyhow::bail!("sources[{i}] ({}): feed_url {e}", s.name);
            }
            if let Some(Err(e)) = s.site_url.as_deref().map(http_url) {
                anyhow::bail!("sources[{i}] ({}): site_url {e}", s.name);
            }
            for slug in &s.topics {
                if !self.topics.iter().any(|t| &t.slug == slug) {
                    anyhow::bail!(
                        "sources[{i}] ({}): unknown topic `{slug}`; add it to [[topics]]",
                        s.name
                    );
                }
            }
            if s.poll_interval_seconds == Some(0) {
                anyhow::bail!(
                    "sources[{i}] ({}): poll_interval_seconds must be positive",
                    s.name
                );
            }
            if self
                .sources
                .iter()
                .filter(|o| o.feed_url == s.feed_url)
                .count()
                > 1
            {
                anyhow::bail!("source feed_url `{}` is listed twice", s.feed_url);
            }
        }
        Ok(())
    }

    /// The publishers' feeds as the store keeps them.
    pub fn sources(&self) -> Vec<NewSource> {
        self.sources
            .iter()
            .map(|s| NewSource {
                name: s.name.trim().to_string(),
                feed_url: s.feed_url.trim().to_string(),
                site_url: s.site_url.as_deref().map(|u| u.trim().to_string()),
                topics: s.topics.clone(),
                language: s.language.as_deref().map(|l| l.trim().to_lowercase()),
                breaking: s.breaking,
                poll_interval_seconds: s.poll_interval_seconds,
            })
            .collect()
    }

    /// The topics as the store keeps them.
    pub fn topics(&self) -> Vec<Topic> {
        self.topics
            .iter()
            .map(|t| Topic {
                slug: t.slug.clone(),
                name: t.name.clone(),
                description: t.description.clone(),
                keywords: t.keywords.iter().map(|k| k.to_lowercase()).collect(),
                min_sources: t.min_sources,
                window_minutes: t.window_minutes,
            })
            .collect()
    }
}

/// Checks that `raw` is an absolute http(s) URL with a host.
pub fn http_url(raw: &str) -> Result<url::Url, String> {
    let url = url::Url::parse(raw.trim()).map_err(|e| format!("`{raw}` is not a URL: {e}"))?;
    if !matches!(url.scheme(), "http" | "https") || url.host_str().is_none_or(str::is_empty) {
        return Err(format!("`{raw}` must be an http or https URL"));
    }
    Ok(url)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_shipped_catalogue_loads() {
        let catalog = Catalog::load(None).unwrap();
        let slugs: Vec<String> = catalog.topics().into_iter().map(|t| t.slug).collect();
        assert!(slugs.contains(&"world".to_string()) && slugs.contains(&"india".to_string()));
    }

    #[test]
    fn bad_entries_are_named() {
        let dir = tempfile::tempdir().unwrap();
        let file = dir.path().join("sources.toml");
        std::fs::write(&file, "[[topics]]\nslug = \"World News\"\nname = \"x\"\nmin_sources = 1\nwindow_minutes = 5\n").unwrap();
        let err = Catalog::load(Some(&file)).unwrap_err().to_string();
        assert!(err.contains("topics[0].slug"), "{err}");
        std::fs::write(&file, "[[topics]]\nslug = \"w\"\nname = \"x\"\nmin_sources = 1\nwindow_minutes = 5\nbogus = 1\n").unwrap();
        let err = Catalog::load(Some(&file)).unwrap_err().to_string();
        assert!(err.contains("bogus"), "{err}");
    }

    #[test]
    fn the_shipped_sources_load_and_unknown_topics_are_named() {
        let catalog = Catalog::load(None).unwrap();
        assert!(!catalog.sources().is_empty());
        let dir = tempfile::tempdir().unwrap();
        let file = dir.path().join("sources.toml");
        std::fs::write(
            &file,
            "[[topics]]\nslug = \"world\"\nname = \"World\"\nmin_sources = 2\nwindow_minutes = 60\n\n\
             [[sources]]\nname = \"Daily\"\nfeed_url = \"https://daily.example/rss\"\ntopics = [\"world\", \"mars\"]\n",
        )
        .unwrap();
        let err = Catalog::load(Some(&file)).unwrap_err().to_string();
        assert!(err.contains("mars") && err.contains("sources[0]"), "{err}");
        std::fs::write(
            &file,
            "[[sources]]\nname = \"Daily\"\nfeed_url = \"ftp://daily.example/rss\"\n",
        )
        .unwrap();
        let err = Catalog::load(Some(&file)).unwrap_err().to_string();
        assert!(err.contains("feed_url"), "{err}");
    }
}
