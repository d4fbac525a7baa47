"""Helpers for bench/run: parse wrk output, and render the results into docs/BENCHMARKS.md.

    python report.py wrk FILE [key=value ...]   # one JSON line from `wrk --latency` output
    python report.py render DOCS RESULTS_DIR     # fill the Suite section's marked blocks
    python report.py record RESULTS_DIR HISTORY  # append this run's headline ratios to HISTORY

Results are JSON lines under RESULTS_DIR (push.jsonl, parse.jsonl, api.jsonl, memory.jsonl,
fanout.jsonl, skipped.jsonl) and meta.json; each block of the Suite section is rewritten
between <!-- bench:NAME:begin --> and <!-- bench:NAME:end -->, nothing else in the file.
"""

import json
import os
import re
import sys

SECTIONS = ["machine", "runs", "push", "parse", "api", "memory", "growth", "commands"]

# Every run's headline numbers, one JSON line each, committed beside the script, so that a rerun
# shows whether the ratios reproduce.
HISTORY = os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "..", "runs.jsonl")

SUITE_INTRO = """## Suite (bench/run)

Everything below is written by `bench/run` (`--quick` for the short run): Herald side by side
with what a newsroom would otherwise run, on this machine, in the same run. Do not edit between
the markers; rerun the script.
"""

TITLES = {
    "machine": "### Machine",
    "runs": "### Every run's headline ratios",
    "push": "### Web Push send rate: Herald vs npm `web-push` vs `pywebpush`",
    "parse": "### Feed parsing: Herald parse + normalise vs `feedparser`",
    "api": "### Reader API with `wrk`, against a constant-response ceiling",
    "memory": "### Memory",
    "growth": "### Cost growth",
    "commands": "### Commands",
}


def to_ms(text):
    m = re.match(r"([\d.]+)(us|ms|s|m)$", text.strip())
    if not m:
        return None
    value, unit = float(m.group(1)), m.group(2)
    return value * {"us": 0.001, "ms": 1.0, "s": 1000.0, "m": 60000.0}[unit]


def parse_wrk(path, extra):
    with open(path, encoding="utf-8", errors="replace") as f:
        text = f.read()
    out = dict(extra)
    m = re.search(r"Requests/sec:\s+([\d.]+)", text)
    out["rps"] = float(m.group(1)) if m else None
    for pct in ("50", "75", "90", "99"):
        m = re.search(r"^\s+%s%%\s+(\S+)" % pct, text, re.M)
        out["p%s_ms" % pct] = to_ms(m.group(1)) if m else None
    m = re.search(r"(\d+) requests in", text)
    out["requests"] = int(m.group(1)) if m else None
    m = re.search(r"Non-2xx or 3xx responses:\s+(\d+)", text)
    out["non_2xx"] = int(m.group(1)) if m else 0
    m = re.search(r"Socket errors: (.*)", text)
    out["socket_errors"] = m.group(1).strip() if m else ""
    for key, value in list(out.items()):
        if isinstance(value, str) and re.fullmatch(r"\d+", value):
            out[key] = int(value)
    return out


def load(results, name):
    path = os.path.join(results, name)
    if not os.path.exists(path):
        return None
    rows = []
    with open(path, encoding="utf-8") as f:
        for line in f:
            line = line.strip()
            if line.startswith("{"):
                rows.append(json.loads(line))
    return rows


def fmt(value, digits=0):
    if value is None:
        return "—"
    if digits == 0:
        return "{:,.0f}".format(value)
    return "{:,.{d}f}".format(value, d=digits)


def skipped_note(results, section):
    notes = [r["reason"] for r in (load(results, "skipped.jsonl") or []) if r.get("section") == section]
    return "\n".join("**Not run:** %s" % n for n in notes)


def render_machine(results, meta):
    if not meta:
        return None
    lines = [
        "| | |", "|---|---|",
        "| run | %s, `%s` mode |" % (meta.get("date", "?"), meta.get("mode", "?")),
        "| CPU | %s |" % meta.get("cpu", "?"),
        "| cores (`nproc`) | %s |" % meta.get("cores", "?"),
        "| memory | %s |" % meta.get("memory", "?"),
        "| OS | %s |" % meta.get("os", "?"),
        "| toolchains | %s |" % meta.get("toolchains", "?"),
        "| load average at start / end | %s / %s |" % (meta.get("load_start", "?"), meta.get("load_end", "?")),
        "| wall time of the run | %s |" % meta.get("wall", "?"),
    ]
    if meta.get("note"):
        lines += ["", meta["note"]]
    return "\n".join(lines)


def render_push(results, meta):
    rows = load(results, "push.jsonl")
    if rows is None:
        return skipped_note(results, "push") or None
    senders = [r for r in rows if "sender" in r]
    checks = {r["receiver"]: r for r in rows if "receiver" in r}
    best = {}
    for r in senders:
        if r["sender"] not in best or r["rate"] > best[r["sender"]]["rate"]:
            best[r["sender"]] = r
    herald = best.get("herald")
    order = ["herald", "web-push (npm)", "pywebpush"]
    out = [
        "Each sender sends the same %s-byte alert (SPEC §4 shape) to the same %s subscriptions "
        "(fresh P-256 key and 16-byte auth secret each) over HTTPS/1.1 on one local receiver "
        "that answers 201. Every message is encrypted (RFC 8291 `aes128gcm`) and carries a "
        "VAPID header. Best of the concurrencies tried; all tried are listed below."
        % (meta.get("push_payload_bytes", "?"), fmt(meta.get("push_subscriptions"))),
        "",
        "| sender | best concurrency | messages/s | Herald / sender | target | receiver: requests / sampled / verified |",
        "|---|---:|---:|---:|---|---:|",
    ]
    targets = {"web-push (npm)": 5.0, "pywebpush": 10.0}
    for name in order + sorted(set(best) - set(order)):
        r = best.get(name)
        if not r:
            continue
        ratio = herald["rate"] / r["rate"] if herald and r["rate"] else None
        target = targets.get(name)
        if target is None:
            verdict = "—"
        elif ratio is None:
            verdict = "≥ %g×" % target
        else:
            verdict = "≥ %g× — **%s**" % (target, "met" if ratio >= target else "not met")
        c = checks.get(name, {})
        check = "%s / %s / %s" % (fmt(c.get("requests")), fmt(c.get("sampled")), fmt(c.get("ok"))) if c else "—"
        out.append("| %s | %s | %s | %s | %s | %s |" % (
            name, r["concurrency"], fmt(r["rate"]),
            "%.1f×" % ratio if ratio is not None and name != "herald" else "—", verdict, check))
    out += ["", "All runs (concurrency = requests in flight; for pywebpush, threads):", "",
            "| sender | concurrency | messages | failed | seconds | messages/s |",
            "|---|---:|---:|---:|---:|---:|"]
    for r in senders:
        out.append("| %s | %s | %s | %s | %s | %s |" % (
            r["sender"], r["concurrency"], fmt(r["messages"]), fmt(r.get("failed")),
            fmt(r["seconds"], 2), fmt(r["rate"])))
    bad = [c for c in checks.values() if c.get("sampled", 0) != c.get("ok", 0)]
    for c in bad:
        out.append("")
        out.append("**Receiver check failed for %s:** %s" % (c["receiver"], c.get("first_error")))
    note = skipped_note(results, "push")
    return "\n".join(out + ([note] if note else []))


def render_parse(results, meta):
    rows = load(results, "parse.jsonl")
    if rows is None:
        return skipped_note(results, "parse") or None
    corpus = next((r for r in rows if "corpus" in r), {})
    parsers = [r for r in rows if "parser" in r]
    herald = next((r for r in parsers if r["parser"] == "herald"), None)
    out = [
        "Corpus: %s — %s files, %s MB, %s items (%s)." % (
            corpus.get("corpus", "?"), fmt(corpus.get("files")),
            fmt((corpus.get("bytes") or 0) / 1e6, 1), fmt(herald and herald.get("items")),
            corpus.get("kinds", "RSS and Atom, UTF-8, ISO-8859-1 and windows-1252")),
        "One thread each; files read into memory first; best of %s passes." % meta.get("parse_rounds", "?"),
        "",
        "| parser | items | MB | seconds | items/s | MB/s | Herald / parser | target |",
        "|---|---:|---:|---:|---:|---:|---:|---|",
    ]
    for r in parsers:
        ratio = herald["items_per_s"] / r["items_per_s"] if herald and r["items_per_s"] else None
        is_peer = r["parser"] != "herald"
        verdict = ("≥ 20× — **%s**" % ("met" if ratio and ratio >= 20 else "not met")) if is_peer else "—"
        out.append("| %s | %s | %s | %s | %s | %s | %s | %s |" % (
            r["parser"], fmt(r["items"]), fmt(r["bytes"] / 1e6, 1), fmt(r["seconds"], 3),
            fmt(r["items_per_s"]), fmt(r["mb_per_s"], 2),
            ("%.1f×" % ratio) if is_peer and ratio else "—", verdict))
    return "\n".join(out)


def api_rows(results):
    return load(results, "api.jsonl")


def render_api(results, meta):
    rows = api_rows(results)
    note = skipped_note(results, "api")
    if not rows:
        return note or None
    n = meta.get("api_articles")
    main = [r for r in rows if r.get("articles") in (n, None)]
    consts = [r for r in main if r.get("route") == "const"]
    # The best of the ceiling runs: the fraction is then the least flattering one.
    ceiling = {"const": max(consts, key=lambda r: r.get("rps") or 0)} if consts else {}
    out = [
        "`wrk -t2 -c64 -d%ss --latency` from the same machine; `herald serve --roles api` (release, "
        "log level `warn`) on %s articles. The ceiling is `const_server`: an axum route answering "
        "with the bytes of a real list response (%s bytes), same wrk."
        % (meta.get("wrk_seconds", "?"), fmt(n), fmt(meta.get("list_body_bytes"))),
        "",
        "| database | route | requests/s | p50 | p99 | fraction of ceiling | non-2xx |",
        "|---|---|---:|---:|---:|---:|---:|",
    ]
    const = ceiling.get("const")
    for r in [r for r in main if r.get("route") != "const"] + ([const] if const else []):
        frac = ""
        if r.get("route") != "const" and const and const.get("rps") and r.get("rps"):
            frac = "%.0f%%" % (100.0 * r["rps"] / const["rps"])
            if r.get("route") == "list":
                frac += " (target ≥ 50%%: **%s**)" % ("met" if r["rps"] >= 0.5 * const["rps"] else "not met")
        out.append("| %s | `%s` | %s | %s ms | %s ms | %s | %s |" % (
            r["backend"], r.get("path", r.get("route")), fmt(r.get("rps")), fmt(r.get("p50_ms"), 2),
            fmt(r.get("p99_ms"), 2), frac or "—", fmt(r.get("non_2xx"))))
    if len(consts) > 1:
        out += ["", "Ceiling runs: %s requests/s; the best is the ceiling above." % " / ".join(
            fmt(r.get("rps")) for r in consts)]
    return "\n".join(out + ([note] if note else []))


def render_memory(results, meta):
    mem = load(results, "memory.jsonl") or []
    fan = load(results, "fanout.jsonl") or []
    note = skipped_note(results, "memory")
    if not mem and not fan:
        return note or None
    out = ["| process | state | RSS | peak RSS (VmHWM) |", "|---|---|---:|---:|"]
    for r in mem:
        out.append("| `herald serve --roles api` (%s, %s articles) | %s | %s MiB | %s MiB |" % (
            r["backend"], fmt(r.get("articles")), r["state"], fmt(r["rss_kib"] / 1024, 1),
            fmt(r["peak_kib"] / 1024, 1)))
    biggest = max(fan, key=lambda r: r.get("devices", 0), default=None)
    if biggest:
        out.append("| `fanout` bench (four notifier workers in-process, as `[push.fanout] workers`, PostgreSQL) | fan-out to %s devices | — | %s MiB |"
                   % (fmt(biggest["devices"]), fmt(biggest.get("peak_rss_mib"))))
    out += ["", "The fan-out figure is the peak RSS of the `fanout` benchmark process, which runs the "
            "notifier's fan-out workers (and the receiver) in-process, so it bounds what a "
            "`herald serve --roles notifier` process holds during that fan-out."]
    return "\n".join(out + ([note] if note else []))


def render_growth(results, meta):
    fan = load(results, "fanout.jsonl") or []
    rows = api_rows(results) or []
    note = "\n".join(filter(None, [skipped_note(results, "growth"), skipped_note(results, "fanout")]))
    if not fan and not rows:
        return note or None
    out = []
    if fan:
        out += ["Fan-out of one alert (`fanout` bench: seeded PostgreSQL schema, four workers as `[push.fanout] workers`, local receiver):", "",
                "| devices | sent | failed | last delivery | deliveries/s | peak RSS |",
                "|---:|---:|---:|---:|---:|---:|"]
        for r in sorted(fan, key=lambda r: r.get("devices", 0)):
            out.append("| %s | %s | %s | %s s | %s | %s MiB |" % (
                fmt(r.get("devices")), fmt(r.get("sent")), fmt(r.get("failed")),
                fmt(r.get("seconds"), 1), fmt(r.get("rate")), fmt(r.get("peak_rss_mib"))))
    api = [r for r in rows if r.get("route") in ("list", "detail")]
    if api:
        out += ["", "Reader API latency as the table grows (same wrk, 64 connections):", "",
                "| database | articles | route | requests/s | p50 | p99 |",
                "|---|---:|---|---:|---:|---:|"]
        for r in sorted(api, key=lambda r: (r["backend"], r["route"], r.get("articles", 0))):
            out.append("| %s | %s | %s | %s | %s ms | %s ms |" % (
                r["backend"], fmt(r.get("articles")), r["route"], fmt(r.get("rps")),
                fmt(r.get("p50_ms"), 2), fmt(r.get("p99_ms"), 2)))
    return "\n".join(out + ([note] if note else []))


def render_commands(results, meta):
    cmds = meta.get("commands") if meta else None
    if not cmds:
        return None
    return "Reproduce everything with `bench/run` (or `bench/run --quick`). What it ran:\n\n```sh\n%s\n```" % "\n".join(cmds)


def summarize(results, meta):
    """The headline numbers of the run in RESULTS_DIR: best rates, ratios and fractions."""
    run = {"date": meta.get("date"), "mode": meta.get("mode"), "cpu": meta.get("cpu"),
           "load_start": meta.get("load_start"), "load_end": meta.get("load_end"),
           "wall": meta.get("wall")}
    push = [r for r in (load(results, "push.jsonl") or []) if "sender" in r]
    best = {}
    for r in push:
        best[r["sender"]] = max(best.get(r["sender"], 0), r["rate"])
    if best.get("herald"):
        run["push_herald"] = best["herald"]
        for peer, key in (("web-push (npm)", "push_vs_npm"), ("pywebpush", "push_vs_pywebpush")):
            if best.get(peer):
                run[key] = best["herald"] / best[peer]
    parsers = {r["parser"]: r for r in (load(results, "parse.jsonl") or []) if "parser" in r}
    herald = parsers.get("herald")
    peer = next((r for name, r in parsers.items() if name != "herald"), None)
    if herald and peer and peer.get("items_per_s"):
        run["parse_herald"] = herald["items_per_s"]
        run["parse_vs_feedparser"] = herald["items_per_s"] / peer["items_per_s"]
    api = [r for r in (load(results, "api.jsonl") or []) if r.get("articles") in (meta.get("api_articles"), None)]
    consts = [r["rps"] for r in api if r.get("route") == "const" and r.get("rps")]
    if consts:
        run["api_ceiling"] = max(consts)
        for r in api:
            if r.get("route") == "list" and r.get("rps"):
                run["list_%s" % r["backend"]] = r["rps"]
                run["list_%s_fraction" % r["backend"]] = r["rps"] / max(consts)
    fan = load(results, "fanout.jsonl") or []
    if fan:
        big = max(fan, key=lambda r: r.get("devices") or 0)
        run["fanout_devices"] = big.get("devices")
        run["fanout_rate"] = big.get("rate")
    return run


def record(results, history):
    meta_path = os.path.join(results, "meta.json")
    with open(meta_path, encoding="utf-8") as f:
        meta = json.load(f)
    with open(history, "a", encoding="utf-8") as f:
        f.write(json.dumps(summarize(results, meta), sort_keys=True) + "\n")


def render_runs(results, meta):
    if not os.path.exists(HISTORY):
        return None
    with open(HISTORY, encoding="utf-8") as f:
        runs = [json.loads(line) for line in f if line.strip()]
    ratio = lambda r, k: ("%.1f×" % r[k]) if r.get(k) else "—"
    frac = lambda r, k: ("%.0f%%" % (100 * r[k])) if r.get(k) else "—"
    out = [
        "One row per run of `bench/run` (kept in `bench/runs.jsonl`): whether the ratios "
        "reproduce from run to run. Targets: Web Push ≥ 5× npm `web-push` and ≥ 10× `pywebpush`; "
        "parsing ≥ 20× `feedparser`; list route ≥ 50% of the ceiling.",
        "",
        "| run | mode | CPU | load start / end | Herald Web Push msg/s | × npm web-push | × pywebpush "
        "| × feedparser | list / ceiling (SQLite) | list / ceiling (PostgreSQL) | fan-out |",
        "|---|---|---|---|---:|---:|---:|---:|---:|---:|---|",
    ]
    for r in runs:
        fanout = "%s/s at %s" % (fmt(r.get("fanout_rate")), fmt(r.get("fanout_devices"))) if r.get("fanout_rate") else "—"
        out.append("| %s | %s | %s | %s / %s | %s | %s | %s | %s | %s | %s | %s |" % (
            r.get("date"), r.get("mode"), r.get("cpu") or "?", r.get("load_start", "?"), r.get("load_end", "?"),
            fmt(r.get("push_herald")), ratio(r, "push_vs_npm"), ratio(r, "push_vs_pywebpush"),
            ratio(r, "parse_vs_feedparser"), frac(r, "list_sqlite_fraction"),
            frac(r, "list_postgres_fraction"), fanout))
    return "\n".join(out)


RENDER = {
    "machine": render_machine, "runs": render_runs, "push": render_push, "parse": render_parse, "api": render_api,
    "memory": render_memory, "growth": render_growth, "commands": render_commands,
}


def render(docs, results):
    meta_path = os.path.join(results, "meta.json")
    meta = {}
    if os.path.exists(meta_path):
        with open(meta_path, encoding="utf-8") as f:
            meta = json.load(f)
    with open(docs, encoding="utf-8") as f:
        text = f.read()
    if "<!-- bench:machine:begin -->" not in text:
        blocks = [SUITE_INTRO]
        for name in SECTIONS:
            blocks.append("%s\n\n<!-- bench:%s:begin -->\n<!-- bench:%s:end -->\n" % (TITLES[name], name, name))
        text = text.rstrip("\n") + "\n\n" + "\n".join(blocks)
    for name in SECTIONS:
        body = RENDER[name](results, meta)
        if body is None:
            continue
        begin, end = "<!-- bench:%s:begin -->" % name, "<!-- bench:%s:end -->" % name
        pattern = re.compile(re.escape(begin) + r".*?" + re.escape(end), re.S)
        text = pattern.sub(lambda _m: "%s\n%s\n%s" % (begin, body.strip("\n"), end), text, count=1)
    with open(docs, "w", encoding="utf-8") as f:
        f.write(text)


def main():
    if sys.argv[1] == "wrk":
        extra = dict(kv.split("=", 1) for kv in sys.argv[3:])
        print(json.dumps(parse_wrk(sys.argv[2], extra)))
    elif sys.argv[1] == "render":
        render(sys.argv[2], sys.argv[3])
    elif sys.argv[1] == "record":
        record(sys.argv[2], sys.argv[3] if len(sys.argv) > 3 else HISTORY)
    else:
        sys.exit("usage: report.py wrk FILE [k=v ...] | render DOCS RESULTS_DIR | record RESULTS_DIR [HISTORY]")


if __name__ == "__main__":
    main()
