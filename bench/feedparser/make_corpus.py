"""Writes the generated part of the feedparser-agreement corpus: real-world-style feeds, a
family per robustness class of issue #22, each in many variants. Deterministic.

    python3 make_corpus.py OUT_DIR
"""
import os
import random
import sys

OUT = sys.argv[1]
os.makedirs(OUT, exist_ok=True)
rng = random.Random(22)

SUBJECTS = ["Council", "Parliament", "Central bank", "Harbour authority", "Rail operator",
            "University", "Hospital trust", "Weather service", "City hall", "Football club",
            "Energy regulator", "Court", "Museum", "Airport", "Police"]
VERBS = ["approves", "rejects", "announces", "delays", "expands", "reviews", "cuts", "opens",
         "closes", "defends"]
OBJECTS = ["new budget", "flood defences", "fare rise", "research centre", "night shifts",
           "storm warning", "tram line", "merger plan", "ticket prices", "summer exhibition",
           "runway extension", "speed limits"]
HOSTS = ["news.example", "daily.example.com", "wire.example.org", "herald.example.net",
         "times.example.co.uk", "post.example.in", "ledger.example.jp"]


def headline():
    return f"{rng.choice(SUBJECTS)} {rng.choice(VERBS)} {rng.choice(OBJECTS)}"


def slug(text):
    return "-".join(text.lower().replace("&", "and").split())[:60]


def esc(text):
    return text.replace("&", "&amp;").replace("<", "&lt;").replace(">", "&gt;")


def rss(items, extra_ns="", channel_extra="", version="2.0", decl='<?xml version="1.0" encoding="utf-8"?>'):
    return (f'{decl}\n<rss version="{version}"{extra_ns}><channel><title>Feed</title>'
            f'<link>https://{rng.choice(HOSTS)}/</link><description>d</description>{channel_extra}\n'
            + "\n".join(items) + "\n</channel></rss>\n")


def atom(entries, feed_attrs="", feed_extra=""):
    return ('<?xml version="1.0" encoding="utf-8"?>\n'
            f'<feed xmlns="http://www.w3.org/2005/Atom"{feed_attrs}><title>Feed</title><id>urn:feed</id>'
            f'<updated>2026-12-01T10:00:00Z</updated>{feed_extra}\n' + "\n".join(entries) + "\n</feed>\n")


def write(name, text, encoding="utf-8"):
    with open(os.path.join(OUT, name), "wb") as f:
        f.write(text.encode(encoding) if isinstance(text, str) else text)


def n_items(lo=2, hi=6):
    return range(rng.randint(lo, hi))


# 1. Plain RSS 2.0 with guid, pubDate, description.
for i in range(30):
    host = rng.choice(HOSTS)
    items = []
    for j in n_items():
        t = headline()
        items.append(f"<item><title>{esc(t)}</title><link>https://{host}/{i}/{slug(t)}-{j}</link>"
                     f"<guid>https://{host}/{i}/{slug(t)}-{j}</guid><pubDate>Mon, 0{1 + j % 9} Dec 2026 10:00:00 GMT</pubDate>"
                     f"<description>{esc(t)}. Details follow.</description></item>")
    write(f"gen_rss_plain_{i:02}.rss", rss(items))

# 2. Plain Atom.
for i in range(30):
    host = rng.choice(HOSTS)
    entries = []
    for j in n_items():
        t = headline()
        entries.append(f'<entry><id>urn:{i}:{j}</id><title>{esc(t)}</title>'
                       f'<link rel="alternate" type="text/html" href="https://{host}/a/{slug(t)}"/>'
                       f'<updated>2026-12-0{1 + j % 9}T10:00:00Z</updated><summary>{esc(t)}.</summary></entry>')
    write(f"gen_atom_plain_{i:02}.atom", atom(entries))

# 3. Permalink guids (no <link>).
for i in range(15):
    host = rng.choice(HOSTS)
    items = []
    for j in n_items():
        t = headline()
        attr = rng.choice(['', ' isPermaLink="true"', ' isPermaLink="false"'])
        guid = f"https://{host}/p/{slug(t)}" if attr != ' isPermaLink="false"' else f"{host}-{i}-{j}"
        items.append(f"<item><title>{esc(t)}</title><guid{attr}>{guid}</guid></item>")
    write(f"gen_permalink_{i:02}.rss", rss(items))

# 4. Atom ids that are URLs, no links.
for i in range(15):
    host = rng.choice(HOSTS)
    entries = []
    for j in n_items():
        t = headline()
        eid = rng.choice([f"https://{host}/id/{slug(t)}", f"tag:{host},2026:{i}-{j}"])
        entries.append(f"<entry><id>{eid}</id><title>{esc(t)}</title><updated>2026-12-01T10:00:00Z</updated></entry>")
    write(f"gen_atom_id_{i:02}.atom", atom(entries))

# 5. xml:base on feed, entry and link.
for i in range(10):
    host = rng.choice(HOSTS)
    entries = []
    for j in n_items():
        t = headline()
        where = rng.choice(["feed", "entry", "link"])
        if where == "entry":
            entries.append(f'<entry xml:base="https://{rng.choice(HOSTS)}/e{j}/"><id>urn:{j}</id><title>{esc(t)}</title>'
                           f'<link href="{slug(t)}.html"/><updated>2026-12-01T10:00:00Z</updated></entry>')
        elif where == "link":
            entries.append(f'<entry><id>urn:{j}</id><title>{esc(t)}</title>'
                           f'<link xml:base="https://{rng.choice(HOSTS)}/l{j}/" href="{slug(t)}.html"/><updated>2026-12-01T10:00:00Z</updated></entry>')
        else:
            entries.append(f'<entry><id>urn:{j}</id><title>{esc(t)}</title>'
                           f'<link href="/{slug(t)}.html"/><updated>2026-12-01T10:00:00Z</updated></entry>')
    write(f"gen_xmlbase_{i:02}.atom", atom(entries, feed_attrs=f' xml:base="https://{host}/section/"'))
for i in range(10):
    host = rng.choice(HOSTS)
    items = []
    for j in n_items():
        t = headline()
        if j % 2:
            items.append(f'<item xml:base="https://{rng.choice(HOSTS)}/i{j}/"><title>{esc(t)}</title><link>{slug(t)}.html</link></item>')
        else:
            items.append(f'<item><title>{esc(t)}</title><link>stories/{slug(t)}.html</link></item>')
    write(f"gen_xmlbase_{i:02}.rss", rss(items).replace('<rss version="2.0">', f'<rss version="2.0" xml:base="https://{host}/base/">'))

# 6. Atom link selection.
for i in range(20):
    host = rng.choice(HOSTS)
    entries = []
    for j in n_items():
        t = headline()
        page = f"https://{host}/story/{slug(t)}"
        shapes = [
            f'<link rel="enclosure" type="image/jpeg" href="https://img.{host}/{j}.jpg"/><link rel="alternate" href="{page}"/>',
            f'<link rel="related" href="https://{host}/rel/{j}"/><link href="{page}"/>',
            f'<link rel="alternate"/><link rel="alternate" type="text/html" href="{page}"/>',
            f'<link rel="replies" href="{page}#comments"/><link rel="alternate" href="{page}"/>',
            f'<link href="{page}"/>',
        ]
        entries.append(f"<entry><id>urn:{i}:{j}</id><title>{esc(t)}</title>{rng.choice(shapes)}<updated>2026-12-01T10:00:00Z</updated></entry>")
    write(f"gen_atomlinks_{i:02}.atom", atom(entries))

# 7. Title types.
for i in range(12):
    host = rng.choice(HOSTS)
    entries = []
    for j in n_items():
        t = headline()
        shape = rng.choice([
            f'<title type="text">{esc(t)} &lt;update&gt;</title>',
            f'<title type="text">Is 2 &lt; 3? {esc(t)}</title>',
            f'<title type="html">&lt;b&gt;{esc(t)}&lt;/b&gt;</title>',
            f'<title type="html">{esc(t)} &amp;amp; more</title>',
            f'<title>{esc(t)}</title>',
        ])
        entries.append(f'<entry><id>urn:{j}</id>{shape}<link href="https://{host}/t/{j}"/><updated>2026-12-01T10:00:00Z</updated></entry>')
    write(f"gen_titles_{i:02}.atom", atom(entries))
for i in range(8):
    host = rng.choice(HOSTS)
    items = []
    for j in n_items():
        t = headline()
        shape = rng.choice([f"{esc(t)}: 3 &lt; 5", f"&lt;b&gt;{esc(t)}&lt;/b&gt;", f"{esc(t)} &amp;amp; co", esc(t)])
        items.append(f"<item><title>{shape}</title><link>https://{host}/r/{j}</link></item>")
    write(f"gen_titles_{i:02}.rss", rss(items))

# 8. Undeclared non-UTF-8 encodings.
TEXTS = {
    "shift_jis": ["東京で新しい橋が開通しました", "大雨の影響で電車が遅れています", "市議会が新しい予算を承認しました"],
    "euc_jp": ["大阪の新しい駅が開業しました", "台風が九州に接近しています", "図書館の開館時間が延長されます"],
    "koi8_r": ["Москва: новый мост открыт для движения", "В Петербурге прошёл сильный ливень", "Городской совет утвердил бюджет"],
    "gb2312": ["北京举行国际会议讨论气候变化", "上海地铁新线路开通运营", "市政府宣布新的交通计划"],
    "windows-1251": ["Новый музей открылся в центре города", "Цены на топливо снизились", "Аэропорт расширяет терминал"],
    "iso-8859-1": ["Café de la Gare rouvre après travaux", "Fête de la musique: programme complet", "Grève à la SNCF jeudi"],
}
for enc, texts in TEXTS.items():
    for i in range(4):
        host = rng.choice(HOSTS)
        items = [f"<item><title>{t}</title><link>https://{host}/{enc}/{i}/{k}</link><description>{t}.</description></item>"
                 for k, t in enumerate(rng.sample(texts, 2))]
        write(f"gen_enc_{enc}_{i}.rss", rss(items, decl='<?xml version="1.0"?>'), encoding=enc)

# 9. Entities and exact query strings (RSS 0.91 with HTML entities, no DTD).
for i in range(20):
    host = rng.choice(HOSTS)
    items = []
    for j in n_items():
        t = headline()
        ent = rng.choice(["&eacute;", "&nbsp;", "&mdash;", "&hellip;", "&#x41;", "&#X42;", "&#233;", "&rsquo;"])
        query = rng.choice(["?item", "?id=7&amp;page=2", "?a=1&amp;b&amp;c=", "?q=x%20y", ""])
        items.append(f"<item><title>{esc(t)} {ent} news</title><link>http://{host}/e/{j}{query}</link></item>")
    write(f"gen_entities_{i:02}.rss", rss(items, version="0.91", decl='<?xml version="1.0"?>'))

# 10. Bare ampersands.
for i in range(15):
    host = rng.choice(HOSTS)
    items = []
    for j in n_items():
        t = headline()
        items.append(f"<item><title>{t} & partners</title><link>https://{host}/s?id={j}&ref=rss</link></item>")
    write(f"gen_ampersand_{i:02}.rss", rss(items))

# 11. Truncated documents and lost '>'.
for i in range(15):
    host = rng.choice(HOSTS)
    items = [f"<item><title>{esc(headline())}</title><link>https://{host}/t/{j}</link></item>" for j in n_items(3, 5)]
    text = rss(items)
    if i % 3 == 0:
        text = text.replace("</item>", "</item", 1)
    elif i % 3 == 1:
        text = text[: text.rindex("</channel>")]
    else:
        text = text.replace("</rss>", "")
    write(f"gen_truncated_{i:02}.rss", text)

# 12. Stray bytes.
for i in range(15):
    host = rng.choice(HOSTS)
    items = [f"<item><title>{esc(headline())}\x0b</title><link>https://{host}/b/{j}</link></item>" for j in n_items()]
    write(f"gen_stray_{i:02}.rss", rss(items).encode("utf-8").replace(b"\x0b", rng.choice([b"\x0b", b"\x01", b"\x1f"])))

# 13. Untitled entries.
for i in range(15):
    host = rng.choice(HOSTS)
    items = []
    for j in n_items():
        t = headline()
        if j % 2:
            items.append(f"<item><link>https://{host}/u/{slug(t)}</link><description>{esc(t)}. More later.</description></item>")
        else:
            items.append(f"<item><title>{esc(t)}</title><link>https://{host}/u/{slug(t)}</link></item>")
    write(f"gen_untitled_{i:02}.rss", rss(items))

# 14. Media: lead images.
for i in range(15):
    host = rng.choice(HOSTS)
    items = []
    for j in n_items():
        t = headline()
        media = rng.choice([
            f'<media:content url="https://img.{host}/{j}.jpg" medium="image"/>',
            f'<media:thumbnail url="https://img.{host}/{j}-t.jpg"/>',
            f'<enclosure url="https://img.{host}/{j}.png" type="image/png" length="1"/>',
            f'<description>&lt;img src="https://img.{host}/{j}-b.jpg"&gt; {esc(t)}</description>',
        ])
        items.append(f"<item><title>{esc(t)}</title><link>https://{host}/m/{j}</link>{media}</item>")
    write(f"gen_media_{i:02}.rss", rss(items, extra_ns=' xmlns:media="http://search.yahoo.com/mrss/"'))

print(len(os.listdir(OUT)), "feeds in", OUT)
