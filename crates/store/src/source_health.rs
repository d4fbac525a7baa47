//! What each source's entries became: seen, ingested, updated, merged as duplicates, refused
//! (by reason) and given a derived headline, summed over every poll and push.

use crate::StoreError;
use crate::entity::source_health;
use chrono::{DateTime, Utc};
use sea_orm::sea_query::{Alias, Expr, ExprTrait, OnConflict};
use sea_orm::{ActiveValue::Set, DatabaseConnection, EntityTrait};
use std::collections::HashMap;
use uuid::Uuid;

/// Entry counts of one ingested feed body, or a source's totals.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct EntryCounts {
    /// Entries in the feed bodies.
    pub seen: u64,
    /// Entries stored as new articles.
    pub ingested: u64,
    /// Known articles whose text or image changed.
    pub updated: u64,
    /// Entries that were an article already known (this feed's, or another feed's same URL).
    pub duplicates: u64,
    /// Entries refused because they had neither a title (nor text to make one) nor a link.
    pub refused_no_title_or_link: u64,
    /// Entries stored with a headline made from their summary or link.
    pub derived_titles: u64,
    /// Feed bodies that came by WebSub push rather than by a poll.
    pub pushed: u64,
}

/// A source's totals and the last refusal.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct SourceHealth {
    /// The sums.
    pub counts: EntryCounts,
    /// Why the last refused entry was refused, and which it was.
    pub last_refusal: Option<String>,
    /// When the counts last changed.
    pub updated_at: Option<DateTime<Utc>>,
}

fn signed(value: u64) -> i64 {
    i64::try_from(value).unwrap_or(i64::MAX)
}

fn unsigned(value: i64) -> u64 {
    u64::try_from(value).unwrap_or(0)
}

fn to_health(m: source_health::Model) -> SourceHealth {
    SourceHealth {
        counts: EntryCounts {
            seen: unsigned(m.entries_seen),
            ingested: unsigned(m.ingested),
            updated: unsigned(m.updated),
            duplicates: unsigned(m.duplicates),
            refused_no_title_or_link: unsigned(m.refused_no_title_or_link),
            derived_titles: unsigned(m.derived_titles),
            pushed: unsigned(m.pushed),
        },
        last_refusal: m.last_refusal,
        updated_at: Some(m.updated_at),
    }
}

/// Adds `counts` to the source's totals (one statement; concurrent adds do not lose counts);
/// `last_refusal` replaces the stored one when given.
pub async fn add(
    db: &DatabaseConnection,
    source_id: Uuid,
    counts: &EntryCounts,
    last_refusal: Option<&str>,
    now: DateTime<Utc>,
) -> Result<(), StoreError> {
    use source_health::Column as C;
    let refusal: Option<String> = last_refusal.map(|r| r.chars().take(500).collect());
    let model = source_health::ActiveModel {
        source_id: Set(source_id),
        entries_seen: Set(signed(counts.seen)),
        ingested: Set(signed(counts.ingested)),
        updated: Set(signed(counts.updated)),
        duplicates: Set(signed(counts.duplicates)),
        refused_no_title_or_link: Set(signed(counts.refused_no_title_or_link)),
        derived_titles: Set(signed(counts.derived_titles)),
        pushed: Set(signed(counts.pushed)),
        last_refusal: Set(refusal.clone()),
        updated_at: Set(now),
    };
    let excluded = Alias::new("excluded");
    let mut on_conflict = OnConflict::column(C::SourceId);
    for column in [
        C::EntriesSeen,
        C::Ingested,
        C::Updated,
        C::Duplicates,
        C::RefusedNoTitleOrLink,
        C::DerivedTitles,
        C::Pushed,
    ] {
        on_conflict.value(
            column,
            Expr::col((source_health::Entity, column)).add(Expr::col((excluded.clone(), column))),
        );
    }
    on_conflict.update_column(C::UpdatedAt);
    if refusal.is_some() {
        on_conflict.update_column(C::LastRefusal);
    }
    source_health::Entity::insert(model)
        .on_conflict(on_conflict.to_owned())
        .exec_without_returning(db)
        .await?;
    Ok(())
}

/// One source's totals (zero when nothing was ingested yet).
pub async fn get(db: &DatabaseConnection, source_id: Uuid) -> Result<SourceHealth, StoreError> {
    Ok(source_health::Entity::find_by_id(source_id)
        .one(db)
        .await?
        .map(to_health)
        .unwrap_or_default())
}

/// Every source's totals, by source id (sources with nothing counted yet are absent).
pub async fn all(db: &DatabaseConnection) -> Result<HashMap<Uuid, SourceHealth>, StoreError> {
    Ok(source_health::Entity::find()
        .all(db)
        .await?
        .into_iter()
        .map(|m| (m.source_id, to_health(m)))
        .collect())
}
