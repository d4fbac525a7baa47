//! The account service on its own, for tests that call it directly rather than over HTTP.

use crate::newsroom::PASSWORD;
use herald_auth::{Accounts, AuthConfig, ClientInfo};
use herald_store::testing::TestDb;
use herald_store::users::Role;
use std::net::IpAddr;
use std::sync::Arc;

/// The key that seals private keys at rest in tests that start the account service directly.
pub const TEST_SEALING_KEY: &str = "dGVzdCBrZXkgZm9yIHNlYWxpbmcgcHJpdmF0ZSBrZXk=";

/// A client at the address `ip`.
pub fn client_at(ip: &str) -> ClientInfo {
    ClientInfo {
        ip: Some(ip.parse::<IpAddr>().expect("an IP address")),
        user_agent: None,
    }
}

/// A fresh database with one reader whose password is [`PASSWORD`], and the account service
/// on it: (database, accounts, the reader's email).
pub async fn with_one_reader(config: AuthConfig) -> (TestDb, Arc<Accounts>, String) {
    let test = TestDb::new().await;
    let db = test.connect().await;
    let email = format!("owner-{}@herald.example", uuid::Uuid::now_v7().simple());
    herald::create_user(&db, &email, PASSWORD, Role::Reader, None)
        .await
        .expect("create the reader");
    let keyring =
        herald_auth::Keyring::parse(TEST_SEALING_KEY, "the test key").expect("the test key parses");
    let accounts = Accounts::start(db, config, reqwest::Client::new(), &keyring)
        .await
        .expect("start the account service");
    (test, Arc::new(accounts), email)
}
