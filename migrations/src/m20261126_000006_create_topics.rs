//! Topics readers follow, with the keywords that tag articles and their breaking rule.

use sea_orm_migration::{prelude::*, schema::*};

#[derive(DeriveMigrationName)]
pub struct Migration;

#[async_trait::async_trait]
impl MigrationTrait for Migration {
    async fn up(&self, manager: &SchemaManager) -> Result<(), DbErr> {
        manager
            .create_table(
                Table::create()
                    .table(Topics::Table)
                    .if_not_exists()
                    .col(string_len(Topics::Slug, 64).primary_key())
                    .col(string_len(Topics::Name, 100))
                    .col(string_len(Topics::Description, 500))
                    .col(json(Topics::Keywords))
                    .col(integer(Topics::MinSources))
                    .col(integer(Topics::WindowMinutes))
                    .col(timestamp_with_time_zone(Topics::CreatedAt))
                    .col(timestamp_with_time_zone(Topics::UpdatedAt))
                    .to_owned(),
            )
            .await
    }

    async fn down(&self, manager: &SchemaManager) -> Result<(), DbErr> {
        manager
            .drop_table(Table::drop().table(Topics::Table).to_owned())
            .await
    }
}

#[derive(DeriveIden)]
pub(crate) enum Topics {
    Table,
    Slug,
    Name,
    Description,
    Keywords,
    MinSources,
    WindowMinutes,
    CreatedAt,
    UpdatedAt,
}
