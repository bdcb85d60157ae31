"""``python -m crawler.report [--uri URI] [--out var/report.html]``: an HTML report with charts.

Reads ``crawl_runs`` and the data collections and writes one self-contained
HTML file (inline SVG, no scripts): field coverage of the latest run, items
per run, pages and blocked pages per run over time, titles per decade, and a
table of runs with their monitors.

``crawl_runs`` is written by crawls, but anyone with write access to the
database can write into it: every value shown is escaped, and a value of the
wrong type (text where a count belongs, a list where a table belongs) is
shown as nothing rather than crashing the report.
"""

from __future__ import annotations

import argparse
import html
import os
import sys
from collections import Counter
from datetime import datetime
from pathlib import Path
from typing import Any

from crawler.runtime.judging import aggregate, number
from crawler.storage.connection import connect, database_name
from crawler.storage.secrets import redact


def _admitted(run: dict[str, Any]) -> float:
    """Pages a run admitted (records before schema 2 named them ``pages``)."""
    return number(run.get("admitted", run.get("pages")))


def _map(value: Any) -> dict[str, Any]:
    return {str(k): v for k, v in value.items()} if isinstance(value, dict) else {}


def _text(value: Any) -> str:
    return html.escape(str(value))


COLOURS = {"new": "#2b8a3e", "changed": "#e8590c", "unchanged": "#868e96", "pages": "#1971c2", "blocked": "#c92a2a"}


def hbars(values: dict[str, float], width: int = 560, unit: str = "%") -> str:
    """Horizontal bars, one per label (values 0–1 when unit is %)."""
    row, label_w = 18, 150
    height = row * len(values) + 10
    parts = [f'<svg width="{width}" height="{height}" role="img">']
    peak = max([number(v) for v in values.values()] + [1])
    for i, (label, raw) in enumerate(values.items()):
        value = number(raw)
        y = 5 + i * row
        bar = (width - label_w - 60) * (min(max(value, 0), 1) if unit == "%" else max(value, 0) / peak)
        shown = f"{value:.0%}" if unit == "%" else f"{value:g}"
        parts.append(
            f'<text x="{label_w - 6}" y="{y + 12}" text-anchor="end" font-size="12">{html.escape(label)}</text>'
        )
        parts.append(f'<rect x="{label_w}" y="{y + 2}" width="{bar:.1f}" height="{row - 5}" fill="#1971c2"/>')
        parts.append(f'<text x="{label_w + bar + 4:.1f}" y="{y + 12}" font-size="11">{shown}</text>')
    parts.append("</svg>")
    return "".join(parts)


def stacked_columns(columns: list[tuple[str, dict[str, float]]], keys: list[str], height: int = 200) -> str:
    """Vertical stacked columns (one per run), with a legend."""
    col_w, gap, top = 28, 10, 20
    width = max(300, len(columns) * (col_w + gap) + 60)
    peak = max([sum(number(v.get(k)) for k in keys) for _, v in columns] or [1]) or 1
    parts = [f'<svg width="{width}" height="{height + 40}" role="img">']
    for n, key in enumerate(keys):
        parts.append(f'<rect x="{10 + n * 100}" y="2" width="10" height="10" fill="{COLOURS[key]}"/>')
        parts.append(f'<text x="{24 + n * 100}" y="11" font-size="11">{key}</text>')
    for i, (label, values) in enumerate(columns):
        x, y = 40 + i * (col_w + gap), float(top + height)
        for key in keys:
            h = height * max(number(values.get(key)), 0) / peak
            y -= h
            parts.append(f'<rect x="{x}" y="{y:.1f}" width="{col_w}" height="{h:.1f}" fill="{COLOURS[key]}"/>')
        parts.append(f'<text x="{x + col_w / 2}" y="{top + height + 14}" font-size="10" text-anchor="middle">')
        parts.append(f"{html.escape(label)}</text>")
    parts.append(f'<text x="4" y="{top + 10}" font-size="10">{peak:g}</text></svg>')
    return "".join(parts)


def collect(uri: str, limit: int = 30) -> dict[str, Any]:
    client = connect(uri)
    try:
        db = client[database_name(uri)]
        # Workers of distributed runs have a record each: read enough to fill `limit` runs.
        records = list(db.crawl_runs.find().sort("started", -1).limit(limit * 8))[::-1]
        runs = as_runs(records)[-limit:]
        decades = Counter(
            f"{(d['year'] // 10) * 10}s" for d in db.titles.find({"year": {"$ne": None}}, {"year": 1}) if d.get("year")
        )
        return {
            "database": redact(uri),
            "titles": db.titles.count_documents({}),
            "people": db.people.count_documents({}),
            "runs": runs,
            "decades": dict(sorted(decades.items())),
        }
    finally:
        client.close()


def as_runs(records: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """One entry per run, oldest first: a distributed run's worker records become one.

    The whole of a distributed run is what its last worker judged (``run_wide``);
    while workers still run, the sum of their records so far.
    """
    order: list[dict[str, Any] | list[dict[str, Any]]] = []
    groups: dict[str, list[dict[str, Any]]] = {}
    for record in records:
        group = record.get("run_group")
        if not group:
            order.append(record)
        elif group in groups:
            groups[group].append(record)
        else:
            groups[group] = [record]
            order.append(groups[group])
    runs = []
    for entry in order:
        if isinstance(entry, dict):
            runs.append(entry)
            continue
        judged = next((worker for worker in entry if "run_wide" in worker), None)
        whole = judged["run_wide"] if judged else aggregate(entry)
        finished = [w["finished"] for w in entry if isinstance(w.get("finished"), datetime)]
        runs.append(
            {
                **whole,
                "job": entry[0].get("job"),
                "command": entry[0].get("command"),
                "started": min((w["started"] for w in entry if isinstance(w.get("started"), datetime)), default=None),
                "finished": max(finished) if judged and finished else None,
                "finish_reason": judged.get("finish_reason") if judged else "running",
                "monitors": whole.get("monitors", []) if judged else [],
            }
        )
    return runs


def _when(value: Any) -> str:
    return value.strftime("%Y-%m-%d %H:%M") if isinstance(value, datetime) else "—"


def drift_sections(run: dict[str, Any]) -> list[str]:
    """Per layout and kind of page: on what share of pages each field's first page-data source was found."""
    sections = []
    verdict = next((m for m in _monitors(run) if m["monitor"] == "layout_drift"), None)
    if verdict and not verdict["ok"]:
        sections.append(f"<p class='bad'>Layout drift: {_text(verdict['message'])}</p>")
    for group, counts in sorted(_map(run.get("drift")).items()):
        pages = number(_map(counts).get("pages"))
        if not pages:
            continue
        fields = sorted(_map(_map(counts).get("fields")).items())
        shares = {field: number(_map(seen).get("primary")) / pages for field, seen in fields}
        sections.append(f"<h2>First page-data source found, latest run: {_text(group)} ({pages:g} pages)</h2>"
                        f"{hbars(shares)}")  # fmt: skip
    return sections


def _monitors(run: dict[str, Any]) -> list[dict[str, Any]]:
    """A run's verdicts, each with a monitor name, ok and a message (anything else left out)."""
    found = run.get("monitors")
    return [
        {"monitor": str(m.get("monitor")), "ok": m.get("ok") is True, "message": str(m.get("message", ""))}
        for m in (found if isinstance(found, list) else [])
        if isinstance(m, dict)
    ]


def render(data: dict[str, Any]) -> str:
    runs = [run for run in data["runs"] if isinstance(run, dict)]
    latest = runs[-1] if runs else {}
    sections = [
        f"<h1>imdb-crawler report</h1><p>{_text(data['database'])}: <b>{number(data['titles']):g}</b> titles, "
        f"<b>{number(data['people']):g}</b> people, {len(runs)} runs shown.</p>"
    ]
    for collection, coverage in _map(latest.get("coverage")).items():
        shares = _map(coverage)
        fields = {k: v for k, v in sorted(shares.items(), key=lambda kv: -number(kv[1])) if not k.startswith("_")}
        sections.append(f"<h2>Field coverage of the latest run: {_text(collection)}</h2>{hbars(fields)}")
    sections += drift_sections(latest)
    labels = [f"{i + 1}" for i in range(len(runs))]
    items = [(label, _map(r.get("items"))) for label, r in zip(labels, runs, strict=True)]
    sections.append(f"<h2>Items per run</h2>{stacked_columns(items, ['new', 'changed', 'unchanged'])}")
    pages = [(label, {"pages": _admitted(r) - number(r.get("blocked")), "blocked": number(r.get("blocked"))})
             for label, r in zip(labels, runs, strict=True)]  # fmt: skip
    sections.append(f"<h2>Pages and blocked pages per run</h2>{stacked_columns(pages, ['pages', 'blocked'])}")
    if data["decades"]:
        sections.append(f"<h2>Titles per decade</h2>{hbars(data['decades'], unit='n')}")
    rows = []
    for label, run in zip(labels, runs, strict=True):
        monitors = _monitors(run)
        failed = [m["monitor"] for m in monitors if not m["ok"]]
        verdict = ", ".join(failed) or ("all passed" if monitors else "not run")
        item = _map(run.get("items"))
        workers = f" ({number(run.get('workers')):g} workers)" if number(run.get("workers")) else ""
        counts = [_admitted(run), number(run.get("blocked"))]
        counts += [number(item.get(key)) for key in ("new", "changed", "unchanged")]
        rows.append(
            f"<tr><td>{label}</td><td>{_when(run.get('started'))}</td>"
            f"<td title='{_text(run.get('command') or '')}'>{_text(run.get('job') or '—')}</td>"
            f"<td>{_text(run.get('finish_reason'))}{workers}</td>"
            + "".join(f"<td>{count:g}</td>" for count in counts)
            + f"<td class='{'bad' if failed else 'ok'}'>{_text(verdict)}</td></tr>"
        )
    sections.append(
        "<h2>Runs</h2><table><tr><th>#</th><th>started</th><th>job (hover: command)</th><th>finish</th><th>pages</th>"
        "<th>blocked</th><th>new</th><th>changed</th><th>unchanged</th><th>monitors</th></tr>"
        + "".join(rows)
        + "</table>"
    )
    style = (
        "body{font-family:sans-serif;margin:2em;max-width:60em}td,th{padding:2px 8px;border-bottom:1px solid #ddd}"
        ".bad{color:#c92a2a}.ok{color:#2b8a3e}"
    )
    head = f"<meta charset='utf-8'><title>imdb-crawler report</title><style>{style}</style>"
    return f"<!DOCTYPE html><html><head>{head}</head><body>{''.join(sections)}</body></html>"


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m crawler.report", description=__doc__.splitlines()[0])
    parser.add_argument("--uri", default=os.environ.get("MONGODB_URI"), help="MongoDB URI (default: $MONGODB_URI)")
    parser.add_argument("--out", default="var/report.html")
    args = parser.parse_args(argv)
    if not args.uri:
        parser.error("no MongoDB URI: pass --uri or set MONGODB_URI")
    out = Path(args.out)
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text(render(collect(args.uri)), encoding="utf-8")
    print(f"Wrote {out}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
