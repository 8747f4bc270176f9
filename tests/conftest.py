import os
from pathlib import Path

import pytest

SHARED = Path(__file__).resolve().parents[1].parent / "shared" / "data"
os.environ.setdefault("TOKENIZERS_PARALLELISM", "false")
os.environ.setdefault("HF_HUB_OFFLINE", "1")


@pytest.fixture(autouse=True)
def _isolated_home(tmp_path_factory, monkeypatch):
    """No test reads or writes the user's real caches."""
    home = tmp_path_factory.mktemp("home")
    monkeypatch.setenv("HF_HOME", str(home / "hf"))
    monkeypatch.setenv("XDG_CACHE_HOME", str(home / "cache"))


@pytest.fixture
def shared_data():
    if not (SHARED / "reasoning").is_dir():
        pytest.skip(f"needs ../shared/data (looked in {SHARED})")
    return SHARED


def pytest_collection_modifyitems(config, items):
    for item in items:
        if "shared_data" in item.fixturenames:
            item.add_marker(pytest.mark.shared_data)
