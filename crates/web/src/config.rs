//! The `[web]` section of the configuration.

use serde::{Deserialize, Serialize};

/// Settings of the reader's site and the console.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq, Eq)]
#[serde(deny_unknown_fields, default)]
pub struct WebConfig {
    /// The site's name, in titles and the web app manifest.
    pub site_name: String,
    /// The App Store page of the iOS app, linked from "Get the app" when set.
    pub ios_app_url: Option<String>,
    /// The Play Store page of the Android app, linked from "Get the app" when set.
    pub android_app_url: Option<String>,
    /// How long a public reader page (front page, topics, search, article, story) is kept in
    /// memory and served to everyone asking for it, in milliseconds; 0 renders every request.
    pub page_cache_ms: u64,
}

impl Default for WebConfig {
    fn default() -> Self {
        Self {
            site_name: "Herald".into(),
            ios_app_url: None,
            android_app_url: None,
            page_cache_ms: 1000,
        }
    }
}
