"""Agreement of Herald's feed reading with feedparser's on entry titles and links.

    python3 compare.py DUMP.jsonl FEED_FILE...

DUMP.jsonl is `herald-feed-dump FEED_FILE...` output. Both sides are read with the feed's URL
`https://fixtures.invalid/<file name>`; feedparser is also given the Content-Type a web server
sends for the file's extension, without a charset (`application/rss+xml`, `application/atom+xml`,
else `application/xml`), as it gets over HTTP. Herald reads a charset-less Content-Type as no
Content-Type. `FEEDPARSER_CONTENT_TYPE=none` leaves the header out: feedparser then takes
RFC 3023's ISO-8859-1 for a body without an XML encoding declaration and never asks chardet. A feed agrees when both find the same number of
entries and every entry's title and link agree after the normalisation below; mismatches are
printed to stderr.

- Title: plain text with whitespace collapsed and C0 control characters (which XML 1.0
  forbids and no reader can see) removed. feedparser's HTML titles (type text/html or
  xhtml) lose their tags and entities; a headline Herald derived for an untitled entry counts
  as no title.
- Link: http(s) only (anything else counts as none), no fragment, no tracking parameters
  (utm_*, fbclid, ...: Herald removes them by design), host lowercased, path percent-encoding
  made uniform.

A disagreement where feedparser's title is the windows-1252 reading of Herald's title in an
undeclared Shift_JIS, EUC-JP, KOI8-R, GBK or windows-1251 body is counted apart, as
`feedparser_misdecoded`, and reported both ways. feedparser detects undeclared charsets with
`chardet` when it is installed (as run.sh installs it); `FEEDPARSER_CHARDET=off` hides it, and
feedparser then decodes such bodies as windows-1252.
"""
import html
import json
import os
import re
import sys
from urllib.parse import quote, unquote, urlsplit, urlunsplit

if os.environ.get("FEEDPARSER_CHARDET") == "off":
    sys.modules["cchardet"] = None
    sys.modules["chardet"] = None

import feedparser  # noqa: E402
from feedparser import encodings as feedparser_encodings  # noqa: E402

TRACKING = {"fbclid", "gclid", "dclid", "gbraid", "wbraid", "msclkid", "mc_cid", "mc_eid",
            "igshid", "yclid", "_hsenc", "_hsmi", "ref_src", "ref_url", "cmpid", "ncid", "spm",
            "mkt_tok", "oly_anon_id", "oly_enc_id", "vero_id", "__twitter_impression", "_ga", "_gl"}
TAG = re.compile(r"<[^>]*>")


def norm_title(title, html_typed):
    if title is None:
        return ""
    if html_typed:
        title = html.unescape(TAG.sub(" ", title))
    title = "".join(c for c in title if c >= " " or c in "\t\n\r")
    return " ".join(title.split())


DETECTED = ("shift_jis", "euc_jp", "koi8_r", "gbk", "cp1251")


def windows_1252_bytes(text):
    """The bytes `text` came from when read as windows-1252 the way feedparser does: its five
    undefined bytes pass through as the C1 controls of the same value."""
    out = bytearray()
    for c in text:
        code = ord(c)
        if code < 0x80 or code >= 0xA0 and code < 0x100 or code in (0x81, 0x8D, 0x8F, 0x90, 0x9D):
            out.append(code)
        else:
            out += c.encode("cp1252")
    return bytes(out)


def misdecoded(theirs, ours):
    """feedparser read as windows-1252 what Herald read in a detected charset."""
    if not theirs or theirs == ours:
        return False
    try:
        raw = windows_1252_bytes(theirs)
    except UnicodeEncodeError:
        return False
    for right in DETECTED:
        try:
            if " ".join(raw.decode(right).split()) == ours:
                return True
        except UnicodeDecodeError:
            continue
    return False


def norm_link(link):
    if not link:
        return None
    try:
        parts = urlsplit(link.strip())
    except ValueError:
        return None
    if parts.scheme.lower() not in ("http", "https") or not parts.hostname:
        return None
    host = parts.hostname.lower()
    port = parts.port
    if port and not ((parts.scheme == "http" and port == 80) or (parts.scheme == "https" and port == 443)):
        host = f"{host}:{port}"
    path = quote(unquote(parts.path or "/"), safe="/:@!$&'()*+,;=-._~")
    kept = [seg for seg in parts.query.split("&")
            if seg and not (unquote(seg.split("=")[0]).lower().startswith("utm_")
                            or unquote(seg.split("=")[0]).lower() in TRACKING)]
    return urlunsplit((parts.scheme.lower(), host, path, "&".join(kept), ""))


def served_as(name):
    """The Content-Type a web server sends for the file (no charset: the body says, or not)."""
    if name.endswith(".rss"):
        return "application/rss+xml"
    if name.endswith(".atom"):
        return "application/atom+xml"
    return "application/xml"


def feedparser_entries(path):
    name = os.path.basename(path)
    with open(path, "rb") as f:
        data = f.read()
    headers = {"content-location": f"https://fixtures.invalid/{name}"}
    if os.environ.get("FEEDPARSER_CONTENT_TYPE") != "none":
        headers["content-type"] = served_as(name)
    parsed = feedparser.parse(data, response_headers=headers)
    out = []
    for e in parsed.entries:
        detail = e.get("title_detail") or {}
        html_typed = detail.get("type") in ("text/html", "application/xhtml+xml")
        out.append((norm_title(e.get("title"), html_typed), norm_link(e.get("link"))))
    return out


def herald_entries(record):
    out = []
    for e in record["entries"]:
        title = "" if e.get("derived") else norm_title(e.get("title"), False)
        out.append((title, norm_link(e.get("link"))))
    return out


def main():
    dump = {}
    with open(sys.argv[1], encoding="utf-8") as f:
        for line in f:
            record = json.loads(line)
            dump[os.path.basename(record["file"])] = record
    feeds = sys.argv[2:]
    agree_feeds = entries = titles = links = misdecoded_feeds = misdecoded_titles = 0
    for path in feeds:
        name = os.path.basename(path)
        theirs = feedparser_entries(path)
        record = dump.get(name)
        ours = herald_entries(record) if record else []
        n = max(len(theirs), len(ours))
        entries += n
        t_ok = l_ok = t_mis = 0
        for i in range(min(len(theirs), len(ours))):
            t_ok += theirs[i][0] == ours[i][0]
            t_mis += misdecoded(theirs[i][0], ours[i][0])
            l_ok += theirs[i][1] == ours[i][1]
        titles += t_ok
        links += l_ok
        misdecoded_titles += t_mis
        if len(theirs) == len(ours) and t_ok == l_ok == n:
            agree_feeds += 1
        elif len(theirs) == len(ours) and t_ok + t_mis == l_ok == n:
            misdecoded_feeds += 1
        else:
            print(f"DISAGREE {name}: feedparser={theirs} herald={ours}"
                  + (f" error={record.get('error')}" if record and record.get("error") else ""),
                  file=sys.stderr)
    pct = lambda a, b: 100.0 * a / b if b else 100.0
    print(json.dumps({
        "feeds": len(feeds),
        "feeds_agreeing": agree_feeds,
        "feed_agreement_pct": round(pct(agree_feeds, len(feeds)), 2),
        "entries": entries,
        "title_agreement_pct": round(pct(titles, entries), 2),
        "link_agreement_pct": round(pct(links, entries), 2),
        "feedparser_misdecoded_feeds": misdecoded_feeds,
        "feedparser_misdecoded_titles": misdecoded_titles,
        "feed_agreement_pct_misdecoded_excluded": round(
            pct(agree_feeds, len(feeds) - misdecoded_feeds), 2),
        "title_agreement_pct_misdecoded_excluded": round(
            pct(titles, entries - misdecoded_titles), 2),
        "feedparser": feedparser.__version__,
        "chardet": getattr(feedparser_encodings.chardet, "__version__", None),
    }))


main()
