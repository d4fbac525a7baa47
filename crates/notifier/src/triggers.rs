//! Automatic alerts: a story that became breaking for a topic (SPEC §5 rules 2 and 3, as
//! recorded by ingestion) becomes one queued alert for that topic's followers.

use crate::config::PushConfig;
use chrono::Utc;
use herald_store::queue::{self, NewQueuedAlert};
use herald_store::{Db, StoreError, articles, stories};

/// Longest lock-screen title; longer headlines are cut at a word.
const MAX_TITLE_CHARS: usize = 120;

/// Longest lock-screen body.
const MAX_BODY_CHARS: usize = 240;

/// Turns pending breaking events into queued alerts; returns how many were queued.
///
/// The alert is queued before the event is marked consumed, so a crash in between repeats
/// the alert rather than losing it; the per-device story receipts keep devices from getting
/// the story twice either way.
pub async fn alert_breaking_stories(db: &Db, config: &PushConfig) -> Result<usize, StoreError> {
    let mut queued = 0;
    for event in stories::pending_breaking_events(db, 50).await? {
        let story = match stories::get(db, event.story_id).await {
            Ok(story) => story,
            Err(StoreError::NotFound) => {
                // Merged away or deleted since: nothing left to announce.
                stories::consume_breaking_event(db, event.id, Utc::now()).await?;
                continue;
            }
            Err(err) => return Err(err),
        };
        let lead = articles::by_story(db, story.id)
            .await?
            .into_iter()
            .filter(|a| a.canonical_url.is_some())
            .max_by_key(|a| a.published_at);
        let Some(lead) = lead else {
            stories::consume_breaking_event(db, event.id, Utc::now()).await?;
            continue;
        };
        let body = match lead.summary.as_deref().filter(|s| !s.trim().is_empty()) {
            Some(summary) => cut(summary, MAX_BODY_CHARS),
            None => format!("{} publishers are reporting this story", story.source_count),
        };
        queue::enqueue(
            db,
            NewQueuedAlert {
                story_id: Some(story.id),
                article_id: Some(lead.id),
                topics: vec![event.topic.clone()],
                title: cut(&story.headline, MAX_TITLE_CHARS),
                body,
                url: lead.canonical_url.clone().unwrap_or_default(),
                image_url: lead.image_url.clone(),
                urgency: "normal".into(),
                ttl_seconds: i32::try_from(config.default_ttl_seconds).unwrap_or(i32::MAX),
                trigger: "story".into(),
                created_by: None,
            },
        )
        .await?;
        stories::consume_breaking_event(db, event.id, Utc::now()).await?;
        tracing::info!(story = %story.id, topic = %event.topic, "breaking story queued as an alert");
        queued += 1;
    }
    Ok(queued)
}

/// `text` cut to at most `max` characters at a word boundary, with an ellipsis when cut.
fn cut(text: &str, max: usize) -> String {
    let text = text.trim();
    if text.chars().count() <= max {
        return text.to_string();
    }
    let head: String = text.chars().take(max.saturating_sub(1)).collect();
    let head = match head.rfind(char::is_whitespace) {
        Some(at) if at > max / 2 => &head[..at],
        _ => head.as_str(),
    };
    format!("{}…", head.trim_end())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn long_text_is_cut_at_a_word() {
        assert_eq!(cut("short", 10), "short");
        let cut_text = cut("Ceasefire agreed after three days of talks in Geneva", 30);
        assert!(
            cut_text.ends_with('…') && cut_text.chars().count() <= 30,
            "{cut_text}"
        );
        assert!(!cut_text.contains("  "));
    }
}
