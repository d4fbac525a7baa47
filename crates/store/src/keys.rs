//! Key material created on first start and kept: token signing keys, VAPID keys.

use crate::entity::key_material;
use crate::{Secret, StoreError};
use chrono::{DateTime, Utc};
use sea_orm::sea_query::Expr;
use sea_orm::{
    ActiveValue::Set, ColumnTrait, DatabaseConnection, EntityTrait, QueryFilter, QueryOrder,
};

/// A key pair as stored: private part as DER (PKCS#8), public part in its wire form.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct StoredKey {
    /// Key id (`kid`), unique across purposes.
    pub id: String,
    /// What the key is for, e.g. `access-token` or `vapid`.
    pub purpose: String,
    /// Algorithm name, e.g. `ES256`.
    pub algorithm: String,
    /// PKCS#8 DER of the private key.
    pub private_der: Secret<Vec<u8>>,
    /// Public key bytes (uncompressed point for P-256).
    pub public_key: Vec<u8>,
    /// When it was created.
    pub created_at: DateTime<Utc>,
}

impl From<key_material::Model> for StoredKey {
    fn from(m: key_material::Model) -> Self {
        Self {
            id: m.id,
            purpose: m.purpose,
            algorithm: m.algorithm,
            private_der: Secret::new(m.private_der),
            public_key: m.public_key,
            created_at: m.created_at,
        }
    }
}

/// Keys of one purpose that are not retired, oldest first.
pub async fn active(db: &DatabaseConnection, purpose: &str) -> Result<Vec<StoredKey>, StoreError> {
    let rows = key_material::Entity::find()
        .filter(key_material::Column::Purpose.eq(purpose))
        .filter(key_material::Column::RetiredAt.is_null())
        .order_by_asc(key_material::Column::CreatedAt)
        .order_by_asc(key_material::Column::Id)
        .all(db)
        .await?;
    Ok(rows.into_iter().map(StoredKey::from).collect())
}

/// Every stored key, retired ones included, oldest first: what re-encrypting at rest goes over.
pub async fn all(db: &DatabaseConnection) -> Result<Vec<StoredKey>, StoreError> {
    let rows = key_material::Entity::find()
        .order_by_asc(key_material::Column::CreatedAt)
        .order_by_asc(key_material::Column::Id)
        .all(db)
        .await?;
    Ok(rows.into_iter().map(StoredKey::from).collect())
}

/// Replaces the stored private part of key `id` (re-encrypted), unless another process did
/// so first (it no longer reads `old`); true when this call replaced it.
pub async fn replace_private(
    db: &DatabaseConnection,
    id: &str,
    old: &[u8],
    new: Vec<u8>,
) -> Result<bool, StoreError> {
    let updated = key_material::Entity::update_many()
        .col_expr(key_material::Column::PrivateDer, Expr::value(new))
        .filter(key_material::Column::Id.eq(id))
        .filter(key_material::Column::PrivateDer.eq(old.to_vec()))
        .exec(db)
        .await?;
    Ok(updated.rows_affected == 1)
}

/// Stores a new key.
pub async fn insert(db: &DatabaseConnection, key: &StoredKey) -> Result<(), StoreError> {
    key_material::Entity::insert(key_material::ActiveModel {
        id: Set(key.id.clone()),
        purpose: Set(key.purpose.clone()),
        algorithm: Set(key.algorithm.clone()),
        private_der: Set(key.private_der.expose().clone()),
        public_key: Set(key.public_key.clone()),
        created_at: Set(key.created_at),
        retired_at: Set(None),
    })
    .exec(db)
    .await?;
    Ok(())
}

/// The oldest active key of `purpose`, creating one with `generate` when there is none.
/// Several processes starting at once may each insert one; all then agree on the oldest.
pub async fn load_or_create<E>(
    db: &DatabaseConnection,
    purpose: &str,
    generate: impl FnOnce() -> Result<StoredKey, E>,
) -> Result<StoredKey, LoadOrCreateError<E>> {
    if let Some(first) = active(db, purpose).await?.into_iter().next() {
        return Ok(first);
    }
    let key = generate().map_err(LoadOrCreateError::Generate)?;
    insert(db, &key).await?;
    active(db, purpose)
        .await?
        .into_iter()
        .next()
        .ok_or(LoadOrCreateError::Store(StoreError::NotFound))
}

/// Failure of [`load_or_create`]: the store, or the caller's key generator.
#[derive(Debug, thiserror::Error)]
pub enum LoadOrCreateError<E> {
    /// The database failed.
    #[error(transparent)]
    Store(#[from] StoreError),
    /// The key generator failed.
    #[error("key generation failed: {0:?}")]
    Generate(E),
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::testing::TestDb;

    fn key(id: &str, at: i64) -> StoredKey {
        StoredKey {
            id: id.into(),
            purpose: "vapid".into(),
            algorithm: "ES256".into(),
            private_der: Secret::new(vec![1, 2, 3]),
            public_key: vec![4; 65],
            created_at: DateTime::from_timestamp(at, 0).unwrap_or_default(),
        }
    }

    #[tokio::test]
    async fn load_or_create_creates_once_and_keeps_the_oldest() {
        let test_db = TestDb::new().await;
        let db = test_db.connect().await;
        let first = load_or_create::<()>(&db, "vapid", || Ok(key("a", 100)))
            .await
            .unwrap();
        assert_eq!(first.id, "a");
        let again = load_or_create::<()>(&db, "vapid", || panic!("must not generate twice"))
            .await
            .unwrap();
        assert_eq!(again, first);
        // A racing process that inserted a later key does not change which one is used.
        insert(&db, &key("b", 200)).await.unwrap();
        assert_eq!(active(&db, "vapid").await.unwrap().len(), 2);
        let chosen = load_or_create::<()>(&db, "vapid", || Ok(key("c", 300)))
            .await
            .unwrap();
        assert_eq!(chosen.id, "a");
        assert!(format!("{chosen:?}").contains("[redacted]"));
    }

    #[tokio::test]
    async fn duplicate_ids_are_conflicts() {
        let test_db = TestDb::new().await;
        let db = test_db.connect().await;
        insert(&db, &key("same", 1)).await.unwrap();
        let err = insert(&db, &key("same", 2)).await.unwrap_err();
        assert!(matches!(err, StoreError::Conflict(_)), "{err:?}");
    }

    #[tokio::test]
    async fn replacing_the_private_part_needs_the_old_one() {
        let test_db = TestDb::new().await;
        let db = test_db.connect().await;
        insert(&db, &key("k", 1)).await.unwrap();
        assert!(!replace_private(&db, "k", &[9, 9], vec![7]).await.unwrap());
        assert!(
            replace_private(&db, "k", &[1, 2, 3], vec![7, 7])
                .await
                .unwrap()
        );
        let stored = all(&db).await.unwrap();
        assert_eq!(stored.len(), 1);
        assert_eq!(stored[0].private_der.expose(), &vec![7, 7]);
        assert!(
            !replace_private(&db, "k", &[1, 2, 3], vec![8])
                .await
                .unwrap()
        );
    }
}
