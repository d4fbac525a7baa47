"""A deterministic feed corpus for the parsing comparison in bench/run.

RSS 2.0 and Atom 1.0 feeds in the shapes publishers send: HTML summaries and bodies (CDATA and
escaped), media:content / enclosures, relative links, tracking parameters, RFC 822 and RFC 3339
dates, and a share of feeds in ISO-8859-1 and windows-1252 declared in the XML prolog. Same
seed, same bytes.

    python bench/peers/python/make_corpus.py DIR [--feeds 120] [--items 40] [--seed 7]
"""

import argparse
import os
import random
from datetime import datetime, timedelta, timezone
from xml.sax.saxutils import escape

WORDS = (
    "government minister election parliament court ruling markets shares inflation bank "
    "rates talks ceasefire summit envoy storm flood rescue police report budget tax health "
    "hospital vaccine school students university climate energy oil gas prices football "
    "cricket final coach season record league transfer technology startup phone chip data "
    "privacy researchers study space launch satellite city council housing rent transport "
    "rail strike union workers wages trade exports tariffs border security army drone"
).split()
ACCENTED = ["café", "Zürich", "São Paulo", "Malmö", "Orléans", "Kraków", "déjà vu", "naïve"]
CP1252_ONLY = ["“quoted”", "it’s", "— dash", "€5 billion", "…"]
TOPICS = ["world", "business", "sport", "technology", "science", "india", "politics"]


def sentence(rng, words):
    text = " ".join(rng.choice(WORDS) for _ in range(words))
    return text[0].upper() + text[1:]


def paragraph_html(rng, extra):
    parts = []
    for _ in range(rng.randint(3, 6)):
        s = sentence(rng, rng.randint(12, 28))
        if rng.random() < 0.3:
            s += " " + rng.choice(extra)
        if rng.random() < 0.3:
            s = s.replace(" ", ' <a href="/related/%d?utm_source=rss">' % rng.randint(1, 9999), 1)
            s += "</a>"
        if rng.random() < 0.2:
            s = "<strong>" + s + "</strong>"
        parts.append("<p>" + s + ".</p>")
    if rng.random() < 0.4:
        parts.append('<img src="/img/%d.jpg" alt="photo" width="640">' % rng.randint(1, 99999))
    if rng.random() < 0.1:
        parts.append("<script>track()</script>")
    return "\n".join(parts)


def rss(rng, index, items, encoding, extra, now):
    site = "https://publisher%d.example.com" % index
    out = ['<?xml version="1.0" encoding="%s"?>' % encoding,
           '<rss version="2.0" xmlns:media="http://search.yahoo.com/mrss/" '
           'xmlns:dc="http://purl.org/dc/elements/1.1/" '
           'xmlns:content="http://purl.org/rss/1.0/modules/content/">',
           "<channel>",
           "<title>%s</title>" % escape("Publisher %d: %s" % (index, rng.choice(TOPICS))),
           "<link>%s/</link>" % site,
           "<description>Latest news</description>",
           "<language>%s</language>" % rng.choice(["en", "en-in", "fr", "de"]),
           "<ttl>15</ttl>"]
    for i in range(items):
        published = now - timedelta(minutes=rng.randint(1, 60 * 48))
        slug = "story-%d-%d" % (index, i)
        title = sentence(rng, rng.randint(6, 14))
        if rng.random() < 0.3:
            title += " " + rng.choice(extra)
        body = paragraph_html(rng, extra)
        out.append("<item>")
        out.append("<title>%s</title>" % escape(title))
        link = "/%s/%s?utm_medium=feed&id=%d" % (rng.choice(TOPICS), slug, i)
        out.append("<link>%s</link>" % (site + link if rng.random() < 0.8 else link))
        if rng.random() < 0.85:
            out.append('<guid isPermaLink="false">%s-%d</guid>' % (slug, rng.randint(1, 10**9)))
        out.append("<pubDate>%s</pubDate>" % published.strftime("%a, %d %b %Y %H:%M:%S +0000"))
        out.append("<dc:creator>%s</dc:creator>" % escape(sentence(rng, 2)))
        out.append("<category>%s</category>" % rng.choice(TOPICS))
        out.append("<description>%s</description>" % escape(" ".join(body.split("\n")[:2])))
        if rng.random() < 0.6:
            out.append("<content:encoded><![CDATA[%s]]></content:encoded>" % body)
        if rng.random() < 0.5:
            out.append('<media:content url="%s/media/%d.jpg" medium="image" type="image/jpeg"/>'
                       % (site, rng.randint(1, 10**6)))
        elif rng.random() < 0.3:
            out.append('<enclosure url="%s/media/%d.jpg" type="image/jpeg" length="1000"/>'
                       % (site, rng.randint(1, 10**6)))
        out.append("</item>")
    out.append("</channel></rss>")
    return "\n".join(out)


def atom(rng, index, items, encoding, extra, now):
    site = "https://publisher%d.example.com" % index
    out = ['<?xml version="1.0" encoding="%s"?>' % encoding,
           '<feed xmlns="http://www.w3.org/2005/Atom" xml:lang="en">',
           "<title>%s</title>" % escape("Publisher %d" % index),
           '<link rel="alternate" href="%s/"/>' % site,
           '<link rel="self" href="%s/atom.xml"/>' % site,
           "<id>tag:publisher%d.example.com,2026:feed</id>" % index,
           "<updated>%s</updated>" % now.strftime("%Y-%m-%dT%H:%M:%SZ")]
    for i in range(items):
        published = now - timedelta(minutes=rng.randint(1, 60 * 48))
        title = sentence(rng, rng.randint(6, 14))
        if rng.random() < 0.3:
            title += " " + rng.choice(extra)
        body = paragraph_html(rng, extra)
        out.append("<entry>")
        out.append('<title type="html">%s</title>' % escape(escape(title)))
        out.append('<link rel="alternate" href="%s/%s/a-%d-%d?utm_campaign=x"/>'
                   % (site, rng.choice(TOPICS), index, i))
        out.append("<id>tag:publisher%d.example.com,2026:%d</id>" % (index, i))
        out.append("<published>%s</published>" % published.strftime("%Y-%m-%dT%H:%M:%SZ"))
        out.append("<updated>%s</updated>" % published.strftime("%Y-%m-%dT%H:%M:%SZ"))
        out.append("<author><name>%s</name></author>" % escape(sentence(rng, 2)))
        out.append('<summary type="html">%s</summary>' % escape(body.split("\n")[0]))
        out.append('<content type="html">%s</content>' % escape(body))
        if rng.random() < 0.4:
            out.append('<link rel="enclosure" type="image/jpeg" href="%s/media/%d.jpg"/>'
                       % (site, rng.randint(1, 10**6)))
        out.append("</entry>")
    out.append("</feed>")
    return "\n".join(out)


def main():
    parser = argparse.ArgumentParser()
    parser.add_argument("dir")
    parser.add_argument("--feeds", type=int, default=120)
    parser.add_argument("--items", type=int, default=40)
    parser.add_argument("--seed", type=int, default=7)
    args = parser.parse_args()
    os.makedirs(args.dir, exist_ok=True)
    rng = random.Random(args.seed)
    now = datetime(2026, 11, 27, 12, 0, tzinfo=timezone.utc)
    total = 0
    for index in range(args.feeds):
        # One feed in six is ISO-8859-1, one in six windows-1252; the rest UTF-8.
        kind = index % 6
        if kind == 1:
            encoding, extra = "ISO-8859-1", ACCENTED
        elif kind == 4:
            encoding, extra = "windows-1252", ACCENTED + CP1252_ONLY
        else:
            encoding, extra = "UTF-8", ACCENTED + CP1252_ONLY
        make = atom if index % 3 == 2 else rss
        text = make(rng, index, args.items, encoding, extra, now)
        data = text.encode(encoding)
        name = "feed-%03d-%s.%s" % (index, encoding.lower(), "atom" if make is atom else "rss")
        with open(os.path.join(args.dir, name), "wb") as f:
            f.write(data)
        total += len(data)
    print("wrote %d feeds, %d items, %.1f MB to %s"
          % (args.feeds, args.feeds * args.items, total / 1e6, args.dir))


if __name__ == "__main__":
    main()
