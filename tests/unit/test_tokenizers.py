"""The offline tokenizers of from-scratch students: byte-level and a BPE trained on the run's text."""
import pytest

from cotdistill.errors import ConfigError
from cotdistill.students import load_student
from cotdistill.students.presets import bpe_tokenizer, byte_tokenizer

TEXTS = [f"Q: Roger has {i} balls. He buys {i + 3} more. How many now?\nA: Let's think step by step. "
         f"Roger had {i} balls and bought {i + 3}, so he has {2 * i + 3} balls. Therefore, the answer is {2 * i + 3}."
         for i in range(200)]


def test_bpe_is_shorter_than_bytes_and_still_encodes_any_text(tmp_path):
    bpe, byte = bpe_tokenizer(TEXTS, 400), byte_tokenizer()
    n_bpe = sum(len(bpe(t)["input_ids"]) for t in TEXTS)
    n_byte = sum(len(byte(t)["input_ids"]) for t in TEXTS)
    assert n_bpe * 3 < n_byte, (n_bpe, n_byte)  # merges learnt from the data: several-fold shorter
    assert len(bpe) <= 400
    odd = "naïve café – 日本語 🙂 <<48/2=24>>\ttabs"  # never seen in training: falls back to bytes
    ids = bpe(odd)["input_ids"]
    assert bpe.unk_token_id not in ids and bpe.decode(ids) == odd
    # same special tokens and ids as the byte-level tokenizer
    assert [bpe.pad_token_id, bpe.bos_token_id, bpe.eos_token_id] == [byte.pad_token_id, byte.bos_token_id, byte.eos_token_id]
    model, tok, _ = load_student("preset:tiny", tokenizer=bpe)
    assert model.config.vocab_size == len(bpe)
    model.save_pretrained(tmp_path)
    tok.save_pretrained(tmp_path)
    again, tok2, _ = load_student(str(tmp_path))  # saved with the student: loads by path
    assert tok2(TEXTS[0])["input_ids"] == bpe(TEXTS[0])["input_ids"]


def test_bad_tokenizer_settings_say_what_is_wrong():
    with pytest.raises(ConfigError, match="vocab_size=100: a byte-level BPE needs at least 260"):
        bpe_tokenizer(TEXTS, 100)
    with pytest.raises(ConfigError, match="trains a tokenizer for from-scratch presets"):
        load_student("pretrained:minilm-seq2seq", tokenizer=bpe_tokenizer(TEXTS, 300))
    with pytest.raises(ConfigError, match="needs a \\[MASK\\] token"):
        load_student("preset:bert-tiny", tokenizer=bpe_tokenizer(TEXTS, 300))
    assert len(bpe_tokenizer(TEXTS, 300, masked=True)) <= 300
