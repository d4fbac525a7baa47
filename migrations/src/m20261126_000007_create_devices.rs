//! Readers' push destinations: Web Push subscriptions, FCM tokens, APNs tokens.

use crate::m20261126_000002_create_users::Users;
use sea_orm_migration::{prelude::*, schema::*};

#[derive(DeriveMigrationName)]
pub struct Migration;

#[async_trait::async_trait]
impl MigrationTrait for Migration {
    async fn up(&self, manager: &SchemaManager) -> Result<(), DbErr> {
        manager
            .create_table(
                Table::create()
                    .table(Devices::Table)
                    .if_not_exists()
                    .col(uuid(Devices::Id).primary_key())
                    .col(uuid(Devices::UserId))
                    .col(string_len(Devices::Platform, 16))
                    // Web Push endpoint URL, or the FCM/APNs token.
                    .col(text(Devices::Address))
                    .col(blob_null(Devices::P256dh))
                    .col(blob_null(Devices::Auth))
                    .col(string_len_null(Devices::ApnsEnvironment, 16))
                    .col(string_len_null(Devices::Locale, 35))
                    .col(string_len_null(Devices::Timezone, 64))
                    .col(timestamp_with_time_zone(Devices::CreatedAt))
                    .col(timestamp_with_time_zone(Devices::UpdatedAt))
                    .col(timestamp_with_time_zone_null(Devices::DeadAt))
                    .col(string_len_null(Devices::DeadReason, 200))
                    .foreign_key(
                        ForeignKey::create()
                            .name("fk_devices_user")
                            .from(Devices::Table, Devices::UserId)
                            .to(Users::Table, Users::Id)
                            .on_delete(ForeignKeyAction::Cascade),
                    )
                    .to_owned(),
            )
            .await?;
        manager
            .create_index(
                Index::create()
                    .name("ux_devices_platform_address")
                    .table(Devices::Table)
                    .col(Devices::Platform)
                    .col(Devices::Address)
                    .unique()
                    .to_owned(),
            )
            .await?;
        manager
            .create_index(
                Index::create()
                    .name("ix_devices_user")
                    .table(Devices::Table)
                    .col(Devices::UserId)
                    .col(Devices::UpdatedAt)
                    .to_owned(),
            )
            .await
    }

    async fn down(&self, manager: &SchemaManager) -> Result<(), DbErr> {
        manager
            .drop_table(Table::drop().table(Devices::Table).to_owned())
            .await
    }
}

#[derive(DeriveIden)]
pub(crate) enum Devices {
    Table,
    Id,
    UserId,
    Platform,
    Address,
    P256dh,
    Auth,
    ApnsEnvironment,
    Locale,
    Timezone,
    CreatedAt,
    UpdatedAt,
    DeadAt,
    DeadReason,
}
