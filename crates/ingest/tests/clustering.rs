//! Story clustering behaviour and the evaluation on the shipped data set.

use chrono::{DateTime, Duration};
use herald_ingest::cluster::{ClusterConfig, ClusterDoc, StoryClusterer};
use herald_ingest::eval::evaluate_clustering;

/// B-cubed F1 floor for one seed.
const FLOOR: f64 = 0.84;

fn doc(id: &str, title: &str, minutes: i64) -> ClusterDoc {
    ClusterDoc {
        id: id.into(),
        title: title.into(),
        summary: None,
        publisher: Some("Example".into()),
        published_at: DateTime::from_timestamp(1_394_409_600, 0).unwrap_or_default()
            + Duration::minutes(minutes),
    }
}

fn warmed_clusterer() -> StoryClusterer {
    let mut c = StoryClusterer::new(ClusterConfig::default());
    // Unrelated background headlines so document frequencies mean something.
    for (i, title) in [
        "Lena Dunham hosts Saturday Night Live",
        "Colorado collects millions in marijuana taxes",
        "Men's Wearhouse agrees to buy Jos A Bank",
        "Edward Snowden speaks at SXSW via video link",
        "Oil prices fall on weak China trade data",
        "GM faces questions over ignition switch recall",
    ]
    .iter()
    .enumerate()
    {
        c.assign(&doc(&format!("bg{i}"), title, i as i64));
    }
    c
}

#[test]
fn paraphrased_headlines_of_one_event_join() {
    let mut c = warmed_clusterer();
    let first = c.assign(&doc(
        "a",
        "Malaysia Airlines flight MH370 missing over South China Sea",
        10,
    ));
    assert!(first.is_new_story);
    let second = c.assign(&doc(
        "b",
        "Search widens for missing Malaysia Airlines jet MH370",
        20,
    ));
    assert!(!second.is_new_story, "{second:?}");
    assert_eq!(second.story, first.story);
    assert!(second.similarity > 0.0);
}

#[test]
fn wire_copy_near_duplicates_join() {
    let mut c = warmed_clusterer();
    let first = c.assign(&doc(
        "a",
        "UPDATE 2-Apple to buy Beats Electronics for $3 billion",
        10,
    ));
    let second = c.assign(&doc(
        "b",
        "UPDATE 3-Apple to buy Beats Electronics for $3 billion -sources",
        11,
    ));
    assert_eq!(first.story, second.story);
}

#[test]
fn unrelated_headlines_do_not_join() {
    let mut c = warmed_clusterer();
    let a = c.assign(&doc(
        "a",
        "Malaysia Airlines flight MH370 missing over South China Sea",
        10,
    ));
    let b = c.assign(&doc(
        "b",
        "Kim Kardashian and Kanye West plan a Paris wedding",
        11,
    ));
    let d = c.assign(&doc(
        "c",
        "Measles outbreak spreads in California schools",
        12,
    ));
    assert!(b.is_new_story && d.is_new_story);
    assert_ne!(a.story, b.story);
    assert_ne!(b.story, d.story);
}

#[test]
fn evaluation_on_the_shipped_csv_clears_the_floor() {
    let csv = concat!(
        env!("CARGO_MANIFEST_DIR"),
        "/../../../shared/data/news-stories-dev.csv"
    );
    if !std::path::Path::new(csv).exists() {
        eprintln!("skipping: {csv} not present");
        return;
    }
    let report = evaluate_clustering(csv, &[101]).expect("evaluation runs");
    println!("{report}");
    assert_eq!(report.rows, 2413);
    assert_eq!(report.seeds.len(), 1);
    // Measured 0.861 on seed 101 (release build); the margin absorbs harmless tuning changes.
    assert!(
        report.mean_f1 >= FLOOR,
        "B-cubed F1 {} below {FLOOR}",
        report.mean_f1
    );
    assert!(
        report.mean_topic_accuracy >= 0.55,
        "topic accuracy {}",
        report.mean_topic_accuracy
    );
}
