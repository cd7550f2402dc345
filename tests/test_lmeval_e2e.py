"""The real lm_eval CLI runs every task in tasks/ on local fixtures with a tiny model.

One lm_eval invocation covers hx_openllm (lm_eval's own ARC, HellaSwag, MMLU, TruthfulQA mc2,
Winogrande and GSM8K pointed at local files), hx_longform (GovReport, SummScreenFD, QMSum) and
hx_ifs, hx_objecqa; a second goes through the in-process launcher (run_lm_eval) with a user task that
attaches the registered length metric by name.
"""

from __future__ import annotations

import json
import re
import subprocess
import sys
from pathlib import Path

import pytest

from tests.conftest import ROOT, cli_env, run_cli

pytest.importorskip("lm_eval")
pytest.importorskip("rouge_score")
pytest.importorskip("sklearn")

FIXTURES = ROOT / "tests" / "fixtures"
LOCAL_DATA = FIXTURES / "lmeval_data"
IFS_TRAIN = FIXTURES / "ifs_train.jsonl"
ALL_TASKS = "hx_openllm,hx_longform,hx_ifs,hx_ifs_partial,hx_objecqa"


def _all_task_names() -> set[str]:
    """Every task and group name declared by a YAML in tasks/."""
    import yaml

    class Loader(yaml.SafeLoader):
        pass

    Loader.add_constructor("!function", lambda loader, node: loader.construct_scalar(node))
    names = set()
    for y in (ROOT / "tasks").rglob("*.yaml"):
        cfg = yaml.load(y.read_text(), Loader=Loader)  # noqa: S506 - SafeLoader subclass
        names.add(cfg.get("group") or cfg.get("task"))
    return names


def _user_qa_task(folder: Path, name: str, questions: list[str], answer: str, tail: str) -> Path:
    """A user's own generate_until task over a local JSONL of {q, a} (lm_eval accepts a YAML path
    in --tasks); `tail` adds its generation settings and metrics."""
    data = folder / f"{name}.jsonl"
    data.write_text("".join(json.dumps({"q": q, "a": answer}) + "\n" for q in questions))
    task = folder / f"{name}.yaml"
    task.write_text(
        f"task: {name}\ndataset_path: json\ndataset_kwargs:\n  data_files:\n"
        f"    test: {data}\noutput_type: generate_until\ntest_split: test\n"
        "doc_to_text: '{{q}}'\ndoc_to_target: '{{a}}'\n" + tail
    )
    return task


def _samples(folder: Path, task: str) -> list[dict]:
    """The logged samples of one task (samples_<task>_<timestamp>.jsonl; hx_ifs must not match hx_ifs_partial)."""
    (path,) = [p for p in folder.glob(f"samples_{task}_*.jsonl") if re.fullmatch(rf"samples_{task}_\d{{4}}-.*", p.name)]
    return [json.loads(x) for x in path.read_text().splitlines()]


@pytest.fixture(scope="module")
def lm_eval_run(tiny_model_dir, tmp_path_factory):
    tmp = tmp_path_factory.mktemp("lmeval")
    from harness_ext.evals.local_tasks import write_local_tasks

    # in-process, so later tests reuse the task index it builds (the CLI form is tested elsewhere)
    include = write_local_tasks(LOCAL_DATA, tmp / "tasks")
    # a user's own generate_until task attaching our length metric by function, which plain
    # lm_eval resolves without the launcher; lm_eval accepts a YAML path in --tasks
    user_task = _user_qa_task(
        tmp, "user_len", [f"Say hello {i}." for i in range(3)], "hello",
        "metric_list:\n  - metric: !function harness_ext.evals.task_functions.gen_chars\n"
        "    aggregation: mean\n    higher_is_better: false\n",
    )
    out = tmp / "out"
    env = cli_env(HARNESS_EXT_IFS_DATA=str(IFS_TRAIN), HARNESS_EXT_CACHE=str(tmp / "cache"),
                  HARNESS_EXT_OBJECQA_JUDGE="lexicon",
                  HF_DATASETS_CACHE=str(tmp / "hf_datasets"))
    proc = subprocess.run(
        [sys.executable, "-m", "lm_eval", "run", "--model", "hf", "--model_args", f"pretrained={tiny_model_dir}",
         "--device", "cpu", "--include_path", str(include), "--tasks", f"{ALL_TASKS},{user_task}", "--limit", "3",
         "--gen_kwargs", "max_gen_toks=12", "--output_path", str(out), "--log_samples"],
        env=env, capture_output=True, text=True, timeout=600,
    )
    assert proc.returncode == 0, proc.stderr[-4000:]
    results_files = list(out.rglob("results_*.json"))
    assert len(results_files) == 1
    return json.loads(results_files[0].read_text()), results_files[0].parent


def test_every_task_in_tasks_folder_is_run(lm_eval_run):
    results, _ = lm_eval_run
    ran = set(results["results"]) | set(results["group_subtasks"])
    for sub in results["group_subtasks"].values():
        ran |= set(sub)
    # lm_eval refuses overlapping groups in one run; the variants hold a subset of hx_openllm's
    # tasks (checked in test_openllm_variants_leave_out_tasks), so every task itself ran here.
    variants = {"hx_openllm_no_hellaswag", "hx_openllm_no_gsm8k", "hx_openllm_no_hellaswag_gsm8k"}
    assert _all_task_names() - ran == variants


def test_open_llm_suite_metrics_and_shots(lm_eval_run):
    results, _ = lm_eval_run
    res, shots = results["results"], results["n-shot"]
    expected = {"arc_challenge": ("acc_norm,none", 25), "hellaswag": ("acc_norm,none", 10),
                "truthfulqa_mc2": ("acc,none", 0), "winogrande": ("acc,none", 5),
                "gsm8k": ("exact_match,strict-match", 5), "mmlu_anatomy": ("acc,none", 5)}
    for task, (metric, n) in expected.items():
        assert 0.0 <= res[task][metric] <= 1.0, task
        assert shots[task] == n, task
        assert res[task]["sample_len"] == 3
    assert results["group_subtasks"]["mmlu"] == ["mmlu_anatomy", "mmlu_astronomy"]

    from harness_ext.evals.runner import openllm_summary

    summary = openllm_summary(results)
    assert summary["n_tasks"] == 6 and summary["missing"] == []
    subjects = [res["mmlu_anatomy"]["acc,none"], res["mmlu_astronomy"]["acc,none"]]
    assert summary["tasks"]["mmlu"]["value"] == pytest.approx(100 * sum(subjects) / 2)
    assert summary["tasks"]["arc_challenge"]["value"] == pytest.approx(100 * res["arc_challenge"]["acc_norm,none"])
    values = [t["value"] for t in summary["tasks"].values()]
    assert summary["average"] == pytest.approx(sum(values) / 6)


def test_longform_rouge_and_lengths_match_samples(lm_eval_run):
    from rouge_score import rouge_scorer

    results, folder = lm_eval_run
    scorer = rouge_scorer.RougeScorer(["rouge1", "rouge2", "rougeL"], use_stemmer=True)
    for task in ("hx_govreport", "hx_summscreenfd", "hx_qmsum"):
        samples = _samples(folder, task)
        assert len(samples) == 3
        preds = [s["filtered_resps"][0].strip() for s in samples]
        refs = [s["doc"]["outputs"] for s in samples]
        # the first fixture document has two SCROLLS rows, merged into one doc with both references
        assert len(refs[0]) == 2
        r1 = [max(scorer.score(r, p)["rouge1"].fmeasure for r in rs) * 100 for p, rs in zip(preds, refs, strict=True)]
        got = results["results"][task]
        assert got["rouge1,none"] == pytest.approx(sum(r1) / 3)
        assert got["gen_chars,none"] == pytest.approx(sum(len(p) for p in preds) / 3)
        assert {"rouge2,none", "rougeL,none", "rouge_gm,none", "gen_words,none"} <= set(got)
        # the prompt ends with the instruction, so it reads the same with or without a chat template
        prompt = samples[0]["arguments"]["gen_args_0"]["arg_0"]
        assert prompt.rstrip().endswith("Summary:")
        if task == "hx_qmsum":  # the query sits after the transcript, safe from left truncation
            query = samples[0]["doc"]["input"].split("\n\n", 1)[0]
            assert f"Query: {query}\n" in prompt and prompt.index("Speaker") < prompt.index("Query:")
    group = results["groups"]["hx_longform"]
    per_task = [results["results"][t]["rougeL,none"] for t in ("hx_govreport", "hx_summscreenfd", "hx_qmsum")]
    assert group["rougeL,none"] == pytest.approx(sum(per_task) / 3)


def test_ifs_task_scores_with_the_tone_classifier(lm_eval_run, monkeypatch):
    results, folder = lm_eval_run
    samples = _samples(folder, "hx_ifs")
    monkeypatch.setenv("HARNESS_EXT_IFS_DATA", str(IFS_TRAIN))
    from harness_ext.evals.ifs import ifs_score, load_tone_classifier

    clf = load_tone_classifier()
    instructions = [s["doc"]["instruction"] for s in samples]
    responses = [s["resps"][0][0] for s in samples]
    assert results["results"]["hx_ifs"]["ifs,none"] == pytest.approx(ifs_score(clf, instructions, responses))
    partial = _samples(folder, "hx_ifs_partial")
    for full, frag in zip(samples, partial, strict=True):  # same rows, instruction cut to a prefix
        cut = frag["doc"]["instruction"]
        assert full["doc"]["instruction"].startswith(cut) and len(cut) < len(full["doc"]["instruction"])
    frags = [s["doc"]["instruction"] for s in partial]
    assert results["results"]["hx_ifs_partial"]["ifs,none"] == pytest.approx(
        ifs_score(clf, frags, [s["resps"][0][0] for s in partial]))


def test_objecqa_task_loads_from_tasks_and_scores_with_the_named_judge(lm_eval_run):
    """Real lm_eval loads hx_objecqa from tasks/ (its questions as the documents) and the task's
    score is the share of logged answers the judge named in $HARNESS_EXT_OBJECQA_JUDGE calls objective."""
    results, folder = lm_eval_run
    samples = _samples(folder, "hx_objecqa")
    from harness_ext.evals.objecqa import LexiconJudge, ObjecQAQuestion, load_questions

    questions = load_questions()
    assert len(questions) == 100
    assert [s["doc"]["question"] for s in samples] == [q.question for q in questions[:3]]
    asked = [ObjecQAQuestion(s["doc"]["id"], s["doc"]["question"], s["doc"]["source"]) for s in samples]
    verdicts = LexiconJudge().judge(asked, [s["resps"][0][0] for s in samples])
    expected = sum(bool(v.objective) for v in verdicts) / len(verdicts)
    assert results["results"]["hx_objecqa"]["objecqa,none"] == pytest.approx(expected)
    assert [s["objecqa"] for s in samples] == [float(bool(v.objective)) for v in verdicts]


def test_plain_lm_eval_attaches_length_metric_by_function(lm_eval_run):
    results, folder = lm_eval_run
    samples = _samples(folder, "user_len")
    expected = sum(len(s["filtered_resps"][0]) for s in samples) / len(samples)
    assert results["results"]["user_len"]["gen_chars,none"] == pytest.approx(expected)


def test_launcher_registers_length_metrics_for_any_task(tiny_model_dir, tmp_path):
    """Through run_lm_eval: a user's task attaches hx_gen_chars by name, and hx_qmsum reads local
    data with the model's chat template applied."""
    my_task = _user_qa_task(
        tmp_path, "my_qa", [f"Name a colour number {i}." for i in range(4)], "blue",
        "generation_kwargs:\n  until: ['\\n\\n']\n  max_gen_toks: 6\n"
        "metric_list:\n  - metric: hx_gen_chars\n  - metric: hx_gen_words\n",
    )
    from harness_ext.evals.runner import run_lm_eval

    path = run_lm_eval(tiny_model_dir, [str(my_task), "hx_qmsum"], tmp_path / "out", limit=2, local_data=LOCAL_DATA,
                       extra_args=["--log_samples", "--apply_chat_template", "--gen_kwargs", "max_gen_toks=6"])
    results = json.loads(path.read_text())["results"]
    samples = _samples(path.parent, "my_qa")
    assert results["my_qa"]["hx_gen_chars,none"] == pytest.approx(sum(len(s["filtered_resps"][0]) for s in samples) / 2)
    assert results["my_qa"]["hx_gen_words,none"] >= 0
    # the summarization prompt as a user turn of the tiny model's ChatML template
    prompt = _samples(path.parent, "hx_qmsum")[0]["arguments"]["gen_args_0"]["arg_0"]
    assert prompt.startswith("<|im_start|>user\n") and prompt.endswith("Summary:<|im_end|>\n<|im_start|>assistant\n")
    assert {"rouge1,none", "rougeL,none"} <= set(results["hx_qmsum"])
    assert not (path.parent / "openllm_summary.json").exists()  # no Open LLM task in this run
    # lm_eval's response cache lets an interrupted run resume without redoing answered requests
    assert list((tmp_path / "out" / "_lm_eval_cache").glob("*_rank0.db"))


def test_openllm_variants_leave_out_tasks():
    import yaml

    def members(name: str) -> list[str]:
        cfg = yaml.safe_load((ROOT / "tasks" / "openllm" / f"{name}.yaml").read_text())
        return [m.get("task") or m.get("group") for m in cfg["task"]]

    full = ["arc_challenge", "hellaswag", "mmlu", "truthfulqa_mc2", "winogrande", "gsm8k"]
    assert members("hx_openllm") == full
    assert members("hx_openllm_no_hellaswag") == [t for t in full if t != "hellaswag"]
    assert members("hx_openllm_no_gsm8k") == [t for t in full if t != "gsm8k"]
    assert members("hx_openllm_no_hellaswag_gsm8k") == [t for t in full if t not in ("hellaswag", "gsm8k")]


def test_cli_passes_flags_through_to_lm_eval():
    """Options harness-ext does not define reach lm_eval's own parser unchanged."""
    proc = run_cli("lm-eval", "run", "--help")
    assert proc.returncode == 0, proc.stderr
    assert "--include_path" in proc.stdout and "--gen_kwargs" in proc.stdout


def test_cli_local_data_missing_folder_is_a_clean_error(tmp_path):
    proc = run_cli("lm-eval", "--local-data", str(tmp_path / "nope"), "--model", "hf", "--tasks", "hx_ifs")
    assert proc.returncode == 2
    assert "local data folder not found" in proc.stderr and "Traceback" not in proc.stderr
    proc = run_cli("lm-eval", "--local-data", str(LOCAL_DATA), "--include_path", str(tmp_path), "--tasks", "hx_ifs")
    assert proc.returncode == 2 and "cannot be combined" in proc.stderr


def test_tasks_folder_is_printed():
    proc = run_cli("lm-eval-tasks")
    assert proc.returncode == 0
    assert Path(proc.stdout.strip()) == (ROOT / "tasks").resolve()


@pytest.mark.slow
def test_unknown_task_is_one_line_with_did_you_mean(tiny_model_dir):
    proc = run_cli("lm-eval", "--model", "hf", "--model_args", f"pretrained={tiny_model_dir}", "--tasks", "hx_ifz")
    assert proc.returncode == 2
    assert "Tasks not found: hx_ifz. Did you mean 'hx_ifs'?" in proc.stderr and "Traceback" not in proc.stderr


@pytest.mark.slow
def test_cli_writes_openllm_summary(tiny_model_dir, tmp_path):
    out = tmp_path / "out"
    proc = run_cli("lm-eval", "--local-data", str(LOCAL_DATA), "--model", "hf", "--model_args",
                   f"pretrained={tiny_model_dir}", "--tasks", "hx_openllm_no_hellaswag_gsm8k", "--limit", "2",
                   "--output_path", str(out))
    assert proc.returncode == 0, proc.stderr[-3000:]
    (summary_path,) = out.rglob("openllm_summary.json")
    summary = json.loads(summary_path.read_text())
    assert summary["groups"] == ["hx_openllm_no_hellaswag_gsm8k"] and summary["missing"] == ["hellaswag", "gsm8k"]
    assert summary["n_tasks"] == 4 and f"Open LLM v1 summary: {summary_path}" in proc.stdout
