//! Sliding-window counters in the database, so every API process sees the same counts.

use crate::StoreError;
use crate::entity::throttle_event;
use chrono::{DateTime, Duration, Utc};
use sea_orm::{
    ActiveValue::Set, ColumnTrait, ConnectionTrait, DatabaseConnection, DbBackend, EntityTrait,
    PaginatorTrait, QueryFilter, QueryOrder, Statement,
};

/// How a scope stands within its window.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct WindowCount {
    /// Events in the window.
    pub count: u64,
    /// The oldest of them: the window frees a slot when it ages out.
    pub oldest: Option<DateTime<Utc>>,
}

/// One limit to take a slot of: at most `limit` events of `scope` within `window`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Limit {
    /// What is counted, e.g. `login:account:reader@example.com`.
    pub scope: String,
    /// Events allowed in the window.
    pub limit: u32,
    /// The sliding window.
    pub window: Duration,
}

/// Slots taken by [`take`]; give them back with [`refund`] when the attempt should not count.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Taken(Vec<i64>);

/// Takes one slot of every limit at once, or none: when any limit is full, nothing is recorded
/// and the answer is how many seconds until that limit frees a slot. Atomic under parallel
/// requests from any number of processes: the count and the insert are one transaction,
/// serialised per scope (an advisory lock on PostgreSQL, the write lock on SQLite), so a
/// burst of parallel attempts cannot all pass a count taken before any of them was recorded.
pub async fn take(
    db: &DatabaseConnection,
    limits: &[Limit],
    now: DateTime<Utc>,
) -> Result<Result<Taken, u64>, StoreError> {
    let backend = db.get_database_backend();
    let txn = crate::begin_write(db).await?;
    let result = async {
        if backend == DbBackend::Postgres {
            let mut scopes: Vec<&str> = limits.iter().map(|l| l.scope.as_str()).collect();
            scopes.sort_unstable();
            scopes.dedup();
            for scope in scopes {
                txn.execute_raw(Statement::from_sql_and_values(
                    backend,
                    "SELECT pg_advisory_xact_lock(hashtextextended($1, 7))",
                    [scope.into()],
                ))
                .await?;
            }
        }
        let mut wait: Option<u64> = None;
        for limit in limits {
            let since = now - limit.window;
            let in_window = throttle_event::Entity::find()
                .filter(throttle_event::Column::Scope.eq(limit.scope.as_str()))
                .filter(throttle_event::Column::At.gt(since));
            if in_window.clone().count(&txn).await? < u64::from(limit.limit) {
                continue;
            }
            let oldest = in_window
                .order_by_asc(throttle_event::Column::At)
                .one(&txn)
                .await?
                .map_or(now, |e| e.at);
            let seconds =
                u64::try_from((oldest + limit.window - now).num_seconds().max(1)).unwrap_or(1);
            wait = Some(wait.map_or(seconds, |w| w.max(seconds)));
        }
        if let Some(seconds) = wait {
            return Ok(Err(seconds));
        }
        let mut taken = Vec::with_capacity(limits.len());
        for limit in limits {
            throttle_event::Entity::delete_many()
                .filter(throttle_event::Column::Scope.eq(limit.scope.as_str()))
                .filter(throttle_event::Column::At.lte(now - limit.window))
                .exec(&txn)
                .await?;
            let inserted = throttle_event::Entity::insert(throttle_event::ActiveModel {
                scope: Set(limit.scope.clone()),
                at: Set(now),
                ..Default::default()
            })
            .exec(&txn)
            .await?;
            taken.push(inserted.last_insert_id);
        }
        Ok(Ok(Taken(taken)))
    }
    .await;
    match result {
        Ok(value) => {
            txn.commit().await?;
            Ok(value)
        }
        Err(err) => {
            let _ = txn.rollback().await;
            Err(err)
        }
    }
}

/// Gives back slots taken by [`take`] (an attempt that succeeded, say).
pub async fn refund(db: &DatabaseConnection, taken: Taken) -> Result<(), StoreError> {
    if taken.0.is_empty() {
        return Ok(());
    }
    throttle_event::Entity::delete_many()
        .filter(throttle_event::Column::Id.is_in(taken.0))
        .exec(db)
        .await?;
    Ok(())
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
    async fn parallel_takes_never_pass_the_limit_and_refunds_free_slots() {
        let test = TestDb::new().await;
        let db = test.connect().await;
        let limits = vec![Limit {
            scope: "login:pair:x".into(),
            limit: 5,
            window: Duration::minutes(15),
        }];
        let now = Utc::now();
        let mut tasks = tokio::task::JoinSet::new();
        for _ in 0..40 {
            let (db, limits) = (db.clone(), limits.clone());
            tasks.spawn(async move { take(&db, &limits, now).await });
        }
        let mut passed = Vec::new();
        let mut refused = 0;
        while let Some(joined) = tasks.join_next().await {
            match joined.unwrap().unwrap() {
                Ok(taken) => passed.push(taken),
                Err(wait) => {
                    assert!(wait >= 1);
                    refused += 1;
                }
            }
        }
        assert_eq!((passed.len(), refused), (5, 35));
        refund(&db, passed.pop().unwrap()).await.unwrap();
        assert!(take(&db, &limits, now).await.unwrap().is_ok());
        assert!(take(&db, &limits, now).await.unwrap().is_err());
    }

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
