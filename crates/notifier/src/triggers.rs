//! Automatic alerts: a story that became breaking for a topic (SPEC §5 rules 2 and 3, as
//! recorded by ingestion) becomes one queued alert for that topic's followers, composed by
//! [`crate::draft`] like an editor's.

use crate::config::PushConfig;
use crate::draft::{AlertDraft, AlertRequest, DraftError, Origin};
use chrono::Utc;
use herald_store::{Db, StoreError, stories};

/// Turns pending breaking events into queued alerts; returns how many were queued.
///
/// The alert is queued before the event is marked consumed, so a crash in between repeats
/// the alert rather than losing it; the per-device story receipts keep devices from getting
/// the story twice either way.
pub async fn alert_breaking_stories(db: &Db, config: &PushConfig) -> Result<usize, StoreError> {
    let mut queued = 0;
    for event in stories::pending_breaking_events(db, 50).await? {
        let request = AlertRequest {
            story_id: Some(event.story_id),
            topics: Some(vec![event.topic.clone()]),
            ..AlertRequest::default()
        };
        let mut draft = match AlertDraft::compose(db, config, request, Origin::Story).await {
            Ok(draft) => draft,
            Err(DraftError::Store(err)) => return Err(err),
            Err(why) => {
                // Merged away or deleted since, or no article with a link yet: nothing to
                // announce.
                tracing::info!(story = %event.story_id, reason = %why, "breaking story not alerted");
                stories::consume_breaking_event(db, event.id, Utc::now()).await?;
                continue;
            }
        };
        if draft.body.is_empty() {
            let story = stories::get(db, event.story_id).await?;
            draft.body = format!("{} publishers are reporting this story", story.source_count);
        }
        draft.enqueue(db).await?;
        stories::consume_breaking_event(db, event.id, Utc::now()).await?;
        tracing::info!(story = %event.story_id, topic = %event.topic, "breaking story queued as an alert");
        queued += 1;
    }
    Ok(queued)
}
