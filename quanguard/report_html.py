"""The monthly report as one self-contained HTML page (inline CSS and SVG, no scripts,
no external fonts or images), readable offline, printable to PDF."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime
from zoneinfo import ZoneInfo

from jinja2 import Environment, select_autoescape

from quanguard.report import MonthlyReport

__all__ = ["BarChart", "bar_chart", "render_html"]

_W, _ROW, _LABEL = 640, 22, 200


@dataclass(frozen=True)
class BarChart:
    rows: tuple[tuple[str, int | float, int, float], ...]  # label, value, y, width
    width: int
    height: int
    label_w: int = _LABEL


def bar_chart(items: Sequence[tuple[str, int | float]]) -> BarChart:
    """Horizontal bars, longest = full width."""
    top = max((float(v) for _, v in items), default=0.0) or 1.0
    span = _W - _LABEL - 60
    rows = tuple((str(k), v, i * _ROW, round(span * float(v) / top, 2))
                 for i, (k, v) in enumerate(items))
    return BarChart(rows, _W, max(len(items), 1) * _ROW)


_TEMPLATE = """<!doctype html>
<html lang="zh-CN"><head><meta charset="utf-8">
<title>数据安全监管月报 Monthly report {{ r.month }}</title>
<link rel="icon" href="data:,">
<style>
body { font: 14px/1.5 "Noto Sans CJK SC", "Noto Sans SC", "WenQuanYi Micro Hei", "PingFang SC",
       "Microsoft YaHei", system-ui, sans-serif; color: #1d2733; margin: 2rem auto; max-width: 900px; }
h1 { font-size: 1.5rem; margin-bottom: .2rem; } h2 { font-size: 1.15rem; border-bottom: 2px solid #13283f;
padding-bottom: .2rem; margin-top: 2rem; page-break-after: avoid; }
.meta { color: #5b6b7c; } .kpis { display: flex; gap: 1rem; flex-wrap: wrap; }
.kpi { border: 1px solid #d8dee6; border-radius: 6px; padding: .6rem 1rem; min-width: 9rem; }
.kpi b { display: block; font-size: 1.4rem; } table { border-collapse: collapse; width: 100%; }
th, td { border-bottom: 1px solid #d8dee6; padding: .3rem .5rem; text-align: left; }
td.n { text-align: right; font-variant-numeric: tabular-nums; }
svg text { font: 12px "Noto Sans CJK SC", "WenQuanYi Micro Hei", sans-serif; fill: #1d2733; }
.ok { color: #1e7d3a; } .bad { color: #b3261e; font-weight: 600; } section { page-break-inside: avoid; }
</style></head><body>
<h1>数据安全监管月报 · Monthly supervision report</h1>
<p class="meta" id="report-meta">{{ r.month }} ({{ r.tz }}) · generated {{ when(r.generated) }} by {{ r.generated_by }}</p>
<div class="kpis">
  <div class="kpi" id="kpi-events"><b>{{ r.total_events }}</b>留痕事件 events recorded</div>
  <div class="kpi" id="kpi-accesses"><b>{{ r.accesses }}</b>数据访问 data accesses</div>
  <div class="kpi" id="kpi-denials"><b>{{ r.denials }}</b>拒绝 denials</div>
  <div class="kpi" id="kpi-alerts"><b>{{ r.alerts_by_severity|sum(attribute=1) }}</b>告警 alerts ({{ r.open_alerts }} not closed)</div>
</div>
{% macro chart(id, items, color) %}{% set c = bars(items) %}
<svg id="{{ id }}" width="{{ c.width }}" height="{{ c.height }}" viewBox="0 0 {{ c.width }} {{ c.height }}" role="img">
{% for label, value, y, w in c.rows %}<g data-label="{{ label }}" data-value="{{ value }}"><text x="{{ c.label_w - 6 }}" y="{{ y + 15 }}" text-anchor="end">{{ label[:24] }}</text>
<rect x="{{ c.label_w }}" y="{{ y + 3 }}" width="{{ w }}" height="16" fill="{{ color }}"></rect>
<text x="{{ c.label_w + w + 4 }}" y="{{ y + 15 }}">{{ value }}</text></g>
{% endfor %}</svg>{% endmacro %}
<section id="by-org"><h2>按单位 Accesses by organisation</h2>
{% if r.by_org %}{{ chart("chart-org", r.by_org, "#1f5fa8") }}{% else %}<p>No accesses this month.</p>{% endif %}</section>
<section id="by-dataset"><h2>热门数据集 Top datasets</h2>
{% if r.by_dataset %}{{ chart("chart-dataset", r.by_dataset, "#2f7d6d") }}{% else %}<p>—</p>{% endif %}</section>
<section id="by-grade"><h2>按分级 Accesses by grade</h2>
{% if r.by_grade %}{{ chart("chart-grade", r.by_grade, "#a15c00") }}{% else %}<p>—</p>{% endif %}</section>
<section id="denials"><h2>拒绝访问 Denials ({{ r.denials }})</h2>
{% if r.denials_by_org %}<table><tr><th>单位 organisation</th><th>denials</th></tr>
{% for k, v in r.denials_by_org %}<tr><td>{{ k }}</td><td class="n">{{ v }}</td></tr>{% endfor %}</table>
<table><tr><th>操作 action</th><th>denials</th></tr>
{% for k, v in r.denials_by_action %}<tr><td>{{ k }}</td><td class="n">{{ v }}</td></tr>{% endfor %}</table>{% else %}<p>No denials.</p>{% endif %}</section>
<section id="alerts"><h2>告警 Alerts by severity and time to close</h2>
{{ chart("chart-alerts", r.alerts_by_severity, "#b3261e") }}
<table><tr><th>severity</th><th>raised</th><th>closed</th><th>median time to close</th></tr>
{% for (s, n), (_, closed, med) in zip(r.alerts_by_severity, r.close_hours) %}<tr data-severity="{{ s }}"><td>{{ s }}</td><td class="n">{{ n }}</td><td class="n">{{ closed }}</td><td class="n">{{ hours(med) }}</td></tr>{% endfor %}</table></section>
<section id="exchange"><h2>数据流通 Exchange jobs and ε spent per consumer organisation</h2>
{% if not r.exchange_available %}<p>The exchange is not set up in this installation.</p>
{% elif not r.jobs %}<p>No exchange jobs this month.</p>
{% else %}<table><tr><th>consumer org</th><th>jobs</th><th>done</th><th>ε spent</th></tr>
{% for org, n, done, eps in r.jobs %}<tr><td>{{ org }}</td><td class="n">{{ n }}</td><td class="n">{{ done }}</td><td class="n">{{ "%.3f"|format(eps) }}</td></tr>{% endfor %}</table>{% endif %}</section>
<section id="integrity"><h2>留痕完整性 Trail integrity</h2>
{% set v = r.integrity.verify %}{% set cp = r.integrity.checkpoint %}
<table>
<tr><th>last verification</th><td id="last-verify">{% if v %}<span class="{{ 'ok' if v.ok else 'bad' }}">{{ 'intact' if v.ok else 'DAMAGED: ' ~ v.damage ~ ' at seq ' ~ v.bad_seq }}</span> · {{ when(v.at) }} · {{ v.tree_size }} events · {{ hours(v.age_hours) }} ago{% else %}<span class="bad">never verified</span>{% endif %}</td></tr>
<tr><th>last exported checkpoint</th><td id="last-checkpoint">{% if cp %}{{ cp.tree_size }} events · exported {{ when(cp.exported) }} · <span class="{{ 'bad' if cp.age_hours > 24 * 7 else 'ok' }}">{{ hours(cp.age_hours) }} old</span>{% else %}<span class="bad">none exported</span>{% endif %}</td></tr>
</table></section>
</body></html>
"""

_env = Environment(autoescape=select_autoescape(default=True, default_for_string=True))


def render_html(report: MonthlyReport) -> str:
    zone = ZoneInfo(report.tz)

    def when(value: datetime) -> str:
        return value.astimezone(zone).strftime("%Y-%m-%d %H:%M")

    def hours(value: float | None) -> str:
        if value is None:
            return "—"
        return f"{value:.1f} h" if value < 48 else f"{value / 24:.1f} d"

    return _env.from_string(_TEMPLATE).render(r=report, bars=bar_chart, when=when,
                                              hours=hours, zip=zip)
