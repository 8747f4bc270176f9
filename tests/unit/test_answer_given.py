"""Answer-given rationale augmentation (the CoT Collection): the block-format prompt, the
demonstration loader, and the consistency filter in curation."""
import pytest

from cotdistill.curate import curate, states_answer_only
from cotdistill.errors import DataError
from cotdistill.tasks.schema import Example
from cotdistill.teachers.base import Completion, Teacher
from cotdistill.teachers.generate import generate_rationales
from cotdistill.teachers.prompting import AnswerGiven, load_block_demos

DEMOS = """Annotate with care.

[Example 1]
[Instruction and Question] 
If there are 3 cars and 2 more arrive, how many cars are there?

[Answer] 
5

[Rationale]
There are 3 cars. 2 more arrive. Now there are 3 + 2 = 5 cars.



[Example 2]
[Instruction and Question]
Is the sky green?

[Options]
- Yes
- No

[Answer]
No

[Rationale]
The sky looks blue on a clear day, not green, so the statement is false.



[Example 3]
[Instruction and Question]

[Answer]

[Rationale]
"""


def test_block_demos_and_the_prompt(tmp_path):
    f = tmp_path / "prompt.txt"
    f.write_text(DEMOS)
    instructions, demos = load_block_demos(f)
    assert instructions == "Annotate with care." and len(demos) == 2  # the empty slot at the end is skipped
    assert demos[0]["options"] == "Not Given" and demos[1]["options"] == "- Yes\n- No" and demos[1]["answer"] == "No"
    ag = AnswerGiven(demos, instructions)
    ex = Example(id="q", question="Tom has 4 pens and buys 3. How many?", answer="7", kind="number")
    p = ag.stage1(ex)
    assert p.startswith("Annotate with care.\n\n[Example 1]\n[Instruction and Question]\nIf there are 3 cars")
    assert p.endswith("[Example 3]\n[Instruction and Question]\nTom has 4 pens and buys 3. How many?\n\n"
                      "[Options]\nNot Given\n\n[Answer]\n7\n\n[Rationale]\n")
    mc = Example(id="m", question="Pick one", answer="B", kind="choice", choices=["red", "blue"])
    assert "[Options]\n- (A) red\n- (B) blue\n\n[Answer]\n(B) blue\n\n[Rationale]\n" in ag.stage1(mc)


@pytest.mark.parametrize("text, needle", [
    ("no examples here", r"no `\[Example 1\]` line"),
    ("[Example 1]\n[Instruction and Question]\nq\n\n[Answer]\n1\n\n[Example 2]\n[Instruction and Question]\nq\n"
     "[Answer]\n2\n[Rationale]\nr\n", r"\[Example 1\]: missing or empty \[Rationale\]"),
    ("[Example 1]\n[Answer]\n1\n[Answer]\n2\n[Rationale]\nr\n", r"\[Answer\] appears twice"),
])
def test_block_format_errors_name_the_file_and_example(tmp_path, text, needle):
    f = tmp_path / "bad.txt"
    f.write_text(text)
    with pytest.raises(DataError, match=rf"bad.txt: .*{needle}"):
        load_block_demos(f)


def test_real_demonstration_files_load(shared_data):
    root = shared_data / "cot-collection-demos/CoT_Rationale_Augmentation/demonstration"
    loaded = [load_block_demos(f) for f in sorted(root.glob("*/prompt.txt")) if f.stat().st_size]
    assert len(loaded) >= 9 and all(len(d) >= 5 for _, d in loaded)


@pytest.mark.parametrize("rationale, dropped", [
    ("It's simple, here's my answer: 7.", True),
    ("The answer is 7. Tom had 4.", True),  # the answer first, then almost nothing
    ("Tom has 4 pens. He buys 3 more, so he has 4 + 3 = 7 pens.", False),
    ("The answer is 7 because Tom starts with 4 pens and then buys 3 more pens at the shop.", False),
])
def test_states_answer_only(rationale, dropped):
    assert states_answer_only(rationale, "7", "number") is dropped


class Canned(Teacher):
    backend = "canned"

    def __init__(self, texts):
        self.texts = texts

    @property
    def identity(self):
        return {"backend": "canned"}

    def _complete(self, requests, progress=None):
        return [Completion(self.texts[i % len(self.texts)], "stop", 1, 1) for i, _ in enumerate(requests)]


def test_consistency_filter_counts_each_drop(tmp_path):
    f = tmp_path / "prompt.txt"
    f.write_text(DEMOS)
    ag = AnswerGiven(*reversed(load_block_demos(f)))
    exs = [Example(id=str(i), question=f"Tom has 4 pens and buys 3 (#{i}). How many?", answer="7", kind="number")
           for i in range(3)]
    texts = [" Tom has 4 pens. He buys 3 more, so he has 4 + 3 = 7 pens.",  # kept
             " It's simple, here's my answer: 7.",                        # states the answer only
             " Tom has 4 pens and buys 3, so he has 4 + 3 = 8 pens."]     # does not reach the given answer
    recs = generate_rationales(exs, Canned(texts), ag)
    assert all(r["prompt_style"] == "answer_given" and r["answer_text"] is None for r in recs)
    kept, st = curate(recs)
    assert [r["id"] for r in kept] == ["0"]
    assert st.dropped == {"answer_up_front": 1, "wrong_answer": 1}
