//! Online, incremental story clustering of headlines.
//!
//! Each document becomes a TF-IDF vector over normalised tokens (lowercased, stopwords removed,
//! plurals folded) with document frequencies learned as documents arrive. It joins the active
//! story whose centroid is most cosine-similar, if that similarity reaches the threshold, or a
//! story holding a near-duplicate (token Jaccard) of it; otherwise it starts a new story.
//! Candidate stories come from an inverted index term → active stories, so assignment never scans
//! every story. When a document bridges two stories whose centroids are themselves similar, the
//! stories merge. Stories not updated within the window expire from memory; [`StoryClusterer::restore`]
//! rebuilds them from stored articles after a restart.

use std::collections::{BTreeSet, HashMap, HashSet, VecDeque};

use chrono::{DateTime, Duration, Utc};
use uuid::Uuid;

use crate::text::unescape_backslashes;

/// Identity of a story; new stories get a UUIDv7.
pub type StoryKey = Uuid;

/// Tuning of the [`StoryClusterer`].
#[derive(Debug, Clone, PartialEq)]
pub struct ClusterConfig {
    /// Stories not updated for this many hours expire.
    pub window_hours: i64,
    /// Minimum cosine similarity between a document and a story centroid to join it.
    pub threshold: f32,
    /// Minimum centroid–centroid cosine for two stories bridged by one document to merge; `None` disables merging.
    pub merge_threshold: Option<f32>,
    /// Token Jaccard at or above which a document is a near-duplicate (wire copy) of a story's document.
    pub near_duplicate_jaccard: f32,
    /// Hours after its last update during which a story's similarity is not decayed.
    pub decay_grace_hours: f32,
    /// Half-life, in hours, of the similarity decay after the grace period.
    pub decay_half_life_hours: f32,
    /// Most terms kept in a story centroid (the lightest are pruned).
    pub max_centroid_terms: usize,
    /// Weight of summary tokens relative to title tokens.
    pub summary_weight: f32,
    /// Recent documents per story kept for near-duplicate checks.
    pub recent_docs_per_story: usize,
}

impl Default for ClusterConfig {
    fn default() -> Self {
        Self {
            window_hours: 48,
            threshold: 0.14,
            merge_threshold: Some(0.12),
            near_duplicate_jaccard: 0.6,
            decay_grace_hours: 24.0,
            decay_half_life_hours: 12.0,
            max_centroid_terms: 200,
            summary_weight: 0.5,
            recent_docs_per_story: 32,
        }
    }
}

/// A document to cluster.
#[derive(Debug, Clone, PartialEq)]
pub struct ClusterDoc {
    /// Caller's identifier of the document (e.g. article id).
    pub id: String,
    /// Headline.
    pub title: String,
    /// Plain-text summary, if any.
    pub summary: Option<String>,
    /// Publisher name.
    pub publisher: Option<String>,
    /// Publication time.
    pub published_at: DateTime<Utc>,
}

/// Where a document went.
#[derive(Debug, Clone, PartialEq)]
pub struct Assignment {
    /// The story the document belongs to.
    pub story: StoryKey,
    /// Whether the document started the story.
    pub is_new_story: bool,
    /// Similarity to the story it joined (1.0 for a new story).
    pub similarity: f32,
    /// Stories merged into `story` by this document; their documents now belong to `story`.
    pub merged: Vec<StoryKey>,
}

/// Serializable snapshot of one active story's centroid.
#[derive(Debug, Clone, PartialEq, serde::Serialize, serde::Deserialize)]
pub struct StorySnapshot {
    /// The story.
    pub story: StoryKey,
    /// Number of documents in the story.
    pub doc_count: u32,
    /// Time of the latest document.
    pub last_updated: DateTime<Utc>,
    /// Heaviest centroid terms with their term mass, heaviest first.
    pub terms: Vec<(String, f32)>,
}

#[derive(Debug, Clone)]
struct Story {
    centroid: HashMap<u32, f32>,
    doc_count: u32,
    last_updated: DateTime<Utc>,
    recent: VecDeque<Vec<u32>>,
}

/// The online story clusterer (one per process; not thread-safe by itself).
#[derive(Debug, Clone)]
pub struct StoryClusterer {
    config: ClusterConfig,
    vocab: HashMap<String, u32>,
    terms: Vec<String>,
    df: Vec<u32>,
    docs_seen: u64,
    stories: HashMap<StoryKey, Story>,
    postings: HashMap<u32, HashSet<StoryKey>>,
    by_update: BTreeSet<(DateTime<Utc>, StoryKey)>,
}

/// A document after tokenisation: weighted term frequencies and its distinct terms.
struct DocTerms {
    tf: HashMap<u32, f32>,
    set: Vec<u32>,
}

impl StoryClusterer {
    /// Creates an empty clusterer.
    pub fn new(config: ClusterConfig) -> Self {
        Self {
            config,
            vocab: HashMap::new(),
            terms: Vec::new(),
            df: Vec::new(),
            docs_seen: 0,
            stories: HashMap::new(),
            postings: HashMap::new(),
            by_update: BTreeSet::new(),
        }
    }

    /// The configuration in use.
    pub fn config(&self) -> &ClusterConfig {
        &self.config
    }

    /// Number of stories currently held in memory.
    pub fn active_stories(&self) -> usize {
        self.stories.len()
    }

    /// Assigns a document to an existing story or a new one.
    pub fn assign(&mut self, doc: &ClusterDoc) -> Assignment {
        self.expire_before(doc.published_at - Duration::hours(self.config.window_hours));
        let terms = self.learn(doc);
        let query = self.query_vector(&terms);

        let mut scored: Vec<(f32, StoryKey)> = self
            .candidates(&terms)
            .into_iter()
            .filter_map(|key| {
                let story = self.stories.get(&key)?;
                let cosine = self.cosine_to_centroid(&query, story);
                let duplicate = self.near_duplicate(&terms, story);
                let score = cosine.max(duplicate) * self.decay(story, doc.published_at);
                Some((score, key))
            })
            .collect();
        scored.sort_by(|a, b| b.0.total_cmp(&a.0).then(a.1.cmp(&b.1)));

        let Some(&(best_score, best)) = scored.first().filter(|(s, _)| *s >= self.config.threshold)
        else {
            let key = Uuid::now_v7();
            self.add_to_story(key, &terms, doc.published_at);
            return Assignment {
                story: key,
                is_new_story: true,
                similarity: 1.0,
                merged: Vec::new(),
            };
        };
        self.add_to_story(best, &terms, doc.published_at);

        let mut merged = Vec::new();
        if let Some(merge_threshold) = self.config.merge_threshold {
            for &(score, other) in &scored[1..] {
                if score < self.config.threshold {
                    break;
                }
                if self.centroid_cosine(best, other) >= merge_threshold {
                    self.merge(best, other);
                    merged.push(other);
                }
            }
        }
        Assignment {
            story: best,
            is_new_story: false,
            similarity: best_score,
            merged,
        }
    }

    /// Rebuilds a story from its stored documents (e.g. after a restart); documents also update term statistics.
    pub fn restore(&mut self, story: StoryKey, docs: &[ClusterDoc]) {
        for doc in docs {
            let terms = self.learn(doc);
            self.add_to_story(story, &terms, doc.published_at);
        }
    }

    /// Drops stories last updated before `cutoff`.
    pub fn expire_before(&mut self, cutoff: DateTime<Utc>) {
        while let Some(&(updated, key)) = self.by_update.first() {
            if updated >= cutoff {
                break;
            }
            self.by_update.remove(&(updated, key));
            if let Some(story) = self.stories.remove(&key) {
                self.unindex(key, &story);
            }
        }
    }

    /// Snapshot of every active story's heaviest centroid terms (for persistence or debugging).
    pub fn snapshot(&self, max_terms: usize) -> Vec<StorySnapshot> {
        let mut out: Vec<StorySnapshot> = self
            .stories
            .iter()
            .map(|(key, story)| {
                let mut terms: Vec<(String, f32)> = story
                    .centroid
                    .iter()
                    .filter_map(|(t, w)| Some((self.terms.get(*t as usize)?.clone(), *w)))
                    .collect();
                terms.sort_by(|a, b| b.1.total_cmp(&a.1).then_with(|| a.0.cmp(&b.0)));
                terms.truncate(max_terms);
                StorySnapshot {
                    story: *key,
                    doc_count: story.doc_count,
                    last_updated: story.last_updated,
                    terms,
                }
            })
            .collect();
        out.sort_by_key(|s| s.story);
        out
    }

    /// Tokenises a document and records its terms in the document frequencies.
    fn learn(&mut self, doc: &ClusterDoc) -> DocTerms {
        let mut tf: HashMap<u32, f32> = HashMap::new();
        for token in tokenize(&doc.title) {
            *tf.entry(self.intern(&token)).or_default() += 1.0;
        }
        if let Some(summary) = &doc.summary {
            for token in tokenize(summary) {
                *tf.entry(self.intern(&token)).or_default() += self.config.summary_weight;
            }
        }
        let mut set: Vec<u32> = tf.keys().copied().collect();
        set.sort_unstable();
        for &t in &set {
            if let Some(df) = self.df.get_mut(t as usize) {
                *df += 1;
            }
        }
        self.docs_seen += 1;
        DocTerms { tf, set }
    }

    fn intern(&mut self, token: &str) -> u32 {
        if let Some(&id) = self.vocab.get(token) {
            return id;
        }
        let id = u32::try_from(self.terms.len()).unwrap_or(u32::MAX);
        self.vocab.insert(token.to_owned(), id);
        self.terms.push(token.to_owned());
        self.df.push(0);
        id
    }

    fn idf(&self, term: u32) -> f32 {
        let df = self.df.get(term as usize).copied().unwrap_or(0) as f32;
        ((self.docs_seen as f32 + 1.0) / (df + 0.5)).ln().max(0.0)
    }

    /// L2-normalised TF-IDF vector of a document.
    fn query_vector(&self, terms: &DocTerms) -> HashMap<u32, f32> {
        let mut v: HashMap<u32, f32> = terms
            .tf
            .iter()
            .map(|(&t, &f)| (t, f * self.idf(t)))
            .collect();
        let norm = v.values().map(|w| w * w).sum::<f32>().sqrt();
        if norm > 0.0 {
            v.values_mut().for_each(|w| *w /= norm);
        }
        v
    }

    fn candidates(&self, terms: &DocTerms) -> HashSet<StoryKey> {
        terms
            .set
            .iter()
            .filter_map(|t| self.postings.get(t))
            .flat_map(|keys| keys.iter().copied())
            .collect()
    }

    /// Centroid weights under the current IDF, with their L2 norm.
    fn weighted_centroid(&self, story: &Story) -> (HashMap<u32, f32>, f32) {
        let weights: HashMap<u32, f32> = story
            .centroid
            .iter()
            .map(|(&t, &m)| (t, m * self.idf(t)))
            .collect();
        let norm = weights.values().map(|w| w * w).sum::<f32>().sqrt();
        (weights, norm)
    }

    fn cosine_to_centroid(&self, query: &HashMap<u32, f32>, story: &Story) -> f32 {
        let (weights, norm) = self.weighted_centroid(story);
        if norm == 0.0 {
            return 0.0;
        }
        query
            .iter()
            .map(|(t, q)| q * weights.get(t).copied().unwrap_or(0.0))
            .sum::<f32>()
            / norm
    }

    fn centroid_cosine(&self, a: StoryKey, b: StoryKey) -> f32 {
        let (Some(a), Some(b)) = (self.stories.get(&a), self.stories.get(&b)) else {
            return 0.0;
        };
        let (wa, na) = self.weighted_centroid(a);
        let (wb, nb) = self.weighted_centroid(b);
        if na == 0.0 || nb == 0.0 {
            return 0.0;
        }
        wa.iter()
            .map(|(t, x)| x * wb.get(t).copied().unwrap_or(0.0))
            .sum::<f32>()
            / (na * nb)
    }

    /// Highest token Jaccard with a recent document of the story, if it reaches the near-duplicate bar.
    fn near_duplicate(&self, terms: &DocTerms, story: &Story) -> f32 {
        if terms.set.len() < 3 {
            return 0.0;
        }
        let best = story
            .recent
            .iter()
            .map(|other| jaccard(&terms.set, other))
            .fold(0.0, f32::max);
        if best >= self.config.near_duplicate_jaccard {
            best
        } else {
            0.0
        }
    }

    /// 1 within the grace period after the story's last update, then halving every half-life.
    fn decay(&self, story: &Story, at: DateTime<Utc>) -> f32 {
        let hours = (at - story.last_updated).num_seconds() as f32 / 3600.0;
        let beyond = hours - self.config.decay_grace_hours;
        if beyond <= 0.0 || self.config.decay_half_life_hours <= 0.0 {
            1.0
        } else {
            0.5_f32.powf(beyond / self.config.decay_half_life_hours)
        }
    }

    fn add_to_story(&mut self, key: StoryKey, terms: &DocTerms, at: DateTime<Utc>) {
        let total: f32 = terms.tf.values().sum();
        let story = self.stories.entry(key).or_insert_with(|| Story {
            centroid: HashMap::new(),
            doc_count: 0,
            last_updated: at,
            recent: VecDeque::new(),
        });
        let previous_update = story.last_updated;
        if total > 0.0 {
            for (&t, &f) in &terms.tf {
                *story.centroid.entry(t).or_default() += f / total;
            }
        }
        story.doc_count += 1;
        story.last_updated = story.last_updated.max(at);
        story.recent.push_back(terms.set.clone());
        while story.recent.len() > self.config.recent_docs_per_story {
            story.recent.pop_front();
        }
        let pruned = prune(&mut story.centroid, self.config.max_centroid_terms);
        let updated = story.last_updated;
        self.by_update.remove(&(previous_update, key));
        self.by_update.insert((updated, key));
        for t in pruned {
            if let Some(keys) = self.postings.get_mut(&t) {
                keys.remove(&key);
            }
        }
        for &t in &terms.set {
            if self
                .stories
                .get(&key)
                .is_some_and(|s| s.centroid.contains_key(&t))
            {
                self.postings.entry(t).or_default().insert(key);
            }
        }
    }

    /// Moves story `from` into story `into`.
    fn merge(&mut self, into: StoryKey, from: StoryKey) {
        let Some(absorbed) = self.stories.remove(&from) else {
            return;
        };
        self.unindex(from, &absorbed);
        self.by_update.remove(&(absorbed.last_updated, from));
        let Some(story) = self.stories.get_mut(&into) else {
            return;
        };
        let previous_update = story.last_updated;
        for (t, m) in absorbed.centroid {
            *story.centroid.entry(t).or_default() += m;
        }
        story.doc_count += absorbed.doc_count;
        story.last_updated = story.last_updated.max(absorbed.last_updated);
        story.recent.extend(absorbed.recent);
        while story.recent.len() > self.config.recent_docs_per_story {
            story.recent.pop_front();
        }
        let pruned = prune(&mut story.centroid, self.config.max_centroid_terms);
        let terms: Vec<u32> = story.centroid.keys().copied().collect();
        let updated = story.last_updated;
        self.by_update.remove(&(previous_update, into));
        self.by_update.insert((updated, into));
        for t in pruned {
            if let Some(keys) = self.postings.get_mut(&t) {
                keys.remove(&into);
            }
        }
        for t in terms {
            self.postings.entry(t).or_default().insert(into);
        }
    }

    fn unindex(&mut self, key: StoryKey, story: &Story) {
        for t in story.centroid.keys() {
            if let Some(keys) = self.postings.get_mut(t) {
                keys.remove(&key);
                if keys.is_empty() {
                    self.postings.remove(t);
                }
            }
        }
    }
}

/// Keeps the `cap` heaviest centroid terms (pruning only once the centroid is well over the cap), returning the dropped ones.
fn prune(centroid: &mut HashMap<u32, f32>, cap: usize) -> Vec<u32> {
    if cap == 0 || centroid.len() <= cap + cap / 2 {
        return Vec::new();
    }
    let mut entries: Vec<(u32, f32)> = centroid.iter().map(|(&t, &m)| (t, m)).collect();
    entries.sort_by(|a, b| b.1.total_cmp(&a.1).then(a.0.cmp(&b.0)));
    let dropped: Vec<u32> = entries[cap..].iter().map(|(t, _)| *t).collect();
    for t in &dropped {
        centroid.remove(t);
    }
    dropped
}

fn jaccard(a: &[u32], b: &[u32]) -> f32 {
    let (mut i, mut j, mut common) = (0, 0, 0usize);
    while i < a.len() && j < b.len() {
        match a[i].cmp(&b[j]) {
            std::cmp::Ordering::Less => i += 1,
            std::cmp::Ordering::Greater => j += 1,
            std::cmp::Ordering::Equal => {
                common += 1;
                i += 1;
                j += 1;
            }
        }
    }
    let union = a.len() + b.len() - common;
    if union == 0 {
        0.0
    } else {
        common as f32 / union as f32
    }
}

/// Words too common in headlines to say which story they belong to.
const STOPWORDS: &[&str] = &[
    "a", "an", "the", "and", "or", "but", "if", "of", "at", "by", "for", "with", "about",
    "against", "between", "into", "through", "during", "before", "after", "above", "below", "to",
    "from", "up", "down", "in", "out", "on", "off", "over", "under", "again", "further", "then",
    "once", "here", "there", "when", "where", "why", "how", "all", "any", "both", "each", "few",
    "more", "most", "other", "some", "such", "no", "nor", "not", "only", "own", "same", "so",
    "than", "too", "very", "can", "will", "just", "don", "should", "now", "is", "are", "was",
    "were", "be", "been", "being", "have", "has", "had", "having", "do", "does", "did", "doing",
    "i", "me", "my", "we", "our", "you", "your", "he", "him", "his", "she", "her", "it", "its",
    "they", "them", "their", "what", "which", "who", "whom", "this", "that", "these", "those",
    "am", "says", "said", "say", "new", "video", "watch", "update", "report", "reports", "via",
    "vs", "us", "amp", "http", "www", "com",
];

/// Normalised tokens of a headline or summary: lowercased, punctuation-trimmed, possessives and
/// plurals folded, stopwords and one-letter tokens dropped.
pub fn tokenize(text: &str) -> Vec<String> {
    let text = unescape_backslashes(text).to_lowercase().replace('’', "'");
    let mut out = Vec::new();
    let mut current = String::new();
    let flush = |word: &mut String, out: &mut Vec<String>| {
        if !word.is_empty() {
            let token = fold(word.trim_matches(['.', '\'']));
            if token.chars().count() >= 2 && !STOPWORDS.contains(&token.as_str()) {
                out.push(token);
            }
            word.clear();
        }
    };
    for c in text.chars() {
        let starts = c.is_alphanumeric() || c == '$';
        let continues = starts || c == '\'' || c == '.';
        if (current.is_empty() && starts) || (!current.is_empty() && continues) {
            current.push(c);
        } else {
            flush(&mut current, &mut out);
        }
    }
    flush(&mut current, &mut out);
    out
}

/// Light stemming: possessive `'s` and plural endings folded.
fn fold(word: &str) -> String {
    let word = word.strip_suffix("'s").unwrap_or(word);
    let chars = word.chars().count();
    if chars > 4 && word.ends_with("ies") {
        return format!("{}y", &word[..word.len() - 3]);
    }
    if chars > 3 && word.ends_with('s') && !word.ends_with("ss") {
        return word[..word.len() - 1].to_owned();
    }
    word.to_owned()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn doc(id: &str, title: &str) -> ClusterDoc {
        ClusterDoc {
            id: id.into(),
            title: title.into(),
            summary: None,
            publisher: None,
            published_at: DateTime::from_timestamp(1_700_000_000, 0).unwrap_or_default(),
        }
    }

    #[test]
    fn tokenizes_and_folds() {
        assert_eq!(
            tokenize(r"McDonald's sales decline as Fed\'s stories \(blog\) hit $1.8B"),
            vec![
                "mcdonald", "sale", "decline", "as", "fed", "story", "blog", "hit", "$1.8b"
            ]
        );
    }

    #[test]
    fn jaccard_counts_shared_terms() {
        assert!((jaccard(&[1, 2, 3], &[2, 3, 4]) - 0.5).abs() < 1e-6);
        assert_eq!(jaccard(&[], &[]), 0.0);
    }

    #[test]
    fn expired_stories_leave_the_index() {
        let mut c = StoryClusterer::new(ClusterConfig::default());
        let first = c.assign(&doc("1", "Volcano erupts in Iceland"));
        let mut later = doc("2", "Volcano erupts in Iceland again");
        later.published_at += Duration::hours(100);
        let second = c.assign(&later);
        assert!(second.is_new_story);
        assert_ne!(first.story, second.story);
        assert_eq!(c.active_stories(), 1);
    }

    #[test]
    fn restore_rebuilds_a_story() {
        let mut c = StoryClusterer::new(ClusterConfig::default());
        let key = Uuid::now_v7();
        c.restore(
            key,
            &[doc("1", "Men's Wearhouse to buy Jos A Bank for $1.8B")],
        );
        for filler in [
            "Snowden speaks at SXSW",
            "Lena Dunham hosts SNL",
            "Colorado pot tax revenue",
        ] {
            c.assign(&doc("f", filler));
        }
        let a = c.assign(&doc("2", "Men's Wearhouse buying Jos. A. Bank"));
        assert_eq!(a.story, key);
        assert!(!a.is_new_story);
        assert_eq!(c.snapshot(5).len(), 4);
    }
}
