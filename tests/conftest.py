import os
import tempfile
from pathlib import Path

import pytest

SHARED = Path(__file__).resolve().parents[1].parent / "shared" / "data"
os.environ.setdefault("TOKENIZERS_PARALLELISM", "false")
os.environ.setdefault("HF_HUB_OFFLINE", "1")
# pretrained:smollm2-135m is converted once per machine into this folder (shared by the xdist workers and
# the processes the tests start), not into the user's cache and not once per test's isolated home.
os.environ.setdefault("COTDISTILL_CACHE", str(Path(tempfile.gettempdir()) / "cotdistill-test-cache"))


def _share_the_cores_between_workers() -> None:
    """Under pytest-xdist (`-n`), each worker gets its share of the cores for torch, and so do the
    CLI and bench processes the tests start (they inherit OMP_NUM_THREADS): N workers each
    running torch on every core would oversubscribe the CPU and run slower than one worker."""
    workers = int(os.environ.get("PYTEST_XDIST_WORKER_COUNT", "1"))
    if workers > 1 and "OMP_NUM_THREADS" not in os.environ:
        threads = max(1, (os.cpu_count() or 1) // workers)
        os.environ["OMP_NUM_THREADS"] = str(threads)
        import torch

        torch.set_num_threads(threads)


_share_the_cores_between_workers()


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
