use sea_orm::entity::prelude::*;

#[derive(Clone, Debug, PartialEq, Eq, DeriveEntityModel)]
#[sea_orm(table_name = "websub_subscriptions")]
pub struct Model {
    #[sea_orm(primary_key, auto_increment = false)]
    pub source_id: Uuid,
    pub hub_url: String,
    pub topic_url: String,
    pub callback_token: String,
    pub secret: String,
    pub state: String,
    pub requested_at: DateTimeUtc,
    pub verified_at: Option<DateTimeUtc>,
    pub lease_expires_at: Option<DateTimeUtc>,
    pub last_delivery_at: Option<DateTimeUtc>,
    pub deliveries: i64,
    pub rejected_deliveries: i64,
    pub last_error: Option<String>,
    pub updated_at: DateTimeUtc,
}

#[derive(Copy, Clone, Debug, EnumIter, DeriveRelation)]
pub enum Relation {}

impl ActiveModelBehavior for ActiveModel {}
