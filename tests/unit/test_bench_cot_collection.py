"""The CoT Collection bench's summary merging (pure functions; the smoke run covers the rest)."""
import argparse
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
sys.path.insert(0, str(ROOT / "bench"))
cc = pytest.importorskip("cot_collection")


def row(a, b):
    return {"from_cot_tuned": a, "from_base": b}


def test_a_longer_continual_budget_lands_beside_the_default_one():
    assert cc.continual_key(argparse.Namespace(continual_epochs=None)) == "continual"
    assert cc.continual_key(argparse.Namespace(continual_epochs=20.0)) == "continual_20ep"
    old = {"continual": {"coin_flip": row(54.67, 54.67), "last_letter_concatenation": row(0, 0)}, "unseen": {}}
    parts = cc.continual_parts(old, "continual_20ep", {"coin_flip": row(60.0, 55.0)})
    assert parts == {"continual": old["continual"], "continual_20ep": {"coin_flip": row(60.0, 55.0)}}
    b = cc.bars({"cot_tuned": {}}, parts)
    assert b["continual_20ep_coin_flip"] == {"value": 60.0, "bar": 55.0, "met": True}


def test_a_rerun_for_one_task_keeps_the_other_tasks_figures():
    old = {"continual": {"coin_flip": row(50, 50), "last_letter_concatenation": row(0, 0)}}
    parts = cc.continual_parts(old, "continual", {"coin_flip": row(56, 54)})
    assert parts["continual"] == {"coin_flip": row(56, 54), "last_letter_concatenation": row(0, 0)}
    assert cc.continual_parts({}, "continual", {"coin_flip": row(1, 2)}) == {"continual": {"coin_flip": row(1, 2)}}
