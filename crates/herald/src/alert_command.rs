//! `herald alert send`: an alert from the command line, composed by the same rules as the
//! API's ([`herald_notifier::draft`]), queued for a running notifier, with its progress.

use std::io::Write as _;
use std::time::Duration;

use anyhow::Context as _;
use herald_notifier::draft::{AlertDraft, AlertRequest, DraftError, Origin};
use herald_store::queue::{self, AlertState};

use crate::config::Config;

/// Queues (or schedules) the alert and, with `wait`, prints its progress until it ends.
pub async fn send(config: &Config, request: AlertRequest, wait: bool) -> anyhow::Result<()> {
    let db = crate::open_database(config).await?;
    let draft = AlertDraft::compose(&db, &config.push, request, Origin::CommandLine)
        .await
        .map_err(|err| match err {
            DraftError::Invalid(problems) => anyhow::anyhow!(
                "the alert is not valid:\n{}",
                problems
                    .iter()
                    .map(|p| format!("  --{}: {}", option_name(p.field), p.message))
                    .collect::<Vec<_>>()
                    .join("\n")
            ),
            other => anyhow::Error::new(other),
        })?;
    let alert = draft.enqueue(&db).await.context("cannot queue the alert")?;
    match alert.send_at {
        Some(at) if alert.state == AlertState::Scheduled => {
            println!("scheduled alert {} for {}", alert.id, at.to_rfc3339());
        }
        _ => println!("queued alert {}", alert.id),
    }
    if !wait {
        return Ok(());
    }
    loop {
        let c = queue::counters(&db, alert.id).await?;
        let finished = c.sent
            + c.failed
            + c.pruned
            + c.skipped_quiet_hours
            + c.skipped_daily_cap
            + c.skipped_duplicate
            + c.skipped_unfollowed;
        eprint!(
            "\r{:<9} {finished}/{} devices: {} sent, {} failed, {} pruned, {} skipped, {} waiting   ",
            c.state.as_str(),
            c.targeted,
            c.sent,
            c.failed,
            c.pruned,
            finished - c.sent - c.failed - c.pruned,
            c.waiting,
        );
        let _ = std::io::stderr().flush();
        if !c.state.is_active() && c.state != AlertState::Scheduled {
            eprintln!();
            return Ok(());
        }
        tokio::time::sleep(Duration::from_millis(500)).await;
    }
}

/// The command-line option for a request field.
fn option_name(field: &str) -> &str {
    match field {
        "topics" => "topic",
        "image_url" => "image",
        "ttl_seconds" => "ttl",
        "deliver_in_local_time" => "local-time",
        "send_at" => "send-at",
        other => other,
    }
}
