"""The last stage of an experiment: one leaderboard JSON and an HTML report for the whole run.

It collects what the earlier stages wrote (selection reports, training logs, answers, pairwise
summaries, lm-eval results), puts every number on a schema-validated leaderboard with its
provenance, renders the HTML report with plots (the paper's published numbers beside the run's),
and states plainly how far the judge can be trusted, measured on this run.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import TYPE_CHECKING, Any

from harness_ext.core.artifacts import atomic_write_text, sha256_file
from harness_ext.core.records import PairwiseSummary

if TYPE_CHECKING:
    from harness_ext.pipeline.runner import ExperimentRunner

SMALL_JUDGE_PARAMS = 3e9  # below this, we call a judge "small" in the caveats


def _read_json(path: Path) -> dict[str, Any] | None:
    return json.loads(path.read_text(encoding="utf-8")) if path.is_file() else None


def judge_caveats(summaries: dict[str, PairwiseSummary], *, local_judge: bool) -> list[str]:
    """Plain-language statements of what the judge could and could not tell on this run,
    drawn from the run's own diagnostics (unusable replies, position bias, CI width)."""
    lines: list[str] = []
    position_bound = False
    for name, s in summaries.items():
        j, d = s.judgments, s.diagnostics
        total = j.total or 1
        fail = j.parse_failures + j.request_errors
        counts = s.overall.counts or {}
        parts = [f"{name}: {j.total} judgments, {fail} ({100 * fail / total:.0f}%) unusable",
                 "win/tie/loss {win}/{tie}/{loss}".format(**{k: counts.get(k, 0) for k in ("win", "tie", "loss")})]
        pos = d.get("preferred_position") or {}
        if pos.get("first") is not None:
            parts.append(f"the judge scored the answer shown first higher in {100 * pos['first']:.0f}% of "
                         f"judgments and the second in {100 * (pos.get('second') or 0):.0f}%")
            position_bound |= max(pos.get("first") or 0, pos.get("second") or 0) >= 0.8
        agree = d.get("order_agreement")
        if agree is not None:
            parts.append(f"its verdict survived swapping the answer order on {100 * agree:.0f}% of "
                         f"{d['order_agreement_n']} items")
            position_bound |= agree < 0.5
        wr = (s.overall.ci95 or {}).get("win_rate")
        if wr and wr[0] is not None and s.overall.win_rate is not None:
            parts.append(f"win rate (wins + half the ties) {100 * s.overall.win_rate:.0f}%, "
                         f"95% CI {100 * wr[0]:.0f}-{100 * wr[1]:.0f}%")
        lines.append("; ".join(parts) + ".")
    if position_bound:
        lines.append("On this run the judge's scores follow the position of an answer, not its content, so "
                     "almost every item ends as a tie under the both-orders rule: these comparisons cannot "
                     "tell the arms apart.")
    if local_judge:
        lines.append(
            "The judge is a small local model. Treat its numbers as a demonstration that the pipeline "
            "runs, not as evidence about the data; the paper's conclusions rest on a strong judge "
            "(GPT-4-class, or a large open model behind `vllm serve`)."
        )
    else:
        lines.append(
            "Order agreement well below 100% indicates position bias; the paper's rule scores each order "
            "separately so an inconsistent pair counts as a tie. Compare win rates only where CIs do not overlap."
        )
    return lines


def _mt_bench_scored(path: Path) -> bool:
    """Whether an MT-Bench judgment file holds at least one usable score."""
    from harness_ext.core.artifacts import read_jsonl

    return any(isinstance(r, dict) and not r.get("error") and isinstance(r.get("score"), (int, float))
               and r["score"] >= 0 for r in read_jsonl(path))


def _ifs(path: Path) -> float | None:
    """Instruction Following Score of a set of answers, when the eval extra is installed."""
    try:
        from harness_ext.evals.ifs import ifs_score, load_tone_classifier
    except ImportError:
        return None
    from harness_ext.generate.outputs import load_outputs

    outs = load_outputs(path)
    if not outs:
        return None
    return ifs_score(load_tone_classifier(), [o.instruction for o in outs], [o.output for o in outs])


def build_report(runner: ExperimentRunner, out: Path) -> Path:
    """Write out/leaderboard.json, out/index.html (+ plots) and out/judge_caveats.md."""
    from harness_ext.judge.mt_bench import judgment_path
    from harness_ext.leaderboard import (
        Entry,
        Leaderboard,
        Metric,
        Provenance,
        add_results,
        render_html,
        with_paper,
    )
    from harness_ext.leaderboard.model import today
    from harness_ext.pipeline.runner import answers_path

    cfg = runner.cfg
    pipe = runner.pipe
    board = Leaderboard(name=cfg.name, description=(cfg.notes or "").strip() or None)
    date = today()
    summaries: dict[str, PairwiseSummary] = {}

    # Pairwise head-to-heads (both orders) first: they name the models by arm.
    for a, b in cfg.compare:
        for suite in runner.pairwise_suites():
            summary_path = pipe.out_dir(f"judge:{a}-vs-{b}") / suite / "summary.json"
            raw = _read_json(summary_path)
            if raw is None:
                continue
            summary = summaries[f"{a} vs {b} ({suite})"] = PairwiseSummary.from_dict(raw)
            if summary.overall.n:  # nothing scored: only the caveats can report it
                add_results(board, summary_path, kind="pairwise", date=date)

    for arm in cfg.arms:
        if board.get(arm.name) is None:
            board.entries.append(Entry(model=arm.name, origin="run"))
        entry = board.get(arm.name)
        entry.base_model = cfg.base_model
        if arm.data is not None:
            sel_report = _read_json(pipe.out_dir(f"select:{arm.name}") / "report.json") if arm.select else None
            entry.ift_data = arm.data
            if sel_report:
                entry.ift_data_size = int(sel_report.get("counts", {}).get("selected") or 0) or None
                entry.selection = f"{arm.select.strategy} k={arm.select.k} ({arm.select.unit})"
            else:
                entry.selection = "all"
        entry.refinement = "introspection" if arm.refine else None
        trained = _read_json(pipe.out_dir(f"train:{arm.name}") / "train_report.json") if arm.train else None
        alpha = (trained or {}).get("config", {}).get("neftune_alpha")
        if alpha is not None:
            entry.neftune_alpha = float(alpha)
        for suite in runner.pairwise_suites():
            answers = answers_path(pipe.out_dir(f"generate:{arm.name}"), suite)
            if not answers.is_file():
                continue
            meta_path = answers.parent / "generation_meta.json"
            meta = _read_json(meta_path) or {}
            prov = Provenance(date=date, source=str(meta_path), sha256=sha256_file(meta_path)
                              if meta_path.is_file() else None, importer="report")
            n = meta.get("answered_turns")
            for name, unit in (("avg_completion_tokens", "tokens"), ("avg_chars", "characters")):
                if meta.get(name) is not None:
                    entry.metrics.append(Metric("length", name.replace("avg_completion_tokens", "avg_tokens"),
                                                float(meta[name]), prov, unit=unit, test_set=suite, n=n))
            score = _ifs(answers)
            if score is not None:
                entry.metrics.append(Metric("ifs", "ifs", round(score, 4), prov, unit="fraction", test_set=suite, n=n))
        if f"mt_bench:{arm.name}" in pipe.stages:
            # This run's judge's file (an earlier judge's may sit beside it); none scored (every request
            # failed, published with judge.allow_failures) leaves the board without an MT-Bench score.
            mt = judgment_path(pipe.out_dir(f"mt_bench:{arm.name}"), runner.judge_name(), "single")
            if mt.is_file() and _mt_bench_scored(mt):
                add_results(board, mt, kind="mt_bench", model=arm.name, prefer="incoming", date=date)
        ae = pipe.out_dir(f"alpaca_eval:{arm.name}") / "alpaca_eval"
        ann = sorted(ae.rglob("annotations.json")) if ae.is_dir() else []
        if ann:
            add_results(board, ann[0], kind="alpaca_eval_annotations", name=arm.name, prefer="incoming", date=date)
        if cfg.lm_eval and cfg.lm_eval.tasks:
            results = sorted((pipe.out_dir(f"lm_eval:{arm.name}")).rglob("results*.json"))
            if results:
                add_results(board, results[-1], kind="lm_eval", name=arm.name, prefer="incoming", date=date)

    caveats = judge_caveats(summaries, local_judge=bool(cfg.judge and cfg.judge.local))
    board.description = "\n".join(filter(None, [board.description, "What the judge can tell: " + " ".join(caveats)]))
    board.save(out / "leaderboard.json")
    loss_logs = {arm.name: pipe.out_dir(f"train:{arm.name}") / "train_log.jsonl"
                 for arm in cfg.arms if arm.train and (pipe.out_dir(f"train:{arm.name}") / "train_log.jsonl").is_file()}
    render_html(with_paper(board), out, loss_logs=loss_logs)
    atomic_write_text(out / "judge_caveats.md", "# What the judge can and cannot tell\n\n"
                      + "\n".join(f"- {c}" for c in caveats) + "\n")
    return out / "leaderboard.json"
