//! Fan-out cost independent of how much was already delivered: outcome counters kept on each
//! batch row (the status page sums an alert's batches instead of grouping its deliveries),
//! partial indexes over the few open batches, and a partial index for the opened count.
//! The per-status deliveries index goes: it only served the old counters, and planners chose it
//! for per-device lookups, scanning all of an alert's deliveries for every batch.

use sea_orm_migration::prelude::*;

#[derive(DeriveMigrationName)]
pub struct Migration;

const COUNTERS: [&str; 7] = [
    "sent",
    "failed",
    "pruned",
    "quiet_hours",
    "daily_cap",
    "duplicate",
    "unfollowed",
];

#[async_trait::async_trait]
impl MigrationTrait for Migration {
    async fn up(&self, manager: &SchemaManager) -> Result<(), DbErr> {
        let db = manager.get_connection();
        // One column per statement: SQLite alters one thing at a time.
        for column in COUNTERS {
            db.execute_unprepared(&format!(
                "ALTER TABLE alert_batches ADD COLUMN {column} INTEGER NOT NULL DEFAULT 0"
            ))
            .await?;
        }
        // Alerts sent before the counters existed: their outcomes go on their first batch.
        let first_batch = "NOT EXISTS (SELECT 1 FROM alert_batches b2 \
                           WHERE b2.alert_id = alert_batches.alert_id AND b2.id < alert_batches.id)";
        for column in COUNTERS {
            db.execute_unprepared(&format!(
                "UPDATE alert_batches SET {column} = (SELECT COUNT(*) FROM deliveries d \
                 WHERE d.alert_id = alert_batches.alert_id AND d.status = '{column}') \
                 WHERE {first_batch}"
            ))
            .await?;
        }
        for sql in [
            "DROP INDEX IF EXISTS ix_deliveries_alert_status",
            "CREATE INDEX IF NOT EXISTS ix_alert_batches_open ON alert_batches (id) \
             WHERE state IN ('queued', 'leased')",
            "CREATE INDEX IF NOT EXISTS ix_alert_batches_alert_open ON alert_batches (alert_id) \
             WHERE state IN ('queued', 'leased')",
            "CREATE INDEX IF NOT EXISTS ix_deliveries_alert_opened ON deliveries (alert_id, user_id) \
             WHERE opened_at IS NOT NULL",
        ] {
            db.execute_unprepared(sql).await?;
        }
        Ok(())
    }

    async fn down(&self, manager: &SchemaManager) -> Result<(), DbErr> {
        let db = manager.get_connection();
        for sql in [
            "DROP INDEX IF EXISTS ix_deliveries_alert_opened",
            "DROP INDEX IF EXISTS ix_alert_batches_alert_open",
            "DROP INDEX IF EXISTS ix_alert_batches_open",
            "CREATE INDEX IF NOT EXISTS ix_deliveries_alert_status ON deliveries (alert_id, status)",
        ] {
            db.execute_unprepared(sql).await?;
        }
        for column in COUNTERS {
            db.execute_unprepared(&format!("ALTER TABLE alert_batches DROP COLUMN {column}"))
                .await?;
        }
        Ok(())
    }
}
