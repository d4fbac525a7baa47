//! Server-side request forgery protection: feeds and hubs are only reached on public addresses.
//!
//! The table and the guard live in `herald-netguard`, shared with push and the identity
//! providers' key fetch; this module names them where ingest code has always found them.

pub use herald_netguard::{
    AddressPolicy, GuardedResolver, Refusal, check_redirect, check_url, is_forbidden,
    redirect_policy,
};
