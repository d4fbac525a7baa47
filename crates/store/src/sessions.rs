//! Login sessions and their chains of single-use refresh tokens, stored as hashes only.

use crate::StoreError;
use crate::entity::{refresh_token, session};
use chrono::{DateTime, Utc};
use sea_orm::sea_query::Expr;
use sea_orm::{
    ActiveModelTrait, ActiveValue::Set, ColumnTrait, ConnectionTrait, DatabaseConnection,
    DatabaseTransaction, EntityTrait, QueryFilter, QueryOrder,
};
use uuid::Uuid;

/// A session as a reader sees it in "devices logged in".
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Session {
    /// Session id (the access token's `sid`).
    pub id: Uuid,
    /// Whose session.
    pub user_id: Uuid,
    /// The client's User-Agent at login.
    pub user_agent: Option<String>,
    /// The client's address at login.
    pub ip: Option<String>,
    /// Login time.
    pub created_at: DateTime<Utc>,
    /// Last refresh.
    pub last_used_at: DateTime<Utc>,
    /// When the session lapses unless refreshed (sliding).
    pub expires_at: DateTime<Utc>,
    /// When the session ends however often it is refreshed.
    pub absolute_expires_at: DateTime<Utc>,
}

fn to_session(m: session::Model) -> Session {
    Session {
        id: m.id,
        user_id: m.user_id,
        user_agent: m.user_agent,
        ip: m.ip,
        created_at: m.created_at,
        last_used_at: m.last_used_at,
        expires_at: m.expires_at,
        absolute_expires_at: m.absolute_expires_at,
    }
}

/// What starting a session needs.
#[derive(Debug, Clone)]
pub struct NewSession {
    /// Whose.
    pub user_id: Uuid,
    /// The client's User-Agent.
    pub user_agent: Option<String>,
    /// The client's address.
    pub ip: Option<String>,
    /// Hash of the first refresh token.
    pub refresh_hash: String,
    /// Sliding expiry.
    pub expires_at: DateTime<Utc>,
    /// Absolute expiry.
    pub absolute_expires_at: DateTime<Utc>,
}

/// Starts a session with its first refresh token.
pub async fn start(db: &DatabaseConnection, new: NewSession) -> Result<Session, StoreError> {
    let now = Utc::now();
    let txn = crate::begin_write(db).await?;
    let started = async {
        let created = session::ActiveModel {
            id: Set(Uuid::now_v7()),
            user_id: Set(new.user_id),
            user_agent: Set(new.user_agent.map(|ua| ua.chars().take(512).collect())),
            ip: Set(new.ip),
            created_at: Set(now),
            last_used_at: Set(now),
            expires_at: Set(new.expires_at),
            absolute_expires_at: Set(new.absolute_expires_at),
            revoked_at: Set(None),
            revoked_reason: Set(None),
        }
        .insert(&txn)
        .await?;
        insert_token(&txn, created.id, new.refresh_hash, None, now).await?;
        Ok::<_, StoreError>(created)
    }
    .await;
    match started {
        Ok(created) => {
            txn.commit().await?;
            Ok(to_session(created))
        }
        Err(err) => {
            let _ = txn.rollback().await;
            Err(err)
        }
    }
}

async fn insert_token(
    db: &impl ConnectionTrait,
    session_id: Uuid,
    hash: String,
    parent_id: Option<Uuid>,
    now: DateTime<Utc>,
) -> Result<(), StoreError> {
    refresh_token::ActiveModel {
        id: Set(Uuid::now_v7()),
        session_id: Set(session_id),
        token_hash: Set(hash),
        parent_id: Set(parent_id),
        created_at: Set(now),
        spent_at: Set(None),
    }
    .insert(db)
    .await?;
    Ok(())
}

/// How refreshing went.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Rotation {
    /// The presented token is spent; the successor's hash was stored.
    Rotated(Session),
    /// No such token, or its session ended or expired.
    Invalid,
    /// A spent token was presented outside the grace window: the session is now revoked.
    ReuseDetected,
}

/// The rules of one rotation.
#[derive(Debug, Clone)]
pub struct RotateRequest {
    /// Hash of the token the client presented.
    pub presented_hash: String,
    /// Hash of the successor to store.
    pub successor_hash: String,
    /// Now.
    pub now: DateTime<Utc>,
    /// A spent token presented again within this many seconds of being spent (a client that
    /// lost the response) gets a new successor instead of revoking the session.
    pub grace_seconds: i64,
    /// New sliding expiry, capped at the session's absolute expiry by the caller.
    pub expires_at: DateTime<Utc>,
}

/// Spends a refresh token and stores its successor. Reuse of a spent token outside the grace
/// window revokes the session. Within the window the client gets a replacement successor and
/// the unused one it lost is invalidated (only hashes are kept, so the lost one cannot be
/// re-sent); if that successor was already used, it is reuse after all.
pub async fn rotate(db: &DatabaseConnection, req: RotateRequest) -> Result<Rotation, StoreError> {
    // Commit on every outcome (a detected reuse must stay revoked); roll back only on errors.
    let txn = crate::begin_write(db).await?;
    match rotate_in(&txn, req).await {
        Ok(outcome) => {
            txn.commit().await?;
            Ok(outcome)
        }
        Err(err) => {
            let _ = txn.rollback().await;
            Err(err)
        }
    }
}

async fn rotate_in(txn: &DatabaseTransaction, req: RotateRequest) -> Result<Rotation, StoreError> {
    let Some(token) = refresh_token::Entity::find()
        .filter(refresh_token::Column::TokenHash.eq(&req.presented_hash))
        .one(txn)
        .await?
    else {
        return Ok(Rotation::Invalid);
    };
    let Some(found) = session::Entity::find_by_id(token.session_id)
        .one(txn)
        .await?
    else {
        return Ok(Rotation::Invalid);
    };
    if found.revoked_at.is_some()
        || found.expires_at <= req.now
        || found.absolute_expires_at <= req.now
    {
        return Ok(Rotation::Invalid);
    }

    if let Some(spent_at) = token.spent_at {
        let within_grace = (req.now - spent_at).num_seconds() < req.grace_seconds;
        // Invalidate the unused successor the client lost; if it was used, this is reuse.
        let successor_unused = refresh_token::Entity::update_many()
            .col_expr(refresh_token::Column::SpentAt, Expr::value(req.now))
            .filter(refresh_token::Column::ParentId.eq(token.id))
            .filter(refresh_token::Column::SpentAt.is_null())
            .exec(txn)
            .await?
            .rows_affected
            > 0;
        if !(within_grace && successor_unused) {
            revoke_in(txn, found.id, req.now, "refresh_reuse").await?;
            return Ok(Rotation::ReuseDetected);
        }
    } else {
        // Spend it; a concurrent rotation of the same token loses here.
        let spent = refresh_token::Entity::update_many()
            .col_expr(refresh_token::Column::SpentAt, Expr::value(req.now))
            .filter(refresh_token::Column::Id.eq(token.id))
            .filter(refresh_token::Column::SpentAt.is_null())
            .exec(txn)
            .await?;
        if spent.rows_affected == 0 {
            return Ok(Rotation::Invalid);
        }
    }
    insert_token(txn, found.id, req.successor_hash, Some(token.id), req.now).await?;
    let updated = session::ActiveModel {
        id: Set(found.id),
        last_used_at: Set(req.now),
        expires_at: Set(req.expires_at.min(found.absolute_expires_at)),
        ..Default::default()
    }
    .update(txn)
    .await?;
    Ok(Rotation::Rotated(to_session(updated)))
}

async fn revoke_in(
    db: &impl ConnectionTrait,
    session_id: Uuid,
    now: DateTime<Utc>,
    reason: &str,
) -> Result<bool, StoreError> {
    let result = session::Entity::update_many()
        .col_expr(session::Column::RevokedAt, Expr::value(now))
        .col_expr(session::Column::RevokedReason, Expr::value(reason))
        .filter(session::Column::Id.eq(session_id))
        .filter(session::Column::RevokedAt.is_null())
        .exec(db)
        .await?;
    Ok(result.rows_affected > 0)
}

/// The session if it is live (not revoked, not expired).
pub async fn live(
    db: &DatabaseConnection,
    session_id: Uuid,
    now: DateTime<Utc>,
) -> Result<Option<Session>, StoreError> {
    Ok(session::Entity::find_by_id(session_id)
        .filter(session::Column::RevokedAt.is_null())
        .filter(session::Column::ExpiresAt.gt(now))
        .filter(session::Column::AbsoluteExpiresAt.gt(now))
        .one(db)
        .await?
        .map(to_session))
}

/// The user's live sessions, most recently used first.
pub async fn list_live(
    db: &DatabaseConnection,
    user_id: Uuid,
    now: DateTime<Utc>,
) -> Result<Vec<Session>, StoreError> {
    Ok(session::Entity::find()
        .filter(session::Column::UserId.eq(user_id))
        .filter(session::Column::RevokedAt.is_null())
        .filter(session::Column::ExpiresAt.gt(now))
        .filter(session::Column::AbsoluteExpiresAt.gt(now))
        .order_by_desc(session::Column::LastUsedAt)
        .order_by_desc(session::Column::Id)
        .all(db)
        .await?
        .into_iter()
        .map(to_session)
        .collect())
}

/// Ends one of the user's sessions; `NotFound` when it is not theirs or already ended.
pub async fn revoke(
    db: &DatabaseConnection,
    user_id: Uuid,
    session_id: Uuid,
    reason: &str,
) -> Result<(), StoreError> {
    let result = session::Entity::update_many()
        .col_expr(session::Column::RevokedAt, Expr::value(Utc::now()))
        .col_expr(session::Column::RevokedReason, Expr::value(reason))
        .filter(session::Column::Id.eq(session_id))
        .filter(session::Column::UserId.eq(user_id))
        .filter(session::Column::RevokedAt.is_null())
        .exec(db)
        .await?;
    if result.rows_affected == 0 {
        return Err(StoreError::NotFound);
    }
    Ok(())
}

/// Ends every session of the user except `keep`; returns how many ended.
pub async fn revoke_all_except(
    db: &DatabaseConnection,
    user_id: Uuid,
    keep: Option<Uuid>,
    reason: &str,
) -> Result<u64, StoreError> {
    let mut update = session::Entity::update_many()
        .col_expr(session::Column::RevokedAt, Expr::value(Utc::now()))
        .col_expr(session::Column::RevokedReason, Expr::value(reason))
        .filter(session::Column::UserId.eq(user_id))
        .filter(session::Column::RevokedAt.is_null());
    if let Some(keep) = keep {
        update = update.filter(session::Column::Id.ne(keep));
    }
    Ok(update.exec(db).await?.rows_affected)
}

/// The session a refresh token belongs to, if the token exists.
pub async fn of_refresh_token(
    db: &DatabaseConnection,
    hash: &str,
) -> Result<Option<Uuid>, StoreError> {
    Ok(refresh_token::Entity::find()
        .filter(refresh_token::Column::TokenHash.eq(hash))
        .one(db)
        .await?
        .map(|t| t.session_id))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::testing::TestDb;
    use crate::users::{self, NewUser, Role};
    use chrono::Duration;

    async fn setup() -> (TestDb, DatabaseConnection, Session) {
        let test_db = TestDb::new().await;
        let db = test_db.connect().await;
        let user = users::create(
            &db,
            NewUser {
                email: None,
                display_name: None,
                password_hash: None,
                role: Role::Reader,
                is_anonymous: true,
            },
        )
        .await
        .unwrap();
        let now = Utc::now();
        let session = start(
            &db,
            NewSession {
                user_id: user.id,
                user_agent: Some("test".into()),
                ip: None,
                refresh_hash: "h0".into(),
                expires_at: now + Duration::days(60),
                absolute_expires_at: now + Duration::days(365),
            },
        )
        .await
        .unwrap();
        (test_db, db, session)
    }

    fn rotate_req(
        presented: &str,
        successor: &str,
        now: DateTime<Utc>,
        grace: i64,
    ) -> RotateRequest {
        RotateRequest {
            presented_hash: presented.into(),
            successor_hash: successor.into(),
            now,
            grace_seconds: grace,
            expires_at: now + Duration::days(60),
        }
    }

    #[tokio::test]
    async fn tokens_rotate_along_a_chain() {
        let (_t, db, session) = setup().await;
        let now = Utc::now();
        assert!(
            matches!(rotate(&db, rotate_req("h0", "h1", now, 10)).await.unwrap(), Rotation::Rotated(s) if s.id == session.id)
        );
        assert!(matches!(
            rotate(&db, rotate_req("h1", "h2", now, 10)).await.unwrap(),
            Rotation::Rotated(_)
        ));
        assert_eq!(
            rotate(&db, rotate_req("nope", "x", now, 10)).await.unwrap(),
            Rotation::Invalid
        );
    }

    #[tokio::test]
    async fn reuse_after_the_grace_window_revokes_the_session() {
        let (_t, db, session) = setup().await;
        let now = Utc::now();
        rotate(&db, rotate_req("h0", "h1", now, 10)).await.unwrap();
        let later = now + Duration::seconds(30);
        assert_eq!(
            rotate(&db, rotate_req("h0", "hx", later, 10))
                .await
                .unwrap(),
            Rotation::ReuseDetected
        );
        assert!(live(&db, session.id, later).await.unwrap().is_none());
        assert_eq!(
            rotate(&db, rotate_req("h1", "h2", later, 10))
                .await
                .unwrap(),
            Rotation::Invalid
        );
    }

    #[tokio::test]
    async fn a_lost_response_within_grace_gets_a_replacement() {
        let (_t, db, session) = setup().await;
        let now = Utc::now();
        rotate(&db, rotate_req("h0", "h1", now, 10)).await.unwrap();
        let retry = rotate(&db, rotate_req("h0", "h1b", now + Duration::seconds(2), 10))
            .await
            .unwrap();
        assert!(matches!(retry, Rotation::Rotated(_)));
        // The lost successor no longer works; the replacement does, and the session lives.
        let later = now + Duration::seconds(3);
        assert!(matches!(
            rotate(&db, rotate_req("h1b", "h2", later, 10))
                .await
                .unwrap(),
            Rotation::Rotated(_)
        ));
        assert!(live(&db, session.id, later).await.unwrap().is_some());
    }

    #[tokio::test]
    async fn reuse_after_the_chain_moved_on_is_reuse_even_within_grace() {
        let (_t, db, session) = setup().await;
        let now = Utc::now();
        rotate(&db, rotate_req("h0", "h1", now, 10)).await.unwrap();
        rotate(&db, rotate_req("h1", "h2", now, 10)).await.unwrap();
        assert_eq!(
            rotate(&db, rotate_req("h0", "hx", now, 10)).await.unwrap(),
            Rotation::ReuseDetected
        );
        assert!(live(&db, session.id, now).await.unwrap().is_none());
    }

    #[tokio::test]
    async fn revoking_ends_sessions() {
        let (_t, db, session) = setup().await;
        let now = Utc::now();
        assert_eq!(list_live(&db, session.user_id, now).await.unwrap().len(), 1);
        assert!(matches!(
            revoke(&db, Uuid::now_v7(), session.id, "test").await,
            Err(StoreError::NotFound)
        ));
        revoke(&db, session.user_id, session.id, "logout")
            .await
            .unwrap();
        assert!(
            list_live(&db, session.user_id, now)
                .await
                .unwrap()
                .is_empty()
        );
        assert_eq!(
            rotate(&db, rotate_req("h0", "h1", now, 10)).await.unwrap(),
            Rotation::Invalid
        );
    }
}
