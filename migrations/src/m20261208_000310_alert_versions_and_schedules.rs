//! Alerts that change after they are sent, and alerts that wait: a version number on every
//! alert and on every delivery (which version the device was last given), the history of
//! versions with their replacement counters, a send time and a local delivery time for
//! scheduled alerts, the followed topic of each delivery (for per-topic analytics), and a kind
//! on the retry queue (a failed first attempt, a delivery waiting for the reader's local time,
//! or a replacement of what a device already shows).

use sea_orm_migration::{prelude::*, schema::*};

#[derive(DeriveMigrationName)]
pub struct Migration;

#[async_trait::async_trait]
impl MigrationTrait for Migration {
    async fn up(&self, manager: &SchemaManager) -> Result<(), DbErr> {
        // One column per statement: SQLite alters one thing at a time.
        let alert_columns = [
            integer(Alerts::Version).default(1).to_owned(),
            boolean(Alerts::Silent).default(false).to_owned(),
            timestamp_with_time_zone_null(Alerts::SendAt),
            string_len_null(Alerts::LocalTime, 5),
            timestamp_with_time_zone_null(Alerts::UpdatedAt),
            timestamp_with_time_zone_null(Alerts::RetractedAt),
        ];
        for column in alert_columns {
            manager
                .alter_table(
                    Table::alter()
                        .table(Alerts::Table)
                        .add_column(column)
                        .to_owned(),
                )
                .await?;
        }
        for column in [
            integer(Deliveries::Version).default(1).to_owned(),
            string_len_null(Deliveries::Topic, 64),
        ] {
            manager
                .alter_table(
                    Table::alter()
                        .table(Deliveries::Table)
                        .add_column(column)
                        .to_owned(),
                )
                .await?;
        }
        manager
            .alter_table(
                Table::alter()
                    .table(DeliveryRetries::Table)
                    .add_column(string_len(DeliveryRetries::Kind, 16).default("retry"))
                    .to_owned(),
            )
            .await?;
        manager
            .create_table(
                Table::create()
                    .table(AlertVersions::Table)
                    .if_not_exists()
                    .col(uuid(AlertVersions::AlertId))
                    .col(integer(AlertVersions::Version))
                    .col(string_len(AlertVersions::Kind, 16))
                    .col(string_len(AlertVersions::Title, 300))
                    .col(string_len(AlertVersions::Body, 1000))
                    .col(text(AlertVersions::Url))
                    .col(text_null(AlertVersions::ImageUrl))
                    .col(boolean(AlertVersions::Silent))
                    .col(uuid_null(AlertVersions::CreatedBy))
                    .col(timestamp_with_time_zone(AlertVersions::CreatedAt))
                    .col(integer(AlertVersions::Replaced).default(0))
                    .col(integer(AlertVersions::ReplaceFailed).default(0))
                    .col(integer(AlertVersions::HeldQuietHours).default(0))
                    .primary_key(
                        Index::create()
                            .col(AlertVersions::AlertId)
                            .col(AlertVersions::Version),
                    )
                    .foreign_key(
                        ForeignKey::create()
                            .name("fk_alert_versions_alert")
                            .from(AlertVersions::Table, AlertVersions::AlertId)
                            .to(Alerts::Table, Alerts::Id)
                            .on_delete(ForeignKeyAction::Cascade),
                    )
                    .to_owned(),
            )
            .await?;
        // The scheduler's one query: scheduled alerts by when they are due.
        manager
            .get_connection()
            .execute_unprepared(
                "CREATE INDEX IF NOT EXISTS ix_alerts_scheduled ON alerts (send_at) \
                 WHERE state = 'scheduled'",
            )
            .await?;
        Ok(())
    }

    async fn down(&self, manager: &SchemaManager) -> Result<(), DbErr> {
        manager
            .get_connection()
            .execute_unprepared("DROP INDEX IF EXISTS ix_alerts_scheduled")
            .await?;
        manager
            .drop_table(Table::drop().table(AlertVersions::Table).to_owned())
            .await?;
        manager
            .alter_table(
                Table::alter()
                    .table(DeliveryRetries::Table)
                    .drop_column(DeliveryRetries::Kind)
                    .to_owned(),
            )
            .await?;
        for column in [Deliveries::Version, Deliveries::Topic] {
            manager
                .alter_table(
                    Table::alter()
                        .table(Deliveries::Table)
                        .drop_column(column)
                        .to_owned(),
                )
                .await?;
        }
        for column in [
            Alerts::Version,
            Alerts::Silent,
            Alerts::SendAt,
            Alerts::LocalTime,
            Alerts::UpdatedAt,
            Alerts::RetractedAt,
        ] {
            manager
                .alter_table(
                    Table::alter()
                        .table(Alerts::Table)
                        .drop_column(column)
                        .to_owned(),
                )
                .await?;
        }
        Ok(())
    }
}

#[derive(DeriveIden)]
enum Alerts {
    Table,
    Id,
    Version,
    Silent,
    SendAt,
    LocalTime,
    UpdatedAt,
    RetractedAt,
}

#[derive(DeriveIden)]
enum Deliveries {
    Table,
    Version,
    Topic,
}

#[derive(DeriveIden)]
enum DeliveryRetries {
    Table,
    Kind,
}

#[derive(DeriveIden)]
enum AlertVersions {
    Table,
    AlertId,
    Version,
    Kind,
    Title,
    Body,
    Url,
    ImageUrl,
    Silent,
    CreatedBy,
    CreatedAt,
    Replaced,
    ReplaceFailed,
    HeldQuietHours,
}
