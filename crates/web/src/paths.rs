//! Every page path of the web faces, in one place.

/// The front page.
pub const HOME: &str = "/";
/// The service worker: never hashed, so its scope is `/`.
pub const SERVICE_WORKER: &str = "/sw.js";
/// The web app manifest.
pub const MANIFEST: &str = "/manifest.webmanifest";
/// Content-addressed assets: `/assets/{hash}/{name}`.
pub const ASSETS: &str = "/assets";
/// The newsroom console.
pub const CONSOLE: &str = "/console";
