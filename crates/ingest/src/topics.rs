//! Topic tagging: configured keyword matching, and a headline classifier for the four evaluation topics.

use std::collections::HashMap;

use crate::cluster::tokenize;
use crate::text::unescape_backslashes;

/// Matches configured topic keywords (whole words or phrases, case-insensitive) in a title and summary.
#[derive(Debug, Clone)]
pub struct TopicMatcher {
    topics: Vec<(String, Vec<Vec<String>>)>,
}

impl TopicMatcher {
    /// Builds a matcher from `(slug, keywords)` pairs; a keyword of several words is a phrase.
    pub fn new<S, K>(topics: impl IntoIterator<Item = (S, K)>) -> Self
    where
        S: Into<String>,
        K: IntoIterator,
        K::Item: AsRef<str>,
    {
        let topics = topics
            .into_iter()
            .map(|(slug, keywords)| {
                let phrases = keywords
                    .into_iter()
                    .map(|k| words(k.as_ref()))
                    .filter(|p| !p.is_empty())
                    .collect();
                (slug.into(), phrases)
            })
            .collect();
        Self { topics }
    }

    /// Slugs whose keywords occur in `title` or `summary`, in configuration order.
    pub fn match_topics(&self, title: &str, summary: Option<&str>) -> Vec<String> {
        let title_words = words(title);
        let summary_words = summary.map(words).unwrap_or_default();
        self.topics
            .iter()
            .filter(|(_, phrases)| {
                phrases
                    .iter()
                    .any(|p| contains_phrase(&title_words, p) || contains_phrase(&summary_words, p))
            })
            .map(|(slug, _)| slug.clone())
            .collect()
    }
}

/// Lowercased words (letters, digits, and inner apostrophes/hyphens/dots) of a text.
fn words(text: &str) -> Vec<String> {
    unescape_backslashes(text)
        .to_lowercase()
        .replace('’', "'")
        .split(|c: char| {
            !(c.is_alphanumeric() || c == '\'' || c == '-' || c == '.' || c == '&' || c == '+')
        })
        .map(|w| w.trim_matches(|c: char| !c.is_alphanumeric()))
        .map(|w| w.strip_suffix("'s").unwrap_or(w))
        .filter(|w| !w.is_empty())
        .map(str::to_owned)
        .collect()
}

fn contains_phrase(haystack: &[String], phrase: &[String]) -> bool {
    !phrase.is_empty() && haystack.windows(phrase.len()).any(|w| w == phrase)
}

/// The four topics of the headline classifier.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum Topic {
    /// Business, markets, economy.
    Business,
    /// Science and technology.
    Technology,
    /// Entertainment, celebrities, film, music, TV.
    Entertainment,
    /// Health and medicine.
    Health,
}

impl Topic {
    /// All topics, in a fixed order.
    pub const ALL: [Topic; 4] = [
        Topic::Business,
        Topic::Technology,
        Topic::Entertainment,
        Topic::Health,
    ];

    /// Herald's topic slug.
    pub fn slug(self) -> &'static str {
        match self {
            Topic::Business => "business",
            Topic::Technology => "technology",
            Topic::Entertainment => "entertainment",
            Topic::Health => "health",
        }
    }

    /// Maps the aggregator's category letter (b, t, e, m) to a topic.
    pub fn from_category(code: &str) -> Option<Topic> {
        match code.trim() {
            "b" => Some(Topic::Business),
            "t" => Some(Topic::Technology),
            "e" => Some(Topic::Entertainment),
            "m" => Some(Topic::Health),
            _ => None,
        }
    }
}

/// Keyword stems per topic, written from domain knowledge (not learned from the evaluation data).
const KEYWORDS: &[(Topic, &[&str])] = &[
    (
        Topic::Business,
        &[
            "stock",
            "share",
            "market",
            "investor",
            "bank",
            "banking",
            "fed",
            "rate",
            "inflation",
            "economy",
            "economic",
            "growth",
            "gdp",
            "earning",
            "profit",
            "revenue",
            "sale",
            "deal",
            "merger",
            "acquisition",
            "buy",
            "bid",
            "ceo",
            "dow",
            "nasdaq",
            "s&p",
            "ftse",
            "nikkei",
            "bond",
            "yield",
            "dollar",
            "euro",
            "currency",
            "forex",
            "oil",
            "crude",
            "gas",
            "price",
            "trade",
            "tax",
            "billion",
            "million",
            "$",
            "retail",
            "retailer",
            "airline",
            "company",
            "firm",
            "business",
            "finance",
            "financial",
            "fund",
            "debt",
            "loan",
            "mortgage",
            "job",
            "unemployment",
            "wage",
            "export",
            "import",
            "sanction",
            "treasury",
            "ipo",
            "dividend",
            "quarter",
            "analyst",
            "shareholder",
            "board",
            "tariff",
            "yuan",
            "commodity",
            "gold",
            "wall",
            "regulator",
            "sec",
            "lawsuit",
            "settlement",
            "insurer",
            "restaurant",
        ],
    ),
    (
        Topic::Technology,
        &[
            "tech",
            "technology",
            "software",
            "app",
            "apple",
            "iphone",
            "ipad",
            "google",
            "android",
            "microsoft",
            "windows",
            "facebook",
            "twitter",
            "internet",
            "web",
            "online",
            "data",
            "privacy",
            "surveillance",
            "hack",
            "hacker",
            "cyber",
            "security",
            "computer",
            "chip",
            "smartphone",
            "phone",
            "mobile",
            "samsung",
            "amazon",
            "bitcoin",
            "startup",
            "science",
            "scientist",
            "study",
            "research",
            "space",
            "nasa",
            "planet",
            "climate",
            "species",
            "fossil",
            "dinosaur",
            "robot",
            "ai",
            "gadget",
            "device",
            "game",
            "xbox",
            "playstation",
            "sony",
            "netflix",
            "tesla",
            "electric",
            "recall",
            "car",
            "vehicle",
            "auto",
            "satellite",
            "telescope",
            "galaxy",
            "yahoo",
            "cloud",
            "wearable",
            "glass",
            "comet",
            "asteroid",
            "mars",
            "moon",
            "quake",
            "earthquake",
        ],
    ),
    (
        Topic::Entertainment,
        &[
            "movie",
            "film",
            "star",
            "actor",
            "actress",
            "celebrity",
            "singer",
            "music",
            "album",
            "song",
            "concert",
            "tour",
            "tv",
            "show",
            "series",
            "episode",
            "season",
            "oscar",
            "oscars",
            "grammy",
            "award",
            "hollywood",
            "box",
            "office",
            "premiere",
            "trailer",
            "director",
            "fan",
            "fans",
            "wedding",
            "married",
            "divorce",
            "baby",
            "pregnant",
            "dating",
            "boyfriend",
            "girlfriend",
            "kardashian",
            "bieber",
            "rapper",
            "band",
            "festival",
            "hbo",
            "netflix",
            "broadway",
            "comedy",
            "host",
            "red",
            "carpet",
            "fashion",
            "dress",
            "model",
            "royal",
            "prince",
            "princess",
            "kate",
            "book",
            "novel",
            "author",
            "theater",
            "theatre",
            "disney",
            "marvel",
            "sequel",
            "cast",
        ],
    ),
    (
        Topic::Health,
        &[
            "health",
            "medical",
            "medicine",
            "doctor",
            "hospital",
            "patient",
            "disease",
            "virus",
            "outbreak",
            "ebola",
            "flu",
            "cancer",
            "heart",
            "diabetes",
            "obesity",
            "vaccine",
            "vaccination",
            "measles",
            "hiv",
            "aids",
            "drug",
            "fda",
            "cdc",
            "who",
            "infection",
            "treatment",
            "therapy",
            "clinical",
            "trial",
            "surgery",
            "brain",
            "alzheimer",
            "autism",
            "mental",
            "depression",
            "diet",
            "nutrition",
            "exercise",
            "smoking",
            "cigarette",
            "e-cigarette",
            "tobacco",
            "pregnancy",
            "birth",
            "mers",
            "sars",
            "epidemic",
            "pandemic",
            "symptom",
            "gene",
            "genetic",
            "stem",
            "cell",
            "sleep",
            "weight",
            "calorie",
            "sugar",
        ],
    ),
];

/// Keyword-vote headline classifier for business / technology / entertainment / health.
#[derive(Debug, Clone)]
pub struct HeadlineClassifier {
    index: HashMap<String, Vec<Topic>>,
    fallback: Topic,
}

impl Default for HeadlineClassifier {
    fn default() -> Self {
        let mut index: HashMap<String, Vec<Topic>> = HashMap::new();
        for (topic, keywords) in KEYWORDS {
            for keyword in *keywords {
                let key = tokenize(keyword)
                    .into_iter()
                    .next()
                    .unwrap_or_else(|| (*keyword).to_owned());
                let topics = index.entry(key).or_default();
                if !topics.contains(topic) {
                    topics.push(*topic);
                }
            }
        }
        Self {
            index,
            fallback: Topic::Business,
        }
    }
}

impl HeadlineClassifier {
    /// Votes per topic for a headline (each matching keyword adds one vote to each of its topics).
    pub fn scores(&self, headline: &str) -> [f32; 4] {
        let mut scores = [0.0; 4];
        for token in tokenize(headline) {
            let dollar = token.starts_with('$');
            let key = if dollar { "$" } else { token.as_str() };
            for topic in self.index.get(key).into_iter().flatten() {
                scores[*topic as usize] += 1.0;
            }
        }
        scores
    }

    /// The topic with most votes; ties and no votes fall back to business, the broadest news desk.
    pub fn classify(&self, headline: &str) -> Topic {
        self.pick(self.scores(headline))
    }

    /// The topic with most votes among `scores` (as from [`HeadlineClassifier::scores`]).
    pub fn pick(&self, scores: [f32; 4]) -> Topic {
        let mut best = self.fallback;
        let mut best_score = 0.0;
        for topic in Topic::ALL {
            let score = scores[topic as usize];
            if score > best_score {
                best = topic;
                best_score = score;
            }
        }
        best
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn matches_words_and_phrases_case_insensitively() {
        let m = TopicMatcher::new([
            ("climate", vec!["climate change", "emissions"]),
            ("tech", vec!["AI"]),
            ("sport", vec!["cup"]),
        ]);
        assert_eq!(
            m.match_topics("Climate Change talks stall", None),
            vec!["climate"]
        );
        assert_eq!(
            m.match_topics("Said the chair", Some("new ai rules; cupboard")),
            vec!["tech"]
        );
        assert!(m.match_topics("Changes to the climate", None).is_empty());
        assert!(m.match_topics("Cupertino", None).is_empty());
    }

    #[test]
    fn classifies_obvious_headlines() {
        let c = HeadlineClassifier::default();
        assert_eq!(
            c.classify("Stocks fall as Fed hints at higher rates"),
            Topic::Business
        );
        assert_eq!(
            c.classify("Google unveils a smartphone app for privacy"),
            Topic::Technology
        );
        assert_eq!(
            c.classify("Actress hosts comedy show premiere"),
            Topic::Entertainment
        );
        assert_eq!(
            c.classify("Measles outbreak: doctors urge vaccination"),
            Topic::Health
        );
    }
}
