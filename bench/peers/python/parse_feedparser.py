"""Feed parsing throughput with feedparser, on the same corpus as bench/src/bin/parse_corpus.rs.

Reads every feed file of DIR into memory, then times feedparser.parse(bytes) over all of them
(it detects the encoding, parses, sanitises HTML and resolves relative links), on one thread,
given the same Content-Type and URL as Herald when DIR has a manifest.tsv (file, feed URL,
content type, ...). Prints one JSON line (the best of ROUNDS).

    python bench/peers/python/parse_feedparser.py DIR [ROUNDS]
"""

import json
import os
import sys
import time

import feedparser


def main():
    directory = sys.argv[1]
    rounds = int(sys.argv[2]) if len(sys.argv) > 2 else 3
    manifest = {}
    manifest_path = os.path.join(directory, "manifest.tsv")
    if os.path.exists(manifest_path):
        with open(manifest_path, encoding="utf-8") as f:
            for line in f:
                fields = line.rstrip("\n").split("\t")
                if not line.startswith("#") and len(fields) >= 3 and fields[0] != "file":
                    manifest[fields[0]] = {"content-location": fields[1], "content-type": fields[2]}
    files = []
    for name in sorted(os.listdir(directory)):
        path = os.path.join(directory, name)
        if os.path.isfile(path) and name != "manifest.tsv":
            headers = manifest.get(name, {"content-location": "https://feeds.example.com/" + name})
            with open(path, "rb") as f:
                files.append((headers, f.read()))
    size = sum(len(body) for _, body in files)
    best = float("inf")
    items = failed = 0
    for _ in range(max(rounds, 1)):
        items = failed = 0
        started = time.perf_counter()
        for headers, body in files:
            parsed = feedparser.parse(body, response_headers=headers)
            if parsed.bozo and not parsed.entries:
                failed += 1
            items += len(parsed.entries)
        best = min(best, time.perf_counter() - started)
    print(json.dumps({
        "parser": "feedparser " + feedparser.__version__, "files": len(files),
        "failed_feeds": failed, "bytes": size, "items": items, "seconds": best,
        "items_per_s": items / best, "mb_per_s": size / 1e6 / best,
    }))


if __name__ == "__main__":
    main()
