use sea_orm::entity::prelude::*;

#[derive(Clone, Debug, PartialEq, Eq, DeriveEntityModel)]
#[sea_orm(table_name = "alerts")]
pub struct Model {
    #[sea_orm(primary_key, auto_increment = false)]
    pub id: Uuid,
    pub story_id: Option<Uuid>,
    pub article_id: Option<Uuid>,
    pub topics: Json,
    pub title: String,
    pub body: String,
    pub url: String,
    pub image_url: Option<String>,
    pub urgency: String,
    pub ttl_seconds: i32,
    pub state: String,
    pub trigger: String,
    pub created_by: Option<Uuid>,
    pub created_at: DateTimeUtc,
    pub finished_at: Option<DateTimeUtc>,
    pub version: i32,
    pub silent: bool,
    pub send_at: Option<DateTimeUtc>,
    pub local_time: Option<String>,
    pub updated_at: Option<DateTimeUtc>,
    pub retracted_at: Option<DateTimeUtc>,
}

#[derive(Copy, Clone, Debug, EnumIter, DeriveRelation)]
pub enum Relation {}

impl ActiveModelBehavior for ActiveModel {}
