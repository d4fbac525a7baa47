//! Whether an article's headline was made by Herald (the feed gave the entry no title, so it
//! came from the summary's first sentence, else the link), so readers can be told.

use sea_orm_migration::{prelude::*, schema::*};

#[derive(DeriveMigrationName)]
pub struct Migration;

#[async_trait::async_trait]
impl MigrationTrait for Migration {
    async fn up(&self, manager: &SchemaManager) -> Result<(), DbErr> {
        manager
            .alter_table(
                Table::alter()
                    .table(Articles::Table)
                    .add_column(boolean(Articles::TitleDerived).default(false))
                    .to_owned(),
            )
            .await
    }

    async fn down(&self, manager: &SchemaManager) -> Result<(), DbErr> {
        manager
            .alter_table(
                Table::alter()
                    .table(Articles::Table)
                    .drop_column(Articles::TitleDerived)
                    .to_owned(),
            )
            .await
    }
}

#[derive(DeriveIden)]
enum Articles {
    Table,
    TitleDerived,
}
