//! Key material Herald creates on first start and keeps: token signing keys, VAPID keys.
//! Kept in the database so every process of a scale-out deployment signs with the same keys.

use sea_orm_migration::{prelude::*, schema::*};

#[derive(DeriveMigrationName)]
pub struct Migration;

#[async_trait::async_trait]
impl MigrationTrait for Migration {
    async fn up(&self, manager: &SchemaManager) -> Result<(), DbErr> {
        manager
            .create_table(
                Table::create()
                    .table(KeyMaterial::Table)
                    .if_not_exists()
                    .col(string_len(KeyMaterial::Id, 64).primary_key())
                    .col(string_len(KeyMaterial::Purpose, 32))
                    .col(string_len(KeyMaterial::Algorithm, 16))
                    .col(blob(KeyMaterial::PrivateDer))
                    .col(blob(KeyMaterial::PublicKey))
                    .col(timestamp_with_time_zone(KeyMaterial::CreatedAt))
                    .col(timestamp_with_time_zone_null(KeyMaterial::RetiredAt))
                    .to_owned(),
            )
            .await?;
        manager
            .create_index(
                Index::create()
                    .name("ix_key_material_purpose")
                    .table(KeyMaterial::Table)
                    .col(KeyMaterial::Purpose)
                    .col(KeyMaterial::CreatedAt)
                    .to_owned(),
            )
            .await
    }

    async fn down(&self, manager: &SchemaManager) -> Result<(), DbErr> {
        manager
            .drop_table(Table::drop().table(KeyMaterial::Table).to_owned())
            .await
    }
}

#[derive(DeriveIden)]
enum KeyMaterial {
    Table,
    Id,
    Purpose,
    Algorithm,
    PrivateDer,
    PublicKey,
    CreatedAt,
    RetiredAt,
}
