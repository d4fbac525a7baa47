//! Sliding-window counters in the database, so every API process sees the same counts.

use crate::StoreError;
use crate::entity::throttle_event;
use chrono::{DateTime, Duration, Utc};
use sea_orm::{
    ActiveValue::Set, ColumnTrait, DatabaseConnection, EntityTrait, PaginatorTrait, QueryFilter,
    QueryOrder,
};

/// How a scope stands within its window.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct WindowCount {
    /// Events in the window.
    pub count: u64,
    /// The oldest of them: the window frees a slot when it ages out.
    pub oldest: Option<DateTime<Utc>>,
}

/// Counts `scope`'s events since `now - window`.
pub async fn count(
    db: &DatabaseConnection,
    scope: &str,
    window: Duration,
    now: DateTime<Utc>,
) -> Result<WindowCount, StoreError> {
    let since = now - window;
    let in_window = throttle_event::Entity::find()
        .filter(throttle_event::Column::Scope.eq(scope))
        .filter(throttle_event::Column::At.gt(since));
    let count = in_window.clone().count(db).await?;
    let oldest = if count == 0 {
        None
    } else {
        in_window
            .order_by_asc(throttle_event::Column::At)
            .one(db)
            .await?
            .map(|e| e.at)
    };
    Ok(WindowCount { count, oldest })
}

/// Records one event for `scope` and forgets this scope's events older than `keep`.
pub async fn record(
    db: &DatabaseConnection,
    scope: &str,
    now: DateTime<Utc>,
    keep: Duration,
) -> Result<(), StoreError> {
    throttle_event::Entity::delete_many()
        .filter(throttle_event::Column::Scope.eq(scope))
        .filter(throttle_event::Column::At.lte(now - keep))
        .exec(db)
        .await?;
    throttle_event::Entity::insert(throttle_event::ActiveModel {
        scope: Set(scope.to_string()),
        at: Set(now),
        ..Default::default()
    })
    .exec(db)
    .await?;
    Ok(())
}

/// Forgets every event of `scope`.
pub async fn clear(db: &DatabaseConnection, scope: &str) -> Result<(), StoreError> {
    throttle_event::Entity::delete_many()
        .filter(throttle_event::Column::Scope.eq(scope))
        .exec(db)
        .await?;
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::testing::TestDb;

    #[tokio::test]
    async fn counts_slide_with_the_window() {
        let test_db = TestDb::new().await;
        let db = test_db.connect().await;
        // Databases keep microseconds.
        let t0 = chrono::SubsecRound::trunc_subsecs(Utc::now(), 6);
        let window = Duration::seconds(60);
        for i in 0..3 {
            record(&db, "login:a", t0 + Duration::seconds(i * 20), window)
                .await
                .unwrap();
        }
        record(&db, "login:b", t0, window).await.unwrap();
        let now = t0 + Duration::seconds(45);
        let c = count(&db, "login:a", window, now).await.unwrap();
        assert_eq!(c.count, 3);
        assert_eq!(c.oldest, Some(t0));
        let c = count(&db, "login:a", window, t0 + Duration::seconds(70))
            .await
            .unwrap();
        assert_eq!(c.count, 2);
        clear(&db, "login:a").await.unwrap();
        assert_eq!(count(&db, "login:a", window, now).await.unwrap().count, 0);
        assert_eq!(count(&db, "login:b", window, now).await.unwrap().count, 1);
    }
}
