use sea_orm::entity::prelude::*;

#[derive(Clone, Debug, PartialEq, Eq, DeriveEntityModel)]
#[sea_orm(table_name = "alert_versions")]
pub struct Model {
    #[sea_orm(primary_key, auto_increment = false)]
    pub alert_id: Uuid,
    #[sea_orm(primary_key, auto_increment = false)]
    pub version: i32,
    pub kind: String,
    pub title: String,
    pub body: String,
    pub url: String,
    pub image_url: Option<String>,
    pub silent: bool,
    pub created_by: Option<Uuid>,
    pub created_at: DateTimeUtc,
    pub replaced: i32,
    pub replace_failed: i32,
    pub held_quiet_hours: i32,
}

#[derive(Copy, Clone, Debug, EnumIter, DeriveRelation)]
pub enum Relation {}

impl ActiveModelBehavior for ActiveModel {}
