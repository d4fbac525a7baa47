use sea_orm::entity::prelude::*;

#[derive(Clone, Debug, PartialEq, Eq, DeriveEntityModel)]
#[sea_orm(table_name = "sources")]
pub struct Model {
    #[sea_orm(primary_key, auto_increment = false)]
    pub id: Uuid,
    pub name: String,
    pub feed_url: String,
    pub site_url: Option<String>,
    pub topics: Json,
    pub language: Option<String>,
    pub breaking: bool,
    pub poll_interval_seconds: Option<i32>,
    pub etag: Option<String>,
    pub last_modified: Option<String>,
    pub next_fetch_at: DateTimeUtc,
    pub lease_owner: Option<String>,
    pub lease_expires_at: Option<DateTimeUtc>,
    pub last_fetch_at: Option<DateTimeUtc>,
    pub last_status: Option<i32>,
    pub error_count: i32,
    pub last_error: Option<String>,
    pub created_at: DateTimeUtc,
    pub updated_at: DateTimeUtc,
}

#[derive(Copy, Clone, Debug, EnumIter, DeriveRelation)]
pub enum Relation {}

impl ActiveModelBehavior for ActiveModel {}
