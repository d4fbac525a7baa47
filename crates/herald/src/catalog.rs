//! `config/sources.toml`: the topics (and, with ingestion, the publishers) Herald knows,
//! synced into the database at start.

use figment::Figment;
use figment::providers::{Format, Toml};
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
        Ok(())
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
}
