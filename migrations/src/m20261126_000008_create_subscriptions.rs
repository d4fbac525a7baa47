//! Which topics each reader follows, and their alert preferences.

use crate::m20261126_000002_create_users::Users;
use crate::m20261126_000006_create_topics::Topics;
use sea_orm_migration::{prelude::*, schema::*};

#[derive(DeriveMigrationName)]
pub struct Migration;

#[async_trait::async_trait]
impl MigrationTrait for Migration {
    async fn up(&self, manager: &SchemaManager) -> Result<(), DbErr> {
        manager
            .create_table(
                Table::create()
                    .table(Subscriptions::Table)
                    .if_not_exists()
                    .col(uuid(Subscriptions::UserId))
                    .col(string_len(Subscriptions::TopicSlug, 64))
                    .col(timestamp_with_time_zone(Subscriptions::CreatedAt))
                    .primary_key(
                        Index::create()
                            .col(Subscriptions::UserId)
                            .col(Subscriptions::TopicSlug),
                    )
                    .foreign_key(
                        ForeignKey::create()
                            .name("fk_subscriptions_user")
                            .from(Subscriptions::Table, Subscriptions::UserId)
                            .to(Users::Table, Users::Id)
                            .on_delete(ForeignKeyAction::Cascade),
                    )
                    .foreign_key(
                        ForeignKey::create()
                            .name("fk_subscriptions_topic")
                            .from(Subscriptions::Table, Subscriptions::TopicSlug)
                            .to(Topics::Table, Topics::Slug)
                            .on_delete(ForeignKeyAction::Cascade),
                    )
                    .to_owned(),
            )
            .await?;
        // The fan-out walks a topic's followers.
        manager
            .create_index(
                Index::create()
                    .name("ix_subscriptions_topic_user")
                    .table(Subscriptions::Table)
                    .col(Subscriptions::TopicSlug)
                    .col(Subscriptions::UserId)
                    .to_owned(),
            )
            .await?;
        manager
            .create_table(
                Table::create()
                    .table(Preferences::Table)
                    .if_not_exists()
                    .col(uuid(Preferences::UserId).primary_key())
                    .col(string_len(Preferences::Timezone, 64))
                    .col(small_integer_null(Preferences::QuietStartMinute))
                    .col(small_integer_null(Preferences::QuietEndMinute))
                    .col(small_integer(Preferences::MaxAlertsPerDay))
                    .col(timestamp_with_time_zone(Preferences::UpdatedAt))
                    .foreign_key(
                        ForeignKey::create()
                            .name("fk_preferences_user")
                            .from(Preferences::Table, Preferences::UserId)
                            .to(Users::Table, Users::Id)
                            .on_delete(ForeignKeyAction::Cascade),
                    )
                    .to_owned(),
            )
            .await
    }

    async fn down(&self, manager: &SchemaManager) -> Result<(), DbErr> {
        manager
            .drop_table(Table::drop().table(Preferences::Table).to_owned())
            .await?;
        manager
            .drop_table(Table::drop().table(Subscriptions::Table).to_owned())
            .await
    }
}

#[derive(DeriveIden)]
enum Subscriptions {
    Table,
    UserId,
    TopicSlug,
    CreatedAt,
}

#[derive(DeriveIden)]
enum Preferences {
    Table,
    UserId,
    Timezone,
    QuietStartMinute,
    QuietEndMinute,
    MaxAlertsPerDay,
    UpdatedAt,
}
