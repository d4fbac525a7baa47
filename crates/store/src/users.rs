//! Accounts: readers (anonymous or not), editors and admins, and their sign-in identities.

use crate::entity::{delivery, identity, session, user};
use crate::{Secret, StoreError};
use chrono::{DateTime, Utc};
use sea_orm::sea_query::Expr;
use sea_orm::{
    ActiveModelTrait, ActiveValue::Set, ColumnTrait, ConnectionTrait, DatabaseConnection,
    EntityTrait, QueryFilter,
};
use std::fmt;
use std::str::FromStr;
use uuid::Uuid;

/// What a user may do.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum Role {
    /// Reads, follows topics, comments.
    Reader,
    /// Also sends alerts and manages sources.
    Editor,
    /// Everything.
    Admin,
}

impl Role {
    /// The role's name as stored and sent.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Reader => "reader",
            Self::Editor => "editor",
            Self::Admin => "admin",
        }
    }
}

impl fmt::Display for Role {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

impl FromStr for Role {
    type Err = String;

    fn from_str(s: &str) -> Result<Self, String> {
        match s {
            "reader" => Ok(Self::Reader),
            "editor" => Ok(Self::Editor),
            "admin" => Ok(Self::Admin),
            other => Err(format!(
                "unknown role `{other}`; roles are reader, editor, admin"
            )),
        }
    }
}

/// A user as the rest of Herald sees it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct User {
    /// Stable id; kept when an anonymous reader makes an account.
    pub id: Uuid,
    /// Normalised email; `None` for anonymous readers and some Apple sign-ins.
    pub email: Option<String>,
    /// Name shown with comments.
    pub display_name: Option<String>,
    /// What they may do.
    pub role: Role,
    /// A fresh app install that has not made an account yet.
    pub is_anonymous: bool,
    /// When the account was created.
    pub created_at: DateTime<Utc>,
}

/// A user with the password hash, for login.
#[derive(Debug, Clone)]
pub struct Credentials {
    /// The user.
    pub user: User,
    /// Argon2 PHC string, if the account has a password.
    pub password_hash: Option<Secret<String>>,
}

/// What creating a user needs.
#[derive(Debug, Clone)]
pub struct NewUser {
    /// Normalised email, if any.
    pub email: Option<String>,
    /// Display name, if any.
    pub display_name: Option<String>,
    /// Argon2 PHC string, if any.
    pub password_hash: Option<String>,
    /// Role.
    pub role: Role,
    /// Anonymous reader.
    pub is_anonymous: bool,
}

fn to_user(m: user::Model) -> User {
    User {
        id: m.id,
        email: m.email,
        display_name: m.display_name,
        role: m.role.parse().unwrap_or(Role::Reader),
        is_anonymous: m.is_anonymous,
        created_at: m.created_at,
    }
}

/// Creates a user; an email already taken is a [`StoreError::Conflict`].
pub async fn create(db: &impl ConnectionTrait, new: NewUser) -> Result<User, StoreError> {
    let now = Utc::now();
    let model = user::ActiveModel {
        id: Set(Uuid::now_v7()),
        email: Set(new.email),
        display_name: Set(new.display_name),
        password_hash: Set(new.password_hash),
        role: Set(new.role.as_str().to_string()),
        is_anonymous: Set(new.is_anonymous),
        created_at: Set(now),
        updated_at: Set(now),
    }
    .insert(db)
    .await?;
    Ok(to_user(model))
}

/// The user with this id.
pub async fn by_id(db: &DatabaseConnection, id: Uuid) -> Result<User, StoreError> {
    user::Entity::find_by_id(id)
        .one(db)
        .await?
        .map(to_user)
        .ok_or(StoreError::NotFound)
}

/// The user with this normalised email, with their password hash.
pub async fn credentials_by_email(
    db: &DatabaseConnection,
    email: &str,
) -> Result<Option<Credentials>, StoreError> {
    Ok(user::Entity::find()
        .filter(user::Column::Email.eq(email))
        .one(db)
        .await?
        .map(credentials))
}

/// The user with this id, with their password hash.
pub async fn credentials_by_id(
    db: &DatabaseConnection,
    id: Uuid,
) -> Result<Credentials, StoreError> {
    user::Entity::find_by_id(id)
        .one(db)
        .await?
        .map(credentials)
        .ok_or(StoreError::NotFound)
}

fn credentials(m: user::Model) -> Credentials {
    let password_hash = m.password_hash.clone().map(Secret::new);
    Credentials {
        user: to_user(m),
        password_hash,
    }
}

/// Sets the display name.
pub async fn set_display_name(
    db: &DatabaseConnection,
    id: Uuid,
    display_name: Option<String>,
) -> Result<User, StoreError> {
    let model = user::ActiveModel {
        id: Set(id),
        display_name: Set(display_name),
        updated_at: Set(Utc::now()),
        ..Default::default()
    }
    .update(db)
    .await?;
    Ok(to_user(model))
}

/// Replaces the password hash with a stronger one of the same password, unless the password
/// changed meanwhile (the hash is no longer `old`); true when replaced.
pub async fn upgrade_password_hash(
    db: &DatabaseConnection,
    id: Uuid,
    old: &str,
    new: String,
) -> Result<bool, StoreError> {
    let updated = user::Entity::update_many()
        .col_expr(user::Column::PasswordHash, Expr::value(new))
        .col_expr(user::Column::UpdatedAt, Expr::value(Utc::now()))
        .filter(user::Column::Id.eq(id))
        .filter(user::Column::PasswordHash.eq(old))
        .exec(db)
        .await?;
    Ok(updated.rows_affected == 1)
}

/// Replaces the password hash.
pub async fn set_password_hash(
    db: &DatabaseConnection,
    id: Uuid,
    hash: String,
) -> Result<(), StoreError> {
    user::ActiveModel {
        id: Set(id),
        password_hash: Set(Some(hash)),
        updated_at: Set(Utc::now()),
        ..Default::default()
    }
    .update(db)
    .await?;
    Ok(())
}

/// Changes the role of the account with this email and, in the same transaction, ends every
/// session it has: access tokens carry the role, so none issued under the old one may be used
/// again (each request checks its session), and no refresh token can mint one.
pub async fn set_role_by_email(
    db: &DatabaseConnection,
    email: &str,
    role: Role,
) -> Result<User, StoreError> {
    let txn = crate::begin_write(db).await?;
    let changed = async {
        let found = user::Entity::find()
            .filter(user::Column::Email.eq(email))
            .one(&txn)
            .await?
            .ok_or(StoreError::NotFound)?;
        let model = user::ActiveModel {
            id: Set(found.id),
            role: Set(role.as_str().to_string()),
            updated_at: Set(Utc::now()),
            ..Default::default()
        }
        .update(&txn)
        .await?;
        session::Entity::update_many()
            .col_expr(session::Column::RevokedAt, Expr::value(Utc::now()))
            .col_expr(session::Column::RevokedReason, Expr::value("role_changed"))
            .filter(session::Column::UserId.eq(found.id))
            .filter(session::Column::RevokedAt.is_null())
            .exec(&txn)
            .await?;
        Ok::<_, StoreError>(to_user(model))
    }
    .await;
    match changed {
        Ok(user) => {
            txn.commit().await?;
            Ok(user)
        }
        Err(err) => {
            let _ = txn.rollback().await;
            Err(err)
        }
    }
}

/// Turns an anonymous reader into a full account with an email and password, keeping the id.
/// Only an anonymous user can be upgraded (`Conflict` otherwise, and when the email is taken).
pub async fn upgrade_with_password(
    db: &DatabaseConnection,
    id: Uuid,
    email: String,
    password_hash: String,
) -> Result<User, StoreError> {
    let updated = user::Entity::update_many()
        .col_expr(user::Column::Email, Expr::value(email))
        .col_expr(user::Column::PasswordHash, Expr::value(password_hash))
        .col_expr(user::Column::IsAnonymous, Expr::value(false))
        .col_expr(user::Column::UpdatedAt, Expr::value(Utc::now()))
        .filter(user::Column::Id.eq(id))
        .filter(user::Column::IsAnonymous.eq(true))
        .exec(db)
        .await?;
    if updated.rows_affected == 0 {
        return Err(StoreError::Conflict("the account is not anonymous".into()));
    }
    by_id(db, id).await
}

/// The user signed in with this provider subject, if any.
pub async fn by_identity(
    db: &DatabaseConnection,
    provider: &str,
    subject: &str,
) -> Result<Option<User>, StoreError> {
    let Some(found) = identity::Entity::find()
        .filter(identity::Column::Provider.eq(provider))
        .filter(identity::Column::Subject.eq(subject))
        .one(db)
        .await?
    else {
        return Ok(None);
    };
    Ok(user::Entity::find_by_id(found.user_id)
        .one(db)
        .await?
        .map(to_user))
}

/// Creates a user signed in with a provider, with its identity, in one transaction.
pub async fn create_with_identity(
    db: &DatabaseConnection,
    new: NewUser,
    provider: &str,
    subject: &str,
) -> Result<User, StoreError> {
    let txn = crate::begin_write(db).await?;
    let email = new.email.clone();
    let created = async {
        let created = create(&txn, new).await?;
        insert_identity(&txn, created.id, provider, subject, email).await?;
        Ok::<_, StoreError>(created)
    }
    .await;
    match created {
        Ok(user) => {
            txn.commit().await?;
            Ok(user)
        }
        Err(err) => {
            let _ = txn.rollback().await;
            Err(err)
        }
    }
}

/// Links a provider identity to an anonymous user and makes them a full account.
pub async fn upgrade_with_identity(
    db: &DatabaseConnection,
    id: Uuid,
    provider: &str,
    subject: &str,
    email: Option<String>,
) -> Result<User, StoreError> {
    let txn = crate::begin_write(db).await?;
    let mut update = user::Entity::update_many()
        .col_expr(user::Column::IsAnonymous, Expr::value(false))
        .col_expr(user::Column::UpdatedAt, Expr::value(Utc::now()))
        .filter(user::Column::Id.eq(id))
        .filter(user::Column::IsAnonymous.eq(true));
    if let Some(email) = &email {
        update = update.col_expr(user::Column::Email, Expr::value(email.clone()));
    }
    let linked = async {
        if update.exec(&txn).await?.rows_affected == 0 {
            return Err(StoreError::Conflict("the account is not anonymous".into()));
        }
        insert_identity(&txn, id, provider, subject, email).await
    }
    .await;
    match linked {
        Ok(()) => txn.commit().await?,
        Err(err) => {
            let _ = txn.rollback().await;
            return Err(err);
        }
    }
    by_id(db, id).await
}

async fn insert_identity(
    db: &impl ConnectionTrait,
    user_id: Uuid,
    provider: &str,
    subject: &str,
    email: Option<String>,
) -> Result<(), StoreError> {
    identity::ActiveModel {
        id: Set(Uuid::now_v7()),
        user_id: Set(user_id),
        provider: Set(provider.to_string()),
        subject: Set(subject.to_string()),
        email: Set(email),
        created_at: Set(Utc::now()),
    }
    .insert(db)
    .await?;
    Ok(())
}

/// Deletes the user and, in the same transaction, every row that belongs to them.
/// Tables added later reference users with `ON DELETE CASCADE` (or `SET NULL` where a row,
/// such as a comment, outlives its author), so this one statement reaches them all.
/// Deliveries on PostgreSQL go by trigger instead (the fan-out writes them without locking
/// the user row), so a delivery a notifier recorded while this ran is deleted afterwards.
pub async fn delete(db: &DatabaseConnection, id: Uuid) -> Result<(), StoreError> {
    let txn = crate::begin_write(db).await?;
    match user::Entity::delete_by_id(id).exec(&txn).await {
        Ok(deleted) if deleted.rows_affected == 1 => {
            txn.commit().await?;
            delivery::Entity::delete_many()
                .filter(delivery::Column::UserId.eq(id))
                .exec(db)
                .await?;
            Ok(())
        }
        Ok(_) => {
            let _ = txn.rollback().await;
            Err(StoreError::NotFound)
        }
        Err(err) => {
            let _ = txn.rollback().await;
            Err(err.into())
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::testing::TestDb;

    fn reader(email: Option<&str>) -> NewUser {
        NewUser {
            email: email.map(str::to_string),
            display_name: None,
            password_hash: email.map(|_| "$argon2id$stub".to_string()),
            role: Role::Reader,
            is_anonymous: email.is_none(),
        }
    }

    #[tokio::test]
    async fn emails_are_unique() {
        let test_db = TestDb::new().await;
        let db = test_db.connect().await;
        create(&db, reader(Some("a@example.com"))).await.unwrap();
        let err = create(&db, reader(Some("a@example.com")))
            .await
            .unwrap_err();
        assert!(matches!(err, StoreError::Conflict(_)), "{err:?}");
        // Any number of anonymous users may have no email.
        create(&db, reader(None)).await.unwrap();
        create(&db, reader(None)).await.unwrap();
    }

    #[tokio::test]
    async fn upgrading_keeps_the_id_and_only_works_once() {
        let test_db = TestDb::new().await;
        let db = test_db.connect().await;
        let anon = create(&db, reader(None)).await.unwrap();
        let full = upgrade_with_password(&db, anon.id, "b@example.com".into(), "h".into())
            .await
            .unwrap();
        assert_eq!(full.id, anon.id);
        assert!(!full.is_anonymous);
        let again = upgrade_with_password(&db, anon.id, "c@example.com".into(), "h".into()).await;
        assert!(matches!(again, Err(StoreError::Conflict(_))));
    }

    #[tokio::test]
    async fn identities_find_their_user_and_go_with_it() {
        let test_db = TestDb::new().await;
        let db = test_db.connect().await;
        let user = create_with_identity(&db, reader(None), "google", "sub-1")
            .await
            .unwrap();
        assert_eq!(
            by_identity(&db, "google", "sub-1")
                .await
                .unwrap()
                .unwrap()
                .id,
            user.id
        );
        assert!(by_identity(&db, "apple", "sub-1").await.unwrap().is_none());
        delete(&db, user.id).await.unwrap();
        assert!(by_identity(&db, "google", "sub-1").await.unwrap().is_none());
        assert!(matches!(
            delete(&db, user.id).await,
            Err(StoreError::NotFound)
        ));
    }
}
