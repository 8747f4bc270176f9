"""report.html: one self-contained page per run (or comparing runs), tested as data and in a real
browser (Debian's Chromium, driven by Playwright; skipped with the reason where either is missing).
Screenshots land in the test's folder, and in $COTDISTILL_SCREENSHOTS when set (to look at)."""
import json
import os
import re
import shutil
from pathlib import Path

import pytest

from cotdistill.config import load_config
from cotdistill.errors import DataError
from cotdistill.pipeline import Run
from cotdistill.report import write_html
from cotdistill.report.html import build_payload, load_run

TINY = ["task.name=last_letters", "task.n_train=200", "task.n_test=40", "student.model=preset:tiny",
        "train.max_steps=30", "train.eval_every=15", "train.warmup_steps=5", "eval.max_new_tokens=60"]
CHROMIUM = shutil.which("chromium") or "/usr/bin/chromium"
EVIL = '<script>window.pwned = 1</script></script><img src=x onerror="window.pwned = 2">'


@pytest.fixture(scope="module")
def real_run(tmp_path_factory):
    """A real run folder: the exact teacher, curation, two methods trained and evaluated."""
    out = tmp_path_factory.mktemp("run") / "last_letters"
    Run(load_config(None, [f"out={out}", *TINY, "methods=[direct, ft_cot]", "teacher.n_samples=2",
                           "teacher.temperature=0.7"])).run_all()
    return out


def fake_run(folder: Path, n: int, methods: list[str], task: str = "fake", evil: bool = False) -> Path:
    """A run folder as an older version wrote it: summary.json and predictions only."""
    rows = {m: {"accuracy": 50.0, "ci95": [40.0, 60.0], "mean_generated_tokens": 3.0, "seconds_per_100": 1.0}
            for m in methods}
    (folder).mkdir(parents=True)
    (folder / "summary.json").write_text(json.dumps({"task": task, "student": "preset:tiny", "methods": rows}))
    for j, m in enumerate(methods):
        (folder / m).mkdir()
        right = [(i + j) % 3 == 0 for i in range(n)]  # method j answers question i right every third question
        preds = [{"id": f"q{i}", "question": (EVIL if evil and i == 0 else f"question {i}"), "gold": str(i % 7),
                  "generation": (EVIL if evil and i == 0 else f"reasoning {i} of {m}"),
                  "prediction": str(i % 7 if right[i] else i % 7 + 1), "correct": right[i], "abstained": i % 11 == 5,
                  "finish_reason": "stop"} for i in range(n)]
        (folder / m / "predictions.jsonl").write_text("".join(json.dumps(p) + "\n" for p in preds))
    return folder


def test_run_writes_a_self_contained_page_with_every_part(real_run):
    page = (real_run / "report.html").read_text()
    assert not re.search(r"""(src|href)\s*=\s*["']?(https?:)?//""", page)  # nothing fetched: no CDN, no remote image
    assert page.count("data:image/png;base64,") == 2  # accuracy/cost chart and learning curves, inside the page
    data = load_run(real_run)
    assert data["header"]["task"] == "last_letters" and data["config"] and data["best_step"]["ft_cot"] in (15, 30)
    assert [r[0] for r in data["tables"]["comparison"]["rows"]] == ["direct", "ft_cot"]
    assert data["curation"]["kept"] == sum(t["kept"] for t in data["teacher"])  # replayed decisions = the run's
    dropped = {}
    for t in data["teacher"]:
        if not t["kept"]:
            dropped[t["reason"]] = dropped.get(t["reason"], 0) + 1
    assert dropped == data["curation"]["dropped"]


def test_model_text_cannot_become_markup(tmp_path):
    folder = fake_run(tmp_path / "evil", 3, ["direct"], evil=True)
    page = Path(write_html([folder])).read_text()
    assert "<script>window.pwned" not in page and "onerror=" not in page.split('id="data"')[0]
    assert page.count("</script>") == 2  # the data block's and the code's: the text's own is escaped


def test_older_folders_and_several_runs(tmp_path):
    a = fake_run(tmp_path / "a", 5, ["direct", "ft_cot"])
    b = fake_run(tmp_path / "b", 5, ["ft_cot"])
    payload = build_payload([load_run(a, "a"), load_run(b, "b")])
    assert payload["columns"] == ["a/direct", "a/ft_cot", "b/ft_cot"]
    assert len(payload["questions"]) == 5 and set(payload["questions"][0]["answers"]) == set(payload["columns"])
    assert payload["runs"][0]["charts"].keys() == {"accuracy"}  # no train logs: no curves, and no failure
    other = fake_run(tmp_path / "c", 5, ["direct"], task="other")
    with pytest.raises(DataError, match="a report compares runs of one task"):
        write_html([a, other])
    with pytest.raises(DataError, match="no summary.json"):
        write_html([tmp_path])


def test_the_cli_writes_a_comparison_page(tmp_path):
    from typer.testing import CliRunner

    from cotdistill.cli import app

    a, b = fake_run(tmp_path / "x" / "run", 4, ["direct"]), fake_run(tmp_path / "y" / "run", 4, ["direct"])
    r = CliRunner().invoke(app, ["report", str(a), str(b), "--out", str(tmp_path / "both.html")])
    assert r.exit_code == 0, r.output
    data = json.loads(re.search(r'<script id="data" type="application/json">(.*?)</script>',
                                (tmp_path / "both.html").read_text(), re.S).group(1))
    assert data["columns"] == [f"{a}/direct", f"{b}/direct"]  # same folder names: told apart by their paths


# -- in a real browser ---------------------------------------------------------------------------
ARGS = ["--headless", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
        "--disable-background-networking", "--disable-component-update", "--disable-sync"]


@pytest.fixture(scope="module")
def browser():
    sync_api = pytest.importorskip("playwright.sync_api", reason="browser tests need playwright (pip install -e '.[dev]')")
    if not Path(CHROMIUM).exists():
        pytest.skip("browser tests need Debian's chromium (apt-get install chromium); .ci/run installs it")
    with sync_api.sync_playwright() as p:
        b = p.chromium.launch(executable_path=CHROMIUM, args=ARGS)
        yield b
        b.close()


def open_page(browser, path: Path):
    page = browser.new_page(viewport={"width": 1400, "height": 1000})
    errors: list[str] = []
    page.on("pageerror", lambda e: errors.append(str(e)))
    page.goto(path.resolve().as_uri())
    page.errors = errors
    return page


def shoot(page, tmp_path: Path, name: str, selector: str | None = None) -> Path:
    if selector:
        page.locator(selector).scroll_into_view_if_needed()
    path = tmp_path / f"{name}.png"
    page.screenshot(path=str(path))
    if os.environ.get("COTDISTILL_SCREENSHOTS"):
        Path(os.environ["COTDISTILL_SCREENSHOTS"]).mkdir(parents=True, exist_ok=True)
        shutil.copy(path, Path(os.environ["COTDISTILL_SCREENSHOTS"]) / path.name)
    assert path.stat().st_size > 10_000
    return path


def visible_verdicts(page, column: str) -> list[str]:
    return page.locator(f'#qtable tbody td[data-column="{column}"]').evaluate_all(
        "cells => cells.map(c => c.dataset.verdict)")


def test_a_real_run_renders_and_filters(browser, real_run, tmp_path):
    page = open_page(browser, real_run / "report.html")
    assert page.errors == []
    assert page.locator("#comparison0 tbody tr").count() == 2
    for img in ("#accuracy0", "#curves0"):  # the charts decode and have a size
        assert page.locator(img).evaluate("i => i.complete && i.naturalWidth > 200")
    assert page.locator("#curation0 tbody tr").count() >= 1
    shoot(page, tmp_path, "report-top")
    preds = {m: [json.loads(l) for l in (real_run / m / "predictions.jsonl").read_text().splitlines()]
             for m in ("direct", "ft_cot")}
    assert page.locator("#qpager .count").inner_text() == "1-25 of 40"
    assert page.locator("#qtable tbody tr").count() == 25  # one page drawn, not all 40

    page.select_option('select[data-outcome="ft_cot"]', "wrong")
    wrong = sum(not p["correct"] for p in preds["ft_cot"])
    assert page.locator("#qpager .count").inner_text() == f"{1 if wrong else 0}-{min(25, wrong)} of {wrong}"
    assert set(visible_verdicts(page, "ft_cot")) <= {"wrong"}
    page.select_option('select[data-outcome="direct"]', "right")
    both = sum(not c["correct"] and d["correct"] for c, d in zip(preds["ft_cot"], preds["direct"]))
    assert page.locator("#qtable tbody tr").count() == min(25, both)
    page.select_option('select[data-outcome="ft_cot"]', "")
    page.select_option('select[data-outcome="direct"]', "")

    page.check("#qdisagree")
    disagree = sum(c["prediction"] != d["prediction"] for c, d in zip(preds["ft_cot"], preds["direct"]))
    assert page.locator("#qpager .count").inner_text().endswith(f"of {disagree}")
    page.uncheck("#qdisagree")
    page.uncheck('input[data-column="direct"]')  # a method hidden: its column goes
    assert page.locator("#qtable thead th").all_inner_texts() == ["question", "gold", "ft_cot"]
    page.check('input[data-column="direct"]')

    q = preds["ft_cot"][7]["question"]
    page.fill("#qsearch", q)
    assert page.locator("#qtable tbody tr").count() >= 1
    assert page.locator("#qtable tbody tr").first.locator("td.question").inner_text() == q
    page.fill("#qsearch", "no question says this")
    assert page.locator("#qpager .count").inner_text() == "0-0 of 0"
    page.fill("#qsearch", "")
    shoot(page, tmp_path, "report-questions", "#qfilters")

    page.select_option("#tstatus", "dropped")
    n_dropped = sum(json.loads((real_run / "curation_stats.json").read_text())["dropped"].values())
    assert page.locator("#tpager .count").inner_text().endswith(f"of {n_dropped}")
    assert set(page.locator("#ttable tbody td[data-verdict]").evaluate_all("c => c.map(x => x.dataset.verdict)")) <= {"dropped"}
    page.select_option("#tstatus", "kept")
    kept = json.loads((real_run / "curation_stats.json").read_text())["kept"]
    assert page.locator("#tpager .count").inner_text().endswith(f"of {kept}")
    shoot(page, tmp_path, "report-teacher", "#tstatus")
    assert page.errors == []


def test_model_text_shows_as_text_in_the_browser(browser, tmp_path):
    folder = fake_run(tmp_path / "evil", 3, ["direct"], evil=True)
    page = open_page(browser, Path(write_html([folder])))
    assert page.evaluate("window.pwned === undefined") and page.errors == []
    cell = page.locator('#qtable tbody tr[data-id="q0"] td.question')
    assert cell.inner_text() == EVIL


def test_five_thousand_questions_by_five_methods_draw_a_page_at_a_time(browser, tmp_path):
    methods = ["direct", "ft_cot", "post", "adaptive", "step_by_step"]
    folder = fake_run(tmp_path / "big", 5000, methods)
    page = open_page(browser, Path(write_html([folder])))
    assert page.locator("#qtable tbody tr").count() == 25 and page.locator("#qtable tbody td").count() == 25 * 7
    assert page.locator("#qpager .count").inner_text() == "1-25 of 5000"
    page.check("#qabstained")  # a filter over every question, then still one page drawn
    abstained = sum(1 for i in range(5000) if i % 11 == 5)
    assert page.locator("#qpager .count").inner_text() == f"1-25 of {abstained}"
    page.click("#qpager button >> nth=1")  # next page
    assert page.locator("#qpager .count").inner_text() == f"26-50 of {abstained}"
    shoot(page, tmp_path, "report-5000", "#qfilters")
    page.uncheck("#qabstained")
    page.select_option('select[data-outcome="direct"]', "right")  # direct right (i % 3 == 0), ft_cot wrong
    page.select_option('select[data-outcome="ft_cot"]', "wrong")
    assert page.locator("#qpager .count").inner_text() == "1-25 of 1667"
    assert set(visible_verdicts(page, "direct")) == {"right"} and set(visible_verdicts(page, "ft_cot")) == {"wrong"}
    page.select_option('select[data-outcome="post"]', "right")  # post is right where i % 3 == 1: never with direct
    assert page.locator("#qpager .count").inner_text() == "0-0 of 0"
    assert page.errors == []


def test_a_mixtures_tasks_and_a_classifiers_figures_get_their_tables(tmp_path):
    folder = fake_run(tmp_path / "mix", 4, ["cot_tuning", "cott"])
    s = json.loads((folder / "summary.json").read_text())
    s["methods"]["cot_tuning"].update(by_task={"gsm8k": {"n": 2, "accuracy": 50.0, "ci95": [9.5, 90.5]},
                                               "sums": {"n": 2, "accuracy": 100.0, "ci95": [34.2, 100.0]}},
                                      task_mean_accuracy=75.0)
    s["methods"]["cott"].update(macro_f1=40.0, intermediate_accuracy=60.0)
    (folder / "summary.json").write_text(json.dumps(s))
    tables = load_run(folder)["tables"]
    assert tables["tasks"]["rows"] == [["gsm8k", "2", "50.00 (9.5-90.5)"], ["sums", "2", "100.00 (34.2-100.0)"],
                                       ["mean over tasks", "", "75.00"]]
    assert tables["classification"]["rows"] == [["cott", "40.00", "-", "60.00", "-", "-"]]
