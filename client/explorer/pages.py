"""The explorer's HTML pages, rendered on the server from the index.

Everything that came from the chain or from another party (prompts, specs, metadata URIs,
provider strings, addresses) is attacker-controlled: it reaches the page only through
`esc` (html.escape, quotes included), is cut to a size (`cap`), and is never placed in a
URL, a style or a script. Pages carry no inline script or style: behaviour is in
``static/app.js`` and ``static/verify.js``, looks in ``static/style.css``, all served
under the strict Content-Security-Policy of client/explorer/server.py.
"""

from __future__ import annotations

import html
import json
import time
from collections.abc import Iterable, Mapping, Sequence
from typing import Any

from framecast.client.credits import Balances, HistoryRow
from framecast.shared.amounts import format_fcc

#: Longest text of one field shown on a page (a URI, a provider string, an argument).
MAX_FIELD_CHARS = 512
#: Prompt cut in lists (the job page shows the whole prompt, at most 2,000 characters).
FEED_PROMPT_CHARS = 140

NAV = (("/", "Jobs"), ("/gallery", "Gallery"), ("/providers", "Providers"),
       ("/credits", "Credits"), ("/node", "Node"))  # fmt: skip


def esc(value: object) -> str:
    return html.escape("" if value is None else str(value), quote=True)


def cap(value: object, limit: int = MAX_FIELD_CHARS) -> str:
    text = "" if value is None else str(value)
    return text if len(text) <= limit else text[: limit - 1] + "…"


def utc(timestamp: int | float | None) -> str:
    if timestamp is None:
        return "—"
    return time.strftime("%Y-%m-%d %H:%M:%S UTC", time.gmtime(timestamp))


def fcc(wei: int | str | None) -> str:
    return "—" if wei is None else format_fcc(int(wei))


def short(address: str | None) -> str:
    if not address:
        return "—"
    return address if len(address) < 14 else f"{address[:8]}…{address[-4:]}"


def status_line(status: Mapping[str, Any]) -> str:
    """ "indexed to block N of M" or "stale since …: why" — never a silent old page."""
    if status.get("stale_since"):
        return (
            f"stale since {utc(status['stale_since'])}: {cap(status.get('error'), 200)} "
            f"(showing what was indexed to block {status.get('cursor')})"
        )
    if status.get("cursor") is None:
        return "indexing… (nothing indexed yet)"
    return f"indexed to block {status['cursor']} of {status.get('head')}"


def layout(title: str, body: str, status: Mapping[str, Any], *, page: str = "") -> str:
    nav = " ".join(
        f'<a href="{href}"{" class=current" if href == page else ""}>{esc(name)}</a>'
        for href, name in NAV
    )
    stale = " stale" if status.get("stale_since") else ""
    return (
        "<!doctype html>\n<html lang=en><head><meta charset=utf-8>"
        '<meta name=viewport content="width=device-width, initial-scale=1">'
        f"<title>{esc(title)} · framecast explorer</title>"
        '<link rel=stylesheet href="/static/style.css">'
        '<script src="/static/verify.js" defer></script>'
        '<script src="/static/app.js" defer></script></head>'
        f"<body><header><strong class=brand>framecast</strong><nav>{nav}</nav>"
        f'<span id=status class="status{stale}">{esc(status_line(status))}</span></header>'
        f"<main>{body}</main></body></html>\n"
    )


def state_badge(state: str) -> str:
    return f'<span class="state state-{esc(state)}">{esc(state)}</span>'


def _table(head: Sequence[str], rows: Iterable[str], *, body_id: str = "") -> str:
    cols = "".join(f"<th>{esc(h)}</th>" for h in head)
    tbody = f' id="{body_id}"' if body_id else ""
    return f"<table><thead><tr>{cols}</tr></thead><tbody{tbody}>{''.join(rows)}</tbody></table>"


def _dl(items: Iterable[tuple[str, str]]) -> str:
    """A definition list; values are HTML already escaped by the caller."""
    return "<dl>" + "".join(f"<dt>{esc(k)}</dt><dd>{v}</dd>" for k, v in items) + "</dl>"


# --------------------------------------------------------------------------- feed
def feed_row(job: Mapping[str, Any]) -> str:
    return (
        f'<tr data-job="{int(job["job_id"])}"><td><a href="/jobs/{int(job["job_id"])}">'
        f"#{int(job['job_id'])}</a></td><td>{state_badge(job['state'])}</td>"
        f"<td>{esc(cap(job['model'], 64))}</td>"
        f"<td class=prompt>{esc(cap(job['prompt'], FEED_PROMPT_CHARS))}</td>"
        f"<td>{esc(fcc(job['price'] or job['max_price']))}</td>"
        f"<td>{esc(short(job['provider']))}</td><td>{int(job['updated_block'])}</td></tr>"
    )


def feed_page(jobs: Sequence[Mapping[str, Any]], status: Mapping[str, Any], *, seq: int = 0) -> str:
    """The feed as of change `seq`: the page's stream resumes after it (``data-seq``), so a
    job that changes between this render and the stream's start is not missed."""
    body = (
        f'<h1 id=live data-seq="{int(seq)}">Jobs</h1>'
        "<p class=hint>Live: state changes appear here as the chain moves.</p>"
        + _table(
            ("job", "state", "model", "prompt", "price", "provider", "block"),
            (feed_row(j) for j in jobs),
            body_id="feed",
        )
    )
    return layout("Jobs", body, status, page="/")


# --------------------------------------------------------------------------- job page
def job_page(
    job: Mapping[str, Any],
    *,
    spec: Mapping[str, Any] | None,
    spec_text: str,
    timeline: Sequence[Mapping[str, Any]],
    results: Sequence[Mapping[str, Any]],
    replicas: Sequence[Mapping[str, Any]],
    disputes: Sequence[Mapping[str, Any]],
    outcome: str,
    gateways: Sequence[str],
    max_bytes: int,
    status: Mapping[str, Any],
) -> str:
    job_id = int(job["job_id"])
    spec = spec or {}
    details = [
        ("prompt", f'<span class=prompt id=prompt>{esc(cap(job["prompt"], 2000))}</span>'),
        ("negative prompt", esc(cap(spec.get("negative_prompt") or "—", 2000))),
        ("model", esc(cap(job["model"], 128))),
        ("style", esc(cap(spec.get("style") or "—", 128))),
        ("size", esc(f"{spec.get('num_frames', '?')} frames, {spec.get('width', '?')}×"
                     f"{spec.get('height', '?')} at {spec.get('fps', '?')} fps, "
                     f"{spec.get('steps', '?')} steps, seed {spec.get('seed', '?')}")),
        ("client", f'<a href="/credits/{esc(job["client"])}">{esc(job["client"])}</a>'),
        ("max price", esc(fcc(job["max_price"]))),
        ("price", esc(fcc(job["price"]))),
        ("provider", esc(job["provider"] or "—")),
        ("replicas", esc(job["replicas"])),
        ("outcome", esc(outcome)),
    ]  # fmt: skip
    parts = [
        f"<h1>Job #{job_id} {state_badge(job['state'])}</h1>",
        _dl(details),
        f"<details><summary>spec (as signed)</summary><pre>{esc(cap(spec_text, 8000))}</pre>"
        "</details>",
    ]
    for result in results:
        parts.append(video_section(result, gateways, max_bytes))
    if not results:
        parts.append("<section class=video><p class=verdict>no result delivered yet</p></section>")
    parts.append("<h2>Timeline</h2>")
    parts.append(
        _table(
            ("event", "block", "time", "details", "tx"),
            (
                f"<tr><td>{esc(t['event'])}</td><td>{int(t['block'])}</td>"
                f"<td>{esc(utc(t['time']))}</td><td>{esc(cap(t['details'], 400))}</td>"
                f"<td class=hash>{esc(short(t['tx']))}</td></tr>"
                for t in timeline
            ),
            body_id="timeline",
        )
    )
    if replicas:
        parts.append("<h2>Replicas</h2>")
        parts.append(
            _table(
                ("index", "provider", "committed", "revealed CID", "frames digest", "agrees"),
                (
                    f"<tr><td>{int(r['index'])}</td><td>{esc(r['provider'])}</td>"
                    f"<td>{esc(r['committed'])}</td><td class=hash>{esc(r['cid'] or '—')}</td>"
                    f"<td class=hash>{esc(short(r['frames']))}</td><td>{esc(r['agrees'])}</td>"
                    "</tr>"
                    for r in replicas
                ),
            )
        )
    if disputes:
        parts.append("<h2>Dispute</h2>")
        parts.append(
            _table(
                ("block", "by", "reason", "resolve by"),
                (
                    f"<tr><td>{int(d['block'])}</td><td>{esc(d['client'])}</td>"
                    f"<td>{esc(d['reason'])}</td><td>{esc(utc(d['resolve_by']))}</td></tr>"
                    for d in disputes
                ),
            )
        )
    return layout(f"Job #{job_id}", "".join(parts), status)


def video_section(result: Mapping[str, Any], gateways: Sequence[str], max_bytes: int) -> str:
    """The element verify.js fills: the chain's CID (and its bytes) and sha256, and the
    gateways to try, all as data attributes (escaped; read with dataset, never evaluated)."""
    label = "" if result.get("index") is None else f" (replica {int(result['index'])})"
    return (
        f'<section class="video verify" data-cid="{esc(result["cid"])}" '
        f'data-cid-hex="{esc(result["cid_hex"])}" data-sha256="{esc(result["sha256"])}" '
        f'data-gateways="{esc(json.dumps(list(gateways)))}" data-max-bytes="{max_bytes}">'
        f"<h2>Video{esc(label)}</h2>"
        '<p class="verdict pending" data-role=verdict>verifying in this browser…</p>'
        "<video data-role=player controls muted loop autoplay playsinline hidden></video>"
        '<img data-role=poster alt="poster" hidden>'
        f"<dl class=chain><dt>result CID (chain)</dt><dd class=hash>{esc(result['cid'])}</dd>"
        f"<dt>video sha256 (chain)</dt><dd class=hash>{esc(result['sha256'])}</dd>"
        f"<dt>frames digest (chain)</dt><dd class=hash>{esc(result['frames'])}</dd></dl>"
        "<h3>Receipt</h3><dl data-role=receipt><dt>receipt</dt><dd>not fetched yet</dd></dl>"
        "<h3>Retrieval</h3><ol data-role=attempts></ol></section>"
    )


# --------------------------------------------------------------------------- gallery
def gallery_page(
    jobs: Sequence[Mapping[str, Any]], gateways_of: Mapping[int, Sequence[str]],
    status: Mapping[str, Any],
) -> str:  # fmt: skip
    cards = []
    for job in jobs:
        job_id = int(job["job_id"])
        cards.append(
            f'<figure class="card verify-poster" data-cid-hex="{esc(job["cid_hex"])}" '
            f'data-gateways="{esc(json.dumps(list(gateways_of.get(job_id, ()))))}">'
            f'<a href="/jobs/{job_id}"><img data-role=poster alt="poster of job {job_id}" hidden>'
            f"<span class=placeholder data-role=placeholder>#{job_id}</span></a>"
            f'<figcaption><a href="/jobs/{job_id}">#{job_id}</a> '
            f"{esc(cap(job['prompt'], 80))}</figcaption></figure>"
        )
    body = "<h1>Gallery</h1>" + (
        f"<div class=grid>{''.join(cards)}</div>" if cards else "<p>No delivered videos yet.</p>"
    )
    return layout("Gallery", body, status, page="/gallery")


# --------------------------------------------------------------------------- providers
def providers_page(providers: Sequence[Mapping[str, Any]], status: Mapping[str, Any]) -> str:
    rows = []
    for p in providers:
        offer = p.get("offer")
        models = ", ".join(offer.models) if offer else "—"
        price = (
            f"{offer.price_per_unit} wei/unit"
            if offer is not None and offer.price_per_unit is not None
            else "—"
        )
        median = p.get("median_delivery_s")
        rows.append(
            f'<tr id="p-{esc(p["address"])}"><td class=hash>{esc(p["address"])}</td>'
            f"<td>{esc(p['bond'])}</td><td>{int(p['served'])}</td>"
            f"<td>{'—' if median is None else esc(f'{median:.0f} s')}</td>"
            f"<td>{int(p['disputes_lost'])}</td><td>{int(p['slashes'])}</td>"
            f"<td>{esc(cap(models, 200))}</td><td>{esc(price)}</td>"
            f"<td class=uri>{esc(cap(p['uri'], 160))}</td></tr>"
        )
    body = "<h1>Providers</h1>" + _table(
        ("address", "bond", "jobs served", "median delivery", "disputes lost", "slashes",
         "models", "price", "metadata URI"),
        rows,
    )  # fmt: skip
    return layout("Providers", body, status, page="/providers")


# --------------------------------------------------------------------------- credits
def credits_form(status: Mapping[str, Any], error: str | None = None) -> str:
    body = (
        "<h1>Credits</h1>"
        + (f"<p class=error>{esc(error)}</p>" if error else "")
        + '<form method=get action="/credits"><label>address '
        '<input name=address size=44 maxlength=42 placeholder="0x…" required></label> '
        "<button>show</button></form>"
    )
    return layout("Credits", body, status, page="/credits")


def credits_page(
    balances: Balances | None, rows: Sequence[HistoryRow], error: str | None,
    status: Mapping[str, Any], address: str,
) -> str:  # fmt: skip
    parts = [f"<h1>Credits of <span class=hash>{esc(address)}</span></h1>"]
    if error:
        parts.append(f"<p class=error>{esc(error)}</p>")
    if balances is not None:
        items = [
            ("wallet", esc(fcc(balances.wallet))),
            ("free (in the market)", esc(fcc(balances.free))),
            ("escrowed", esc(f"{fcc(balances.escrowed)} in {balances.open_jobs} open job(s)")),
            ("  of which in challenge", esc(fcc(balances.in_challenge))),
            ("refunded (lifetime)", esc(fcc(balances.refunded))),
            ("slashed to you (lifetime)", esc(fcc(balances.slashed))),
        ]
        if balances.provider is not None:
            items.append(("provider bond", esc(fcc(balances.provider.bond))))
            items.append(("  of which locked", esc(fcc(balances.provider.locked))))
        parts.append(_dl(items))
    parts.append("<h2>History</h2>")
    parts.append(
        _table(
            ("time", "kind", "what", "amount", "job", "price", "refunded", "counterparty"),
            (
                f"<tr><td>{esc(utc(r.time))}</td><td>{esc(r.kind)}</td><td>{esc(r.what)}</td>"
                f"<td>{esc(('-' if r.direction == 'out' else '') + fcc(r.amount))}</td>"
                f"<td>{'' if r.job_id is None else f'<a href=/jobs/{r.job_id}>#{r.job_id}</a>'}"
                f"</td><td>{esc(fcc(r.price))}</td><td>{esc(fcc(r.refunded))}</td>"
                f"<td class=hash>{esc(short(r.counterparty or r.provider))}</td></tr>"
                for r in rows
            ),
        )
    )
    return layout("Credits", "".join(parts), status, page="/credits")


# --------------------------------------------------------------------------- node
def node_page(node: Mapping[str, Any] | None, status: Mapping[str, Any]) -> str:
    if node is None:
        body = (
            "<h1>Local node</h1><p>No local node configured: start the explorer with "
            "<code>--node-url http://127.0.0.1:PORT</code> (the node's HTTP port).</p>"
        )
    elif node.get("error"):
        body = f"<h1>Local node</h1><p class=error>{esc(node['error'])}</p>"
    else:
        jobs = node.get("jobs") or {}
        items = [
            ("URL", esc(node["url"])),
            ("healthy", esc("yes" if node.get("ok") else "no")),
            ("last chain poll", esc(f"{node.get('last_poll_age_s')} s ago")),
            ("GPU slots", esc(node.get("slots", "?"))),
            ("slots busy", esc(node.get("slots_busy", "?"))),
        ]
        body = (
            "<h1>Local node</h1>"
            + _dl(items)
            + "<h2>Jobs by local state</h2>"
            + _table(
                ("state", "jobs"),
                (f"<tr><td>{esc(k)}</td><td>{esc(v)}</td></tr>" for k, v in jobs.items()),
            )
        )
    return layout("Node", body, status, page="/node")


def not_found_page(what: str, status: Mapping[str, Any]) -> str:
    return layout(
        "Not found",
        f'<h1>Not found</h1><p class=error>{esc(what)}</p><p><a href="/">all jobs</a></p>',
        status,
    )
