"""Local-data include folders: overrides, clear errors, QMSum conversion."""

from __future__ import annotations

import json

import pytest
import yaml

from harness_ext.core.errors import ConfigError, InputError
from tests.conftest import ROOT, run_cli

pytest.importorskip("lm_eval")

from harness_ext.evals.local_tasks import MARKER, convert_qmsum, write_local_tasks  # noqa: E402


def _data(tmp_path, task="hx_qmsum", split="validation"):
    d = tmp_path / "data" / task
    d.mkdir(parents=True)
    (d / f"{split}.jsonl").write_text(json.dumps({"id": "1", "pid": "1", "input": "q\n\nA: hi", "output": "s"}) + "\n")
    return tmp_path / "data"


def test_override_points_the_task_at_absolute_local_files(tmp_path):
    out = write_local_tasks(_data(tmp_path), tmp_path / "inc")
    cfg = yaml.safe_load((out / "local" / "hx_qmsum.yaml").read_text())
    assert cfg["include"] == str((ROOT / "tasks" / "longform" / "hx_qmsum.yaml").resolve())
    assert cfg["dataset_kwargs"]["data_files"] == {"validation": str((tmp_path / "data" / "hx_qmsum" / "validation.jsonl").resolve())}
    # every other task of ours is still reachable through a stub
    stub = yaml.safe_load((out / "harness_ext" / "openllm" / "hx_openllm.yaml").read_text())
    assert stub == {"include": str((ROOT / "tasks" / "openllm" / "hx_openllm.yaml").resolve())}
    assert not (out / "harness_ext" / "longform" / "hx_qmsum.yaml").exists()
    assert (out / MARKER).exists()
    # rewriting replaces the earlier folder
    write_local_tasks(_data(tmp_path / "again", task="hx_ifs", split="test"), out)
    assert not (out / "local" / "hx_qmsum.yaml").exists()
    assert yaml.safe_load((out / "local" / "hx_ifs.yaml").read_text())["custom_dataset"] is None


def test_unknown_task_gets_did_you_mean(tmp_path):
    with pytest.raises(ConfigError, match="Did you mean 'hx_qmsum'"):
        write_local_tasks(_data(tmp_path, task="hx_qmsun"), tmp_path / "inc")
    assert not (tmp_path / "inc").exists()


def test_missing_eval_split_and_wrong_names_are_reported(tmp_path):
    with pytest.raises(InputError, match="evaluates on split 'validation'"):
        write_local_tasks(_data(tmp_path, split="train"), tmp_path / "inc")
    d = _data(tmp_path / "b", task="gsm8k", split="test")
    (d / "gsm8k" / "tset.jsonl").write_text("{}\n")
    with pytest.raises(InputError, match="split 'tset' is not one task 'gsm8k' reads"):
        write_local_tasks(d, tmp_path / "inc")
    with pytest.raises(ConfigError, match="names a group"):
        write_local_tasks(_data(tmp_path / "c", task="mmlu", split="test"), tmp_path / "inc")


def test_refuses_to_replace_a_folder_it_did_not_write(tmp_path):
    keep = tmp_path / "mine"
    keep.mkdir()
    (keep / "notes.txt").write_text("important")
    with pytest.raises(ConfigError, match="refusing"):
        write_local_tasks(_data(tmp_path), keep)
    assert (keep / "notes.txt").read_text() == "important"


def test_qmsum_conversion_to_scrolls_rows(tmp_path):
    src = tmp_path / "val.jsonl"
    meeting = {"meeting_transcripts": [{"speaker": "Grad A", "content": "We ship on Friday ."},
                                       {"speaker": "Professor B", "content": "Agreed ."}],
               "general_query_list": [{"query": "Summarize the meeting.", "answer": "They agreed to ship."}],
               "specific_query_list": [{"query": "When do they ship?", "answer": "Friday.", "relevant_text_span": [["0", "1"]]}]}
    src.write_text(json.dumps(meeting) + "\n")
    dst = tmp_path / "data" / "hx_qmsum" / "validation.jsonl"
    assert convert_qmsum(src, dst) == 2
    rows = [json.loads(x) for x in dst.read_text().splitlines()]
    assert rows[1]["input"] == "When do they ship?\n\nGrad A: We ship on Friday .\nProfessor B: Agreed ."
    assert rows[1]["output"] == "Friday."
    bad = tmp_path / "scrolls.jsonl"
    bad.write_text(json.dumps({"id": "x", "input": "q", "output": "a"}) + "\n")
    with pytest.raises(InputError, match=r"scrolls.jsonl:1: not an original-format QMSum"):
        convert_qmsum(bad, tmp_path / "o.jsonl")


def test_real_qmsum_validation_converts(shared_data, tmp_path):
    proc = run_cli("lm-eval-tasks", "--qmsum-original", str(shared_data / "qmsum" / "val.jsonl"),
                   "--local-data", str(tmp_path / "data"))
    assert proc.returncode == 0, proc.stderr
    rows = [json.loads(x) for x in (tmp_path / "data" / "hx_qmsum" / "validation.jsonl").read_text().splitlines()]
    assert len(rows) == 272  # 35 meetings, 272 queries (shared data MANIFEST)
    assert all(r["input"].count("\n") > 50 and r["output"] for r in rows)


@pytest.mark.slow
def test_hx_qmsum_runs_on_real_qmsum(shared_data, tiny_model_dir, tmp_path):
    """Real QMSum meetings (converted to SCROLLS rows) through lm_eval with a tiny model."""
    from harness_ext.evals.runner import run_lm_eval

    convert_qmsum(shared_data / "qmsum" / "val.jsonl", tmp_path / "data" / "hx_qmsum" / "validation.jsonl")
    path = run_lm_eval(tiny_model_dir, ["hx_qmsum"], tmp_path / "out", limit=2, local_data=tmp_path / "data",
                       extra_args=["--gen_kwargs", "max_gen_toks=16"])
    res = json.loads(path.read_text())["results"]["hx_qmsum"]
    assert res["sample_len"] == 2
    assert {"rouge1,none", "rouge2,none", "rougeL,none", "gen_chars,none"} <= set(res)
