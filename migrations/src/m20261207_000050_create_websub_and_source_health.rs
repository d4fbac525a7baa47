//! WebSub push ingest and per-feed entry counters: a subscription per source (the hub, the
//! topic, the callback token and HMAC secret, the lease), the queue of pushed bodies the api
//! role received and the ingest role has yet to ingest, and what each source's entries became.

use sea_orm_migration::{prelude::*, schema::*};

use crate::m20261126_000010_create_sources::Sources;

#[derive(DeriveMigrationName)]
pub struct Migration;

#[async_trait::async_trait]
impl MigrationTrait for Migration {
    async fn up(&self, manager: &SchemaManager) -> Result<(), DbErr> {
        manager
            .create_table(
                Table::create()
                    .table(WebsubSubscriptions::Table)
                    .if_not_exists()
                    .col(uuid(WebsubSubscriptions::SourceId).primary_key())
                    .col(string_len(WebsubSubscriptions::HubUrl, 2048))
                    .col(string_len(WebsubSubscriptions::TopicUrl, 2048))
                    .col(string_len(WebsubSubscriptions::CallbackToken, 64))
                    .col(string_len(WebsubSubscriptions::Secret, 128))
                    .col(string_len(WebsubSubscriptions::State, 24))
                    .col(timestamp_with_time_zone(WebsubSubscriptions::RequestedAt))
                    .col(timestamp_with_time_zone_null(
                        WebsubSubscriptions::VerifiedAt,
                    ))
                    .col(timestamp_with_time_zone_null(
                        WebsubSubscriptions::LeaseExpiresAt,
                    ))
                    .col(timestamp_with_time_zone_null(
                        WebsubSubscriptions::LastDeliveryAt,
                    ))
                    .col(big_integer(WebsubSubscriptions::Deliveries).default(0))
                    .col(big_integer(WebsubSubscriptions::RejectedDeliveries).default(0))
                    .col(text_null(WebsubSubscriptions::LastError))
                    .col(timestamp_with_time_zone(WebsubSubscriptions::UpdatedAt))
                    .foreign_key(
                        ForeignKey::create()
                            .name("fk_websub_subscriptions_source")
                            .from(WebsubSubscriptions::Table, WebsubSubscriptions::SourceId)
                            .to(Sources::Table, Sources::Id)
                            .on_delete(ForeignKeyAction::Cascade),
                    )
                    .to_owned(),
            )
            .await?;
        manager
            .create_table(
                Table::create()
                    .table(WebsubDeliveries::Table)
                    .if_not_exists()
                    .col(uuid(WebsubDeliveries::Id).primary_key())
                    .col(uuid(WebsubDeliveries::SourceId))
                    .col(blob(WebsubDeliveries::Body))
                    .col(string_len_null(WebsubDeliveries::ContentType, 255))
                    .col(timestamp_with_time_zone(WebsubDeliveries::ReceivedAt))
                    .col(string_len_null(WebsubDeliveries::LeaseOwner, 128))
                    .col(timestamp_with_time_zone_null(
                        WebsubDeliveries::LeaseExpiresAt,
                    ))
                    .foreign_key(
                        ForeignKey::create()
                            .name("fk_websub_deliveries_source")
                            .from(WebsubDeliveries::Table, WebsubDeliveries::SourceId)
                            .to(Sources::Table, Sources::Id)
                            .on_delete(ForeignKeyAction::Cascade),
                    )
                    .to_owned(),
            )
            .await?;
        // The ingest role takes pushed bodies oldest first; the api counts a source's backlog.
        manager
            .create_index(
                Index::create()
                    .name("ix_websub_deliveries_source_received")
                    .table(WebsubDeliveries::Table)
                    .col(WebsubDeliveries::SourceId)
                    .col(WebsubDeliveries::ReceivedAt)
                    .to_owned(),
            )
            .await?;
        manager
            .create_index(
                Index::create()
                    .name("ix_websub_deliveries_received")
                    .table(WebsubDeliveries::Table)
                    .col(WebsubDeliveries::ReceivedAt)
                    .to_owned(),
            )
            .await?;
        manager
            .create_table(
                Table::create()
                    .table(SourceHealth::Table)
                    .if_not_exists()
                    .col(uuid(SourceHealth::SourceId).primary_key())
                    .col(big_integer(SourceHealth::EntriesSeen).default(0))
                    .col(big_integer(SourceHealth::Ingested).default(0))
                    .col(big_integer(SourceHealth::Updated).default(0))
                    .col(big_integer(SourceHealth::Duplicates).default(0))
                    .col(big_integer(SourceHealth::RefusedNoTitleOrLink).default(0))
                    .col(big_integer(SourceHealth::DerivedTitles).default(0))
                    .col(big_integer(SourceHealth::Pushed).default(0))
                    .col(text_null(SourceHealth::LastRefusal))
                    .col(timestamp_with_time_zone(SourceHealth::UpdatedAt))
                    .foreign_key(
                        ForeignKey::create()
                            .name("fk_source_health_source")
                            .from(SourceHealth::Table, SourceHealth::SourceId)
                            .to(Sources::Table, Sources::Id)
                            .on_delete(ForeignKeyAction::Cascade),
                    )
                    .to_owned(),
            )
            .await
    }

    async fn down(&self, manager: &SchemaManager) -> Result<(), DbErr> {
        for table in [
            SourceHealth::Table.into_iden(),
            WebsubDeliveries::Table.into_iden(),
            WebsubSubscriptions::Table.into_iden(),
        ] {
            manager
                .drop_table(Table::drop().table(table).if_exists().to_owned())
                .await?;
        }
        Ok(())
    }
}

#[derive(DeriveIden)]
enum WebsubSubscriptions {
    Table,
    SourceId,
    HubUrl,
    TopicUrl,
    CallbackToken,
    Secret,
    State,
    RequestedAt,
    VerifiedAt,
    LeaseExpiresAt,
    LastDeliveryAt,
    Deliveries,
    RejectedDeliveries,
    LastError,
    UpdatedAt,
}

#[derive(DeriveIden)]
enum WebsubDeliveries {
    Table,
    Id,
    SourceId,
    Body,
    ContentType,
    ReceivedAt,
    LeaseOwner,
    LeaseExpiresAt,
}

#[derive(DeriveIden)]
enum SourceHealth {
    Table,
    SourceId,
    EntriesSeen,
    Ingested,
    Updated,
    Duplicates,
    RefusedNoTitleOrLink,
    DerivedTitles,
    Pushed,
    LastRefusal,
    UpdatedAt,
}
