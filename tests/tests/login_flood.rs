#![allow(clippy::unwrap_used, clippy::expect_used)]
//! A login flood: 400 parallel wrong-password logins for one account. Alone in its test binary
//! so the peak RSS it reads is its own.

use herald_auth::{Accounts, AuthConfig, AuthError};
use std::sync::Arc;

use herald_tests::accounts::{client_at as from, with_one_reader as accounts};

/// Both tests read the process's peak RSS: they take turns.
static ALONE: tokio::sync::Mutex<()> = tokio::sync::Mutex::const_new(());

/// VmHWM of this process, in KiB.
fn peak_rss_kib() -> u64 {
    std::fs::read_to_string("/proc/self/status")
        .unwrap()
        .lines()
        .find_map(|l| l.strip_prefix("VmHWM:"))
        .and_then(|v| v.trim().trim_end_matches("kB").trim().parse().ok())
        .unwrap()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn four_hundred_parallel_logins_check_at_most_the_allowed_passwords() {
    let config = AuthConfig {
        max_concurrent_hashes: 2,
        hash_queue_wait_ms: 300,
        login_attempts_per_account_and_address: 5,
        login_attempts_per_account: 50,
        login_attempts_per_ip: 1000,
        ..AuthConfig::default()
    };
    let _alone = ALONE.lock().await;
    let (_db, accounts, email) = accounts(config).await;
    let before = peak_rss_kib();
    let mut tasks = tokio::task::JoinSet::new();
    for _ in 0..400 {
        let (accounts, email) = (accounts.clone(), email.clone());
        tasks.spawn(async move {
            accounts
                .login(&email, "not the password", &from("198.51.100.7"))
                .await
        });
    }
    let (mut checked, mut throttled, mut busy) = (0, 0, 0);
    while let Some(joined) = tasks.join_next().await {
        match joined.unwrap() {
            Err(AuthError::InvalidCredentials) => checked += 1,
            Err(AuthError::Throttled { .. }) => throttled += 1,
            Err(AuthError::Busy { .. }) => busy += 1,
            other => panic!("unexpected answer: {other:?}"),
        }
    }
    let grown_mib = (peak_rss_kib() - before) / 1024;
    eprintln!(
        "400 parallel logins: {checked} checked, {throttled} throttled, {busy} busy; \
         at most {} hashes at once; peak RSS grew {grown_mib} MiB",
        accounts.peak_concurrent_hashes()
    );
    assert!(
        checked <= 5,
        "{checked} wrong passwords were checked, limit 5"
    );
    assert!(checked >= 1);
    assert_eq!(checked + throttled + busy, 400);
    assert!(accounts.peak_concurrent_hashes() <= 2);
    // Memory is the next test's subject: here the flood also warms the database pool (tens
    // of MiB on SQLite), which says nothing about hashing.
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn a_flood_past_the_limits_waits_for_two_hashing_slots_and_is_told_to_come_back() {
    // Limits out of the way: every login reaches the password check.
    let config = AuthConfig {
        max_concurrent_hashes: 2,
        hash_queue_wait_ms: 200,
        login_attempts_per_account_and_address: 10_000,
        login_attempts_per_account: 10_000,
        login_attempts_per_ip: 10_000,
        ..AuthConfig::default()
    };
    let _alone = ALONE.lock().await;
    let (_db, accounts, email) = accounts(config).await;
    // A first flood warms the database pool and the runtime; the second must not grow the
    // peak: memory stays flat however many logins pile up.
    flood(&accounts, &email).await;
    let before = peak_rss_kib();
    let (checked, busy) = flood(&accounts, &email).await;
    let grown_mib = (peak_rss_kib() - before) / 1024;
    eprintln!(
        "400 parallel logins past the limits: {checked} checked, {busy} told to come back; \
         at most {} hashes at once; peak RSS grew {grown_mib} MiB over the first flood \
         (unbounded: 400 x 19 MiB)",
        accounts.peak_concurrent_hashes()
    );
    assert_eq!(checked + busy, 400);
    assert!(
        busy > 0,
        "a 200 ms queue cannot check 400 passwords two at a time"
    );
    assert!(accounts.peak_concurrent_hashes() <= 2);
    assert!(grown_mib < 64, "peak RSS grew {grown_mib} MiB");
}

/// 400 parallel wrong-password logins: how many were checked and how many told to come back.
async fn flood(accounts: &Arc<Accounts>, email: &str) -> (usize, usize) {
    let mut tasks = tokio::task::JoinSet::new();
    for _ in 0..400 {
        let (accounts, email) = (accounts.clone(), email.to_owned());
        tasks.spawn(async move {
            accounts
                .login(&email, "not the password", &from("198.51.100.8"))
                .await
        });
    }
    let (mut checked, mut busy) = (0, 0);
    while let Some(joined) = tasks.join_next().await {
        match joined.unwrap() {
            Err(AuthError::InvalidCredentials) => checked += 1,
            Err(AuthError::Busy {
                retry_after_seconds,
            }) => {
                assert!(retry_after_seconds >= 1);
                busy += 1;
            }
            other => panic!("unexpected answer: {other:?}"),
        }
    }
    (checked, busy)
}
