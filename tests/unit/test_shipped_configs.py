"""Every YAML we ship validates against the config schema."""
from pathlib import Path

import pytest

from cotdistill.config import load_config

ROOT = Path(__file__).resolve().parents[2]
YAMLS = sorted(ROOT.glob("configs/*.yaml")) + sorted((ROOT / "src/cotdistill/configs").glob("*.yaml"))


def test_there_are_shipped_configs():
    assert len(YAMLS) >= 3


@pytest.mark.parametrize("path", YAMLS, ids=lambda p: p.name)
def test_shipped_config_validates(path):
    cfg = load_config(path)
    assert cfg.methods
