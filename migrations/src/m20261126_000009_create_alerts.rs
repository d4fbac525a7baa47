//! Alerts and their per-device deliveries: the readers' inbox and the notifier's record.

use crate::m20261126_000002_create_users::Users;
use crate::m20261126_000007_create_devices::Devices;
use sea_orm_migration::{prelude::*, schema::*};

#[derive(DeriveMigrationName)]
pub struct Migration;

#[async_trait::async_trait]
impl MigrationTrait for Migration {
    async fn up(&self, manager: &SchemaManager) -> Result<(), DbErr> {
        manager
            .create_table(
                Table::create()
                    .table(Alerts::Table)
                    .if_not_exists()
                    .col(uuid(Alerts::Id).primary_key())
                    .col(uuid_null(Alerts::StoryId))
                    .col(uuid_null(Alerts::ArticleId))
                    .col(json(Alerts::Topics))
                    .col(string_len(Alerts::Title, 300))
                    .col(string_len(Alerts::Body, 1000))
                    .col(text(Alerts::Url))
                    .col(text_null(Alerts::ImageUrl))
                    .col(string_len(Alerts::Urgency, 16))
                    .col(integer(Alerts::TtlSeconds))
                    .col(string_len(Alerts::State, 16))
                    .col(string_len(Alerts::Trigger, 16))
                    .col(uuid_null(Alerts::CreatedBy))
                    .col(timestamp_with_time_zone(Alerts::CreatedAt))
                    .col(timestamp_with_time_zone_null(Alerts::FinishedAt))
                    .foreign_key(
                        ForeignKey::create()
                            .name("fk_alerts_created_by")
                            .from(Alerts::Table, Alerts::CreatedBy)
                            .to(Users::Table, Users::Id)
                            .on_delete(ForeignKeyAction::SetNull),
                    )
                    .to_owned(),
            )
            .await?;
        manager
            .create_table(
                Table::create()
                    .table(Deliveries::Table)
                    .if_not_exists()
                    .col(uuid(Deliveries::Id).primary_key())
                    .col(uuid(Deliveries::AlertId))
                    .col(uuid(Deliveries::UserId))
                    .col(uuid_null(Deliveries::DeviceId))
                    .col(uuid_null(Deliveries::StoryId))
                    .col(string_len(Deliveries::Status, 16))
                    .col(string_len_null(Deliveries::Reason, 300))
                    .col(integer(Deliveries::Attempts))
                    .col(timestamp_with_time_zone(Deliveries::CreatedAt))
                    .col(timestamp_with_time_zone_null(Deliveries::SentAt))
                    .col(timestamp_with_time_zone_null(Deliveries::OpenedAt))
                    .foreign_key(
                        ForeignKey::create()
                            .name("fk_deliveries_alert")
                            .from(Deliveries::Table, Deliveries::AlertId)
                            .to(Alerts::Table, Alerts::Id)
                            .on_delete(ForeignKeyAction::Cascade),
                    )
                    .foreign_key(
                        ForeignKey::create()
                            .name("fk_deliveries_user")
                            .from(Deliveries::Table, Deliveries::UserId)
                            .to(Users::Table, Users::Id)
                            .on_delete(ForeignKeyAction::Cascade),
                    )
                    .foreign_key(
                        ForeignKey::create()
                            .name("fk_deliveries_device")
                            .from(Deliveries::Table, Deliveries::DeviceId)
                            .to(Devices::Table, Devices::Id)
                            .on_delete(ForeignKeyAction::SetNull),
                    )
                    .to_owned(),
            )
            .await?;
        // One delivery per device and alert; the inbox and daily cap read by user/device and time.
        manager
            .create_index(
                Index::create()
                    .name("ux_deliveries_alert_device")
                    .table(Deliveries::Table)
                    .col(Deliveries::AlertId)
                    .col(Deliveries::DeviceId)
                    .unique()
                    .to_owned(),
            )
            .await?;
        manager
            .create_index(
                Index::create()
                    .name("ix_deliveries_user_created")
                    .table(Deliveries::Table)
                    .col(Deliveries::UserId)
                    .col(Deliveries::CreatedAt)
                    .to_owned(),
            )
            .await?;
        manager
            .create_index(
                Index::create()
                    .name("ix_deliveries_device_sent")
                    .table(Deliveries::Table)
                    .col(Deliveries::DeviceId)
                    .col(Deliveries::SentAt)
                    .to_owned(),
            )
            .await
    }

    async fn down(&self, manager: &SchemaManager) -> Result<(), DbErr> {
        manager
            .drop_table(Table::drop().table(Deliveries::Table).to_owned())
            .await?;
        manager
            .drop_table(Table::drop().table(Alerts::Table).to_owned())
            .await
    }
}

#[derive(DeriveIden)]
enum Alerts {
    Table,
    Id,
    StoryId,
    ArticleId,
    Topics,
    Title,
    Body,
    Url,
    ImageUrl,
    Urgency,
    TtlSeconds,
    State,
    Trigger,
    CreatedBy,
    CreatedAt,
    FinishedAt,
}

#[derive(DeriveIden)]
enum Deliveries {
    Table,
    Id,
    AlertId,
    UserId,
    DeviceId,
    StoryId,
    Status,
    Reason,
    Attempts,
    CreatedAt,
    SentAt,
    OpenedAt,
}
