use sea_orm::entity::prelude::*;

#[derive(Clone, Debug, PartialEq, Eq, DeriveEntityModel)]
#[sea_orm(table_name = "source_health")]
pub struct Model {
    #[sea_orm(primary_key, auto_increment = false)]
    pub source_id: Uuid,
    pub entries_seen: i64,
    pub ingested: i64,
    pub updated: i64,
    pub duplicates: i64,
    pub refused_no_title_or_link: i64,
    pub derived_titles: i64,
    pub pushed: i64,
    pub last_refusal: Option<String>,
    pub updated_at: DateTimeUtc,
}

#[derive(Copy, Clone, Debug, EnumIter, DeriveRelation)]
pub enum Relation {}

impl ActiveModelBehavior for ActiveModel {}
