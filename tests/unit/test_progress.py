import io

from rich.console import Console

from cotdistill.progress import LineReporter, RichReporter, SilentReporter, reporter_for


class FakeClock:
    def __init__(self):
        self.now = 100.0

    def __call__(self):
        return self.now


def test_line_reporter_writes_a_line_per_interval_and_one_at_the_end():
    out, clock = io.StringIO(), FakeClock()
    rep = LineReporter(out, every=30, clock=clock)
    with rep.task("evaluate ft_cot", 100) as adv:
        for _ in range(10):  # 10 items, 10 s each: lines at 30, 60 and 90 s, then the last one
            clock.now += 10
            adv(10)
    lines = out.getvalue().splitlines()
    assert lines[0] == "evaluate ft_cot: started, 100 to do"
    assert lines[1] == "evaluate ft_cot: 30/100 (30%) 1.00/s elapsed 0:00:30 eta 0:01:10"
    assert [line.split(":", 1)[1].split()[0] for line in lines[1:]] == ["30/100", "60/100", "90/100", "100/100"]
    assert "eta" not in lines[-1]  # nothing left to wait for
    assert lines[-1].endswith("elapsed 0:01:40")


def test_line_reporter_counts_teacher_tokens_and_cost_and_handles_no_total():
    out, clock = io.StringIO(), FakeClock()
    with LineReporter(out, every=1e9, clock=clock).task("teacher rationales", None) as adv:
        clock.now += 4
        adv(2, tokens=1500, cost=0.01)
        adv(2, tokens=500, cost=0.02)
    lines = out.getvalue().splitlines()
    assert lines == ["teacher rationales: started", "teacher rationales: 4 1.00/s elapsed 0:00:04 2,000 tok $0.0200"]


def test_line_reporter_writes_its_last_line_when_the_work_fails():
    out = io.StringIO()
    try:
        with LineReporter(out, every=1e9, clock=FakeClock()).task("train ft_cot", 50) as adv:
            adv(7)
            raise RuntimeError("out of memory")
    except RuntimeError:
        pass
    assert out.getvalue().splitlines()[-1].startswith("train ft_cot: 7/50 (14%)")


def test_reporter_for_picks_bars_on_a_terminal_and_lines_in_a_log():
    log = io.StringIO()
    rep = reporter_for(Console(file=log), every=5)
    assert isinstance(rep, LineReporter) and rep.stream is log and rep.every == 5
    term = io.StringIO()
    rep = reporter_for(Console(file=term, force_terminal=True, width=100))
    assert isinstance(rep, RichReporter)
    with rep.task("evaluate direct", 3) as adv:
        adv(3, tokens=12)
    assert "evaluate direct" in term.getvalue() and "3/3" in term.getvalue() and "12 tok" in term.getvalue()


def test_silent_reporter_takes_the_same_calls():
    with SilentReporter().task("x", 2) as adv:
        adv(1)
        adv(1, tokens=3, cost=0.5)


def test_line_reporter_rate_is_that_since_the_line_before():
    out, clock = io.StringIO(), FakeClock()
    with LineReporter(out, every=10, clock=clock).task("train ft_cot", 100) as adv:
        adv(60)  # resumed at step 60: no time spent on those
        clock.now += 10
        adv(5)   # first line: the jump counts (6.5/s), the next one does not
        clock.now += 10
        adv(5)
    lines = out.getvalue().splitlines()
    assert lines[1].startswith("train ft_cot: 65/100 (65%) 6.50/s")
    assert lines[2] == "train ft_cot: 70/100 (70%) 0.50/s elapsed 0:00:20 eta 0:01:00"
    assert lines[3] == "train ft_cot: 70/100 (70%) 3.50/s elapsed 0:00:20"  # ended early (a stop): no eta


def test_quiet_libraries_turns_off_transformers_bars_and_warnings():
    from transformers.utils import logging as hf_logging

    from cotdistill.progress import quiet_libraries

    level, bars = hf_logging.get_verbosity(), hf_logging.is_progress_bar_enabled()
    try:
        hf_logging.set_verbosity_warning()
        hf_logging.enable_progress_bar()
        quiet_libraries()
        assert hf_logging.get_verbosity() == hf_logging.ERROR and not hf_logging.is_progress_bar_enabled()
    finally:
        hf_logging.set_verbosity(level)
        (hf_logging.enable_progress_bar if bars else hf_logging.disable_progress_bar)()
