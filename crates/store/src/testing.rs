//! A fresh database per test: a temporary SQLite file by default, or a fresh PostgreSQL
//! schema when `HERALD_TEST_DATABASE_URL` is set. Dropped (file or schema) with the value.

use crate::{DatabaseConfig, DatabaseUrl, connect, migrate};
use sea_orm::{ConnectionTrait, Database, DatabaseConnection};

/// The variable that points the tests at PostgreSQL.
pub const TEST_DATABASE_URL_VAR: &str = "HERALD_TEST_DATABASE_URL";

/// A database that exists for one test.
pub struct TestDb {
    config: DatabaseConfig,
    cleanup: Cleanup,
}

enum Cleanup {
    SqliteDir(#[allow(dead_code)] tempfile::TempDir),
    PostgresSchema { admin_url: String, schema: String },
}

impl TestDb {
    /// Creates the database (empty, not migrated): PostgreSQL when `HERALD_TEST_DATABASE_URL`
    /// is set, else SQLite. Panics when it cannot: this is test code.
    pub async fn new() -> Self {
        match std::env::var(TEST_DATABASE_URL_VAR) {
            Ok(url) if !url.trim().is_empty() => Self::postgres(&url).await,
            _ => Self::sqlite(),
        }
    }

    /// A fresh schema in the PostgreSQL database at `url`.
    pub async fn postgres(url: &str) -> Self {
        let schema = format!("t_{}", uuid::Uuid::new_v4().simple());
        let admin = Database::connect(url)
            .await
            .unwrap_or_else(|e| panic!("{url}: {e}"));
        admin
            .execute_unprepared(&format!("CREATE SCHEMA {schema}"))
            .await
            .unwrap_or_else(|e| panic!("creating schema {schema}: {e}"));
        let _ = admin.close().await;
        // Tag the connections so the cleanup can end any left open.
        let separator = if url.contains('?') { '&' } else { '?' };
        let tagged = format!("{url}{separator}application_name={schema}");
        let config = DatabaseConfig {
            url: DatabaseUrl::parse(&tagged).unwrap_or_else(|e| panic!("{url}: {e}")),
            schema: Some(schema.clone()),
            max_connections: 4,
            ..DatabaseConfig::default()
        };
        Self {
            config,
            cleanup: Cleanup::PostgresSchema {
                admin_url: url.to_string(),
                schema,
            },
        }
    }

    /// A fresh SQLite file in a temporary folder.
    pub fn sqlite() -> Self {
        let dir = tempfile::tempdir().unwrap_or_else(|e| panic!("temp dir: {e}"));
        let config = DatabaseConfig {
            url: DatabaseUrl::sqlite_file(dir.path().join("herald.db")),
            max_connections: 4,
            ..DatabaseConfig::default()
        };
        Self {
            config,
            cleanup: Cleanup::SqliteDir(dir),
        }
    }

    /// The configuration that reaches this database.
    pub fn config(&self) -> DatabaseConfig {
        self.config.clone()
    }

    /// Seeds an audience following one topic with Web Push devices, in a few set-based
    /// statements (PostgreSQL only: for benchmarks).
    pub async fn seed_audience(&self, db: &DatabaseConnection, audience: &SeedAudience<'_>) {
        assert!(self.is_postgres(), "seed_audience needs PostgreSQL");
        let clean = |text: &str| text.replace('\'', "");
        let (topic, base) = (clean(audience.topic), clean(audience.endpoint_base));
        let (users, per_user) = (audience.users, audience.devices_per_user);
        let (p256dh, auth) = (hex_of(audience.p256dh), hex_of(audience.auth));
        let statements = [
            format!(
                "INSERT INTO topics (slug, name, description, keywords, min_sources, window_minutes, created_at, updated_at) \
                 VALUES ('{topic}', '{topic}', '', '[]', 3, 60, now(), now()) ON CONFLICT DO NOTHING"
            ),
            format!(
                "INSERT INTO users (id, email, display_name, password_hash, role, is_anonymous, created_at, updated_at) \
                 SELECT gen_random_uuid(), NULL, NULL, NULL, 'reader', true, now(), now() FROM generate_series(1, {users})"
            ),
            format!(
                "INSERT INTO subscriptions (user_id, topic_slug, created_at) SELECT id, '{topic}', now() FROM users"
            ),
            format!(
                "INSERT INTO devices (id, user_id, platform, address, p256dh, auth, created_at, updated_at) \
                 SELECT gen_random_uuid(), u.id, 'web', '{base}' || u.id || '/' || g, \
                 decode('{p256dh}', 'hex'), decode('{auth}', 'hex'), now(), now() \
                 FROM users u CROSS JOIN generate_series(1, {per_user}) g"
            ),
            "ANALYZE".to_string(),
        ];
        for sql in statements {
            db.execute_unprepared(&sql)
                .await
                .unwrap_or_else(|e| panic!("seeding: {e}"));
        }
    }

    /// Seeds an audience like [`TestDb::seed_audience`] but with app devices of `platform`:
    /// FCM (`android`, token `fcm-<user>-<n>`) or APNs (`ios`, production, a 64-hex-digit
    /// token). PostgreSQL only: for benchmarks.
    pub async fn seed_app_audience(&self, db: &DatabaseConnection, audience: &SeedAppAudience<'_>) {
        // Readers, topic and subscriptions as for Web Push, with no web devices.
        self.seed_audience(
            db,
            &SeedAudience {
                users: audience.users,
                devices_per_user: 0,
                topic: audience.topic,
                endpoint_base: "",
                p256dh: &[],
                auth: &[],
            },
        )
        .await;
        let per_user = audience.devices_per_user;
        let (platform, address, environment) = match audience.platform {
            SeedAppPlatform::Fcm => ("android", "'fcm-' || u.id || '-' || g", "NULL"),
            SeedAppPlatform::Apns => (
                "ios",
                "md5(u.id || '/' || g) || md5(g || '/' || u.id)",
                "'production'",
            ),
        };
        let statements = [
            format!(
                "INSERT INTO devices (id, user_id, platform, address, apns_environment, created_at, updated_at) \
                 SELECT gen_random_uuid(), u.id, '{platform}', {address}, {environment}, now(), now() \
                 FROM users u CROSS JOIN generate_series(1, {per_user}) g"
            ),
            "ANALYZE".to_string(),
        ];
        for sql in statements {
            db.execute_unprepared(&sql)
                .await
                .unwrap_or_else(|e| panic!("seeding: {e}"));
        }
    }

    /// True when the tests run on PostgreSQL.
    pub fn is_postgres(&self) -> bool {
        matches!(self.cleanup, Cleanup::PostgresSchema { .. })
    }

    /// A migrated connection.
    pub async fn connect(&self) -> DatabaseConnection {
        let db = connect(&self.config)
            .await
            .unwrap_or_else(|e| panic!("connect: {e}"));
        migrate::up(&db)
            .await
            .unwrap_or_else(|e| panic!("migrate: {e}"));
        db
    }
}

impl Drop for TestDb {
    fn drop(&mut self) {
        if let Cleanup::PostgresSchema { admin_url, schema } = &self.cleanup {
            let url = admin_url.clone();
            let terminate = format!(
                "SELECT pg_terminate_backend(pid) FROM pg_stat_activity \
                 WHERE application_name = '{schema}' AND pid <> pg_backend_pid()"
            );
            let sql = format!("DROP SCHEMA IF EXISTS {schema} CASCADE");
            // Drop may run inside a runtime, so the cleanup gets a thread and runtime of its own.
            let dropped = std::thread::spawn(move || {
                let runtime = tokio::runtime::Builder::new_current_thread()
                    .enable_all()
                    .build()
                    .ok()?;
                runtime.block_on(async {
                    let db = Database::connect(url.as_str()).await.ok()?;
                    db.execute_unprepared(&terminate).await.ok()?;
                    db.execute_unprepared(&sql).await.ok()?;
                    db.close().await.ok()
                })
            })
            .join();
            if !matches!(dropped, Ok(Some(()))) {
                eprintln!("warning: could not drop test schema {schema}");
            }
        }
    }
}

/// What [`TestDb::seed_audience`] creates.
#[derive(Debug, Clone)]
pub struct SeedAudience<'a> {
    /// Readers to create.
    pub users: u64,
    /// Web Push devices per reader.
    pub devices_per_user: u32,
    /// The topic they all follow (created if missing).
    pub topic: &'a str,
    /// Endpoint prefix; each device appends `<user id>/<n>`.
    pub endpoint_base: &'a str,
    /// The subscription public key every device carries (65 bytes).
    pub p256dh: &'a [u8],
    /// The auth secret every device carries (16 bytes).
    pub auth: &'a [u8],
}

/// The app platform [`TestDb::seed_app_audience`] registers devices on.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum SeedAppPlatform {
    /// Android devices reached through FCM.
    Fcm,
    /// iOS devices reached through APNs (production environment).
    Apns,
}

/// What [`TestDb::seed_app_audience`] creates.
#[derive(Debug, Clone)]
pub struct SeedAppAudience<'a> {
    /// Readers to create.
    pub users: u64,
    /// App devices per reader.
    pub devices_per_user: u32,
    /// The topic they all follow (created if missing).
    pub topic: &'a str,
    /// FCM or APNs.
    pub platform: SeedAppPlatform,
}

fn hex_of(bytes: &[u8]) -> String {
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}
