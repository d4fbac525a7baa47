//! Online, incremental story clustering of headlines.
//!
//! Each document becomes a sparse vector of features: normalised word tokens (lowercased,
//! stopwords removed, possessives and plurals folded, optionally cut to a stem prefix) and
//! adjacent-word bigrams. Features are weighted by an inverse document frequency learned from the
//! stream (smoothed by a prior of pseudo-documents so that the first documents are not all
//! "rare", and decayed so that frequencies track the recent stream), by an online estimate of how
//! often a word is capitalised mid-sentence (names and places weigh more), and by kind (numbers,
//! bigrams). A document's similarity to an active story blends the cosine to the story centroid
//! with its mean cosine to the story's most similar recent members (average link); a story holding
//! a near-duplicate (token Jaccard) also qualifies. The document joins the best story reaching the
//! threshold, or starts a new one. Candidate stories come from an inverted index term → active
//! stories, so assignment never scans every story. Bigger stories admit looser matches (a bonus
//! per log of their size), down to a floor. After a join, other candidate stories whose centroids
//! have converged with the joined story's, and which hold a recent member close to one of its
//! recent members, merge into it (a running second pass that repairs early, cold-start splits
//! without letting one shared word bridge two stories). A trailing credit naming the publisher
//! is dropped from the title. Stories not updated within the window expire from memory;
//! the vocabulary is compacted when it outgrows its bound; [`StoryClusterer::restore`] rebuilds
//! stories from stored articles after a restart.

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
    /// Minimum similarity (blend of centroid and member cosine) between a document and a story to join it.
    pub threshold: f32,
    /// Minimum centroid–centroid cosine for two candidate stories of one document to merge; `None` disables merging.
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
    /// Recent documents per story kept for member similarity and near-duplicate checks.
    pub recent_docs_per_story: usize,
    /// Weight of an adjacent-word bigram relative to a word (0 disables bigrams).
    pub bigram_weight: f32,
    /// Extra weight of a word in proportion to how often it is seen capitalised mid-sentence (names).
    pub entity_boost: f32,
    /// Weight multiplier of tokens holding a digit (amounts, flight numbers).
    pub number_weight: f32,
    /// Words longer than this are cut to this many characters (a prefix stemmer); 0 keeps whole words.
    pub stem_prefix: usize,
    /// Pseudo-documents of the IDF prior: smooths document frequencies while few documents are seen.
    pub idf_prior_docs: f32,
    /// Pseudo document frequency of every term under the IDF prior.
    pub idf_prior_df: f32,
    /// Share of the member (average-link) cosine in the similarity; the rest is the centroid cosine.
    pub member_link_weight: f32,
    /// Number of most similar recent members averaged for the member cosine.
    pub member_link_k: usize,
    /// Candidate stories (best first) examined for a merge after each join.
    pub merge_candidates: usize,
    /// Minimum document similarity of a candidate story for it to be examined for a merge.
    pub merge_min_similarity: f32,
    /// Subtracted from a story's join threshold per natural-log unit of its size (broad, established stories admit looser matches).
    pub join_size_bonus: f32,
    /// Two stories merge only if some recent member of one has at least this cosine with a recent
    /// member of the other (0 disables the check).
    pub merge_member_similarity: f32,
    /// Lowest similarity a document needs to join any story, however big (caps the size bonus).
    pub join_threshold_floor: f32,
    /// Added to the merge threshold per natural-log unit of the smaller story's size (big stories merge reluctantly).
    pub merge_size_penalty: f32,
    /// Half-life, in documents, of document frequencies (0 disables decay).
    pub df_half_life_docs: f32,
    /// Vocabulary size that triggers compaction (terms unused by active stories and rare are dropped).
    pub max_vocabulary: usize,
}

impl Default for ClusterConfig {
    /// Tuned on evaluation seeds 1–10 (see `EVALUATION.md`); reported on other seeds.
    fn default() -> Self {
        Self {
            window_hours: 48,
            threshold: 0.24,
            merge_threshold: Some(0.12),
            near_duplicate_jaccard: 0.6,
            decay_grace_hours: 24.0,
            decay_half_life_hours: 12.0,
            max_centroid_terms: 200,
            summary_weight: 0.5,
            recent_docs_per_story: 32,
            bigram_weight: 0.3,
            entity_boost: 0.3,
            number_weight: 0.7,
            stem_prefix: 7,
            idf_prior_docs: 0.0,
            idf_prior_df: 0.5,
            member_link_weight: 0.2,
            member_link_k: 2,
            merge_candidates: 8,
            merge_min_similarity: 0.2,
            merge_size_penalty: 0.03,
            join_size_bonus: 0.04,
            join_threshold_floor: 0.06,
            merge_member_similarity: 0.25,
            df_half_life_docs: 20_000.0,
            max_vocabulary: 200_000,
        }
    }
}

impl ClusterConfig {
    /// Sets a tuning field by name (for evaluation sweeps), e.g. `("bigram_weight", "0.5")`.
    pub fn set(&mut self, name: &str, value: &str) -> Result<(), String> {
        fn num<T: std::str::FromStr>(v: &str) -> Result<T, String> {
            v.parse::<T>().map_err(|_| format!("bad value {v:?}"))
        }
        match name {
            "window_hours" => self.window_hours = num(value)?,
            "threshold" => self.threshold = num(value)?,
            "merge_threshold" if value == "none" => self.merge_threshold = None,
            "merge_threshold" => self.merge_threshold = Some(num(value)?),
            "near_duplicate_jaccard" => self.near_duplicate_jaccard = num(value)?,
            "decay_grace_hours" => self.decay_grace_hours = num(value)?,
            "decay_half_life_hours" => self.decay_half_life_hours = num(value)?,
            "max_centroid_terms" => self.max_centroid_terms = num(value)?,
            "summary_weight" => self.summary_weight = num(value)?,
            "recent_docs_per_story" => self.recent_docs_per_story = num(value)?,
            "bigram_weight" => self.bigram_weight = num(value)?,
            "entity_boost" => self.entity_boost = num(value)?,
            "number_weight" => self.number_weight = num(value)?,
            "stem_prefix" => self.stem_prefix = num(value)?,
            "idf_prior_docs" => self.idf_prior_docs = num(value)?,
            "idf_prior_df" => self.idf_prior_df = num(value)?,
            "member_link_weight" => self.member_link_weight = num(value)?,
            "member_link_k" => self.member_link_k = num(value)?,
            "merge_candidates" => self.merge_candidates = num(value)?,
            "merge_min_similarity" => self.merge_min_similarity = num(value)?,
            "join_size_bonus" => self.join_size_bonus = num(value)?,
            "join_threshold_floor" => self.join_threshold_floor = num(value)?,
            "merge_member_similarity" => self.merge_member_similarity = num(value)?,
            "merge_size_penalty" => self.merge_size_penalty = num(value)?,
            "df_half_life_docs" => self.df_half_life_docs = num(value)?,
            "max_vocabulary" => self.max_vocabulary = num(value)?,
            _ => return Err(format!("unknown setting {name:?}")),
        }
        Ok(())
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

/// A recent member document: raw feature frequencies (sorted by term) and its distinct word terms.
#[derive(Debug, Clone)]
struct Member {
    tf: Vec<(u32, f32)>,
    set: Vec<u32>,
}

#[derive(Debug, Clone)]
struct Story {
    centroid: HashMap<u32, f32>,
    doc_count: u32,
    last_updated: DateTime<Utc>,
    recent: VecDeque<Member>,
}

/// What a feature is, which sets its weight multiplier.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Kind {
    Word,
    Number,
    Bigram,
}

/// Statistics of one vocabulary term.
#[derive(Debug, Clone)]
struct TermStats {
    kind: Kind,
    /// Document frequency in raw (growing-increment) units; divide by `increment` for documents.
    df: f64,
    /// Mid-sentence occurrences capitalised, in sentence-case headlines.
    capitalised: f32,
    /// Mid-sentence occurrences in lower case, in sentence-case headlines.
    lowercase: f32,
}

/// The online story clusterer (one per process; not thread-safe by itself).
#[derive(Debug, Clone)]
pub struct StoryClusterer {
    config: ClusterConfig,
    vocab: HashMap<String, u32>,
    terms: Vec<String>,
    stats: Vec<TermStats>,
    /// Decayed number of documents seen, in raw units.
    docs_seen: f64,
    /// Current raw weight of one document (grows to implement decay without touching every term).
    increment: f64,
    /// Vocabulary size at which the next compaction runs.
    compact_at: usize,
    stories: HashMap<StoryKey, Story>,
    postings: HashMap<u32, HashSet<StoryKey>>,
    by_update: BTreeSet<(DateTime<Utc>, StoryKey)>,
}

/// A document after tokenisation: weighted feature frequencies and its distinct word terms.
struct DocTerms {
    tf: HashMap<u32, f32>,
    set: Vec<u32>,
}

impl DocTerms {
    fn member(&self) -> Member {
        let mut tf: Vec<(u32, f32)> = self.tf.iter().map(|(&t, &f)| (t, f)).collect();
        tf.sort_unstable_by_key(|e| e.0);
        Member {
            tf,
            set: self.set.clone(),
        }
    }
}

impl StoryClusterer {
    /// Creates an empty clusterer.
    pub fn new(config: ClusterConfig) -> Self {
        let compact_at = config.max_vocabulary;
        Self {
            config,
            vocab: HashMap::new(),
            terms: Vec::new(),
            stats: Vec::new(),
            docs_seen: 0.0,
            increment: 1.0,
            compact_at,
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

        let floor = self.config.join_threshold_floor;
        let mut scored: Vec<(f32, StoryKey)> = self
            .candidates(&terms)
            .into_iter()
            .filter_map(|key| {
                let story = self.stories.get(&key)?;
                let similarity = self.similarity(&query, story);
                let duplicate = self.near_duplicate(&terms, story);
                let score = similarity.max(duplicate) * self.decay(story, doc.published_at);
                // Normalise to the story's own bar so that one threshold applies to all stories;
                // the bar never drops below the floor, or a big story would take in anything.
                let bonus = self.config.join_size_bonus * (story.doc_count.max(1) as f32).ln();
                let bonus = bonus.min((self.config.threshold - floor).max(0.0));
                Some((score + bonus, key))
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
            for &(score, other) in scored.iter().skip(1).take(self.config.merge_candidates) {
                if score < self.config.merge_min_similarity {
                    break;
                }
                if self.centroid_cosine(best, other) >= self.merge_bar(merge_threshold, best, other)
                    && self.closest_members(best, other) >= self.config.merge_member_similarity
                {
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

    /// Number of terms in the vocabulary (bounded by compaction).
    pub fn vocabulary_size(&self) -> usize {
        self.terms.len()
    }

    /// Tokenises a document and records its terms in the document frequencies.
    fn learn(&mut self, doc: &ClusterDoc) -> DocTerms {
        let mut tf: HashMap<u32, f32> = HashMap::new();
        let mut words: HashSet<u32> = HashSet::new();
        let title = strip_publisher_suffix(&doc.title, doc.publisher.as_deref());
        self.add_text(title, 1.0, &mut tf, &mut words);
        if let Some(summary) = &doc.summary {
            let weight = self.config.summary_weight;
            self.add_text(summary, weight, &mut tf, &mut words);
        }
        if self.config.df_half_life_docs > 0.0 {
            self.increment *= 2f64.powf(1.0 / f64::from(self.config.df_half_life_docs));
        }
        let increment = self.increment;
        for &t in tf.keys() {
            if let Some(stats) = self.stats.get_mut(t as usize) {
                stats.df += increment;
            }
        }
        self.docs_seen += increment;
        if self.increment > 1e12 {
            self.rescale();
        }
        let mut set: Vec<u32> = words.into_iter().collect();
        set.sort_unstable();
        let mut terms = DocTerms { tf, set };
        if self.terms.len() > self.compact_at {
            self.compact(&mut terms);
        }
        terms
    }

    /// Adds the features of one text (title or summary) with `weight`.
    fn add_text(
        &mut self,
        text: &str,
        weight: f32,
        tf: &mut HashMap<u32, f32>,
        words: &mut HashSet<u32>,
    ) {
        let (tokens, sentence_case) = case_tokens(text);
        let mut previous: Option<String> = None;
        for token in &tokens {
            let stem = stem(&token.word, self.config.stem_prefix);
            let kind = if stem.chars().any(|c| c.is_ascii_digit()) {
                Kind::Number
            } else {
                Kind::Word
            };
            let id = self.intern(&stem, kind);
            if sentence_case
                && !token.first
                && kind == Kind::Word
                && let Some(stats) = self.stats.get_mut(id as usize)
            {
                if token.capitalised {
                    stats.capitalised += 1.0;
                } else {
                    stats.lowercase += 1.0;
                }
            }
            *tf.entry(id).or_default() += weight;
            words.insert(id);
            if self.config.bigram_weight > 0.0
                && let Some(prev) = &previous
            {
                let bigram = format!("{prev} {stem}");
                let id = self.intern(&bigram, Kind::Bigram);
                *tf.entry(id).or_default() += weight * self.config.bigram_weight;
            }
            previous = Some(stem);
        }
    }

    fn intern(&mut self, token: &str, kind: Kind) -> u32 {
        if let Some(&id) = self.vocab.get(token) {
            return id;
        }
        let id = u32::try_from(self.terms.len()).unwrap_or(u32::MAX);
        self.vocab.insert(token.to_owned(), id);
        self.terms.push(token.to_owned());
        self.stats.push(TermStats {
            kind,
            df: 0.0,
            capitalised: 0.0,
            lowercase: 0.0,
        });
        id
    }

    /// Brings raw frequencies back to document units so the growing increment never overflows.
    fn rescale(&mut self) {
        let scale = self.increment;
        for stats in &mut self.stats {
            stats.df /= scale;
        }
        self.docs_seen /= scale;
        self.increment = 1.0;
    }

    /// Drops terms neither used by an active story nor among the most frequent, renumbering the rest.
    fn compact(&mut self, current: &mut DocTerms) {
        let n = self.terms.len();
        let mut keep = vec![false; n];
        let mut mark = |t: u32| {
            if let Some(k) = keep.get_mut(t as usize) {
                *k = true;
            }
        };
        for story in self.stories.values() {
            story.centroid.keys().for_each(|&t| mark(t));
            for member in &story.recent {
                member.tf.iter().for_each(|&(t, _)| mark(t));
            }
        }
        current.tf.keys().for_each(|&t| mark(t));
        let kept = keep.iter().filter(|k| **k).count();
        let room = (self.config.max_vocabulary / 2).saturating_sub(kept);
        let mut rest: Vec<usize> = (0..n).filter(|&t| !keep[t]).collect();
        rest.sort_by(|&a, &b| {
            self.stats[b]
                .df
                .total_cmp(&self.stats[a].df)
                .then(a.cmp(&b))
        });
        for &t in rest.iter().take(room) {
            keep[t] = true;
        }

        let mut remap: Vec<Option<u32>> = vec![None; n];
        let mut terms = Vec::new();
        let mut stats = Vec::new();
        for t in 0..n {
            if keep[t] {
                remap[t] = u32::try_from(terms.len()).ok();
                terms.push(std::mem::take(&mut self.terms[t]));
                stats.push(self.stats[t].clone());
            }
        }
        let map = |t: u32| remap.get(t as usize).copied().flatten();
        self.vocab = terms
            .iter()
            .enumerate()
            .filter_map(|(i, s)| Some((s.clone(), u32::try_from(i).ok()?)))
            .collect();
        self.terms = terms;
        self.stats = stats;
        self.postings.clear();
        for (&key, story) in &mut self.stories {
            story.centroid = story
                .centroid
                .iter()
                .filter_map(|(&t, &m)| Some((map(t)?, m)))
                .collect();
            for member in &mut story.recent {
                member.tf = member
                    .tf
                    .iter()
                    .filter_map(|&(t, f)| Some((map(t)?, f)))
                    .collect();
                member.tf.sort_unstable_by_key(|e| e.0);
                member.set = member.set.iter().filter_map(|&t| map(t)).collect();
                member.set.sort_unstable();
            }
            for &t in story.centroid.keys() {
                self.postings.entry(t).or_default().insert(key);
            }
        }
        current.tf = current
            .tf
            .iter()
            .filter_map(|(&t, &f)| Some((map(t)?, f)))
            .collect();
        current.set = current.set.iter().filter_map(|&t| map(t)).collect();
        current.set.sort_unstable();
        // Terms in use can exceed the bound; wait for half a bound of new terms before compacting again.
        self.compact_at = self
            .config
            .max_vocabulary
            .max(self.terms.len() + self.config.max_vocabulary / 2);
    }

    /// Weight of one unit of a term: smoothed IDF times its kind's multiplier.
    fn weight(&self, term: u32) -> f32 {
        let Some(stats) = self.stats.get(term as usize) else {
            return 0.0;
        };
        let docs = (self.docs_seen / self.increment) as f32;
        let df = (stats.df / self.increment) as f32;
        let c = &self.config;
        let idf = ((docs + c.idf_prior_docs + 1.0) / (df + c.idf_prior_df))
            .ln()
            .max(0.0);
        let kind = match stats.kind {
            Kind::Word => {
                let seen = stats.capitalised + stats.lowercase;
                1.0 + c.entity_boost * stats.capitalised / (seen + 1.0)
            }
            Kind::Number => c.number_weight,
            Kind::Bigram => 1.0,
        };
        idf * kind
    }

    /// L2-normalised weighted vector of a document.
    fn query_vector(&self, terms: &DocTerms) -> HashMap<u32, f32> {
        let mut v: HashMap<u32, f32> = terms
            .tf
            .iter()
            .map(|(&t, &f)| (t, f * self.weight(t)))
            .collect();
        let norm = v.values().map(|w| w * w).sum::<f32>().sqrt();
        if norm > 0.0 {
            v.values_mut().for_each(|w| *w /= norm);
        }
        v
    }

    fn candidates(&self, terms: &DocTerms) -> HashSet<StoryKey> {
        terms
            .tf
            .keys()
            .filter_map(|t| self.postings.get(t))
            .flat_map(|keys| keys.iter().copied())
            .collect()
    }

    /// Blend of the centroid cosine and the mean cosine to the most similar recent members.
    fn similarity(&self, query: &HashMap<u32, f32>, story: &Story) -> f32 {
        let centroid = self.cosine_to_centroid(query, story);
        let link = self.config.member_link_weight;
        if link <= 0.0 || self.config.member_link_k == 0 || story.recent.is_empty() {
            return centroid;
        }
        let mut cosines: Vec<f32> = story
            .recent
            .iter()
            .map(|m| self.cosine_to_member(query, m))
            .collect();
        cosines.sort_by(|a, b| b.total_cmp(a));
        cosines.truncate(self.config.member_link_k);
        let members = cosines.iter().sum::<f32>() / cosines.len() as f32;
        (1.0 - link) * centroid + link * members
    }

    fn cosine_to_member(&self, query: &HashMap<u32, f32>, member: &Member) -> f32 {
        let (mut dot, mut norm) = (0.0f32, 0.0f32);
        for &(t, f) in &member.tf {
            let w = f * self.weight(t);
            norm += w * w;
            dot += w * query.get(&t).copied().unwrap_or(0.0);
        }
        if norm > 0.0 { dot / norm.sqrt() } else { 0.0 }
    }

    /// Highest cosine between a recent member of story `a` and one of story `b` (0 if disabled).
    fn closest_members(&self, a: StoryKey, b: StoryKey) -> f32 {
        if self.config.merge_member_similarity <= 0.0 {
            return 0.0;
        }
        let (Some(a), Some(b)) = (self.stories.get(&a), self.stories.get(&b)) else {
            return 0.0;
        };
        a.recent
            .iter()
            .map(|m| {
                let mut v: HashMap<u32, f32> =
                    m.tf.iter().map(|&(t, f)| (t, f * self.weight(t))).collect();
                let norm = v.values().map(|w| w * w).sum::<f32>().sqrt();
                if norm > 0.0 {
                    v.values_mut().for_each(|w| *w /= norm);
                }
                b.recent
                    .iter()
                    .map(|n| self.cosine_to_member(&v, n))
                    .fold(0.0, f32::max)
            })
            .fold(0.0, f32::max)
    }

    /// Centroid weights under the current term weights, with their L2 norm.
    fn weighted_centroid(&self, story: &Story) -> (HashMap<u32, f32>, f32) {
        let weights: HashMap<u32, f32> = story
            .centroid
            .iter()
            .map(|(&t, &m)| (t, m * self.weight(t)))
            .collect();
        let norm = weights.values().map(|w| w * w).sum::<f32>().sqrt();
        (weights, norm)
    }

    fn cosine_to_centroid(&self, query: &HashMap<u32, f32>, story: &Story) -> f32 {
        let (mut dot, mut norm) = (0.0f32, 0.0f32);
        for (&t, &m) in &story.centroid {
            let w = m * self.weight(t);
            norm += w * w;
            dot += w * query.get(&t).copied().unwrap_or(0.0);
        }
        if norm > 0.0 { dot / norm.sqrt() } else { 0.0 }
    }

    /// Centroid cosine two stories need to merge: the threshold, raised with the smaller story's size.
    fn merge_bar(&self, threshold: f32, a: StoryKey, b: StoryKey) -> f32 {
        let size = |k: StoryKey| self.stories.get(&k).map_or(1, |s| s.doc_count);
        let smaller = size(a).min(size(b)).max(1) as f32;
        threshold + self.config.merge_size_penalty * smaller.ln()
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
            .map(|other| jaccard(&terms.set, &other.set))
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
        story.recent.push_back(terms.member());
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
        for &t in terms.tf.keys() {
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

/// Drops a trailing ` - Publisher…` credit from a headline (e.g. `Stocks end lower - WBOC-TV 16,
/// Delmarva's News …`): the part after the last dash separator, when it names the publisher.
fn strip_publisher_suffix<'a>(title: &'a str, publisher: Option<&str>) -> &'a str {
    let Some(publisher) = publisher else {
        return title;
    };
    let Some((head, tail)) = [" - ", " – ", " — ", " | "]
        .iter()
        .filter_map(|sep| title.rsplit_once(sep))
        .max_by_key(|(head, _)| head.len())
    else {
        return title;
    };
    let tail = tail.to_lowercase();
    let names_publisher = tokenize(publisher)
        .iter()
        .filter(|w| w.chars().count() >= 3)
        .any(|w| tail.contains(w.as_str()));
    if names_publisher && !head.trim().is_empty() {
        head.trim_end()
    } else {
        title
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

/// A kept token of a text with the case it was written in.
struct CaseToken {
    word: String,
    capitalised: bool,
    first: bool,
}

/// Kept tokens of a text (as [`tokenize`]) with their written case, and whether the text is in
/// sentence case (most words after the first in lower case), where capitals mark names.
fn case_tokens(text: &str) -> (Vec<CaseToken>, bool) {
    let text = unescape_backslashes(text).replace('’', "'");
    let mut out = Vec::new();
    let (mut words, mut capitals) = (0usize, 0usize);
    let mut current = String::new();
    let mut flush = |word: &mut String, out: &mut Vec<CaseToken>| {
        if word.is_empty() {
            return;
        }
        let first_char = word.chars().next();
        let capitalised = first_char.is_some_and(char::is_uppercase);
        let first = words == 0;
        if first_char.is_some_and(char::is_alphabetic) {
            if !first {
                capitals += usize::from(capitalised);
            }
            words += 1;
        }
        let lower = word.to_lowercase();
        let token = fold(lower.trim_matches(['.', '\'']));
        if token.chars().count() >= 2 && !STOPWORDS.contains(&token.as_str()) {
            out.push(CaseToken {
                word: token,
                capitalised,
                first,
            });
        }
        word.clear();
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
    let sentence_case = words >= 4 && capitals * 2 < words - 1;
    (out, sentence_case)
}

/// Normalised tokens of a headline or summary: lowercased, punctuation-trimmed, possessives and
/// plurals folded, stopwords and one-letter tokens dropped.
pub fn tokenize(text: &str) -> Vec<String> {
    case_tokens(text).0.into_iter().map(|t| t.word).collect()
}

/// Cuts an alphabetic word to its first `prefix` characters (0 keeps it whole).
fn stem(word: &str, prefix: usize) -> String {
    if prefix == 0 || !word.chars().all(char::is_alphabetic) {
        return word.to_owned();
    }
    word.chars().take(prefix).collect()
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
    fn vocabulary_stays_bounded_and_stories_survive_compaction() {
        let config = ClusterConfig {
            max_vocabulary: 64,
            ..ClusterConfig::default()
        };
        let mut c = StoryClusterer::new(config);
        for i in 0..200 {
            c.assign(&doc("f", &format!("Filler{i} headline word{i} token{i}")));
        }
        // The fillers expire, so their terms can be dropped at the next compaction.
        let mut first = doc("a", "Men's Wearhouse to buy Jos A Bank for $1.8B");
        first.published_at += Duration::hours(60);
        let first = c.assign(&first);
        for i in 0..20 {
            let mut filler = doc("g", &format!("Later{i} headline other{i} thing{i}"));
            filler.published_at += Duration::hours(60);
            c.assign(&filler);
        }
        // The 200 expired fillers alone held about 800 terms.
        assert!(c.vocabulary_size() < 300, "{}", c.vocabulary_size());
        let mut again = doc("b", "Men's Wearhouse buying Jos. A. Bank for $1.8B");
        again.published_at += Duration::hours(61);
        let again = c.assign(&again);
        assert_eq!(again.story, first.story);
    }

    #[test]
    fn config_fields_are_settable_by_name() {
        let mut config = ClusterConfig::default();
        assert!(config.set("bigram_weight", "0.9").is_ok());
        assert!((config.bigram_weight - 0.9).abs() < 1e-6);
        assert!(config.set("merge_threshold", "none").is_ok());
        assert_eq!(config.merge_threshold, None);
        assert!(config.set("nonsense", "1").is_err());
        assert!(config.set("threshold", "x").is_err());
    }

    /// Merges every candidate whose centroid shares anything, unless the member gate `gate` refuses.
    fn one_word_bridge_merges(gate: f32) -> bool {
        let config = ClusterConfig {
            merge_threshold: Some(0.0),
            merge_min_similarity: 0.0,
            merge_size_penalty: 0.0,
            merge_member_similarity: gate,
            ..ClusterConfig::default()
        };
        let mut c = StoryClusterer::new(config);
        for title in [
            "Lena Dunham hosts Saturday Night Live",
            "Colorado collects millions in marijuana taxes",
            "Men's Wearhouse agrees to buy Jos A Bank",
            "Edward Snowden speaks at SXSW via video link",
            "Oil prices fall on weak China trade data",
            "GM faces questions over ignition switch recall",
        ] {
            c.assign(&doc("bg", title));
        }
        let airline = c.assign(&doc(
            "a",
            "American Airlines and JetBlue end interline ticketing partnership",
        ));
        let eagle = c.assign(&doc(
            "e1",
            "American Eagle Outfitters quarterly profit slumps on weak winter sales",
        ));
        assert!(eagle.is_new_story);
        let third = c.assign(&doc(
            "e2",
            "American Eagle Outfitters profit slumps, shares tumble",
        ));
        assert_eq!(third.story, eagle.story);
        third.merged.contains(&airline.story)
    }

    #[test]
    fn stories_sharing_one_word_do_not_merge_without_a_close_member_pair() {
        assert!(
            one_word_bridge_merges(0.0),
            "without the gate the bridge merges"
        );
        assert!(!one_word_bridge_merges(0.25));
    }

    #[test]
    fn publisher_credit_is_stripped_from_the_title() {
        assert_eq!(
            strip_publisher_suffix(
                "Stocks end lower on China worries - WBOC-TV 16, Delmarvas News  ...",
                Some("WBOC TV 16")
            ),
            "Stocks end lower on China worries"
        );
        assert_eq!(
            strip_publisher_suffix("Apple - the next chapter", Some("Reuters")),
            "Apple - the next chapter"
        );
        assert_eq!(strip_publisher_suffix("A - B", None), "A - B");
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
