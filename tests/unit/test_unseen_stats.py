"""The interval of the BIG-Bench-Hard average (the unweighted mean over tasks)."""
import math

import pytest

from cotdistill.unseen import _summarize, task_mean_interval


def test_interval_is_centred_on_the_mean_of_tasks_not_the_pooled_share():
    counts = [(120, 125), (10, 250)]  # 96% on a small task, 4% on a large one
    lo, hi = task_mean_interval(counts)
    mean = (120 / 125 + 10 / 250) / 2  # 0.50; the pooled share is 130 / 375 = 0.347
    assert lo < mean < hi and math.isclose((lo + hi) / 2, mean)
    a, b = (122 / 129) * (7 / 129) / 129, (12 / 254) * (242 / 254) / 254  # Agresti-Coull variances
    assert math.isclose(hi - mean, 1.96 * math.sqrt(a + b) / 2)


def test_equal_tasks_match_the_pooled_interval_and_edges_are_clipped():
    lo, hi = task_mean_interval([(25, 50)] * 10)
    assert lo == pytest.approx(0.5 - 1.96 * math.sqrt(27 / 54 * 27 / 54 / 54 / 10), abs=1e-9)
    assert abs((hi - lo) / 2 - 1.96 * math.sqrt(0.25 / 500)) < 0.005  # the pooled Wald half-width
    lo, hi = task_mean_interval([(0, 30)])  # a task at 0% still has a width
    assert lo == 0.0 and hi > 0.05


def test_summary_reports_the_average_its_interval_and_the_pooled_share():
    per_task = {"a": {"n": 125, "chance": 50.0, "zero_shot": 96.0, "zero_shot_correct": 120},
                "b": {"n": 250, "chance": 25.0, "zero_shot": 4.0, "zero_shot_correct": 10}}
    s = _summarize(per_task, [0], "stu", "cot_tuning", "cot_tuning_direct", 0)
    assert s["zero_shot"] == 50.0 and s["pooled"]["zero_shot"] == 34.67 and s["questions"] == 375
    lo, hi = s["ci95"]["zero_shot"]
    assert lo < 50.0 < hi
