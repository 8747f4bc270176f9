"""`kd`: Fine-tune-CoT pairs plus the teacher's next-token distributions (white-box distillation)."""
import json
import math
import re

import pytest
import torch

from cotdistill.checks import problems
from cotdistill.config import load_config
from cotdistill.errors import ConfigError
from cotdistill.methods.kd import divergence
from cotdistill.pipeline import Run

TINY = ["task.name=last_letters", "task.n_train=120", "task.n_test=16", "student.model=preset:tiny",
        "train.eval_every=10", "train.warmup_steps=2", "eval.max_new_tokens=60"]


def test_the_divergences_are_the_textbook_ones():
    torch.manual_seed(0)
    s, t = torch.randn(5, 11), torch.randn(5, 11)
    ps, pt = s.softmax(-1), t.softmax(-1)
    assert torch.allclose(divergence(s, t, "forward"), (pt * (pt.log() - ps.log())).sum(-1), atol=1e-5)
    assert torch.allclose(divergence(s, t, "reverse"), (ps * (ps.log() - pt.log())).sum(-1), atol=1e-5)
    m = 0.5 * (ps + pt)
    jsd = 0.5 * (pt * (pt.log() - m.log())).sum(-1) + 0.5 * (ps * (ps.log() - m.log())).sum(-1)
    assert torch.allclose(divergence(s, t, "jsd", beta=0.5), jsd, atol=1e-5)
    assert (jsd <= math.log(2) + 1e-6).all()  # bounded, unlike the KLs
    assert torch.allclose(divergence(s, s, "forward"), torch.zeros(5), atol=1e-6)
    hot = divergence(s, t, "forward", tau=4.0)  # a higher temperature flattens both: a smaller gap
    assert (hot < divergence(s, t, "forward")).all()


@pytest.fixture(scope="module")
def teacher(tmp_path_factory):
    """A trained ft_cot student of the same task: the teacher's folder."""
    out = tmp_path_factory.mktemp("teacher")
    Run(load_config(None, [f"out={out}", *TINY, "train.max_steps=60", "methods=[ft_cot]"])).run_all()
    return out / "ft_cot" / "model"


def test_kd_learns_the_teachers_distributions_and_saves_only_the_student(tmp_path, teacher):
    cfg = load_config(None, [f"out={tmp_path}", *TINY, "train.max_steps=20", "methods=[kd]",
                             f"method_options={{kd: {{teacher: '{teacher}', alpha: 0.0}}}}"])
    assert problems(cfg) == []
    s = Run(cfg).run_all()
    log = [json.loads(l) for l in (tmp_path / "kd" / "train_log.jsonl").read_text().splitlines()]
    val = [r["eval_loss"] for r in log if "eval_loss" in r]
    assert len(val) == 2 and val[1] < val[0]  # alpha 0: the validation loss is the KL to the teacher, and it falls
    saved = (tmp_path / "kd" / "model" / "model.safetensors").stat().st_size
    assert abs(saved - (teacher / "model.safetensors").stat().st_size) < 10_000  # the student alone, no teacher
    assert s["methods"]["kd"]["steps"] == 20 and s["methods"]["kd"]["n"] == 16


def test_bad_teachers_are_refused_before_any_training(tmp_path, teacher):
    base = [f"out={tmp_path}", *TINY, "methods=[kd]"]
    found = problems(load_config(None, base))
    assert any("`method_options.kd.teacher`: kd learns from a teacher's distributions" in p for p in found)
    found = problems(load_config(None, [*base, f"method_options={{kd: {{teacher: '{tmp_path / 'gone'}'}}}}"]))
    assert any("method_options.kd.teacher" in p and "does not exist" in p for p in found)
    from cotdistill.students.presets import bpe_tokenizer, build_preset

    # a causal LM with a BPE of its own: token ids that mean other strings than the student's bytes
    model, tok, _ = build_preset("tiny", tok=bpe_tokenizer(["the last letters of each word"] * 50, 300))
    folder = tmp_path / "bpe"
    model.save_pretrained(folder)
    tok.save_pretrained(folder)
    found = problems(load_config(None, [*base, f"method_options={{kd: {{teacher: '{folder}'}}}}"]))
    assert any("tokenizer differs from the student preset:tiny's" in p for p in found), found
    with pytest.raises(ConfigError, match="kd trains decoder-only students"):
        Run(load_config(None, [f"out={tmp_path / 'seq'}", *TINY, "student.model=preset:t5-tiny", "train.max_steps=2",
                               "methods=[kd]", f"method_options={{kd: {{teacher: '{teacher}'}}}}"])).run_all()


def test_a_full_top_k_cache_gives_the_on_the_fly_loss_and_names_its_teacher(tmp_path, teacher):
    from cotdistill.methods.kd import KDModule, KDOptions, TopKCache, _collate_topk
    from cotdistill.students import load_student
    from cotdistill.students.data import Collator, Pair, encode_pairs

    student, tok, _ = load_student("preset:tiny", seed=1)
    teach, _, _ = load_student(str(teacher))
    feats, _ = encode_pairs([Pair(f"Take the last letters of 'ab cd{i}' ###", f" b d{i} --> bd{i}") for i in range(6)],
                            tok, False, 256)
    for opts in (KDOptions(teacher="t", alpha=0.3, divergence="forward", temperature=2.0),
                 KDOptions(teacher="t", alpha=0.0, divergence="jsd", beta=0.3)):
        module = KDModule(student, teach, opts).eval()
        fly = module(**{k: v for k, v in Collator(tok.pad_token_id)(feats).items() if k != "weights"})["loss"]
        cache = TopKCache(tmp_path / "c.pt", "t", "digest-a", len(tok))  # K = the vocabulary: nothing left out
        cache.attach(feats, teach, tok.pad_token_id)
        cached = module(**{k: v for k, v in _collate_topk(Collator(tok.pad_token_id))(feats).items() if k != "weights"})
        assert cached["loss"].item() == pytest.approx(fly.item(), rel=1e-4)
    assert TopKCache(tmp_path / "c.pt", "t", "digest-a", len(tok)).attach(feats, teach, tok.pad_token_id) == 0  # reused
    with pytest.raises(ConfigError, match=r"made by the teacher t \(files digest-a, K \d+\), not by u \(files digest-b"):
        TopKCache(tmp_path / "c.pt", "u", "digest-b", len(tok))
    (tmp_path / "broken.pt").write_bytes(b"not a cache")
    with pytest.raises(ConfigError, match="broken.pt: not a kd top-k cache"):
        TopKCache(tmp_path / "broken.pt", "t", "digest-a", 4)


def test_kd_trains_from_a_top_k_cache_and_a_rerun_reads_it(tmp_path, teacher, caplog):
    cache = tmp_path / "topk.pt"
    over = [*TINY, "train.max_steps=20", "methods=[kd]",
            f"method_options={{kd: {{teacher: '{teacher}', alpha: 0.0, top_k: 16, cache: '{cache}'}}}}"]
    with caplog.at_level("INFO", logger="cotdistill"):
        Run(load_config(None, [f"out={tmp_path / 'a'}", *over])).run_all()
    log = [json.loads(l) for l in (tmp_path / "a" / "kd" / "train_log.jsonl").read_text().splitlines()]
    val = [r["eval_loss"] for r in log if "eval_loss" in r]
    assert cache.exists() and val[1] < val[0]
    caplog.clear()
    with caplog.at_level("INFO", logger="cotdistill"):
        Run(load_config(None, [f"out={tmp_path / 'b'}", *over])).run_all()  # another run: the teacher is not asked
    counts = re.findall(r"kd: teacher top-16 of (\d+) sequences, (\d+) read", caplog.text)
    assert len(counts) == 2 and all(n == read for n, read in counts)  # training and validation: all from the cache


def test_on_policy_batches_are_the_students_own_samples_scored_by_the_teacher(tmp_path, teacher):
    from cotdistill.methods.kd import KDModule, KDOptions
    from cotdistill.students import load_student
    from cotdistill.students.data import Collator, Pair, encode_pairs

    student, tok, _ = load_student("preset:tiny", seed=1)
    teach, _, _ = load_student(str(teacher))
    feats, _ = encode_pairs([Pair(f"Take the last letters of 'ab cd{i}' ###", f" b d{i} --> bd{i}") for i in range(4)],
                            tok, False, 256)
    b = {k: v for k, v in Collator(tok.pad_token_id)(feats).items() if k != "weights"}
    module = KDModule(student, teach, KDOptions(teacher="t", on_policy=1.0), pad_id=tok.pad_token_id).train()
    torch.manual_seed(0)
    ids, att, lab = module.sample(b["input_ids"], b["labels"])
    for r in range(4):
        n_src = int((b["labels"][r] != -100).nonzero()[0])
        assert torch.equal(ids[r, :n_src], b["input_ids"][r, :n_src]) and (lab[r, :n_src] == -100).all()
        assert 0 < int((lab[r] != -100).sum()) <= int((b["labels"] != -100).sum(1).max())  # at most the longest target
    loss = module(**b)["loss"]
    assert torch.isfinite(loss) and module.on_policy_batches == 1
    loss.backward()  # the student learns from its own samples
    assert any(p.grad is not None for p in student.parameters())
    half = KDModule(student, teach, KDOptions(teacher="t", on_policy=0.5), seed=3).train()
    batches = [torch.randint(0, 200, (2, 9)) for _ in range(400)]
    chosen = [half.takes_on_policy(x) for x in batches]
    assert 150 < sum(chosen) < 250 and chosen == [half.takes_on_policy(x) for x in batches]  # the same every time
    assert not any(half.eval().takes_on_policy(x) for x in batches)  # validation is never sampled


def test_kd_on_policy_trains_through_the_pipeline(tmp_path, teacher):
    Run(load_config(None, [f"out={tmp_path}", *TINY, "train.max_steps=10", "methods=[kd]",
                           f"method_options={{kd: {{teacher: '{teacher}', on_policy: 0.5}}}}"])).run_all()
    info = json.loads((tmp_path / "kd" / "train_info.json").read_text())
    assert 0 < info["on_policy_batches"] < 10 and info["steps"] == 10
