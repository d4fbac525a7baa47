//! Failed logins and sign-ups per account and per address, for throttling across processes.

use sea_orm_migration::{prelude::*, schema::*};

#[derive(DeriveMigrationName)]
pub struct Migration;

#[async_trait::async_trait]
impl MigrationTrait for Migration {
    async fn up(&self, manager: &SchemaManager) -> Result<(), DbErr> {
        manager
            .create_table(
                Table::create()
                    .table(ThrottleEvents::Table)
                    .if_not_exists()
                    .col(big_pk_auto(ThrottleEvents::Id))
                    .col(string_len(ThrottleEvents::Scope, 300))
                    .col(timestamp_with_time_zone(ThrottleEvents::At))
                    .to_owned(),
            )
            .await?;
        manager
            .create_index(
                Index::create()
                    .name("ix_throttle_events_scope_at")
                    .table(ThrottleEvents::Table)
                    .col(ThrottleEvents::Scope)
                    .col(ThrottleEvents::At)
                    .to_owned(),
            )
            .await
    }

    async fn down(&self, manager: &SchemaManager) -> Result<(), DbErr> {
        manager
            .drop_table(Table::drop().table(ThrottleEvents::Table).to_owned())
            .await
    }
}

#[derive(DeriveIden)]
enum ThrottleEvents {
    Table,
    Id,
    Scope,
    At,
}
