//! Deliveries waiting to be retried, out of their batch's way: a push service that answered
//! 429/5xx or did not answer in time gets the device again from this queue, so one slow or
//! failing endpoint never holds its batch, its worker or the alerts after it.

use sea_orm_migration::{prelude::*, schema::*};

#[derive(DeriveMigrationName)]
pub struct Migration;

#[async_trait::async_trait]
impl MigrationTrait for Migration {
    async fn up(&self, manager: &SchemaManager) -> Result<(), DbErr> {
        manager
            .create_table(
                Table::create()
                    .table(DeliveryRetries::Table)
                    .if_not_exists()
                    .col(uuid(DeliveryRetries::AlertId))
                    .col(uuid(DeliveryRetries::DeviceId))
                    .col(uuid(DeliveryRetries::UserId))
                    .col(string_len(DeliveryRetries::Topic, 64))
                    .col(integer(DeliveryRetries::Attempts))
                    .col(timestamp_with_time_zone(DeliveryRetries::DueAt))
                    .col(string_len_null(DeliveryRetries::Reason, 300))
                    .col(string_len_null(DeliveryRetries::LeaseOwner, 64))
                    .col(timestamp_with_time_zone_null(
                        DeliveryRetries::LeaseExpiresAt,
                    ))
                    .col(timestamp_with_time_zone(DeliveryRetries::CreatedAt))
                    .primary_key(
                        Index::create()
                            .col(DeliveryRetries::AlertId)
                            .col(DeliveryRetries::DeviceId),
                    )
                    .foreign_key(
                        ForeignKey::create()
                            .name("fk_delivery_retries_alert")
                            .from(DeliveryRetries::Table, DeliveryRetries::AlertId)
                            .to(Alerts::Table, Alerts::Id)
                            .on_delete(ForeignKeyAction::Cascade),
                    )
                    .foreign_key(
                        ForeignKey::create()
                            .name("fk_delivery_retries_device")
                            .from(DeliveryRetries::Table, DeliveryRetries::DeviceId)
                            .to(Devices::Table, Devices::Id)
                            .on_delete(ForeignKeyAction::Cascade),
                    )
                    .to_owned(),
            )
            .await?;
        manager
            .create_index(
                Index::create()
                    .name("ix_delivery_retries_due")
                    .table(DeliveryRetries::Table)
                    .col(DeliveryRetries::DueAt)
                    .to_owned(),
            )
            .await
    }

    async fn down(&self, manager: &SchemaManager) -> Result<(), DbErr> {
        manager
            .drop_table(Table::drop().table(DeliveryRetries::Table).to_owned())
            .await
    }
}

#[derive(DeriveIden)]
enum DeliveryRetries {
    Table,
    AlertId,
    DeviceId,
    UserId,
    Topic,
    Attempts,
    DueAt,
    Reason,
    LeaseOwner,
    LeaseExpiresAt,
    CreatedAt,
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
