//! Clustering and topic evaluation on a labelled headline CSV, following `data/README.md`:
//! rows shuffled with a fixed seed, times redrawn uniformly inside one 24-hour window with the
//! same seed, titles fed one by one through [`StoryClusterer`], B-cubed scored against `story`.

use std::collections::HashMap;
use std::fmt;
use std::path::Path;
use std::time::Instant;

use chrono::{DateTime, Duration, Utc};
use rand::seq::SliceRandom;
use rand::{Rng, SeedableRng};
use rand_chacha::ChaCha8Rng;

use crate::cluster::{ClusterConfig, ClusterDoc, StoryClusterer, StoryKey};
use crate::text::unescape_backslashes;
use crate::topics::{HeadlineClassifier, Topic};

/// Start of the 24-hour window the shuffled rows are placed in (2014-03-10T00:00:00Z).
const WINDOW_START_SECS: i64 = 1_394_409_600;
const WINDOW_MS: i64 = 24 * 60 * 60 * 1000;

/// Why an evaluation could not run.
#[derive(Debug, thiserror::Error)]
pub enum EvalError {
    /// The CSV could not be read or parsed.
    #[error("reading the evaluation CSV: {0}")]
    Csv(#[from] csv::Error),
    /// The CSV has no rows or no seeds were given.
    #[error("nothing to evaluate: {0}")]
    Empty(&'static str),
    /// A row has a category other than b, t, e, m.
    #[error("unknown category {0:?}")]
    UnknownCategory(String),
}

/// One labelled row; `id`, `url` and `timestamp_ms` are deliberately not read.
#[derive(Debug, Clone, serde::Deserialize)]
struct Row {
    title: String,
    publisher: String,
    category: String,
    story: String,
}

/// Scores of one seeded run.
#[derive(Debug, Clone, PartialEq)]
pub struct SeedReport {
    /// Seed used for the shuffle and the times.
    pub seed: u64,
    /// B-cubed precision.
    pub precision: f64,
    /// B-cubed recall.
    pub recall: f64,
    /// Harmonic mean of precision and recall.
    pub f1: f64,
    /// Number of clusters made (after merges).
    pub clusters: usize,
    /// Share of headlines whose own keyword vote gives the labelled topic.
    pub topic_accuracy: f64,
    /// Share of headlines whose predicted cluster's summed keyword votes give the labelled topic.
    pub cluster_topic_accuracy: f64,
    /// Confusion of the per-headline classifier: `confusion[truth][predicted]`, in [`Topic::ALL`] order.
    pub confusion: [[usize; 4]; 4],
    /// Headlines clustered per second of time spent in [`StoryClusterer::assign`].
    pub articles_per_second: f64,
}

/// Per-seed results and their means.
#[derive(Debug, Clone, PartialEq)]
pub struct EvalReport {
    /// Number of labelled rows.
    pub rows: usize,
    /// Number of distinct true stories.
    pub stories: usize,
    /// Clusterer configuration evaluated.
    pub config: ClusterConfig,
    /// One entry per seed, in the order given.
    pub seeds: Vec<SeedReport>,
    /// Mean B-cubed precision over seeds.
    pub mean_precision: f64,
    /// Mean B-cubed recall over seeds.
    pub mean_recall: f64,
    /// Mean B-cubed F1 over seeds.
    pub mean_f1: f64,
    /// Mean number of clusters over seeds.
    pub mean_clusters: f64,
    /// Mean per-headline topic accuracy over seeds.
    pub mean_topic_accuracy: f64,
    /// Mean cluster-vote topic accuracy over seeds.
    pub mean_cluster_topic_accuracy: f64,
    /// Confusion table summed over seeds.
    pub confusion: [[usize; 4]; 4],
    /// Headlines clustered per second of `assign` time, over all seeds.
    pub articles_per_second: f64,
}

/// Evaluates the default clusterer configuration on `csv_path` over `seeds`.
pub fn evaluate_clustering(
    csv_path: impl AsRef<Path>,
    seeds: &[u64],
) -> Result<EvalReport, EvalError> {
    evaluate_clustering_with(csv_path, seeds, &ClusterConfig::default())
}

/// Evaluates a given clusterer configuration on `csv_path` over `seeds`.
pub fn evaluate_clustering_with(
    csv_path: impl AsRef<Path>,
    seeds: &[u64],
    config: &ClusterConfig,
) -> Result<EvalReport, EvalError> {
    let rows = read_rows(csv_path.as_ref())?;
    if rows.is_empty() {
        return Err(EvalError::Empty("no rows"));
    }
    if seeds.is_empty() {
        return Err(EvalError::Empty("no seeds"));
    }
    let truths = rows
        .iter()
        .map(|r| {
            Topic::from_category(&r.category)
                .ok_or_else(|| EvalError::UnknownCategory(r.category.clone()))
        })
        .collect::<Result<Vec<_>, _>>()?;
    let stories = rows
        .iter()
        .map(|r| r.story.as_str())
        .collect::<std::collections::HashSet<_>>()
        .len();
    let runs: Vec<SeedReport> = seeds
        .iter()
        .map(|&seed| run_seed(&rows, &truths, seed, config))
        .collect();
    let n = runs.len() as f64;
    let mean = |f: fn(&SeedReport) -> f64| runs.iter().map(f).sum::<f64>() / n;
    let mut confusion = [[0; 4]; 4];
    for run in &runs {
        for (t, row) in run.confusion.iter().enumerate() {
            for (p, count) in row.iter().enumerate() {
                confusion[t][p] += count;
            }
        }
    }
    let seconds: f64 = runs
        .iter()
        .map(|r| rows.len() as f64 / r.articles_per_second.max(f64::MIN_POSITIVE))
        .sum();
    Ok(EvalReport {
        articles_per_second: (rows.len() * runs.len()) as f64 / seconds.max(f64::MIN_POSITIVE),
        rows: rows.len(),
        stories,
        config: config.clone(),
        mean_precision: mean(|r| r.precision),
        mean_recall: mean(|r| r.recall),
        mean_f1: mean(|r| r.f1),
        mean_clusters: mean(|r| r.clusters as f64),
        mean_topic_accuracy: mean(|r| r.topic_accuracy),
        mean_cluster_topic_accuracy: mean(|r| r.cluster_topic_accuracy),
        confusion,
        seeds: runs,
    })
}

fn read_rows(path: &Path) -> Result<Vec<Row>, EvalError> {
    let mut reader = csv::Reader::from_path(path)?;
    reader
        .deserialize()
        .collect::<Result<Vec<Row>, _>>()
        .map_err(EvalError::from)
}

/// Predicted clusters (row indices), per-row keyword scores and the time spent clustering.
struct Clustered {
    clusters: Vec<Vec<usize>>,
    scores: Vec<[f32; 4]>,
    assign_time: std::time::Duration,
}

/// Feeds the rows through a fresh clusterer in the order and at the times drawn from `seed`.
fn cluster_rows(
    rows: &[Row],
    seed: u64,
    config: &ClusterConfig,
    classifier: &HeadlineClassifier,
) -> Clustered {
    let mut rng = ChaCha8Rng::seed_from_u64(seed);
    let mut order: Vec<usize> = (0..rows.len()).collect();
    order.shuffle(&mut rng);
    let window_start = DateTime::<Utc>::from_timestamp(WINDOW_START_SECS, 0).unwrap_or_default();
    let times: Vec<DateTime<Utc>> = order
        .iter()
        .map(|_| window_start + Duration::milliseconds(rng.random_range(0..WINDOW_MS)))
        .collect();

    let mut clusterer = StoryClusterer::new(config.clone());
    let mut assign_time = std::time::Duration::ZERO;
    let mut members: HashMap<StoryKey, Vec<usize>> = HashMap::new();
    let mut scores: Vec<[f32; 4]> = vec![[0.0; 4]; rows.len()];
    for (position, &row_index) in order.iter().enumerate() {
        let row = &rows[row_index];
        let title = unescape_backslashes(&row.title);
        scores[row_index] = classifier.scores(&title);
        let doc = ClusterDoc {
            id: position.to_string(),
            title,
            summary: None,
            publisher: Some(row.publisher.clone()),
            published_at: times[position],
        };
        let started = Instant::now();
        let assignment = clusterer.assign(&doc);
        assign_time += started.elapsed();
        for absorbed in &assignment.merged {
            if let Some(moved) = members.remove(absorbed) {
                members.entry(assignment.story).or_default().extend(moved);
            }
        }
        members.entry(assignment.story).or_default().push(row_index);
    }
    let mut clusters: Vec<Vec<usize>> = members.into_values().collect();
    clusters.sort_by_key(|c| std::cmp::Reverse(c.len()));
    Clustered {
        clusters,
        scores,
        assign_time,
    }
}

fn run_seed(rows: &[Row], truths: &[Topic], seed: u64, config: &ClusterConfig) -> SeedReport {
    let classifier = HeadlineClassifier::default();
    let Clustered {
        clusters,
        scores,
        assign_time,
    } = cluster_rows(rows, seed, config, &classifier);
    let (precision, recall) = bcubed(rows, &clusters);
    let f1 = if precision + recall > 0.0 {
        2.0 * precision * recall / (precision + recall)
    } else {
        0.0
    };

    let mut confusion = [[0; 4]; 4];
    let mut correct = 0;
    let mut cluster_correct = 0;
    for cluster in &clusters {
        let mut summed = [0.0f32; 4];
        for &i in cluster {
            for (s, v) in summed.iter_mut().zip(scores[i]) {
                *s += v;
            }
        }
        let cluster_topic = classifier.pick(summed);
        for &i in cluster {
            let predicted = classifier.pick(scores[i]);
            confusion[truths[i] as usize][predicted as usize] += 1;
            correct += usize::from(predicted == truths[i]);
            cluster_correct += usize::from(cluster_topic == truths[i]);
        }
    }
    let n = rows.len() as f64;
    SeedReport {
        seed,
        precision,
        recall,
        f1,
        clusters: clusters.len(),
        topic_accuracy: correct as f64 / n,
        cluster_topic_accuracy: cluster_correct as f64 / n,
        confusion,
        articles_per_second: n / assign_time.as_secs_f64().max(f64::MIN_POSITIVE),
    }
}

/// Error analysis of one seed: each predicted cluster of at least `min_size` headlines with its
/// true-story composition and sample titles, then each true story split over several clusters.
pub fn explain_seed(
    csv_path: impl AsRef<Path>,
    seed: u64,
    config: &ClusterConfig,
    min_size: usize,
) -> Result<String, EvalError> {
    use std::fmt::Write as _;
    let rows = read_rows(csv_path.as_ref())?;
    let classifier = HeadlineClassifier::default();
    let Clustered { clusters, .. } = cluster_rows(&rows, seed, config, &classifier);
    let mut out = String::new();
    let short = |s: &str| s.chars().take(6).collect::<String>();
    let mut home: HashMap<usize, usize> = HashMap::new();
    for (c, cluster) in clusters.iter().enumerate() {
        for &i in cluster {
            home.insert(i, c);
        }
        if cluster.len() < min_size {
            continue;
        }
        let mut per_story: HashMap<&str, Vec<usize>> = HashMap::new();
        for &i in cluster {
            per_story.entry(rows[i].story.as_str()).or_default().push(i);
        }
        let mut parts: Vec<(&str, Vec<usize>)> = per_story.into_iter().collect();
        parts.sort_by_key(|p| std::cmp::Reverse(p.1.len()));
        let _ = writeln!(out, "cluster #{c} ({} headlines)", cluster.len());
        for (story, members) in parts {
            let samples: Vec<&str> = members
                .iter()
                .take(3)
                .map(|&i| rows[i].title.as_str())
                .collect();
            let _ = writeln!(
                out,
                "  {:>4} {}  {}",
                members.len(),
                short(story),
                samples.join(" | ")
            );
        }
    }
    let mut by_story: HashMap<&str, HashMap<usize, Vec<usize>>> = HashMap::new();
    for (i, row) in rows.iter().enumerate() {
        if let Some(&c) = home.get(&i) {
            by_story
                .entry(row.story.as_str())
                .or_default()
                .entry(c)
                .or_default()
                .push(i);
        }
    }
    let mut stories: Vec<_> = by_story.into_iter().collect();
    stories.sort_by_key(|s| s.0);
    let _ = writeln!(out, "\nsplits (story: cluster×count):");
    for (story, parts) in stories {
        let mut parts: Vec<(usize, Vec<usize>)> = parts.into_iter().collect();
        parts.sort_by_key(|p| std::cmp::Reverse(p.1.len()));
        let total: usize = parts.iter().map(|p| p.1.len()).sum();
        let _ = writeln!(
            out,
            "{} ({total}): {}",
            short(story),
            parts
                .iter()
                .map(|(c, m)| format!("#{c}×{}", m.len()))
                .collect::<Vec<_>>()
                .join(" ")
        );
        for (c, members) in parts.iter().skip(1).filter(|p| p.1.len() <= 3) {
            for &i in members {
                let _ = writeln!(out, "    #{c}: {}", rows[i].title);
            }
        }
    }
    Ok(out)
}

/// B-cubed precision and recall of `clusters` (row indices) against the rows' `story` labels.
fn bcubed(rows: &[Row], clusters: &[Vec<usize>]) -> (f64, f64) {
    let mut story_sizes: HashMap<&str, usize> = HashMap::new();
    for row in rows {
        *story_sizes.entry(row.story.as_str()).or_default() += 1;
    }
    let (mut precision, mut recall) = (0.0, 0.0);
    for cluster in clusters {
        let mut per_story: HashMap<&str, usize> = HashMap::new();
        for &i in cluster {
            *per_story.entry(rows[i].story.as_str()).or_default() += 1;
        }
        for (story, &shared) in &per_story {
            let story_size = story_sizes.get(story).copied().unwrap_or(shared);
            // Each of the `shared` rows contributes the same share.
            precision += shared as f64 * shared as f64 / cluster.len() as f64;
            recall += shared as f64 * shared as f64 / story_size as f64;
        }
    }
    let n = rows.len() as f64;
    (precision / n, recall / n)
}

impl fmt::Display for EvalReport {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        writeln!(
            f,
            "Story clustering: {} headlines, {} true stories",
            self.rows, self.stories
        )?;
        let c = &self.config;
        writeln!(
            f,
            "config: threshold {:.3}, merge {:?}, near-dup Jaccard {:.2}, window {} h",
            c.threshold, c.merge_threshold, c.near_duplicate_jaccard, c.window_hours
        )?;
        writeln!(f)?;
        writeln!(
            f,
            "{:>8} {:>9} {:>9} {:>9} {:>9} {:>10} {:>12} {:>11}",
            "seed",
            "precision",
            "recall",
            "F1",
            "clusters",
            "topic acc",
            "cluster-vote",
            "articles/s"
        )?;
        for r in &self.seeds {
            writeln!(
                f,
                "{:>8} {:>9.4} {:>9.4} {:>9.4} {:>9} {:>10.4} {:>12.4} {:>11.0}",
                r.seed,
                r.precision,
                r.recall,
                r.f1,
                r.clusters,
                r.topic_accuracy,
                r.cluster_topic_accuracy,
                r.articles_per_second
            )?;
        }
        writeln!(
            f,
            "{:>8} {:>9.4} {:>9.4} {:>9.4} {:>9.1} {:>10.4} {:>12.4} {:>11.0}",
            "mean",
            self.mean_precision,
            self.mean_recall,
            self.mean_f1,
            self.mean_clusters,
            self.mean_topic_accuracy,
            self.mean_cluster_topic_accuracy,
            self.articles_per_second
        )?;
        writeln!(f)?;
        writeln!(
            f,
            "Topic confusion (per-headline classifier, summed over seeds; rows = truth, columns = predicted):"
        )?;
        write!(f, "{:>14}", "")?;
        for t in Topic::ALL {
            write!(f, " {:>13}", t.slug())?;
        }
        writeln!(f)?;
        for t in Topic::ALL {
            write!(f, "{:>14}", t.slug())?;
            for p in Topic::ALL {
                write!(f, " {:>13}", self.confusion[t as usize][p as usize])?;
            }
            writeln!(f)?;
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn row(story: &str) -> Row {
        Row {
            title: String::new(),
            publisher: String::new(),
            category: "b".into(),
            story: story.into(),
        }
    }

    #[test]
    fn bcubed_of_perfect_and_lumped_clusterings() {
        let rows = vec![row("a"), row("a"), row("b"), row("b")];
        let (p, r) = bcubed(&rows, &[vec![0, 1], vec![2, 3]]);
        assert!((p - 1.0).abs() < 1e-9 && (r - 1.0).abs() < 1e-9);
        let (p, r) = bcubed(&rows, &[vec![0, 1, 2, 3]]);
        assert!((p - 0.5).abs() < 1e-9 && (r - 1.0).abs() < 1e-9);
        let (p, r) = bcubed(&rows, &[vec![0], vec![1], vec![2], vec![3]]);
        assert!((p - 1.0).abs() < 1e-9 && (r - 0.5).abs() < 1e-9);
    }
}
