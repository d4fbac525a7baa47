//! PostgreSQL: the fan-out's two per-device writes (`story_receipts`, `deliveries`) no longer
//! carry foreign keys. Each foreign key made every inserted row run a lookup that also locks
//! the referenced row (`FOR KEY SHARE`): five locks a delivery, one of them on the alert row
//! that every notifier shares. Measured on one alert to 100,000 devices (bench `fanout`,
//! `pg_stat_statements` execution time): the deliveries insert went from 56 to 17 µs a row
//! and the story claims from 25 to 5.
//!
//! What the foreign keys did on delete is kept by triggers on the referenced tables, which
//! fire only when a user, device or alert is deleted, never on the fan-out's path:
//! - a deleted user's deliveries go (the inbox is personal data);
//! - a deleted device's deliveries keep their record with no device;
//! - a deleted alert's deliveries go.
//!
//! Story receipts of a deleted device or alert stay: they hold two random ids and a time,
//! nothing matches them again, and the old cascade scanned the whole table (no index leads
//! with `device_id`) for every device deleted.
//!
//! The price: a delivery recorded at the very moment its user is deleted can outlive the
//! user, because nothing locks the user row any more; the account-deletion path deletes the
//! deliveries again after its own transaction to close that window.
//!
//! SQLite keeps its foreign keys: its checks are plain index lookups inside the one writer,
//! and dropping one would mean rebuilding the table.

use sea_orm_migration::prelude::*;
use sea_orm_migration::sea_orm::DbBackend;

#[derive(DeriveMigrationName)]
pub struct Migration;

const UP: &[&str] = &[
    "ALTER TABLE deliveries DROP CONSTRAINT IF EXISTS fk_deliveries_alert",
    "ALTER TABLE deliveries DROP CONSTRAINT IF EXISTS fk_deliveries_user",
    "ALTER TABLE deliveries DROP CONSTRAINT IF EXISTS fk_deliveries_device",
    "ALTER TABLE story_receipts DROP CONSTRAINT IF EXISTS fk_story_receipts_device",
    "ALTER TABLE story_receipts DROP CONSTRAINT IF EXISTS fk_story_receipts_alert",
    "CREATE OR REPLACE FUNCTION herald_user_deleted() RETURNS trigger LANGUAGE plpgsql AS $$ \
     BEGIN DELETE FROM deliveries WHERE user_id = OLD.id; RETURN OLD; END $$",
    "CREATE TRIGGER users_delete_deliveries AFTER DELETE ON users \
     FOR EACH ROW EXECUTE FUNCTION herald_user_deleted()",
    "CREATE OR REPLACE FUNCTION herald_device_deleted() RETURNS trigger LANGUAGE plpgsql AS $$ \
     BEGIN UPDATE deliveries SET device_id = NULL WHERE device_id = OLD.id; RETURN OLD; END $$",
    "CREATE TRIGGER devices_unlink_deliveries AFTER DELETE ON devices \
     FOR EACH ROW EXECUTE FUNCTION herald_device_deleted()",
    "CREATE OR REPLACE FUNCTION herald_alert_deleted() RETURNS trigger LANGUAGE plpgsql AS $$ \
     BEGIN DELETE FROM deliveries WHERE alert_id = OLD.id; RETURN OLD; END $$",
    "CREATE TRIGGER alerts_delete_deliveries AFTER DELETE ON alerts \
     FOR EACH ROW EXECUTE FUNCTION herald_alert_deleted()",
];

const DOWN: &[&str] = &[
    "DROP TRIGGER IF EXISTS alerts_delete_deliveries ON alerts",
    "DROP FUNCTION IF EXISTS herald_alert_deleted()",
    "DROP TRIGGER IF EXISTS devices_unlink_deliveries ON devices",
    "DROP FUNCTION IF EXISTS herald_device_deleted()",
    "DROP TRIGGER IF EXISTS users_delete_deliveries ON users",
    "DROP FUNCTION IF EXISTS herald_user_deleted()",
    // Rows orphaned meanwhile would stop the constraints coming back.
    "DELETE FROM deliveries d WHERE NOT EXISTS (SELECT 1 FROM users u WHERE u.id = d.user_id) \
     OR NOT EXISTS (SELECT 1 FROM alerts a WHERE a.id = d.alert_id)",
    "UPDATE deliveries d SET device_id = NULL WHERE device_id IS NOT NULL \
     AND NOT EXISTS (SELECT 1 FROM devices v WHERE v.id = d.device_id)",
    "DELETE FROM story_receipts r WHERE NOT EXISTS (SELECT 1 FROM devices v WHERE v.id = r.device_id) \
     OR NOT EXISTS (SELECT 1 FROM alerts a WHERE a.id = r.alert_id)",
    "ALTER TABLE deliveries ADD CONSTRAINT fk_deliveries_alert FOREIGN KEY (alert_id) \
     REFERENCES alerts (id) ON DELETE CASCADE",
    "ALTER TABLE deliveries ADD CONSTRAINT fk_deliveries_user FOREIGN KEY (user_id) \
     REFERENCES users (id) ON DELETE CASCADE",
    "ALTER TABLE deliveries ADD CONSTRAINT fk_deliveries_device FOREIGN KEY (device_id) \
     REFERENCES devices (id) ON DELETE SET NULL",
    "ALTER TABLE story_receipts ADD CONSTRAINT fk_story_receipts_device FOREIGN KEY (device_id) \
     REFERENCES devices (id) ON DELETE CASCADE",
    "ALTER TABLE story_receipts ADD CONSTRAINT fk_story_receipts_alert FOREIGN KEY (alert_id) \
     REFERENCES alerts (id) ON DELETE CASCADE",
];

async fn run(manager: &SchemaManager<'_>, statements: &[&str]) -> Result<(), DbErr> {
    if manager.get_database_backend() != DbBackend::Postgres {
        return Ok(());
    }
    crate::execute_all(manager, statements).await
}

#[async_trait::async_trait]
impl MigrationTrait for Migration {
    async fn up(&self, manager: &SchemaManager) -> Result<(), DbErr> {
        run(manager, UP).await
    }

    async fn down(&self, manager: &SchemaManager) -> Result<(), DbErr> {
        run(manager, DOWN).await
    }
}
