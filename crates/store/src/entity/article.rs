use sea_orm::entity::prelude::*;

#[derive(Clone, Debug, PartialEq, Eq, DeriveEntityModel)]
#[sea_orm(table_name = "articles")]
pub struct Model {
    #[sea_orm(primary_key, auto_increment = false)]
    pub id: Uuid,
    pub source_id: Uuid,
    pub dedupe_key: String,
    pub canonical_url: Option<String>,
    pub title: String,
    pub title_derived: bool,
    pub summary: Option<String>,
    pub content_html: Option<String>,
    pub image_url: Option<String>,
    pub author: Option<String>,
    pub language: Option<String>,
    pub topics: Json,
    pub story_id: Option<Uuid>,
    pub published_at: DateTimeUtc,
    pub fetched_at: DateTimeUtc,
    pub updated_at: DateTimeUtc,
}

#[derive(Copy, Clone, Debug, EnumIter, DeriveRelation)]
pub enum Relation {}

impl ActiveModelBehavior for ActiveModel {}
