"""OUT/report.html: one self-contained page per run (or comparing several runs of one task) that
opens from disk with no network: CSS, JavaScript, data and charts are inside it.

It shows the run header and config, the comparison table with the accuracy/CI and cost chart,
learning curves per method (training and validation loss, the kept checkpoint marked), the
curation breakdown, a mixture's per-task table and the masked-LM methods' classification figures;
and a rationale browser: every test question with each method's generation, answer and right or
wrong side by side (filters by method outcome, "methods disagree", abstained, and a text search),
and the teacher's rationales of the training questions, kept or dropped and why. Rows are drawn a
page at a time, so 5,000 questions x 5 methods stay responsive; all model and data text is set as
text (a generation holding `<script>` shows as those characters).

Older run folders work too: whatever a summary or folder lacks is left out of the page.
"""
from __future__ import annotations

import base64
import html
import io
import json
from pathlib import Path

import yaml

from ..errors import DataError
from ..io import read_json, read_jsonl_list
from ..runs import RunFolder
from .tables import accuracy_figure, classification_rows, summary_table, task_rows

def _png(fig) -> str:
    """A matplotlib figure as a data URI (closed after)."""
    import matplotlib.pyplot as plt

    buf = io.BytesIO()
    fig.savefig(buf, format="png", dpi=100)
    plt.close(fig)
    return "data:image/png;base64," + base64.b64encode(buf.getvalue()).decode()


def _curve(rows: list[dict]) -> dict:
    """Training and validation loss by step from train_log.jsonl rows."""
    return {"train": [[r["step"], r["loss"]] for r in rows if "loss" in r and "step" in r],
            "val": [[r["step"], r["eval_loss"]] for r in rows if "eval_loss" in r and "step" in r]}


def curves_figure(curves: dict[str, dict], best: dict[str, int | None], title: str):
    """One panel per method: training and validation loss, the kept checkpoint marked."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    methods = [m for m, c in curves.items() if c["train"] or c["val"]]
    fig, axes = plt.subplots(1, len(methods), figsize=(3.6 * len(methods), 2.8), squeeze=False)
    for ax, m in zip(axes[0], methods):
        c = curves[m]
        if c["train"]:
            ax.plot(*zip(*c["train"]), label="training", color="#4C72B0", lw=1)
        if c["val"]:
            ax.plot(*zip(*c["val"]), "o-", label="validation", color="#DD8452", ms=3)
        b = best.get(m)
        if b is not None:
            ax.axvline(b, color="#55A868", ls="--", lw=1, label=f"kept (step {b})")
        ax.set_title(m)
        ax.set_xlabel("step")
        ax.set_ylabel("loss")
        ax.legend(fontsize=7)
    fig.suptitle(title, fontsize=9)
    fig.tight_layout()
    return fig


def _curate_settings(folder: RunFolder) -> dict:
    """The run's curation settings (config.yaml), defaults for a folder without one."""
    if not folder.config.exists():
        return {}
    cur = (yaml.safe_load(folder.config.read_text()) or {}).get("curate") or {}
    return {k: cur[k] for k in ("dedupe", "keep_truncated", "answer_source") if k in cur}


def teacher_rows(folder: RunFolder, run: str | None) -> list[dict]:
    """The teacher's records of the training questions with what curation did with each (the
    run's own curation settings, replayed on its rationales.jsonl)."""
    from ..curate import decisions

    if not folder.rationales.exists():
        return []
    recs = read_jsonl_list(folder.rationales)
    out = []
    for r, d in zip(recs, decisions(recs, **_curate_settings(folder))):
        out.append({"run": run, "id": r.get("id"), "sample": r.get("sample", 0), "question": r.get("question", ""),
                    "gold": str(r.get("answer", "")), "rationale": r.get("rationale", ""),
                    "answer_text": r.get("answer_text") or "", "pred": d.pred, "kept": d.kept,
                    "reason": d.reason or "kept"})
    return out


def _table(heads: list[str], rows: list[list[str]]) -> dict:
    return {"heads": heads, "rows": rows}


def load_run(path: str | Path, label: str | None = None) -> dict:
    """Everything the page shows of one run folder."""
    folder = RunFolder(path)
    if not folder.summary.exists():
        raise DataError(f"{folder.root}: no summary.json; `cotdistill run` writes it when every method is evaluated")
    summary = read_json(folder.summary)
    methods = list(summary.get("methods", {}))
    preds, curves, best = {}, {}, {}
    for m in methods:
        mf = folder.method(m)
        preds[m] = read_jsonl_list(mf.predictions) if mf.predictions.exists() else []
        curves[m] = _curve(read_jsonl_list(mf.train_log)) if mf.train_log.exists() else {"train": [], "val": []}
        best[m] = read_json(mf.train_info).get("best_step") if mf.train_info.exists() else None
    charts = {}
    if methods and all({"accuracy", "ci95", "mean_generated_tokens"} <= summary["methods"][m].keys() for m in methods):
        charts["accuracy"] = _png(accuracy_figure(summary))
    if any(c["train"] or c["val"] for c in curves.values()):
        charts["curves"] = _png(curves_figure(curves, best, f"{label or summary.get('task', '')}: loss by step"))
    cur = summary.get("curation") or (read_json(folder.curation_stats) if folder.curation_stats.exists() else None)
    tables = {"comparison": _table(*summary_table(summary)) if methods else None,
              "tasks": _table(*task_rows(summary)), "classification": _table(*classification_rows(summary))}
    return {
        "label": label or folder.root.name, "folder": str(folder.root),
        "header": {k: summary.get(k) for k in ("task", "teacher", "student", "n_train", "n_test",
                                                "cotdistill_version", "git_rev")} | {"methods": methods},
        "config": folder.config.read_text() if folder.config.exists() else None,
        "tables": tables, "charts": charts, "best_step": best,
        "curation": cur, "predictions": preds, "teacher": teacher_rows(folder, label),
    }


def build_payload(runs: list[dict]) -> dict:
    """The page's data: each run's header, tables and charts; the test questions joined by id with
    every (run, method)'s answer; the teachers' rationales."""
    tasks = {r["header"].get("task") for r in runs}
    if len(tasks) > 1:
        raise DataError(f"a report compares runs of one task; these are of {sorted(map(str, tasks))}")
    many = len(runs) > 1
    columns, questions = [], {}
    for r in runs:
        for m, preds in r["predictions"].items():
            col = f"{r['label']}/{m}" if many else m
            columns.append(col)
            for p in preds:
                q = questions.setdefault(p["id"], {"id": p["id"], "question": p.get("question", ""),
                                                   "gold": str(p.get("gold", "")), "task": p.get("task"), "answers": {}})
                q["answers"][col] = {"generation": p.get("generation", ""), "prediction": p.get("prediction"),
                                     "correct": bool(p.get("correct")), "abstained": bool(p.get("abstained")),
                                     "finish": p.get("finish_reason"), **({"mode": p["mode"]} if p.get("mode") else {})}
    return {"runs": [{k: v for k, v in r.items() if k not in ("predictions", "teacher")} for r in runs],
            "columns": columns, "questions": list(questions.values()),
            "teacher": [t for r in runs for t in r["teacher"]]}


def _json_for_script(obj) -> str:
    """JSON that cannot end the <script> element it sits in, whatever text it carries."""
    return json.dumps(obj, ensure_ascii=False).replace("<", "\\u003c").replace(">", "\\u003e").replace("&", "\\u0026")


def render(payload: dict) -> str:
    title = html.escape(f"cotdistill report: {payload['runs'][0]['header'].get('task') or ''}")
    return (_PAGE.replace("__TITLE__", title).replace("__CSS__", _CSS).replace("__JS__", _JS)
            .replace("__DATA__", _json_for_script(payload)))


def write_html(run_dirs: list[str | Path], out: str | Path | None = None) -> Path:
    """report.html of one run (in its folder) or comparing several (`out`, default the first's folder)."""
    dirs = [Path(d) for d in run_dirs]
    labels = [d.name for d in dirs]
    if len(set(labels)) < len(labels):  # runs/a/x and runs/b/x: name them by more of their path
        labels = [str(d) for d in dirs]
    runs = [load_run(d, label) for d, label in zip(dirs, labels)]
    path = Path(out) if out else RunFolder(dirs[0]).report_html
    from ..io import atomic_write_text

    return atomic_write_text(path, render(build_payload(runs)))


_PAGE = """<!DOCTYPE html>
<html lang="en"><head><meta charset="utf-8"><meta name="viewport" content="width=device-width, initial-scale=1">
<title>__TITLE__</title><style>__CSS__</style></head>
<body>
<header><h1>__TITLE__</h1><nav><a href="#results">results</a> <a href="#browser">test questions</a>
<a href="#teacher">teacher rationales</a></nav></header>
<main>
<section id="runs"></section>
<section id="browser"><h2>Test questions</h2>
 <div class="filters" id="qfilters">
  <span id="qcolumns"></span>
  <label><input type="checkbox" id="qdisagree"> methods disagree</label>
  <label><input type="checkbox" id="qabstained"> abstained</label>
  <input type="search" id="qsearch" placeholder="search questions and generations">
 </div>
 <div class="pager" id="qpager"></div>
 <table class="browser" id="qtable"><thead></thead><tbody></tbody></table>
</section>
<section id="teacher"><h2>Teacher rationales (training questions)</h2>
 <div class="filters"><select id="tstatus"></select>
  <input type="search" id="tsearch" placeholder="search questions and rationales"></div>
 <div class="pager" id="tpager"></div>
 <table class="browser" id="ttable"><thead><tr><th>question</th><th>gold</th><th>teacher's rationale</th>
 <th>teacher's answer</th><th>curation</th></tr></thead><tbody></tbody></table>
</section>
</main>
<script id="data" type="application/json">__DATA__</script>
<script>__JS__</script>
</body></html>
"""

_CSS = """
body{font:14px/1.45 system-ui,-apple-system,Segoe UI,Roboto,sans-serif;margin:0;color:#1d1d1f;background:#fafafa}
header{background:#223;color:#fff;padding:10px 20px}header h1{font-size:18px;margin:0 0 4px}
header a{color:#cde;margin-right:12px}main{padding:10px 20px}h2{font-size:16px;margin:22px 0 8px}
h3{font-size:14px;margin:16px 0 6px}table{border-collapse:collapse;background:#fff;margin:6px 0}
th,td{border:1px solid #ddd;padding:4px 7px;text-align:left;vertical-align:top}th{background:#f0f0f4}
.num{text-align:right}img.chart{max-width:100%;border:1px solid #ddd;background:#fff;margin:6px 0}
.kv span{margin-right:16px}details pre{background:#fff;border:1px solid #ddd;padding:8px;max-height:300px;overflow:auto}
.filters{display:flex;flex-wrap:wrap;gap:10px;align-items:center;margin:6px 0}
.filters select,.filters input{font:inherit}.filters input[type=search]{min-width:260px}
.pager button{margin:0 4px}.browser td{max-width:420px}.gen{white-space:pre-wrap;font-family:ui-monospace,monospace;
font-size:12px;max-height:160px;overflow:auto}.right{background:#e8f6ec}.wrong{background:#fbeaea}
.tag{display:inline-block;font-size:11px;padding:0 5px;border-radius:3px;margin-right:4px}
.right .tag{background:#55A868;color:#fff}.wrong .tag{background:#C44E52;color:#fff}.muted{color:#888}
"""

_JS = r"""
const D = JSON.parse(document.getElementById('data').textContent);
const PAGE = 25;
function el(tag, attrs, ...kids) {
  const e = document.createElement(tag);
  for (const [k, v] of Object.entries(attrs || {})) {
    if (k === 'text') e.textContent = v; else if (k === 'cls') e.className = v; else e.setAttribute(k, v);
  }
  for (const k of kids) if (k !== null && k !== undefined) e.append(k);
  return e;
}
function table(t, id) {
  if (!t || !t.rows || !t.rows.length) return null;
  const head = el('tr', {}, ...t.heads.map(h => el('th', {text: h})));
  const body = t.rows.map(r => el('tr', {}, ...r.map((c, i) => el('td', {text: c, cls: i ? 'num' : ''}))));
  return el('table', id ? {id: id} : {}, el('thead', {}, head), el('tbody', {}, ...body));
}
function runSection(r, i) {
  const h = r.header, s = el('div', {cls: 'run', id: 'run' + i});
  s.append(el('h2', {id: i ? '' : 'results', text: (D.runs.length > 1 ? r.label + ': ' : '') + 'results'}));
  const kv = el('div', {cls: 'kv'});
  for (const [k, v] of [['task', h.task], ['teacher', h.teacher], ['student', h.student],
                        ['methods', (h.methods || []).join(', ')], ['training questions', h.n_train],
                        ['test questions', h.n_test], ['cotdistill', h.cotdistill_version], ['git', h.git_rev],
                        ['folder', r.folder]]) {
    if (v !== null && v !== undefined && v !== '') kv.append(el('span', {}, el('b', {text: k + ': '}), String(v)));
  }
  s.append(kv);
  if (r.config) s.append(el('details', {}, el('summary', {text: 'config'}), el('pre', {text: r.config})));
  s.append(table(r.tables.comparison, 'comparison' + i));
  if (r.charts.accuracy) s.append(el('img', {cls: 'chart', id: 'accuracy' + i, src: r.charts.accuracy,
                                           alt: 'accuracy with 95% CI and generated tokens per method'}));
  if (r.charts.curves) {
    s.append(el('h3', {text: 'Learning curves'}));
    s.append(el('img', {cls: 'chart', id: 'curves' + i, src: r.charts.curves, alt: 'loss by step per method'}));
  }
  if (r.curation) {
    const c = r.curation, rows = [['kept', String(c.kept)]];
    for (const [k, v] of Object.entries(c.dropped || {})) rows.push(['dropped: ' + k, String(v)]);
    s.append(el('h3', {text: 'Curation'}));
    s.append(el('p', {text: `teacher accuracy ${c.teacher_accuracy}% over ${c.samples} samples; a kept rationale ` +
                          `for ${c.questions_with_a_kept_rationale} of ${c.questions} questions`}));
    s.append(table({heads: ['rationales', 'count'], rows: rows}, 'curation' + i));
  }
  const tasks = table(r.tables.tasks, 'tasks' + i);
  if (tasks) { s.append(el('h3', {text: 'Per task'})); s.append(tasks); }
  const cls = table(r.tables.classification, 'classification' + i);
  if (cls) { s.append(el('h3', {text: 'Classification'})); s.append(cls); }
  return s;
}
const runs = document.getElementById('runs');
D.runs.forEach((r, i) => runs.append(runSection(r, i)));

// -- test questions ------------------------------------------------------------------------------
const Q = {page: 0, outcome: {}, shown: Object.fromEntries(D.columns.map(c => [c, true]))};
const qcols = document.getElementById('qcolumns');
for (const c of D.columns) {
  const box = el('input', {type: 'checkbox', 'data-column': c}); box.checked = true;
  box.addEventListener('change', () => { Q.shown[c] = box.checked; Q.page = 0; drawQ(); });
  const sel = el('select', {'data-outcome': c}, el('option', {value: '', text: 'any'}),
                 el('option', {value: 'right', text: 'right'}), el('option', {value: 'wrong', text: 'wrong'}));
  sel.addEventListener('change', () => { Q.outcome[c] = sel.value; Q.page = 0; drawQ(); });
  qcols.append(el('span', {cls: 'col'}, el('label', {}, box, ' ' + c + ' '), sel));
}
for (const id of ['qdisagree', 'qabstained']) document.getElementById(id).addEventListener('change', () => { Q.page = 0; drawQ(); });
document.getElementById('qsearch').addEventListener('input', () => { Q.page = 0; drawQ(); });
function qMatches(q, cols, needle, disagree, abstained) {
  for (const c of D.columns) {
    const want = Q.outcome[c], a = q.answers[c];
    if (want && (!a || a.correct !== (want === 'right'))) return false;
  }
  const given = cols.filter(c => q.answers[c]);
  if (disagree && new Set(given.map(c => JSON.stringify(q.answers[c].prediction))).size < 2) return false;
  if (abstained && !given.some(c => q.answers[c].abstained)) return false;
  if (needle) {
    const hay = [q.question, q.gold, ...given.map(c => q.answers[c].generation)].join('\n').toLowerCase();
    if (!hay.includes(needle)) return false;
  }
  return true;
}
function pager(box, n, page, go) {
  box.replaceChildren();
  const pages = Math.max(1, Math.ceil(n / PAGE));
  const prev = el('button', {text: '‹ previous'}), next = el('button', {text: 'next ›'});
  prev.disabled = page <= 0; next.disabled = page >= pages - 1;
  prev.addEventListener('click', () => go(page - 1)); next.addEventListener('click', () => go(page + 1));
  const from = n ? page * PAGE + 1 : 0, to = Math.min(n, (page + 1) * PAGE);
  box.append(prev, el('span', {cls: 'count', text: `${from}-${to} of ${n}`}), next);
}
function drawQ() {
  const cols = D.columns.filter(c => Q.shown[c]);
  const needle = document.getElementById('qsearch').value.trim().toLowerCase();
  const disagree = document.getElementById('qdisagree').checked, abstained = document.getElementById('qabstained').checked;
  const hits = D.questions.filter(q => qMatches(q, cols, needle, disagree, abstained));
  pager(document.getElementById('qpager'), hits.length, Q.page, p => { Q.page = p; drawQ(); });
  const t = document.getElementById('qtable');
  t.tHead.replaceChildren(el('tr', {}, el('th', {text: 'question'}), el('th', {text: 'gold'}),
                                   ...cols.map(c => el('th', {text: c}))));
  const rows = hits.slice(Q.page * PAGE, (Q.page + 1) * PAGE).map(q => {
    const cells = cols.map(c => {
      const a = q.answers[c];
      if (!a) return el('td', {cls: 'muted', text: 'not asked'});
      const verdict = a.correct ? 'right' : 'wrong';
      return el('td', {cls: verdict, 'data-column': c, 'data-verdict': verdict},
                el('span', {cls: 'tag', text: verdict}),
                el('span', {cls: 'pred', text: a.prediction === null ? '(no answer)' : String(a.prediction)}),
                a.abstained ? el('span', {cls: 'muted', text: ' abstained'}) : null,
                a.mode ? el('span', {cls: 'muted', text: ' via ' + a.mode}) : null,
                el('div', {cls: 'gen', text: a.generation}));
    });
    return el('tr', {'data-id': q.id}, el('td', {cls: 'question', text: (q.task ? `[${q.task}] ` : '') + q.question}),
              el('td', {cls: 'gold', text: q.gold}), ...cells);
  });
  t.tBodies[0].replaceChildren(...rows);
}
drawQ();

// -- teacher rationales --------------------------------------------------------------------------
const T = {page: 0};
const tstatus = document.getElementById('tstatus');
const reasons = [...new Set(D.teacher.map(t => t.reason))].filter(r => r !== 'kept').sort();
for (const [v, label] of [['', 'all'], ['kept', 'kept'], ['dropped', 'dropped (any reason)'],
                          ...reasons.map(r => ['reason:' + r, 'dropped: ' + r])]) tstatus.append(el('option', {value: v, text: label}));
tstatus.addEventListener('change', () => { T.page = 0; drawT(); });
document.getElementById('tsearch').addEventListener('input', () => { T.page = 0; drawT(); });
function drawT() {
  const st = tstatus.value, needle = document.getElementById('tsearch').value.trim().toLowerCase();
  const hits = D.teacher.filter(t => {
    if (st === 'kept' && !t.kept) return false;
    if (st === 'dropped' && t.kept) return false;
    if (st.startsWith('reason:') && t.reason !== st.slice(7)) return false;
    return !needle || [t.question, t.rationale].join('\n').toLowerCase().includes(needle);
  });
  pager(document.getElementById('tpager'), hits.length, T.page, p => { T.page = p; drawT(); });
  const rows = hits.slice(T.page * PAGE, (T.page + 1) * PAGE).map(t => el('tr', {'data-id': t.id},
    el('td', {text: (t.run && D.runs.length > 1 ? `[${t.run}] ` : '') + t.question}), el('td', {text: t.gold}),
    el('td', {}, el('div', {cls: 'gen', text: t.rationale})), el('td', {text: t.pred === null ? '(none)' : String(t.pred)}),
    el('td', {cls: t.kept ? 'right' : 'wrong', 'data-verdict': t.kept ? 'kept' : 'dropped'},
       el('span', {cls: 'tag', text: t.kept ? 'kept' : 'dropped'}), t.kept ? null : t.reason)));
  document.getElementById('ttable').tBodies[0].replaceChildren(...rows);
}
drawT();
"""
