"""Small results files in the exact shapes lm_eval, alpaca_eval, FastChat and our judge write."""

from __future__ import annotations

import json
import math
from pathlib import Path

# alpaca_eval 2.0 leaderboard.csv header (as in alpaca_eval's own data_AlpacaEval_2 CSVs).
AE_HEADER = (",win_rate,standard_error,n_wins,n_wins_base,n_draws,n_total,discrete_win_rate,mode,"
             "avg_length,length_controlled_winrate,lc_standard_error")


def lm_eval_results(model: str = "org/my-7b") -> dict:
    """An lm_eval 0.4.x results_*.json document (aggregated results, configs, versions, config)."""
    tasks = {
        "arc_challenge": {"alias": "arc_challenge", "acc,none": 0.5, "acc_stderr,none": 0.0146,
                          "acc_norm,none": 0.54, "acc_norm_stderr,none": 0.0145},
        "hellaswag": {"alias": "hellaswag", "acc,none": 0.57, "acc_stderr,none": 0.0049,
                      "acc_norm,none": 0.78, "acc_norm_stderr,none": 0.0041},
        "mmlu": {"alias": "mmlu", "acc,none": 0.46, "acc_stderr,none": 0.004},
        "truthfulqa_mc2": {"alias": "truthfulqa_mc2", "acc,none": 0.44, "acc_stderr,none": 0.0151},
        "winogrande": {"alias": "winogrande", "acc,none": 0.74, "acc_stderr,none": 0.0123},
        "qmsum_rouge": {"alias": "qmsum_rouge", "rougeL,none": 0.21, "rougeL_stderr,none": "N/A"},
    }
    return {
        "results": tasks,
        "groups": {"mmlu": {"alias": "mmlu", "acc,none": 0.46, "acc_stderr,none": 0.004}},
        "group_subtasks": {"mmlu": ["mmlu_stem"], "arc_challenge": [], "hellaswag": []},
        "configs": {t: {"task": t, "num_fewshot": 0, "output_type": "multiple_choice"} for t in tasks},
        "versions": {t: 1.0 for t in tasks},
        "n-shot": {t: 0 for t in tasks},
        "higher_is_better": {t: {"acc": True} for t in tasks},
        "n-samples": {"arc_challenge": {"original": 1172, "effective": 1172}},
        "config": {"model": "hf", "model_args": f"pretrained={model},dtype=bfloat16", "batch_size": "8",
                   "batch_sizes": [], "device": "cuda:0", "use_cache": None, "limit": None,
                   "bootstrap_iters": 100000, "gen_kwargs": None, "random_seed": 0, "numpy_seed": 1234,
                   "torch_seed": 1234, "fewshot_seed": 1234},
        "git_hash": "deadbee",
        "date": 1718000000.0,
        "task_hashes": {},
        "model_source": "hf",
        "model_name": model,
        "model_name_sanitized": model.replace("/", "__"),
        "start_time": 1.0, "end_time": 2.0, "total_evaluation_time_seconds": "1.0",
    }


def write_lm_eval(path: Path, model: str = "org/my-7b") -> Path:
    path.write_text(json.dumps(lm_eval_results(model), indent=2))
    return path


def write_alpaca_csv(path: Path) -> Path:
    rows = [
        "my-7b,7.5,0.9,58,745,2,805,7.3,community,1700,6.1,0.3",
        "alpaca-7b,2.59,0.49,17,785,3,805,2.3,minimal,396,5.88,",
    ]
    path.write_text(AE_HEADER + "\n" + "\n".join(rows) + "\n")
    return path


def write_annotations(path: Path, model: str = "my-7b") -> Path:
    prefs = [2.0, 1.0, 1.5, 2.0, None]
    rows = [{"instruction": f"q{i}", "output_1": "base answer", "generator_1": "gpt4_turbo",
             "output_2": "x" * (10 * (i + 1)), "generator_2": model, "annotator": "weighted_alpaca_eval_gpt4_turbo",
             "preference": p} for i, p in enumerate(prefs)]
    path.write_text(json.dumps(rows))
    return path


def fastchat_single_prompt(qid: int, turn: int) -> str:
    """The judge prompt FastChat's gen_judgment uses: math/reasoning/coding (qid 111-140) get the
    reference-answer prompts, and turn 2 the multi-turn ones."""
    name = "single-math-v1" if 111 <= qid <= 140 else "single-v1"
    return name + ("-multi-turn" if turn == 2 else "")


def write_mt_bench(path: Path, models: dict[str, float]) -> Path:
    """FastChat single judgments: score = base + 1 on turn 1, base on turn 2; two unusable rows.
    As in FastChat's files, one judge uses four prompt names across turns and categories."""
    lines = []
    for model, base in models.items():
        for qid in range(81, 161):
            for turn in (1, 2):
                lines.append({"question_id": qid, "model": model, "judge": ["gpt-4", fastchat_single_prompt(qid, turn)],
                              "user_prompt": "...", "judgment": "Rating: [[x]]",
                              "score": base + (1 if turn == 1 else 0), "turn": turn, "tstamp": 1.0})
        lines.append({"question_id": 81, "model": model, "judge": ["gpt-4", "single-v1"], "user_prompt": "...",
                      "judgment": "no rating", "score": -1, "turn": 1, "tstamp": 1.0})
        lines.append({"question_id": 82, "model": model, "judge": ["gpt-4", "single-v1"], "user_prompt": "...",
                      "judgment": "", "error": "timeout after 3 retries", "turn": 2, "tstamp": 1.0})
    path.write_text("".join(json.dumps(r) + "\n" for r in lines))
    return path


def pairwise_summary(model: str = "my-7b", baseline: str = "alpaca-52k") -> dict:
    return {
        "model": model, "baseline": baseline, "judge": "gpt-4", "prompt_hash": "ab" * 32, "ci_level": 0.95,
        "test_sets": {
            "lima_test": {"win": 150, "tie": 60, "loss": 90, "ci": {"win": [0.44, 0.56], "loss": [0.25, 0.35]}},
            "vicuna": {"win": 40, "tie": 20, "loss": 20},
        },
    }


def write_pairwise(path: Path, **kw: str) -> Path:
    path.write_text(json.dumps(pairwise_summary(**kw)))
    return path


def write_loss_log(path: Path, losses: list[float]) -> Path:
    rows = [{"step": i * 10, "loss": v, "learning_rate": 1e-5} for i, v in enumerate(losses)]
    rows.insert(2, {"step": 15, "eval_loss": 1.0})  # eval rows carry no 'loss' and are skipped
    path.write_text("".join(json.dumps(r) + "\n" for r in rows))
    return path


def judge_summary_json() -> str:
    """The summary.json shape `harness-ext judge pairwise` writes (by_dataset, counts, ci95, inputs, judge)."""
    def block(n, w, t, lo_hi):
        if n == 0:
            return {"n": 0, "counts": {"win": 0, "tie": 0, "loss": 0}, "win": math.nan, "tie": math.nan,
                    "loss": math.nan, "win_rate": math.nan, "unscored": 2}
        return {"n": n, "counts": {"win": w, "tie": t, "loss": n - w - t}, "win": w / n, "tie": t / n,
                "loss": (n - w - t) / n, "win_rate": (w + t / 2) / n,
                "ci95": {"win": lo_hi, "tie": [0.0, 0.4], "loss": [0.0, 0.5], "win_rate": [0.45, 0.9]},
                "bootstrap": {"n_boot": 2000, "seed": 0, "level": 0.95, "method": "percentile, items resampled"},
                "unscored": 0}
    doc = {
        "rule": "paper", "items": 12, "scored_items": 10,
        "overall": block(10, 6, 2, [0.3, 0.9]),
        "by_dataset": {"lima_test": block(10, 6, 2, [0.3, 0.9]), "vicuna": block(0, 0, 0, None)},
        "judgments": {"total": 24, "parsed": 22, "parse_failures": 2, "request_errors": 0},
        "diagnostics": {"order_agreement": 0.8},
        "inputs": {"a": {"path": "a.json", "sha256": "0" * 64, "generator": "alpaca-1k-longest"},
                   "b": {"path": "b.json", "sha256": "1" * 64, "generator": "alpaca-52k"}, "matching": {}},
        "judge": {"model": "gpt-4-0613", "template": "default", "template_path": "judges/pairwise/default.yaml",
                  "prompt_sha256": "cd" * 32, "params": {"temperature": 0}},
        "provenance": {"package": "harness-ext"},
    }
    return json.dumps(doc, indent=2)
