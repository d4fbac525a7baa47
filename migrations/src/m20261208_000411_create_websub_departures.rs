//! Unsubscriptions owed to WebSub hubs for sources that were deleted: the subscription row goes
//! with its source, so what the hub must be told (hub, topic, callback token, how long its
//! lease can last) is kept here until the hub verifies the unsubscription or the lease ends.

use sea_orm_migration::{prelude::*, schema::*};

#[derive(DeriveMigrationName)]
pub struct Migration;

#[async_trait::async_trait]
impl MigrationTrait for Migration {
    async fn up(&self, manager: &SchemaManager) -> Result<(), DbErr> {
        manager
            .create_table(
                Table::create()
                    .table(WebsubDepartures::Table)
                    .if_not_exists()
                    .col(uuid(WebsubDepartures::SourceId).primary_key())
                    .col(string_len(WebsubDepartures::HubUrl, 2048))
                    .col(string_len(WebsubDepartures::TopicUrl, 2048))
                    .col(string_len(WebsubDepartures::CallbackToken, 64))
                    .col(timestamp_with_time_zone_null(WebsubDepartures::RequestedAt))
                    .col(timestamp_with_time_zone(WebsubDepartures::NextAttemptAt))
                    .col(timestamp_with_time_zone(WebsubDepartures::GiveUpAt))
                    .col(integer(WebsubDepartures::Attempts).default(0))
                    .col(text_null(WebsubDepartures::LastError))
                    .col(timestamp_with_time_zone(WebsubDepartures::CreatedAt))
                    .to_owned(),
            )
            .await?;
        manager
            .create_index(
                Index::create()
                    .name("ix_websub_departures_next_attempt")
                    .table(WebsubDepartures::Table)
                    .col(WebsubDepartures::NextAttemptAt)
                    .to_owned(),
            )
            .await
    }

    async fn down(&self, manager: &SchemaManager) -> Result<(), DbErr> {
        manager
            .drop_table(Table::drop().table(WebsubDepartures::Table).to_owned())
            .await
    }
}

#[derive(DeriveIden)]
enum WebsubDepartures {
    Table,
    SourceId,
    HubUrl,
    TopicUrl,
    CallbackToken,
    RequestedAt,
    NextAttemptAt,
    GiveUpAt,
    Attempts,
    LastError,
    CreatedAt,
}
