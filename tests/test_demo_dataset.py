"""The bundled demo dataset: files load, shapes and shares are as documented, eval prompts are held out."""

from __future__ import annotations

import ast
import difflib
import json
import re
import shutil
import subprocess
import sys
from collections import Counter
from pathlib import Path

import pytest

from harness_ext.core.errors import InputError
from harness_ext.data import demo as demo_data

ROOT = Path(__file__).resolve().parent.parent
STATS_SCRIPT = ROOT / "scripts" / "demo_dataset_stats.py"


@pytest.fixture(scope="module")
def rows() -> list[dict]:
    return demo_data.read_instruction_rows()


def _norm(text: str) -> str:
    return " ".join(re.sub(r"[^a-z0-9 ]", " ", text.lower()).split())


def test_instruction_rows_have_required_fields(rows):
    assert len(rows) >= 220
    for r in rows:
        assert set(r) == {"instruction", "input", "output", "source", "category", "score"}
        assert r["instruction"].strip() and r["output"].strip()
        assert r["output"] == r["output"].strip(), "outputs carry no leading/trailing whitespace"


def test_every_category_is_well_represented(rows):
    counts = Counter(r["category"] for r in rows)
    assert set(counts) == set(demo_data.CATEGORIES)
    assert min(counts.values()) >= 18, counts
    # The documented input-using categories really put their passage in `input`.
    for cat in ("extraction", "summarization", "rewriting"):
        assert all(r["input"] for r in rows if r["category"] == cat), cat
    cls = [r for r in rows if r["category"] == "classification"]
    assert sum(1 for r in cls if r["input"]) >= len(cls) - 1


def test_sources_have_the_documented_unequal_shares(rows):
    counts = Counter(r["source"] for r in rows)
    assert set(counts) == set(demo_data.SOURCES)
    target = {"handwritten-general": 0.45, "handwritten-code": 0.20,
              "handwritten-reasoning": 0.20, "handwritten-dialogue": 0.15}
    for source, share in target.items():
        assert abs(counts[source] / len(rows) - share) <= 0.04, (source, counts[source])


def test_response_lengths_are_heavy_tailed(rows):
    lengths = [demo_data.words(r["output"]) for r in rows]
    assert min(lengths) < 10 and max(lengths) > 300 and max(lengths) < 600
    buckets = demo_data.bucket_counts(lengths)
    shares = [k / len(rows) for k in buckets.values()]
    for got, want in zip(shares, (0.30, 0.45, 0.25), strict=True):
        assert abs(got - want) <= 0.05, buckets
    for cat in demo_data.CATEGORIES:
        assert any(demo_data.words(r["output"]) >= 150 for r in rows if r["category"] == cat), cat
        assert any(demo_data.words(r["output"]) < 150 for r in rows if r["category"] == cat), cat


def test_exactly_fifteen_duplicates_with_different_answers(rows):
    dups = demo_data.duplicate_rows(rows)
    assert len(dups) == 15
    first = {}
    for i, r in enumerate(rows):
        first.setdefault((r["instruction"], r["input"]), i)
    for i in dups:
        original = rows[first[(rows[i]["instruction"], rows[i]["input"])]]
        assert original["output"] != rows[i]["output"]


def test_scores_allow_a_meaningful_threshold(rows):
    scores = [r["score"] for r in rows]
    assert all(1 <= s <= 5 for s in scores)
    kept = sum(1 for s in scores if s >= 4.5)
    assert 0.8 * len(rows) <= kept < len(rows)


def test_code_and_json_blocks_in_answers_parse(rows):
    checked = 0
    for r in rows:
        for lang, body in re.findall(r"```(\w*)\n(.*?)```", r["output"], re.S):
            if lang == "python":
                ast.parse(body)
                checked += 1
            elif lang == "json":
                json.loads(body)
                checked += 1
    assert checked >= 20


def test_conversations_alternate_and_have_two_or_three_exchanges():
    convs = demo_data.read_conversations()
    assert 10 <= len(convs) <= 15
    assert len({c["id"] for c in convs}) == len(convs)
    for c in convs:
        assert len(c["conversations"]) in (4, 6)
    examples = demo_data.load_demo_conversations()
    assert [t.role for t in examples[0].conversation][:2] == ["user", "assistant"]
    assert examples[0].response == convs[0]["conversations"][1]["value"]


def test_eval_prompts_are_held_out_and_unique(rows):
    prompts = demo_data.read_eval_prompts()
    assert len(prompts) >= 45
    assert all(re.fullmatch(r"demo-eval-\d{3}", p["id"]) for p in prompts)
    assert len({p["id"] for p in prompts}) == len(prompts)
    assert len({p["category"] for p in prompts}) == len(demo_data.CATEGORIES)
    train = {_norm(r["instruction"] + " " + r["input"]) for r in rows}
    train |= {_norm(r["instruction"]) for r in rows}
    train |= {_norm(c["conversations"][0]["value"]) for c in demo_data.read_conversations()}
    for p in prompts:
        q = _norm(p["instruction"])
        assert q not in train, p["id"]
        for t in train:
            m = difflib.SequenceMatcher(None, q, t)
            if m.real_quick_ratio() > 0.8 and m.quick_ratio() > 0.8:
                assert m.ratio() <= 0.8, (p["id"], t)


def test_mt_prompts_extend_eval_prompts():
    prompts = {p["id"]: p for p in demo_data.read_eval_prompts()}
    mt = demo_data.read_eval_mt()
    assert len(mt) == 8
    assert [q["question_id"] for q in mt] == list(range(1, 9))
    for q in mt:
        assert q["turns"][0] == prompts[q["eval_id"]]["instruction"]


def test_examples_keep_row_order_ids_and_metadata(rows):
    examples = demo_data.load_demo_examples()
    assert [e.id for e in examples[:3]] == ["identity_0", "identity_1", "identity_2"]
    assert examples[5].response == rows[5]["output"] and examples[5].row == 5
    assert examples[5].metadata == {"category": rows[5]["category"], "score": rows[5]["score"]}


def test_readme_statistics_are_current():
    readme = (demo_data.demo_dir() / "README.md").read_text(encoding="utf-8")
    assert demo_data.render_stats_markdown(demo_data.dataset_stats()) in readme


def test_stats_script_detects_and_fixes_a_stale_readme(tmp_path):
    folder = tmp_path / "demo"
    shutil.copytree(demo_data.demo_dir(), folder)
    readme = folder / "README.md"
    readme.write_text(readme.read_text(encoding="utf-8").replace("| writing | ", "| writing | 9"), encoding="utf-8")
    run = [sys.executable, str(STATS_SCRIPT), "--dir", str(folder)]
    stale = subprocess.run([*run, "--check"], capture_output=True, text=True, timeout=60)
    assert stale.returncode == 1 and "stale" in stale.stderr
    assert subprocess.run([*run, "--write"], capture_output=True, text=True, timeout=60).returncode == 0
    assert subprocess.run([*run, "--check"], capture_output=True, text=True, timeout=60).returncode == 0
    assert readme.read_text(encoding="utf-8") == (demo_data.demo_dir() / "README.md").read_text(encoding="utf-8")


def _write(path: Path, lines: list[dict]) -> Path:
    path.write_text("".join(json.dumps(x) + "\n" for x in lines), encoding="utf-8")
    return path


GOOD = {"instruction": "Say hi.", "input": "", "output": "Hi!", "source": "handwritten-general",
        "category": "writing", "score": 5}


@pytest.mark.parametrize(("change", "needle"), [
    ({"category": "poetry"}, "field 'category' is 'poetry'; allowed: writing, coding"),
    ({"source": "web"}, "field 'source' is 'web'"),
    ({"output": ""}, "field 'output' is ''"),
    ({"instruction": 3}, "field 'instruction' is 3; allowed: a string"),
    ({"score": 7}, "field 'score' is 7"),
])
def test_bad_instruction_rows_name_file_line_and_field(tmp_path, change, needle):
    path = _write(tmp_path / "bad.jsonl", [GOOD, {**GOOD, **change}])
    with pytest.raises(InputError) as err:
        demo_data.read_instruction_rows(path)
    assert f"{path}:2: " in str(err.value) and needle in str(err.value)


def test_bad_eval_files_are_rejected(tmp_path):
    p = _write(tmp_path / "e.jsonl", [{"id": "a", "instruction": "x", "category": "coding"},
                                     {"id": "a", "instruction": "y", "category": "coding"}])
    with pytest.raises(InputError, match=r"e\.jsonl:2: field 'id' is 'a'"):
        demo_data.read_eval_prompts(p)
    m = _write(tmp_path / "m.jsonl", [{"question_id": 1, "category": "math", "turns": ["a", "b"]}])
    with pytest.raises(InputError, match="field 'category' is 'math'"):
        demo_data.read_eval_mt(m)
    c = tmp_path / "c.json"
    c.write_text(json.dumps([{"id": "x", "conversations": [{"from": "gpt", "value": "hi"},
                                                           {"from": "human", "value": "yo"}]}]))
    with pytest.raises(InputError, match="turn 0: 'from' is 'gpt'; expected 'human'"):
        demo_data.read_conversations(c)
