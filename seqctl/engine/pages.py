"""HTML for people, in one look: the `seqctl report` page and the pages `seqctl serve` shows.
Plain values in, one self-contained HTML string out: the stylesheet is inline, charts are
inline SVG drawn by pygal, and a Content-Security-Policy forbids loading anything, so the
page needs no network and makes no request.
"""

from __future__ import annotations

import html
import re
from functools import cache
from importlib import resources
from typing import Any

from jinja2 import Environment, select_autoescape
from markupsafe import Markup

FUNNEL = (("sent", "sent"), ("opens", "opened"), ("clicks", "clicked"), ("replies", "replied"),
          ("bounces", "bounced"), ("unsubscribes", "unsubscribed"))
TASK_STATUSES = ("open", "done", "skipped")
COLOURS = ("#2f6fde", "#7aa7f0", "#38b2ac", "#1f8a4c", "#c53030", "#b7791f", "#805ad5",
           "#d69e2e", "#718096")

REPORT_CSP = "default-src 'none'; style-src 'unsafe-inline'; img-src data:"
SERVE_CSP = "default-src 'none'; style-src 'unsafe-inline'; form-action 'self'"

_SHELL = """<!DOCTYPE html>
<html lang="en"><head><meta charset="utf-8">
<meta name="viewport" content="width=device-width, initial-scale=1">
<meta http-equiv="Content-Security-Policy" content="{csp}">
{robots}<title>{title}</title>
<style>
{css}</style>
</head><body class="seqctl">
<main class="{width}">
{body}
</main>
</body></html>
"""


@cache
def stylesheet() -> str:
    return resources.files("seqctl").joinpath("data/page.css").read_text(encoding="utf-8")


def page(title: str, body: str, *, csp: str = SERVE_CSP, wide: bool = False,
         robots: bool = False) -> str:
    """A whole HTML document in seqctl's look around `body` (already HTML)."""
    return _SHELL.format(
        csp=csp, title=html.escape(title), css=stylesheet(), body=body,
        width="wrap" if wide else "wrap narrow",
        robots='<meta name="robots" content="noindex">\n' if robots else "")


def notice_page(title: str, body: str) -> str:
    """The small pages of `seqctl serve` (unsubscribe confirmation and result)."""
    return page(title, f'<div class="card">\n<h1>{html.escape(title)}</h1>\n{body}\n</div>',
                robots=True)


# --- charts --------------------------------------------------------------------------------

_COMMENT = re.compile(r"<!--.*?-->", re.S)
_SCRIPT = re.compile(r"<script\b.*?</script>", re.S)


def _style() -> Any:
    from pygal.style import Style

    font = "system-ui, -apple-system, 'Segoe UI', Roboto, Arial, sans-serif"
    return Style(background="transparent", plot_background="transparent",
                 foreground="#1f2933", foreground_strong="#1f2933", foreground_subtle="#616e7c",
                 colors=COLOURS, font_family=font, label_font_size=14, major_label_font_size=14,
                 legend_font_size=15, value_font_size=14, title_font_size=15,
                 guide_stroke_color="#e4e7eb", major_guide_stroke_color="#cbd2d9",
                 opacity=".9", opacity_hover="1")


def _svg(chart: Any) -> Markup:
    """The chart's inline SVG, without pygal's script (tooltips need its JavaScript from the
    network) or comments (they carry the rendering date)."""
    svg = chart.render(is_unicode=True)
    return Markup(_SCRIPT.sub("", _COMMENT.sub("", svg)))


def _chart(kind: str, **options: Any) -> Any:
    import pygal

    settings = dict(js=[], disable_xml_declaration=True, style=_style(), width=520,
                    height=320, legend_at_bottom=True, legend_box_size=14, margin=12,
                    show_y_guides=True, print_values=False, truncate_legend=-1,
                    truncate_label=-1, min_scale=4, max_scale=8)
    settings.update(options)
    return getattr(pygal, kind)(**settings)


def _count_axis(chart: Any, values: list[int]) -> None:
    """Whole numbers on the value axis (pygal would label a maximum of 1 in fifths)."""
    top = max(values, default=0)
    if top < 10:
        chart.range = (0, max(top, 1))
        chart.y_labels = list(range(0, max(top, 1) + 1))


def funnel_chart(steps: list[dict[str, Any]]) -> Markup:
    """Grouped bars per step (variants added up): sent, opened, clicked, replied, bounced,
    unsubscribed."""
    labels: list[str] = []
    totals: dict[str, list[int]] = {key: [] for key, _ in FUNNEL}
    for row in steps:
        label = f"Step {row['step']}" if row["step"] is not None else "removed"
        if label not in labels:
            labels.append(label)
            for key, _ in FUNNEL:
                totals[key].append(0)
        for key, _ in FUNNEL:
            totals[key][labels.index(label)] += row[key]
    chart = _chart("Bar", width=760, height=340)
    chart.x_labels = labels
    for key, name in FUNNEL:
        chart.add(name, totals[key])
    _count_axis(chart, [value for series in totals.values() for value in series])
    return _svg(chart)


def intents_chart(intents: list[dict[str, Any]]) -> Markup:
    chart = _chart("HorizontalBar", show_legend=False, height=80 + 44 * len(intents),
                   print_values=True)
    chart.x_labels = [item["intent"].replace("_", " ") for item in intents]
    chart.add("replies", [item["replies"] for item in intents])
    _count_axis(chart, [item["replies"] for item in intents])
    return _svg(chart)


def days_chart(days: list[dict[str, Any]]) -> Markup:
    chart = _chart("Bar", x_label_rotation=30 if len(days) > 8 else 0,
                   show_minor_x_labels=len(days) <= 14,
                   x_labels_major_every=max(1, len(days) // 7))
    chart.x_labels = [day["day"][5:] for day in days]      # MM-DD
    chart.add("sent", [day["sent"] for day in days])
    chart.add("replies", [day["replies"] for day in days])
    _count_axis(chart, [day[key] for day in days for key in ("sent", "replies")])
    return _svg(chart)


# --- the report ----------------------------------------------------------------------------


def percent(fraction: float) -> str:
    return f"{fraction * 100:.1f}%"


@cache
def _environment() -> Environment:
    env = Environment(autoescape=select_autoescape(default=True, default_for_string=True),
                      trim_blocks=True, lstrip_blocks=True)
    env.filters["percent"] = percent
    return env


def _ab_tests(stats: dict[str, Any]) -> list[dict[str, Any]]:
    arms: dict[Any, dict[str, dict[str, Any]]] = {}
    for row in stats["steps"]:
        arms.setdefault(row["step"], {})[row["variant"]] = row
    return [{**test, "a": arms[test["step"]]["A"], "b": arms[test["step"]]["B"]}
            for test in stats["ab_tests"]]


def _kpis(totals: dict[str, Any]) -> list[tuple[str, str, str]]:
    return [("enrolled", "enrolled", str(totals["enrolled"])),
            ("sent", "emails sent", str(totals["sent"])),
            ("replies", "replies", str(totals["replies"])),
            ("reply_rate", "reply rate", percent(totals["reply_rate"])),
            ("meetings", "meetings", str(totals["meetings"])),
            ("bounces", "bounced", str(totals["bounces"])),
            ("unsubscribes", "unsubscribed", str(totals["unsubscribes"]))]


def report_page(report: dict[str, Any]) -> str:
    """The whole `seqctl report` file. `report` is {"generated_at": text, "sequences": [{
    "name", "description", "timezone", "stats" (the `stats --json` document), "intents":
    [{"intent", "replies"}], "days": [{"day": "YYYY-MM-DD", "sent", "replies"}], "tasks":
    {"totals": {status: n}, "by_kind": [{"kind", status: n}]}}]}."""
    template = _environment().from_string(
        resources.files("seqctl").joinpath("data/report.html.j2").read_text(encoding="utf-8"))
    sequences = []
    for seq in report["sequences"]:
        stats = seq["stats"]
        charts = {
            "funnel": funnel_chart(stats["steps"]) if stats["steps"] else "",
            "intents": intents_chart(seq["intents"]) if seq["intents"] else "",
            "days": days_chart(seq["days"]) if seq["days"] else "",
        }
        sequences.append({**seq, "charts": charts, "kpis": _kpis(stats["totals"]),
                          "ab_tests": _ab_tests(stats)})
    body = template.render(generated_at=report["generated_at"], sequences=sequences,
                           funnel_columns=FUNNEL, task_statuses=TASK_STATUSES)
    names = ", ".join(seq["name"] for seq in report["sequences"])
    return page(f"seqctl report: {names}", body, csp=REPORT_CSP, wide=True)
