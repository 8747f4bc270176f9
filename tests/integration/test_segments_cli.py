"""`cotdistill segments`: statistics and coloured examples from a file or a run's curated.jsonl."""
import json
import subprocess
import sys
from pathlib import Path

ENTRY = Path(sys.executable).parent / "cotdistill"


def cli(*args, cwd=None):
    return subprocess.run([str(ENTRY), *map(str, args)], capture_output=True, text=True, timeout=300, cwd=cwd)


def test_segments_of_a_file_and_bad_input(tmp_path):
    f = tmp_path / "r.jsonl"
    f.write_text("\n".join(json.dumps(r) for r in [
        {"question": "Tom has 3 apples and 2 pears.", "rationale": "Tom has 3 apples. He has 2 pears. 3 + 2 = 5."},
        {"question": "Ann has 4 pens.", "rationale": "Ann has 4 pens, so she has 4 * 2 = 8 pen caps."},
    ]))
    r = cli("segments", f, "--examples", "1")
    assert r.returncode == 0, r.stderr
    assert "2 rationales (overlap, sentence)" in r.stdout and "50.0%" in r.stdout  # 2 ES of 4 segments
    assert "ES   1.00  Tom has 3 apples." in r.stdout and "AS   0.67  3 + 2 = 5." in r.stdout
    r = cli("segments", f, "--level", "clause", "--examples", "0")
    assert r.returncode == 0 and "5   " in r.stdout.replace("│", " ")  # 3 + 2 clause segments
    bad = tmp_path / "bad.jsonl"
    bad.write_text(json.dumps({"question": "q"}) + "\n")
    r = cli("segments", bad)
    assert r.returncode == 2 and "bad.jsonl:1: missing field 'rationale'" in r.stderr
    r = cli("segments", f, "--rule", "entropy")
    assert r.returncode == 2 and "needs --model" in r.stderr and "Traceback" not in r.stderr
    r = cli("segments", f, "--rule", "entropy", "--model", "preset:tiny", "--threshold", "100", "--examples", "0")
    assert r.returncode == 0 and "100.0%" in r.stdout  # every segment under 100 nats: all ES


def test_segments_of_a_run_needs_its_curated_rationales(tmp_path):
    cfg = tmp_path / "c.yaml"
    cfg.write_text(f"task: {{name: arithmetic, n_train: 20, n_test: 5}}\nout: {tmp_path / 'run'}\n")
    r = cli("segments", cfg)
    assert r.returncode == 2 and "curated.jsonl: not found; run `cotdistill generate` and `cotdistill curate`" in r.stderr
    assert cli("generate", cfg).returncode == 0 and cli("curate", cfg).returncode == 0
    r = cli("segments", cfg, "--examples", "1")
    assert r.returncode == 0 and "20 rationales" in r.stdout
