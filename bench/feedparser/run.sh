#!/usr/bin/env bash
# Measures Herald's agreement with feedparser on entry titles and links over the corpus:
# the generated families (make_corpus.py), Herald's own fixtures and demo feeds, and the
# real-world feeds feed-rs ships in its crate. feedparser runs as it is deployed: from PyPI, with
# `chardet`, the optional package it detects undeclared charsets with, in a venv of its own.
#
#   bash bench/feedparser/run.sh                  # summary on stdout, disagreements on stderr
#   FEEDPARSER_CHARDET=off bash bench/feedparser/run.sh   # feedparser as if chardet were absent
set -euo pipefail
root="$(cd "$(dirname "$0")/../.." && pwd)"
venv="${FEEDPARSER_VENV:-${CARGO_TARGET_DIR:-$root/target}/feedparser-venv}"
[ -x "$venv/bin/python" ] || python3 -m venv "$venv"
"$venv/bin/pip" install --quiet --disable-pip-version-check "feedparser==6.0.14" "chardet==7.7.0"
python() { "$venv/bin/python" "$@"; }
work="$(mktemp -d)"
trap 'rm -rf "$work"' EXIT
python "$root/bench/feedparser/make_corpus.py" "$work/gen" >/dev/null
mkdir -p "$work/shipped"
cp "$root"/crates/ingest/tests/fixtures/feeds/* "$work/shipped/"
for f in "$root"/crates/ingest/tests/fixtures/*.xml "$root"/config/demo/*.xml; do
  cp "$f" "$work/shipped/$(basename "$(dirname "$f")")-$(basename "$f")"
done
feedrs="$(ls -d "${CARGO_HOME:-$HOME/.cargo}"/registry/src/*/feed-rs-3.* 2>/dev/null | tail -1 || true)"
if [ -n "$feedrs" ]; then
  for f in $(find "$feedrs/fixture" -name '*.xml'); do
    cp "$f" "$work/shipped/feed-rs-$(basename "$(dirname "$f")")-$(basename "$f")"
  done
fi
cargo build -q -p herald-ingest --bin herald-feed-dump
dump="${CARGO_TARGET_DIR:-$root/target}/debug/herald-feed-dump"
files=("$work"/gen/* "$work"/shipped/*)
"$dump" "${files[@]}" >"$work/herald.jsonl"
python "$root/bench/feedparser/compare.py" "$work/herald.jsonl" "${files[@]}"

# Second, separately: the test feeds feedparser's own source distribution ships (its
# wellformed/illformed/entities/encoding suites), from PyPI with pip.
version="$(python -c 'import feedparser; print(feedparser.__version__)')"
if "$venv/bin/pip" download --quiet --no-deps --no-binary :all: "feedparser==$version" -d "$work/sdist" 2>/dev/null; then
  tar xzf "$work"/sdist/feedparser-*.tar.gz -C "$work/sdist"
  mkdir -p "$work/fp"
  (cd "$work"/sdist/feedparser-*/tests &&
    find wellformed illformed entities encoding -name '*.xml' | while read -r f; do
      cp "$f" "$work/fp/$(echo "$f" | tr '/' '_')"
    done)
  "$dump" "$work"/fp/* >"$work/fp.jsonl"
  echo "feedparser's own test feeds:" >&2
  python "$root/bench/feedparser/compare.py" "$work/fp.jsonl" "$work"/fp/*
fi
