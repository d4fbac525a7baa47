//! A deterministic corpus of realistic news feeds for ingestion benchmarks.
//!
//! Publishers write RSS 2.0 or Atom with 20–50 items each; descriptions carry HTML (links with
//! tracking parameters, images, scripts and iframes to sanitise, entities); some feeds attach
//! `media:content`, `media:thumbnail` or `<enclosure>`, some are ISO-8859-1, some items have
//! no GUID. Stories are shared: about half the items retell one of a pool of events in another
//! publisher's words, so the clusterer has real cross-publisher work to do. The same seed and
//! anchor give byte-identical feeds; [`write_corpus`] saves them with a manifest so other
//! tools (feedparser, for one) can be pointed at the same files.

use std::fmt::Write as _;
use std::io::Write as _;
use std::path::Path;

use chrono::{DateTime, Duration, Utc};
use rand::seq::IndexedRandom;
use rand::{Rng, SeedableRng};
use rand_chacha::ChaCha8Rng;

/// The syntax a feed is written in.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum FeedFormat {
    /// RSS 2.0 with the `media:` and `content:` namespaces.
    Rss2,
    /// Atom 1.0.
    Atom,
}

/// One generated feed.
#[derive(Debug, Clone)]
pub struct CorpusFeed {
    /// Index in the corpus (also in the file name).
    pub index: usize,
    /// Publisher name.
    pub publisher: String,
    /// The publisher's site.
    pub site_url: String,
    /// The address the feed would be served from (`https://feeds.<publisher>.example/…`).
    pub feed_url: String,
    /// `Content-Type` the feed is served with (declares the charset of ISO-8859-1 feeds).
    pub content_type: String,
    /// Syntax.
    pub format: FeedFormat,
    /// Declared encoding: `UTF-8` or `ISO-8859-1`.
    pub encoding: &'static str,
    /// Items in the feed.
    pub items: usize,
    /// The feed document.
    pub body: Vec<u8>,
}

/// What to generate.
#[derive(Debug, Clone)]
pub struct CorpusOptions {
    /// Number of feeds.
    pub feeds: usize,
    /// Fewest items in a feed.
    pub min_items: usize,
    /// Most items in a feed.
    pub max_items: usize,
    /// Random seed: the same seed (and anchor) gives the same bytes.
    pub seed: u64,
    /// The newest an item can be; items go back three days from here.
    pub anchor: DateTime<Utc>,
}

const FIRST: &[&str] = &[
    "Daily",
    "Morning",
    "Evening",
    "National",
    "Global",
    "Metro",
    "Coastal",
    "Northern",
    "Southern",
    "Capital",
    "Valley",
    "Harbour",
    "Union",
    "Federal",
    "Continental",
    "Pacific",
    "Atlantic",
    "Eastern",
    "Western",
    "Central",
    "Royal",
    "Free",
    "Independent",
    "Civic",
];
const SECOND: &[&str] = &[
    "Herald",
    "Times",
    "Post",
    "Tribune",
    "Chronicle",
    "Gazette",
    "Observer",
    "Courier",
    "Ledger",
    "Journal",
    "Record",
    "Standard",
    "Express",
    "Sentinel",
    "Mirror",
    "Dispatch",
    "Monitor",
    "Review",
    "Telegraph",
    "Bulletin",
    "Register",
    "Examiner",
];
const LATIN1_NAMES: &[&str] = &[
    "Zürich",
    "Genève",
    "São Paulo",
    "Málaga",
    "Köln",
    "Besançon",
    "Luleå",
    "Ærøskøbing",
];

/// Who does something in a headline, with the topic it leans to.
const SUBJECTS: &[&str] = &[
    "Prime Minister Modi",
    "The Reserve Bank of India",
    "The Federal Reserve",
    "Apple",
    "Google",
    "Microsoft",
    "The WHO",
    "EU leaders",
    "The UN Security Council",
    "Tesla",
    "Netflix",
    "India's cricket team",
    "Oil producers",
    "Chinese regulators",
    "The FDA",
    "Wall Street banks",
    "Ukraine's president",
    "NATO ministers",
    "The World Bank",
    "Samsung",
    "Toyota",
    "The Bank of England",
    "Amazon",
    "Brazil's central bank",
    "Health officials",
    "Striking rail workers",
    "Airline executives",
    "The IMF",
    "Opposition lawmakers",
    "Climate negotiators",
    "A Bollywood studio",
    "FIFA",
];
const ACTIONS: &[&str] = &[
    "warns of",
    "announces",
    "faces backlash over",
    "rejects",
    "backs",
    "delays",
    "unveils",
    "signals",
    "calls for",
    "approves",
    "investigates",
    "plans",
    "cuts",
    "defends",
    "scraps",
    "confirms",
];
const OBJECTS: &[&str] = &[
    "new sanctions",
    "an interest rate cut",
    "a smartphone launch",
    "a vaccine rollout",
    "peace talks",
    "a $4 billion merger",
    "record box office earnings",
    "a data breach",
    "inflation targets",
    "an artificial intelligence chip",
    "a ceasefire proposal",
    "world cup preparations",
    "a hospital expansion",
    "stricter emissions rules",
    "a startup funding round",
    "fuel price hikes",
    "an outbreak response",
    "an IPO",
    "a cyberattack inquiry",
    "tariffs on steel",
    "a tennis doping case",
    "a streaming price increase",
    "layoffs at its software unit",
    "a new film studio",
];
const CONTEXTS: &[&str] = &[
    "as markets slide",
    "after summit in Geneva",
    "amid inflation fears",
    "in Mumbai",
    "ahead of elections",
    "despite protests",
    "after talks in New Delhi",
    "in Brussels",
    "as shares jump",
    "amid supply shortages",
    "after a weak quarter",
    "in surprise move",
    "as talks stall",
    "amid heatwave",
    "before the Olympics",
    "after court ruling",
];
const FRAMES: &[&str] = &[
    "",
    "UPDATE 2-",
    "Analysis: ",
    "Live: ",
    "Exclusive: ",
    "Explainer: ",
];
const FILLER: &[&str] = &[
    "officials said on Tuesday",
    "according to people familiar with the matter",
    "in a statement released late on Monday",
    "analysts expect further moves this week",
    "the decision drew criticism from rivals",
    "investors reacted cautiously",
    "the move follows months of negotiations",
    "details were not immediately available",
    "critics called the plan premature",
    "the figures beat forecasts",
];
const AUTHORS: &[&str] = &[
    "Priya Sharma",
    "John O'Neill",
    "Amélie Dubois",
    "Chen Wei",
    "Fatima Al-Sayed",
    "Lars Jørgensen",
    "María José Núñez",
    "Staff Reporter",
    "Agencies",
    "Sam Taylor",
];

const SYLLABLES: &[&str] = &[
    "ka", "lor", "vin", "dra", "mes", "tel", "ron", "qui", "zan", "bel", "tor", "ash", "mir",
    "nov", "gal", "pel", "sun", "dar", "ek", "ori", "var", "lis", "tam", "bru",
];

/// A made-up proper noun (a place, a person, a company): real news is full of names that
/// occur in one story only, and they are what tells stories apart.
fn proper_noun(rng: &mut ChaCha8Rng) -> String {
    let mut name = String::new();
    for _ in 0..rng.random_range(2..4) {
        name.push_str(SYLLABLES.choose(rng).unwrap_or(&"ka"));
    }
    let mut chars = name.chars();
    chars
        .next()
        .map(|c| c.to_uppercase().collect::<String>() + chars.as_str())
        .unwrap_or_default()
}

/// One real-world event that several publishers report in their own words.
struct Event {
    place: String,
    person: String,
    subject: usize,
    action: usize,
    object: usize,
    context: usize,
    at: DateTime<Utc>,
}

/// Generates the corpus; the same options give the same bytes.
pub fn generate(options: &CorpusOptions) -> Vec<CorpusFeed> {
    let mut rng = ChaCha8Rng::seed_from_u64(options.seed);
    // About eight retellings per event across the corpus.
    let expected_items = options.feeds * (options.min_items + options.max_items) / 2;
    let events: Vec<Event> = (0..(expected_items / 16).max(1))
        .map(|_| Event {
            place: proper_noun(&mut rng),
            person: proper_noun(&mut rng),
            subject: rng.random_range(0..SUBJECTS.len()),
            action: rng.random_range(0..ACTIONS.len()),
            object: rng.random_range(0..OBJECTS.len()),
            context: rng.random_range(0..CONTEXTS.len()),
            at: options.anchor - Duration::minutes(rng.random_range(0..72 * 60)),
        })
        .collect();
    (0..options.feeds)
        .map(|index| generate_feed(index, options, &events, &mut rng))
        .collect()
}

fn publisher_name(index: usize, rng: &mut ChaCha8Rng, latin1: bool) -> String {
    let base = format!(
        "{} {}",
        FIRST.choose(rng).unwrap_or(&"Daily"),
        SECOND.choose(rng).unwrap_or(&"Herald")
    );
    if latin1 {
        format!(
            "{base} {} #{index}",
            LATIN1_NAMES.choose(rng).unwrap_or(&"Köln")
        )
    } else {
        format!("{base} #{index}")
    }
}

fn slug(index: usize) -> String {
    format!("publisher{index:05}")
}

struct Item {
    guid: Option<String>,
    link: String,
    title: String,
    summary_html: String,
    content_html: Option<String>,
    image: Option<String>,
    author: String,
    at: DateTime<Utc>,
}

fn generate_feed(
    index: usize,
    options: &CorpusOptions,
    events: &[Event],
    rng: &mut ChaCha8Rng,
) -> CorpusFeed {
    let format = if rng.random_bool(0.7) {
        FeedFormat::Rss2
    } else {
        FeedFormat::Atom
    };
    let latin1 = rng.random_bool(0.15);
    let media = rng.random_bool(0.4);
    let full_content = rng.random_bool(0.5);
    let guidless = format == FeedFormat::Rss2 && rng.random_bool(0.1);
    let publisher = publisher_name(index, rng, latin1);
    let site = format!("https://www.{}.example", slug(index));
    let feed_url = format!("https://feeds.{}.example/news/{index}.xml", slug(index));
    let count = rng.random_range(options.min_items..=options.max_items.max(options.min_items));

    let mut items: Vec<Item> = (0..count)
        .map(|n| {
            generate_item(
                n,
                &site,
                media,
                full_content,
                guidless,
                options,
                events,
                rng,
            )
        })
        .collect();
    items.sort_by_key(|item| std::cmp::Reverse(item.at));

    let mut text = match format {
        FeedFormat::Rss2 => rss(&publisher, &site, &feed_url, latin1, &items, rng),
        FeedFormat::Atom => atom(&publisher, &site, &feed_url, latin1, &items),
    };
    if !latin1 {
        // Typographic punctuation only UTF-8 feeds can carry.
        text = text.replace(" - ", " \u{2013} ");
    }
    let (body, encoding) = if latin1 {
        (to_latin1(&text), "ISO-8859-1")
    } else {
        (text.into_bytes(), "UTF-8")
    };
    let mime = match format {
        FeedFormat::Rss2 => "application/rss+xml",
        FeedFormat::Atom => "application/atom+xml",
    };
    CorpusFeed {
        index,
        publisher,
        site_url: site,
        feed_url,
        content_type: format!("{mime}; charset={encoding}"),
        format,
        encoding,
        items: count,
        body,
    }
}

#[allow(clippy::too_many_arguments)]
fn generate_item(
    n: usize,
    site: &str,
    media: bool,
    full_content: bool,
    guidless: bool,
    options: &CorpusOptions,
    events: &[Event],
    rng: &mut ChaCha8Rng,
) -> Item {
    let pick = |rng: &mut ChaCha8Rng, len: usize| rng.random_range(0..len);
    // Half the items retell a shared event; the rest are this publisher's own.
    let (place, person, subject, action, object, context, at) = match events.choose(rng) {
        Some(event) if rng.random_bool(0.5) => (
            event.place.clone(),
            event.person.clone(),
            event.subject,
            if rng.random_bool(0.7) {
                event.action
            } else {
                pick(rng, ACTIONS.len())
            },
            event.object,
            if rng.random_bool(0.6) {
                event.context
            } else {
                pick(rng, CONTEXTS.len())
            },
            event.at + Duration::minutes(rng.random_range(0..6 * 60)),
        ),
        _ => (
            proper_noun(rng),
            proper_noun(rng),
            pick(rng, SUBJECTS.len()),
            pick(rng, ACTIONS.len()),
            pick(rng, OBJECTS.len()),
            pick(rng, CONTEXTS.len()),
            options.anchor - Duration::minutes(rng.random_range(0..72 * 60)),
        ),
    };
    let at = at.min(options.anchor);
    let frame = if rng.random_bool(0.8) {
        ""
    } else {
        FRAMES.choose(rng).unwrap_or(&"")
    };
    let title = if rng.random_bool(0.5) {
        format!(
            "{frame}{} {} {} in {place} {}",
            SUBJECTS[subject], ACTIONS[action], OBJECTS[object], CONTEXTS[context]
        )
    } else {
        let object = OBJECTS[object];
        let mut chars = object.chars();
        let head: String = chars
            .next()
            .map(|c| c.to_uppercase().collect())
            .unwrap_or_default();
        format!(
            "{frame}{head}{} in {place}: {person} says {} {} & more {}",
            chars.as_str(),
            SUBJECTS[subject],
            ACTIONS[action],
            CONTEXTS[context]
        )
    };
    let path_words: String = title
        .to_lowercase()
        .chars()
        .map(|c| if c.is_ascii_alphanumeric() { c } else { '-' })
        .collect::<String>()
        .split('-')
        .filter(|w| !w.is_empty())
        .take(8)
        .collect::<Vec<_>>()
        .join("-");
    let article_id = rng.random_range(100_000..999_999u32);
    let path = format!("/{}/{path_words}-{article_id}", at.format("%Y/%m/%d"));
    // Some links are relative or carry tracking parameters, as real feeds do.
    let link = match rng.random_range(0..10) {
        0..=2 => format!("{site}{path}?utm_source=rss&utm_medium=feed&utm_campaign=news"),
        3 => format!("{site}{path}?fbclid=IwAR{article_id}#comments"),
        4 => path.clone(),
        _ => format!("{site}{path}"),
    };
    let guid = (!guidless).then(|| format!("{site}/a/{article_id}-{n}"));
    let image = (media || rng.random_bool(0.2))
        .then(|| format!("https://img.{}/{article_id}.jpg", &site[12..]));
    let sentences: Vec<&str> = (0..rng.random_range(2..5))
        .filter_map(|_| FILLER.choose(rng).copied())
        .collect();
    let lead = format!(
        "{person}: {} {} {} in {place}, {}.",
        SUBJECTS[subject],
        ACTIONS[action],
        OBJECTS[object],
        sentences.first().unwrap_or(&"")
    );
    let mut summary_html = format!(
        "<p>{lead} <b>{}</b> &amp; {}.</p>",
        CONTEXTS[context],
        sentences.get(1).unwrap_or(&"more")
    );
    if image.is_some() && rng.random_bool(0.5) {
        let _ = write!(
            summary_html,
            "<p><img src=\"/images/{article_id}.jpg\" width=\"640\" alt=\"\"></p>"
        );
    }
    let _ = write!(
        summary_html,
        "<p><a href=\"{site}{path}?utm_source=rss\" onclick=\"track()\">Read more&nbsp;&raquo;</a></p>"
    );
    let content_html = full_content.then(|| {
        let mut html = format!("<p class=\"lede\">{lead}</p>");
        for sentence in &sentences {
            let _ = write!(
                html,
                "<p>{} {sentence}, with &ldquo;quotes&rdquo; and <em>emphasis</em>.</p>",
                SUBJECTS[rng.random_range(0..SUBJECTS.len())]
            );
        }
        html.push_str("<script>window.analytics && analytics.track('view');</script>");
        if rng.random_bool(0.3) {
            html.push_str("<iframe src=\"https://video.example/embed/1\" width=\"560\"></iframe>");
        }
        let _ = write!(
            html,
            "<img src=\"https://pixel.example/t.gif?id={article_id}\" width=\"1\" height=\"1\">"
        );
        html
    });
    Item {
        guid,
        link,
        title,
        summary_html,
        content_html,
        image,
        author: AUTHORS.choose(rng).unwrap_or(&"Staff").to_string(),
        at,
    }
}

/// Escapes text for XML character data and attributes.
fn xml(text: &str) -> String {
    let mut out = String::with_capacity(text.len() + 16);
    for c in text.chars() {
        match c {
            '&' => out.push_str("&amp;"),
            '<' => out.push_str("&lt;"),
            '>' => out.push_str("&gt;"),
            '"' => out.push_str("&quot;"),
            _ => out.push(c),
        }
    }
    out
}

fn rss(
    publisher: &str,
    site: &str,
    feed_url: &str,
    latin1: bool,
    items: &[Item],
    rng: &mut ChaCha8Rng,
) -> String {
    let encoding = if latin1 { "ISO-8859-1" } else { "UTF-8" };
    let mut out = format!(
        "<?xml version=\"1.0\" encoding=\"{encoding}\"?>\n\
         <rss version=\"2.0\" xmlns:media=\"http://search.yahoo.com/mrss/\" \
         xmlns:content=\"http://purl.org/rss/1.0/modules/content/\" \
         xmlns:dc=\"http://purl.org/dc/elements/1.1/\" xmlns:atom=\"http://www.w3.org/2005/Atom\">\n\
         <channel>\n<title>{}</title>\n<link>{site}/</link>\n\
         <atom:link href=\"{}\" rel=\"self\" type=\"application/rss+xml\"/>\n\
         <description>Latest news from {}</description>\n<language>en</language>\n<ttl>15</ttl>\n",
        xml(publisher),
        xml(feed_url),
        xml(publisher),
    );
    for item in items {
        out.push_str("<item>\n");
        let _ = writeln!(out, "<title>{}</title>", xml(&item.title));
        let _ = writeln!(out, "<link>{}</link>", xml(&item.link));
        if let Some(guid) = &item.guid {
            let _ = writeln!(out, "<guid isPermaLink=\"false\">{}</guid>", xml(guid));
        }
        let _ = writeln!(out, "<pubDate>{}</pubDate>", item.at.to_rfc2822());
        let _ = writeln!(out, "<dc:creator>{}</dc:creator>", xml(&item.author));
        // Descriptions come both entity-escaped and as CDATA in the wild.
        if rng.random_bool(0.5) {
            let _ = writeln!(
                out,
                "<description>{}</description>",
                xml(&item.summary_html)
            );
        } else {
            let _ = writeln!(
                out,
                "<description><![CDATA[{}]]></description>",
                item.summary_html
            );
        }
        if let Some(content) = &item.content_html {
            let _ = writeln!(
                out,
                "<content:encoded><![CDATA[{content}]]></content:encoded>"
            );
        }
        if let Some(image) = &item.image {
            match rng.random_range(0..3) {
                0 => {
                    let _ = writeln!(
                        out,
                        "<media:content url=\"{}\" medium=\"image\" type=\"image/jpeg\" width=\"1200\" height=\"675\"/>",
                        xml(image)
                    );
                }
                1 => {
                    let _ = writeln!(
                        out,
                        "<media:thumbnail url=\"{}\" width=\"300\"/>",
                        xml(image)
                    );
                }
                _ => {
                    let _ = writeln!(
                        out,
                        "<enclosure url=\"{}\" length=\"48213\" type=\"image/jpeg\"/>",
                        xml(image)
                    );
                }
            }
        }
        out.push_str("</item>\n");
    }
    out.push_str("</channel>\n</rss>\n");
    out
}

fn atom(publisher: &str, site: &str, feed_url: &str, latin1: bool, items: &[Item]) -> String {
    let encoding = if latin1 { "ISO-8859-1" } else { "UTF-8" };
    let updated = items.first().map_or_else(Utc::now, |i| i.at);
    let mut out = format!(
        "<?xml version=\"1.0\" encoding=\"{encoding}\"?>\n\
         <feed xmlns=\"http://www.w3.org/2005/Atom\" xmlns:media=\"http://search.yahoo.com/mrss/\" xml:lang=\"en\">\n\
         <title>{}</title>\n<id>{}</id>\n<updated>{}</updated>\n\
         <link rel=\"alternate\" type=\"text/html\" href=\"{site}/\"/>\n\
         <link rel=\"self\" href=\"{}\"/>\n",
        xml(publisher),
        xml(feed_url),
        updated.to_rfc3339(),
        xml(feed_url),
    );
    for item in items {
        out.push_str("<entry>\n");
        let _ = writeln!(out, "<title type=\"html\">{}</title>", xml(&item.title));
        let _ = writeln!(
            out,
            "<link rel=\"alternate\" type=\"text/html\" href=\"{}\"/>",
            xml(&item.link)
        );
        let id = item
            .guid
            .clone()
            .unwrap_or_else(|| format!("tag:{}:{}", &site[12..], item.link));
        let _ = writeln!(out, "<id>{}</id>", xml(&id));
        let _ = writeln!(out, "<published>{}</published>", item.at.to_rfc3339());
        let _ = writeln!(out, "<updated>{}</updated>", item.at.to_rfc3339());
        let _ = writeln!(out, "<author><name>{}</name></author>", xml(&item.author));
        let _ = writeln!(
            out,
            "<summary type=\"html\">{}</summary>",
            xml(&item.summary_html)
        );
        if let Some(content) = &item.content_html {
            let _ = writeln!(out, "<content type=\"html\">{}</content>", xml(content));
        }
        if let Some(image) = &item.image {
            let _ = writeln!(
                out,
                "<media:content url=\"{}\" medium=\"image\" type=\"image/jpeg\"/>",
                xml(image)
            );
        }
        out.push_str("</entry>\n");
    }
    out.push_str("</feed>\n");
    out
}

/// ISO-8859-1 bytes of `text`; characters outside Latin-1 become numeric character references.
fn to_latin1(text: &str) -> Vec<u8> {
    let mut out = Vec::with_capacity(text.len());
    for c in text.chars() {
        match u8::try_from(u32::from(c)) {
            Ok(byte) => out.push(byte),
            Err(_) => out.extend_from_slice(format!("&#{};", u32::from(c)).as_bytes()),
        }
    }
    out
}

/// Writes every feed to `dir/feed-NNNNN.xml` and a tab-separated `manifest.tsv` (file, feed
/// URL, content type, format, encoding, items, publisher).
pub fn write_corpus(
    dir: &Path,
    feeds: &[CorpusFeed],
    options: &CorpusOptions,
) -> std::io::Result<()> {
    std::fs::create_dir_all(dir)?;
    let mut manifest = std::io::BufWriter::new(std::fs::File::create(dir.join("manifest.tsv"))?);
    writeln!(
        manifest,
        "# seed={} anchor={} feeds={} items={}..={}",
        options.seed,
        options.anchor.to_rfc3339(),
        options.feeds,
        options.min_items,
        options.max_items
    )?;
    writeln!(
        manifest,
        "file\tfeed_url\tcontent_type\tformat\tencoding\titems\tpublisher"
    )?;
    for feed in feeds {
        let file = format!("feed-{:05}.xml", feed.index);
        std::fs::write(dir.join(&file), &feed.body)?;
        let format = match feed.format {
            FeedFormat::Rss2 => "rss2",
            FeedFormat::Atom => "atom",
        };
        writeln!(
            manifest,
            "{file}\t{}\t{}\t{format}\t{}\t{}\t{}",
            feed.feed_url, feed.content_type, feed.encoding, feed.items, feed.publisher
        )?;
    }
    manifest.flush()
}
