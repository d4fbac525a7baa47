//! The notifier's durable queue: an alert's audience cut into keyset ranges of devices that
//! notifier processes lease, plus the once-per-story guard each device is checked against.

use sea_orm_migration::{prelude::*, schema::*};

#[derive(DeriveMigrationName)]
pub struct Migration;

#[async_trait::async_trait]
impl MigrationTrait for Migration {
    async fn up(&self, manager: &SchemaManager) -> Result<(), DbErr> {
        manager
            .create_table(
                Table::create()
                    .table(AlertBatches::Table)
                    .if_not_exists()
                    .col(uuid(AlertBatches::Id).primary_key())
                    .col(uuid(AlertBatches::AlertId))
                    // Devices with ids in (after, until]; `until` is fixed when the batch is planned.
                    .col(uuid_null(AlertBatches::AfterDeviceId))
                    .col(uuid_null(AlertBatches::UntilDeviceId))
                    .col(boolean(AlertBatches::Planned))
                    .col(integer(AlertBatches::DeviceCount))
                    .col(string_len(AlertBatches::State, 16))
                    .col(string_len_null(AlertBatches::LeaseOwner, 64))
                    .col(timestamp_with_time_zone_null(AlertBatches::LeaseExpiresAt))
                    .col(integer(AlertBatches::Attempts))
                    .col(timestamp_with_time_zone(AlertBatches::CreatedAt))
                    .col(timestamp_with_time_zone_null(AlertBatches::FinishedAt))
                    .foreign_key(
                        ForeignKey::create()
                            .name("fk_alert_batches_alert")
                            .from(AlertBatches::Table, AlertBatches::AlertId)
                            .to(Alerts::Table, Alerts::Id)
                            .on_delete(ForeignKeyAction::Cascade),
                    )
                    .to_owned(),
            )
            .await?;
        manager
            .create_index(
                Index::create()
                    .name("ix_alert_batches_state")
                    .table(AlertBatches::Table)
                    .col(AlertBatches::State)
                    .col(AlertBatches::Id)
                    .to_owned(),
            )
            .await?;
        manager
            .create_index(
                Index::create()
                    .name("ix_alert_batches_alert")
                    .table(AlertBatches::Table)
                    .col(AlertBatches::AlertId)
                    .to_owned(),
            )
            .await?;
        // Claimed before a device is sent a story: a second alert on the story finds the claim.
        manager
            .create_table(
                Table::create()
                    .table(StoryReceipts::Table)
                    .if_not_exists()
                    .col(uuid(StoryReceipts::StoryId))
                    .col(uuid(StoryReceipts::DeviceId))
                    .col(uuid(StoryReceipts::AlertId))
                    .col(timestamp_with_time_zone(StoryReceipts::CreatedAt))
                    .primary_key(
                        Index::create()
                            .col(StoryReceipts::StoryId)
                            .col(StoryReceipts::DeviceId),
                    )
                    .foreign_key(
                        ForeignKey::create()
                            .name("fk_story_receipts_device")
                            .from(StoryReceipts::Table, StoryReceipts::DeviceId)
                            .to(Devices::Table, Devices::Id)
                            .on_delete(ForeignKeyAction::Cascade),
                    )
                    .foreign_key(
                        ForeignKey::create()
                            .name("fk_story_receipts_alert")
                            .from(StoryReceipts::Table, StoryReceipts::AlertId)
                            .to(Alerts::Table, Alerts::Id)
                            .on_delete(ForeignKeyAction::Cascade),
                    )
                    .to_owned(),
            )
            .await?;
        // The batch's "already recorded" read and the counters group deliveries by alert.
        manager
            .create_index(
                Index::create()
                    .name("ix_deliveries_alert_status")
                    .table(Deliveries::Table)
                    .col(Deliveries::AlertId)
                    .col(Deliveries::Status)
                    .to_owned(),
            )
            .await
    }

    async fn down(&self, manager: &SchemaManager) -> Result<(), DbErr> {
        manager
            .drop_index(
                Index::drop()
                    .name("ix_deliveries_alert_status")
                    .table(Deliveries::Table)
                    .to_owned(),
            )
            .await?;
        manager
            .drop_table(Table::drop().table(StoryReceipts::Table).to_owned())
            .await?;
        manager
            .drop_table(Table::drop().table(AlertBatches::Table).to_owned())
            .await
    }
}

#[derive(DeriveIden)]
enum Alerts {
    Table,
    Id,
}

#[derive(DeriveIden)]
enum Devices {
    Table,
    Id,
}

#[derive(DeriveIden)]
enum Deliveries {
    Table,
    AlertId,
    Status,
}

#[derive(DeriveIden)]
enum AlertBatches {
    Table,
    Id,
    AlertId,
    AfterDeviceId,
    UntilDeviceId,
    Planned,
    DeviceCount,
    State,
    LeaseOwner,
    LeaseExpiresAt,
    Attempts,
    CreatedAt,
    FinishedAt,
}

#[derive(DeriveIden)]
enum StoryReceipts {
    Table,
    StoryId,
    DeviceId,
    AlertId,
    CreatedAt,
}
