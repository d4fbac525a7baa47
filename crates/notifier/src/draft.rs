//! What a valid alert is, in one place: the API, the command line and the breaking-story
//! trigger all compose an alert here, from what the caller gave and what the article or story
//! it is about says, under the same rules.
//!
//! Text an editor writes is refused when too long (they should choose the cut); text taken
//! from an article or story is cut at a word to fit a lock screen. Urgency, lifetime, links,
//! the image and the schedule are parsed into types once, so nothing downstream re-parses a
//! string or falls back silently.

use chrono::{DateTime, Duration as ChronoDuration, NaiveTime, Utc};
use herald_store::alerts::{self, AlertSubject};
use herald_store::queue::{self, AlertChange, NewQueuedAlert, QueuedAlert};
use herald_store::{Db, StoreError, topics};
use url::Url;
use uuid::Uuid;

use crate::config::PushConfig;
use crate::webpush::Urgency;

/// Longest title an editor may write, in characters.
pub const MAX_TITLE_CHARS: usize = 300;
/// Longest body an editor may write, in characters.
pub const MAX_BODY_CHARS: usize = 1000;
/// A title taken from a headline is cut at a word to this many characters.
pub const DERIVED_TITLE_CHARS: usize = 120;
/// A body taken from a summary is cut at a word to this many characters.
pub const DERIVED_BODY_CHARS: usize = 240;
/// Longest link, in bytes.
pub const MAX_URL_LEN: usize = 2048;
/// Most topics one alert may name.
pub const MAX_TOPICS: usize = 20;
/// Shortest and longest lifetimes, in seconds (a minute to four weeks).
pub const TTL_RANGE: std::ops::RangeInclusive<i64> = 60..=2_419_200;
/// How far ahead an alert may be scheduled.
pub const MAX_SCHEDULE_AHEAD: ChronoDuration = ChronoDuration::days(30);
/// A `send_at` this little in the past (clock skew, a slow request) means "now".
const SCHEDULE_SKEW: ChronoDuration = ChronoDuration::seconds(60);

/// What a caller asks for, as given: every field optional, text as typed.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct AlertRequest {
    /// The article the alert opens (title, summary, link, image, topics and story from it).
    pub article_id: Option<Uuid>,
    /// The story it is about (the once-per-story key; defaults from its newest linked article).
    pub story_id: Option<Uuid>,
    /// Topic slugs whose followers get it.
    pub topics: Option<Vec<String>>,
    /// Lock-screen title.
    pub title: Option<String>,
    /// Lock-screen text.
    pub body: Option<String>,
    /// Where a tap leads.
    pub url: Option<String>,
    /// An https image shown with the notification.
    pub image_url: Option<String>,
    /// `very-low`, `low`, `normal` or `high`.
    pub urgency: Option<String>,
    /// Seconds delivery stays worth trying.
    pub ttl_seconds: Option<i64>,
    /// RFC 3339 time to send at.
    pub send_at: Option<String>,
    /// `HH:MM`: deliver at this local time in each reader's time zone, within a day.
    pub deliver_in_local_time: Option<String>,
}

/// Who is sending.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Origin {
    /// An editor through the API.
    Editor(Uuid),
    /// An operator on the command line.
    CommandLine,
    /// The breaking-story trigger.
    Story,
}

impl Origin {
    fn trigger(self) -> &'static str {
        match self {
            Self::Editor(_) | Self::CommandLine => "editor",
            Self::Story => "story",
        }
    }

    fn editor(self) -> Option<Uuid> {
        match self {
            Self::Editor(id) => Some(id),
            _ => None,
        }
    }
}

/// When an alert goes out.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct Schedule {
    /// Start at this time; `None`: now.
    pub send_at: Option<DateTime<Utc>>,
    /// Deliver to each device at this local time, within a day of the start.
    pub local_time: Option<NaiveTime>,
}

/// A composed, valid alert, ready to queue.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct AlertDraft {
    /// The story (once per story per device).
    pub story_id: Option<Uuid>,
    /// The article it opens.
    pub article_id: Option<Uuid>,
    /// Known topic slugs, sorted, without repeats.
    pub topics: Vec<String>,
    /// Title.
    pub title: String,
    /// Body (may be empty).
    pub body: String,
    /// Link.
    pub url: Url,
    /// Image.
    pub image: Option<Url>,
    /// Urgency.
    pub urgency: Urgency,
    /// Lifetime in seconds.
    pub ttl_seconds: u32,
    /// When it goes out.
    pub schedule: Schedule,
    /// Who sends it.
    pub origin: Origin,
}

/// One field that is missing or wrong.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct FieldProblem {
    /// The request field, as the API names it.
    pub field: &'static str,
    /// What is wrong, for a person.
    pub message: String,
}

/// Why no alert could be composed.
#[derive(Debug, thiserror::Error)]
pub enum DraftError {
    /// The article or story named does not exist.
    #[error("{0}")]
    NotFound(String),
    /// Fields are missing or wrong.
    #[error("{}", .0.iter().map(|p| format!("{}: {}", p.field, p.message)).collect::<Vec<_>>().join("; "))]
    Invalid(Vec<FieldProblem>),
    /// The database failed.
    #[error(transparent)]
    Store(#[from] StoreError),
}

/// Collects every problem of a request, so the caller hears them all at once.
#[derive(Default)]
struct Problems(Vec<FieldProblem>);

impl Problems {
    fn add(&mut self, field: &'static str, message: impl Into<String>) {
        self.0.push(FieldProblem {
            field,
            message: message.into(),
        });
    }
}

impl AlertDraft {
    /// Composes an alert: looks up the article or story it is about (404 naming the id when
    /// unknown), fills what the caller left out from it, and checks every field.
    pub async fn compose(
        db: &Db,
        config: &PushConfig,
        req: AlertRequest,
        origin: Origin,
    ) -> Result<Self, DraftError> {
        let subject = lookup(db, &req).await?;
        let draft = Self::from_parts(config, req, subject, origin, Utc::now())?;
        let unknown = topics::unknown(db, &draft.topics).await?;
        if !unknown.is_empty() {
            return Err(DraftError::Invalid(vec![FieldProblem {
                field: "topics",
                message: format!(
                    "unknown topic(s): {}; see GET /v1/topics",
                    unknown.join(", ")
                ),
            }]));
        }
        Ok(draft)
    }

    /// The rules without the database: `subject` is what the article or story says.
    pub fn from_parts(
        config: &PushConfig,
        req: AlertRequest,
        subject: Option<AlertSubject>,
        origin: Origin,
        now: DateTime<Utc>,
    ) -> Result<Self, DraftError> {
        let mut problems = Problems::default();
        let missing = "is required unless article_id or story_id gives it";
        let subject = subject.unwrap_or(AlertSubject {
            article_id: None,
            story_id: None,
            title: String::new(),
            summary: None,
            url: None,
            image_url: None,
            topics: Vec::new(),
        });
        let title = match req.title {
            Some(given) => check_text(&mut problems, "title", &given, MAX_TITLE_CHARS),
            None => Some(cut_at_word(&subject.title, DERIVED_TITLE_CHARS)),
        };
        let title = title.filter(|t| !t.is_empty());
        if title.is_none() && !problems.0.iter().any(|p| p.field == "title") {
            problems.add("title", missing);
        }
        let body = match req.body {
            Some(given) => check_text(&mut problems, "body", &given, MAX_BODY_CHARS),
            None => Some(
                subject
                    .summary
                    .as_deref()
                    .map(|s| cut_at_word(s, DERIVED_BODY_CHARS))
                    .unwrap_or_default(),
            ),
        };
        let url = match req.url.or(subject.url) {
            None => {
                problems.add("url", missing);
                None
            }
            Some(raw) => parse_link(&mut problems, "url", &raw),
        };
        let image = match req.image_url {
            Some(raw) => check_image(&mut problems, config, &raw),
            // A feed's image that is not usable is left out rather than refused.
            None => subject
                .image_url
                .and_then(|raw| check_image(&mut Problems::default(), config, &raw)),
        };
        let mut topics = req.topics.unwrap_or(subject.topics);
        topics.sort();
        topics.dedup();
        if topics.is_empty() {
            problems.add("topics", missing);
        } else if topics.len() > MAX_TOPICS {
            problems.add("topics", format!("at most {MAX_TOPICS} topics"));
        }
        let urgency = match req.urgency.as_deref() {
            None => Urgency::Normal,
            Some(text) => parse_urgency(text).unwrap_or_else(|| {
                problems.add("urgency", "must be very-low, low, normal or high");
                Urgency::Normal
            }),
        };
        let ttl = req
            .ttl_seconds
            .unwrap_or(i64::from(config.default_ttl_seconds));
        if !TTL_RANGE.contains(&ttl) {
            problems.add(
                "ttl_seconds",
                format!(
                    "must be between {} and {}",
                    TTL_RANGE.start(),
                    TTL_RANGE.end()
                ),
            );
        }
        let send_at = req
            .send_at
            .as_deref()
            .and_then(|raw| parse_send_at(&mut problems, raw, now));
        let local_time =
            req.deliver_in_local_time
                .as_deref()
                .and_then(|raw| match parse_local_time(raw) {
                    Some(t) => Some(t),
                    None => {
                        problems.add(
                            "deliver_in_local_time",
                            "must be a 24-hour local time HH:MM, e.g. 08:00",
                        );
                        None
                    }
                });
        match (title, body, url) {
            (Some(title), Some(body), Some(url)) if problems.0.is_empty() => Ok(Self {
                story_id: req.story_id.or(subject.story_id),
                article_id: req.article_id.or(subject.article_id),
                topics,
                title,
                body,
                url,
                image,
                urgency,
                ttl_seconds: u32::try_from(ttl).unwrap_or(u32::MAX),
                schedule: Schedule {
                    send_at,
                    local_time,
                },
                origin,
            }),
            _ => Err(DraftError::Invalid(problems.0)),
        }
    }

    /// The alert as the queue stores it.
    pub fn into_new(self) -> NewQueuedAlert {
        NewQueuedAlert {
            story_id: self.story_id,
            article_id: self.article_id,
            topics: self.topics,
            title: self.title,
            body: self.body,
            url: self.url.to_string(),
            image_url: self.image.map(|u| u.to_string()),
            urgency: self.urgency.as_str().to_owned(),
            ttl_seconds: i32::try_from(self.ttl_seconds).unwrap_or(i32::MAX),
            trigger: self.origin.trigger().to_owned(),
            created_by: self.origin.editor(),
            send_at: self.schedule.send_at,
            local_time: self
                .schedule
                .local_time
                .map(|t| t.format("%H:%M").to_string()),
        }
    }

    /// Queues it (or schedules it, with a `send_at`).
    pub async fn enqueue(self, db: &Db) -> Result<QueuedAlert, StoreError> {
        queue::enqueue(db, self.into_new()).await
    }
}

/// A change an editor asks for, as given (`PATCH /v1/admin/alerts/{id}`).
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct AlertEdit {
    /// New title.
    pub title: Option<String>,
    /// New body.
    pub body: Option<String>,
    /// New link.
    pub url: Option<String>,
    /// New image; `Some(None)` removes it.
    pub image_url: Option<Option<String>>,
    /// Replace without sound (default: true, a correction).
    pub silent: Option<bool>,
    /// New send time, for a scheduled alert.
    pub send_at: Option<String>,
}

impl AlertEdit {
    /// Checks the change under the same rules as a new alert.
    pub fn validate(self, config: &PushConfig, editor: Uuid) -> Result<AlertChange, DraftError> {
        let mut problems = Problems::default();
        let title = self
            .title
            .and_then(|t| check_text(&mut problems, "title", &t, MAX_TITLE_CHARS));
        if title.as_deref() == Some("") {
            problems.add("title", "must not be empty");
        }
        let body = self
            .body
            .and_then(|b| check_text(&mut problems, "body", &b, MAX_BODY_CHARS));
        let url = self
            .url
            .and_then(|u| parse_link(&mut problems, "url", &u))
            .map(|u| u.to_string());
        let image_url = match self.image_url {
            None => None,
            Some(None) => Some(None),
            Some(Some(raw)) => {
                check_image(&mut problems, config, &raw).map(|u| Some(u.to_string()))
            }
        };
        let send_at = self
            .send_at
            .as_deref()
            .and_then(|raw| parse_send_at(&mut problems, raw, Utc::now()));
        let nothing = title.is_none()
            && body.is_none()
            && url.is_none()
            && image_url.is_none()
            && send_at.is_none();
        if nothing && problems.0.is_empty() {
            problems.add(
                "body",
                "nothing to change: give title, body, url, image_url or send_at",
            );
        }
        if !problems.0.is_empty() {
            return Err(DraftError::Invalid(problems.0));
        }
        Ok(AlertChange {
            title,
            body,
            url,
            image_url,
            silent: self.silent.unwrap_or(true),
            send_at,
            by: Some(editor),
        })
    }
}

/// What the request's `article_id` (else `story_id`) refers to: 404 (`NotFound`) naming the
/// id when unknown.
pub async fn lookup(db: &Db, req: &AlertRequest) -> Result<Option<AlertSubject>, DraftError> {
    fn not_found(what: &'static str, id: Uuid) -> impl Fn(StoreError) -> DraftError {
        move |err| match err {
            StoreError::NotFound => DraftError::NotFound(format!("no {what} {id}")),
            other => other.into(),
        }
    }
    if let Some(id) = req.story_id {
        // Checked even with an article: the alert must not name a story that does not exist.
        let story = alerts::story_subject(db, id)
            .await
            .map_err(not_found("story", id))?;
        if req.article_id.is_none() {
            return Ok(Some(story));
        }
    }
    match req.article_id {
        Some(id) => Ok(Some(
            alerts::article_subject(db, id)
                .await
                .map_err(not_found("article", id))?,
        )),
        None => Ok(None),
    }
}

/// Trimmed text of at most `max` characters; `None` (and a problem) when longer.
fn check_text(
    problems: &mut Problems,
    field: &'static str,
    text: &str,
    max: usize,
) -> Option<String> {
    let text = text.trim();
    if text.chars().count() > max {
        problems.add(field, format!("must be at most {max} characters"));
        return None;
    }
    Some(text.to_owned())
}

fn parse_link(problems: &mut Problems, field: &'static str, raw: &str) -> Option<Url> {
    let parsed = Url::parse(raw)
        .ok()
        .filter(|u| matches!(u.scheme(), "http" | "https") && u.host_str().is_some());
    match parsed {
        Some(url) if raw.len() <= MAX_URL_LEN => Some(url),
        _ => {
            problems.add(
                field,
                format!("must be an absolute http(s) URL of at most {MAX_URL_LEN} characters"),
            );
            None
        }
    }
}

/// An image the phone will fetch itself: https, and not an address the outbound guard refuses
/// (a notification service extension or a browser fetches it from the reader's network).
fn check_image(problems: &mut Problems, config: &PushConfig, raw: &str) -> Option<Url> {
    let url = parse_link(problems, "image_url", raw)?;
    if let Err(reason) = crate::send::check_destination(&url, config.allow_insecure_endpoints) {
        problems.add(
            "image_url",
            format!("must be an https URL of a public host: {reason}"),
        );
        return None;
    }
    let local_name = url
        .host_str()
        .is_some_and(|h| h == "localhost" || h.ends_with(".localhost") || !h.contains('.'));
    if local_name && !config.allow_insecure_endpoints {
        problems.add("image_url", "must be an https URL of a public host");
        return None;
    }
    Some(url)
}

/// The urgency named, strictly.
pub fn parse_urgency(text: &str) -> Option<Urgency> {
    match text {
        "very-low" => Some(Urgency::VeryLow),
        "low" => Some(Urgency::Low),
        "normal" => Some(Urgency::Normal),
        "high" => Some(Urgency::High),
        _ => None,
    }
}

fn parse_send_at(problems: &mut Problems, raw: &str, now: DateTime<Utc>) -> Option<DateTime<Utc>> {
    let Ok(at) = DateTime::parse_from_rfc3339(raw.trim()) else {
        problems.add(
            "send_at",
            "must be an RFC 3339 time, e.g. 2026-12-08T07:30:00Z",
        );
        return None;
    };
    let at = at.with_timezone(&Utc);
    if at < now - SCHEDULE_SKEW {
        problems.add("send_at", "is in the past");
        return None;
    }
    if at > now + MAX_SCHEDULE_AHEAD {
        problems.add("send_at", "must be within 30 days");
        return None;
    }
    // A moment ago is now.
    Some(at.max(now))
}

/// `HH:MM` on a 24-hour clock.
pub fn parse_local_time(raw: &str) -> Option<NaiveTime> {
    let raw = raw.trim();
    if raw.len() != 5 {
        return None;
    }
    NaiveTime::parse_from_str(raw, "%H:%M").ok()
}

/// `text` cut to at most `max` characters at a word boundary, with an ellipsis when cut.
pub fn cut_at_word(text: &str, max: usize) -> String {
    let text = text.trim();
    if text.chars().count() <= max {
        return text.to_string();
    }
    let head: String = text.chars().take(max.saturating_sub(1)).collect();
    let head = match head.rfind(char::is_whitespace) {
        Some(at) if at > head.len() / 2 => &head[..at],
        _ => head.as_str(),
    };
    format!("{}…", head.trim_end())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn request() -> AlertRequest {
        AlertRequest {
            topics: Some(vec!["world".into()]),
            title: Some("Ceasefire agreed".into()),
            url: Some("https://news.example/a".into()),
            ..AlertRequest::default()
        }
    }

    fn compose(req: AlertRequest) -> Result<AlertDraft, DraftError> {
        AlertDraft::from_parts(
            &PushConfig::default(),
            req,
            None,
            Origin::CommandLine,
            Utc::now(),
        )
    }

    fn fields(err: DraftError) -> Vec<&'static str> {
        match err {
            DraftError::Invalid(problems) => problems.into_iter().map(|p| p.field).collect(),
            other => panic!("expected a validation error, got {other}"),
        }
    }

    #[test]
    fn long_text_is_cut_at_a_word() {
        assert_eq!(cut_at_word("short", 10), "short");
        let cut = cut_at_word("Ceasefire agreed after three days of talks in Geneva", 30);
        assert!(cut.ends_with('…') && cut.chars().count() <= 30, "{cut}");
        assert!(!cut.contains("  "));
    }

    #[test]
    fn every_caller_gets_the_same_rules() {
        let draft = compose(request()).unwrap();
        assert_eq!(draft.urgency, Urgency::Normal);
        assert_eq!(draft.ttl_seconds, PushConfig::default().default_ttl_seconds);
        let err = compose(AlertRequest {
            title: Some("x".repeat(MAX_TITLE_CHARS + 1)),
            urgency: Some("urgent".into()),
            ttl_seconds: Some(5),
            url: Some("ftp://x".into()),
            ..request()
        })
        .unwrap_err();
        assert_eq!(fields(err), ["title", "url", "urgency", "ttl_seconds"]);
    }

    #[test]
    fn derived_text_is_cut_given_text_is_refused() {
        let subject = AlertSubject {
            article_id: Some(Uuid::new_v4()),
            story_id: Some(Uuid::new_v4()),
            title: "word ".repeat(100),
            summary: Some("more ".repeat(400)),
            url: Some("https://news.example/story".into()),
            image_url: Some("http://10.0.0.1/lead.jpg".into()),
            topics: vec!["world".into()],
        };
        let draft = AlertDraft::from_parts(
            &PushConfig::default(),
            AlertRequest::default(),
            Some(subject),
            Origin::Story,
            Utc::now(),
        )
        .unwrap();
        assert!(draft.title.chars().count() <= DERIVED_TITLE_CHARS);
        assert!(draft.body.chars().count() <= DERIVED_BODY_CHARS);
        assert_eq!(
            draft.image, None,
            "a private feed image is dropped, not refused"
        );
        assert_eq!(draft.into_new().trigger, "story");
    }

    #[test]
    fn images_must_be_public_https() {
        for bad in [
            "http://cdn.example/a.jpg",
            "https://127.0.0.1/a.jpg",
            "https://localhost/a.jpg",
            "https://[::1]/a.jpg",
        ] {
            let err = compose(AlertRequest {
                image_url: Some(bad.into()),
                ..request()
            })
            .unwrap_err();
            assert_eq!(fields(err), ["image_url"], "{bad}");
        }
        let ok = compose(AlertRequest {
            image_url: Some("https://cdn.example/a.jpg".into()),
            ..request()
        })
        .unwrap();
        assert_eq!(ok.image.unwrap().as_str(), "https://cdn.example/a.jpg");
    }

    #[test]
    fn schedules_are_checked() {
        let now = Utc::now();
        let at = |d: ChronoDuration| (now + d).to_rfc3339();
        let ok = compose(AlertRequest {
            send_at: Some(at(ChronoDuration::hours(2))),
            deliver_in_local_time: Some("08:00".into()),
            ..request()
        })
        .unwrap();
        assert!(ok.schedule.send_at.unwrap() > now);
        assert_eq!(ok.into_new().local_time.as_deref(), Some("08:00"));
        for (send_at, local) in [
            (Some(at(-ChronoDuration::hours(1))), None),
            (Some(at(ChronoDuration::days(31))), None),
            (Some("tomorrow".to_owned()), None),
            (None, Some("8am")),
            (None, Some("25:00")),
        ] {
            let err = compose(AlertRequest {
                send_at,
                deliver_in_local_time: local.map(str::to_owned),
                ..request()
            })
            .unwrap_err();
            assert_eq!(fields(err).len(), 1);
        }
    }

    #[test]
    fn an_edit_must_change_something_valid() {
        let editor = Uuid::new_v4();
        let config = PushConfig::default();
        assert!(AlertEdit::default().validate(&config, editor).is_err());
        let change = AlertEdit {
            body: Some("Death toll rises to 12".into()),
            ..AlertEdit::default()
        }
        .validate(&config, editor)
        .unwrap();
        assert!(change.silent, "corrections are silent by default");
        let err = AlertEdit {
            title: Some("  ".into()),
            ..AlertEdit::default()
        }
        .validate(&config, editor)
        .unwrap_err();
        assert_eq!(fields(err), ["title"]);
    }
}
