"""Tasks with an intermediate step (20 Newsgroups, SemEval-2010 Task 8), verbalizers, label
spaces and the classification metrics of the masked-LM methods."""
import gzip
import json

import pytest

from cotdistill.errors import ConfigError, DataError
from cotdistill.methods.masked import (LabelSpace, Prompter, default_words, intermediate_of, macro_f1, marked_text,
                                       semeval_official_f1)
from cotdistill.tasks.benchmarks import load_benchmark
from cotdistill.tasks.files import load_file
from cotdistill.tasks.schema import Example
from cotdistill.tasks.understanding import load_newsgroups, load_semeval, parent_of, relation_example, undirected, untag


def ex(i, answer, **meta):
    return Example(id=str(i), question=f"text {i}", answer=answer, kind="label", metadata=meta)


# -- loaders ---------------------------------------------------------------------------------------
def test_real_20newsgroups_and_semeval_load_with_their_intermediate_steps(shared_data):
    tr, te = load_benchmark("20newsgroups", shared_data, "train"), load_benchmark("20newsgroups", shared_data, "test")
    assert (len(tr), len(te)) == (11314, 7532)
    assert len({e.answer for e in tr}) == 20 and {e.metadata["intermediate"] for e in tr} == {
        "alt", "comp", "misc", "rec", "sci", "soc", "talk"}
    assert all(e.answer.startswith(e.metadata["intermediate"] + ".") for e in tr[:500])
    tr, te = load_benchmark("semeval2010_task8", shared_data, "train"), load_benchmark("semeval2010_task8", shared_data, "test")
    assert (len(tr), len(te)) == (8000, 2717)
    assert len({e.answer for e in tr}) == 19 and len({e.metadata["intermediate"] for e in tr}) == 10
    first = tr[0]
    assert first.answer == "Component-Whole(e2,e1)" and first.metadata["intermediate"] == "Component-Whole"
    assert (first.metadata["head"], first.metadata["tail"]) == ("configuration", "elements")
    assert "<e1>" not in first.question and first.question[slice(*first.metadata["head_span"])] == "configuration"


def test_untag_and_its_bad_input():
    text, h, t = untag("The <e1>child</e1> was in the <e2>cradle</e2>.", "f:1")
    assert text == "The child was in the cradle." and text[h[0]:h[1]] == "child" and text[t[0]:t[1]] == "cradle"
    with pytest.raises(DataError, match=r"f:3: .*<e2> missing"):
        untag("The <e1>child</e1> was in the cradle.", "f:3")
    with pytest.raises(DataError, match="never opened"):
        untag("a </e1> b", "f:1")


def test_semeval_file_errors_name_the_line(tmp_path):
    good = '1\t"The <e1>a</e1> of <e2>b</e2>."\nComponent-Whole(e2,e1)\nComment:\n\n'
    p = tmp_path / "s.txt"
    p.write_text(good + '2\t"No tags here."\nOther\nComment:\n\n')
    with pytest.raises(DataError, match=r"s.txt:5: the sentence needs both entity tags"):
        load_semeval(p, "train")
    p.write_text(good + "garbage line\n")
    with pytest.raises(DataError, match=r"s.txt:5: expected 'ID<tab>"):
        load_semeval(p, "train")
    p.write_text(good)
    (e,) = load_semeval(p, "train")
    assert e.id == "semeval-train-1" and e.metadata["intermediate"] == "Component-Whole"


def test_newsgroups_label_without_a_path_separator_names_the_line(tmp_path):
    p = tmp_path / "train.jsonl.gz"
    rows = [{"id": "1", "label": "comp.graphics", "text": "a"}, {"id": "2", "label": "graphics", "text": "b"}]
    p.write_bytes(gzip.compress("\n".join(json.dumps(r) for r in rows).encode()))
    with pytest.raises(DataError, match=r"train.jsonl.gz:2: field 'label': 'graphics' has no '.' path separator"):
        load_newsgroups(p)
    p.write_bytes(b"not gzip")
    with pytest.raises(DataError, match="not a readable gzip file"):
        load_newsgroups(p)


def test_relation_file_with_spans_and_a_parent_column(tmp_path):
    p = tmp_path / "rel.jsonl.gz"
    rows = [{"id": "r1", "text": "Smoke comes from fire.", "label": "Cause-Effect(e2,e1)", "h": [0, 5], "t": [17, 21]}]
    p.write_bytes(gzip.compress(json.dumps(rows[0]).encode()))
    (e,) = load_file(p, "label", {"question": "text", "answer": "label", "head_span": "h", "tail_span": "t"})
    assert e.metadata["head_span"] == [0, 5] and intermediate_of(e) == "Cause-Effect"
    assert marked_text(e)[0] == "@ Smoke @ comes from # fire # ." and marked_text(e)[1:] == ("Smoke", "fire")
    with pytest.raises(DataError, match=r"where: field 'tail_span': expected \[start, end\)"):
        relation_example("x", "short", [0, 2], [3, 99], "Other", "where")
    bad = tmp_path / "bad.jsonl"
    for row, needle in [({"h": [0, 5]}, r"bad.jsonl:1: field 'tail_span': .* got nothing \(a relation record needs both"),
                        ({"h": [0, 5], "t": [17, 99]}, r"bad.jsonl:1: field 'tail_span': .* got \[17, 99\]"),
                        ({"h": "five", "t": [17, 21]}, r"bad.jsonl:1: field 'head_span': .* got 'five'")]:
        bad.write_text(json.dumps({"text": "Smoke comes from fire.", "label": "Cause-Effect(e2,e1)", **row}))
        with pytest.raises(DataError, match=needle):
            load_file(bad, "label", {"question": "text", "answer": "label", "head_span": "h", "tail_span": "t"})
    spans = tmp_path / "rel.csv"  # CSV cells hold the spans as JSON
    spans.write_text('text,label,h,t\nSmoke comes from fire.,Other,"[0, 5]","[17, 21]"\n')
    (e,) = load_file(spans, "label", {"question": "text", "answer": "label", "head_span": "h", "tail_span": "t"})
    assert (e.metadata["head_span"], e.metadata["tail_span"]) == ([0, 5], [17, 21])
    csv = tmp_path / "h.csv"
    csv.write_text("question,answer,coarse\nsome text,graphics,comp\n")
    (e,) = load_file(csv, "label", {"intermediate": "coarse"})
    assert intermediate_of(e) == "comp"  # a parent column instead of a label path


# -- label spaces and verbalizers ------------------------------------------------------------------
@pytest.mark.parametrize("label, words", [
    ("comp.sys.ibm.pc.hardware", "comp sys ibm pc hardware"),
    ("Cause-Effect(e2,e1)", "cause effect"),
    ("Other", "other"),
    ("talk.politics.mideast", "talk politics mideast"),
    ("ProductProducer", "product producer"),
])
def test_default_words(label, words):
    assert default_words(label) == words


def test_label_space_parents_overrides_and_bad_input():
    exs = [ex(1, "comp.graphics"), ex(2, "comp.windows.x"), ex(3, "rec.autos")]
    sp = LabelSpace.from_examples(exs, ".", {"rec.autos": "cars"}, "cott")
    assert sp.finals == ["comp.graphics", "comp.windows.x", "rec.autos"] and sp.inters == ["comp", "rec"]
    assert sp.words["rec.autos"] == "cars" and sp.words["comp"] == "comp" and sp.children() == [[0, 1], [2]]
    with pytest.raises(ConfigError, match=r"`method_options.cott.verbalizer`: unknown label\(s\) \['rec.boats'\]"):
        LabelSpace.from_examples(exs, ".", {"rec.boats": "boats"}, "cott")
    with pytest.raises(DataError, match=r"example '4': label 'graphics' has no '.' path separator"):
        LabelSpace.from_examples([*exs, ex(4, "graphics")], ".", {}, "cott")
    flat = LabelSpace.from_examples([ex(1, "spam"), ex(2, "ham")], ".", {}, "prompt_tuning", needs_intermediate=False)
    assert flat.finals == ["ham", "spam"] and flat.parent == {"ham": "ham", "spam": "spam"}  # one-step: flat labels
    with pytest.raises(DataError, match="must have one parent"):
        LabelSpace.from_examples([ex(1, "a.b", intermediate="x"), ex(2, "a.b", intermediate="y")], ".", {}, "cott")
    assert parent_of("a/b", "/") == "a" and undirected("Other") == "Other"


def test_prompter_keeps_the_mask_and_counts_cut_texts():
    from cotdistill.students.presets import byte_tokenizer

    tok = byte_tokenizer(masked=True)
    p = Prompter(tok, max_length=40)
    ids, pos = p.build("x" * 100, "topic : {mask} .")
    assert len(ids) == 40 and ids[pos] == tok.mask_token_id and ids[0] == tok.cls_token_id and p.truncated == 1
    ids, pos = p.build("short", "topic : {mask} .")
    assert ids[pos] == tok.mask_token_id and p.truncated == 1
    with pytest.raises(DataError, match="needs .* tokens, over max_length 40"):
        p.build("x", "a very long prompt that does not fit in forty byte tokens at all {mask}")


# -- metrics ---------------------------------------------------------------------------------------
def test_macro_f1_by_hand():
    # a: tp 1, fp 2, fn 1 -> 2/5; b: tp 1, fp 1, fn 1 -> 1/2; c: tp 0 -> 0; mean 0.3
    assert macro_f1(["a", "a", "b", "b", "c"], ["a", "b", "b", "a", "a"]) == pytest.approx(30.0)


def test_semeval_official_score_by_hand():
    gold = ["cause-effect(e1,e2)", "cause-effect(e2,e1)", "cause-effect(e1,e2)", "component-whole(e1,e2)", "other",
            "other"]
    pred = ["cause-effect(e1,e2)", "cause-effect(e1,e2)", "other", "component-whole(e1,e2)",
            "component-whole(e2,e1)", "other"]
    # Cause-Effect: 1 right with direction; predicted as C-E (either direction) 2; gold C-E 3
    #   P = 1/2, R = 1/3, F1 = 0.4
    # Component-Whole: 1 right; predicted 2 (one on an Other); gold 1 -> P = 1/2, R = 1, F1 = 2/3
    # Other is excluded; macro over the 2 relations present: (0.4 + 0.6667) / 2 = 53.33
    assert semeval_official_f1(gold, pred) == pytest.approx(53.33, abs=0.01)
    # the wrong direction is wrong, though the relation is right
    assert semeval_official_f1(["cause-effect(e1,e2)"], ["cause-effect(e2,e1)"]) == 0.0
