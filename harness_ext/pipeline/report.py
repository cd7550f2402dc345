"""The last stage of an experiment: one leaderboard JSON and an HTML report for the whole run.

It collects what the earlier stages wrote (selection reports, training logs, answers, judge
summaries, lm-eval results), puts every number on a schema-validated leaderboard with its
provenance, and renders the HTML report. The report leads with what the run measured, each with
a 95% CI (pipeline/measured.py): the answer length of every arm beside the length of the
responses it was trained on, the judge's preference between arms, and what a run of this size
can and cannot show; the tables and plots (the paper's published numbers beside the run's) follow.
It reads every file through the run's RunLayout.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from harness_ext.core.artifacts import atomic_write_json, atomic_write_text, sha256_file, staged_dir
from harness_ext.core.records import PairwiseSummary
from harness_ext.pipeline.experiment import ArmSpec, ExperimentConfig, pairwise_suites
from harness_ext.pipeline.layout import RunLayout

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


class _BoardBuilder:
    """Fills one leaderboard from a run folder: every number with the file it came from."""

    def __init__(self, cfg: ExperimentConfig, layout: RunLayout, judge_name: str | None) -> None:
        from harness_ext.leaderboard import Leaderboard
        from harness_ext.leaderboard.model import today

        self.cfg, self.layout, self.judge_name = cfg, layout, judge_name
        self.board = Leaderboard(name=cfg.name, description=(cfg.notes or "").strip() or None)
        self.date = today()
        self.summaries: dict[str, PairwiseSummary] = {}  # the verdict judge's pairwise summaries

    def pairwise(self) -> None:
        """Head-to-heads first (both orders): they name the models by arm."""
        from harness_ext.leaderboard import add_results

        for a, b in self.cfg.compare:
            for suite in pairwise_suites(self.cfg):
                path = self.layout.pairwise_summary(a, b, suite)
                raw = _read_json(path)
                if raw is None:
                    continue
                summary = self.summaries[f"{a} vs {b} ({suite})"] = PairwiseSummary.from_dict(raw)
                if summary.overall.n:  # nothing scored: only the caveats can report it
                    add_results(self.board, path, kind="pairwise", date=self.date)

    def entry(self, arm: ArmSpec):
        from harness_ext.leaderboard import Entry

        if self.board.get(arm.name) is None:
            self.board.entries.append(Entry(model=arm.name, origin="run"))
        entry = self.board.get(arm.name)
        entry.base_model = self.cfg.base_model
        if arm.data is not None:
            sel_report = _read_json(self.layout.selection_report(arm.name)) if arm.select else None
            entry.ift_data = arm.data
            if sel_report:
                entry.ift_data_size = int(sel_report.get("counts", {}).get("selected") or 0) or None
                entry.selection = f"{arm.select.strategy} k={arm.select.k} ({arm.select.unit})"
            else:
                entry.selection = "all"
        entry.refinement = "introspection" if arm.refine else None
        trained = _read_json(self.layout.train_report(arm.name)) if arm.train else None
        alpha = (trained or {}).get("config", {}).get("neftune_alpha")
        if alpha is not None:
            entry.neftune_alpha = float(alpha)
        return entry

    def answers(self, arm: ArmSpec, entry) -> None:
        """Length and IFS of each arm's answers, from the generation stage's files."""
        from harness_ext.leaderboard import Metric, Provenance

        for suite in pairwise_suites(self.cfg):
            answers = self.layout.answers(arm.name, suite)
            if not answers.is_file():
                continue
            meta_path = self.layout.generation_meta(arm.name, suite)
            meta = _read_json(meta_path) or {}
            prov = Provenance(date=self.date, source=str(meta_path), importer="report",
                              sha256=sha256_file(meta_path) if meta_path.is_file() else None)
            n = meta.get("answered_turns")
            for name, unit in (("avg_completion_tokens", "tokens"), ("avg_chars", "characters")):
                if meta.get(name) is not None:
                    entry.metrics.append(Metric("length", name.replace("avg_completion_tokens", "avg_tokens"),
                                                float(meta[name]), prov, unit=unit, test_set=suite, n=n))
            score = _ifs(answers)
            if score is not None:
                entry.metrics.append(Metric("ifs", "ifs", round(score, 4), prov, unit="fraction", test_set=suite, n=n))

    def suite_judges(self, arm: ArmSpec) -> None:
        """MT-Bench, AlpacaEval and lm-eval results of one arm, when those stages ran."""
        from harness_ext.judge.mt_bench import judgment_path
        from harness_ext.leaderboard import add_results

        cfg, lay, date = self.cfg, self.layout, self.date
        if cfg.judge and cfg.judge.mt_bench_prompts and "mt_bench" in cfg.generate.suites:
            # This run's judge's file (an earlier judge's may sit beside it); none scored (every request
            # failed, published with judge.allow_failures) leaves the board without an MT-Bench score.
            mt = judgment_path(lay.dir(lay.mt_bench(arm.name)), self.judge_name, "single")
            if mt.is_file() and _mt_bench_scored(mt):
                add_results(self.board, mt, kind="mt_bench", model=arm.name, prefer="incoming", date=date)
        ae = lay.dir(lay.alpaca_eval(arm.name)) / "alpaca_eval"
        ann = sorted(ae.rglob("annotations.json")) if ae.is_dir() else []
        if ann:
            add_results(self.board, ann[0], kind="alpaca_eval_annotations", name=arm.name, prefer="incoming", date=date)
        if cfg.lm_eval and cfg.lm_eval.tasks:
            results = sorted(lay.dir(lay.lm_eval(arm.name)).rglob("results*.json"))
            if results:
                add_results(self.board, results[-1], kind="lm_eval", name=arm.name, prefer="incoming", date=date)

    def preferences(self, prefs: list[Any]) -> None:
        """The logprob judge's win rates (with their CIs) on the board, named apart from the verdict
        judge's win_rate since they are a different measure."""
        from harness_ext.leaderboard import Metric, Provenance

        for p, suite, path in prefs:
            entry = self.board.get(p.a)
            if entry is None or p.win_rate is None:
                continue
            prov = Provenance(date=self.date, source=str(path), sha256=sha256_file(path), judge=p.judge,
                              importer="report")
            entry.metrics.append(Metric("pairwise", "preference_win_rate", round(100 * p.win_rate, 2), prov,
                                        unit="%", test_set=suite, baseline=p.b, n=p.n, ci_level=0.95,
                                        ci=(round(100 * p.ci95[0], 2), round(100 * p.ci95[1], 2))))

    def build(self, prefs: list[Any]):
        self.pairwise()
        for arm in self.cfg.arms:
            entry = self.entry(arm)
            self.answers(arm, entry)
            self.suite_judges(arm)
        self.preferences(prefs)
        return self.board


def _render(board, out: Path, lead: Any, loss_logs: dict[str, Path], usage: dict[str, Any] | None = None) -> None:
    """index.html and README.md: the measured lead first, then the leaderboard's tables and plots."""
    from harness_ext.leaderboard import PLOTS, with_paper
    from harness_ext.leaderboard.plots import make_plots
    from harness_ext.leaderboard.render import render_html_page, render_markdown
    from harness_ext.pipeline.measured import lead_html, lead_markdown, plot_run_lengths
    from harness_ext.pipeline.usage import usage_html, usage_markdown

    full = with_paper(board)
    with staged_dir(out) as tmp:
        # The run's arms get their own length figure beside the paper's rows; the generic one is left out.
        images = make_plots(full, tmp, [p for p in PLOTS if p != "lengths"], loss_logs)
        length_png = plot_run_lengths(full, lead, tmp / "response_length.png")
        page = render_html_page(full, images)
        head, sep, rest = page.partition("</h1>")
        atomic_write_text(tmp / "index.html", head + sep + "\n" + lead_html(lead, length_png) + usage_html(usage) + rest)
        atomic_write_text(tmp / "README.md", lead_markdown(lead, length_png) + "\n" + usage_markdown(usage) + "\n"
                          + render_markdown(full, images))
        atomic_write_json(tmp / "measured.json", lead.to_dict())
        atomic_write_json(tmp / "usage.json", usage or {"lines": [], "total": None})


def build_report(cfg: ExperimentConfig, layout: RunLayout, out: Path, *, judge_name: str | None = None) -> Path:
    """Write out/leaderboard.json, out/index.html + README.md (+ plots), out/measured.json (what the run
    measured, with 95% CIs), out/usage.json (judge tokens and cost) and out/judge_caveats.md."""
    from harness_ext.pipeline.measured import measure
    from harness_ext.pipeline.usage import collect_usage, describe

    lead = measure(cfg, layout, pairwise_suites(cfg))
    builder = _BoardBuilder(cfg, layout, judge_name)
    board = builder.build([(p, suite, path) for p, suite, path in lead.preference_files])
    caveats = judge_caveats(builder.summaries, local_judge=bool(cfg.judge and cfg.judge.local)) \
        if builder.summaries else lead.scale
    usage = collect_usage(cfg, layout)  # tokens and cost of the judge stages (#15)
    board.description = "\n".join(filter(None, [board.description, "What the judge can tell: " + " ".join(caveats),
                                                describe(usage)]))
    board.save(out / "leaderboard.json")
    loss_logs = {arm.name: layout.train_log(arm.name) for arm in cfg.arms
                 if arm.train and layout.train_log(arm.name).is_file()}
    _render(board, out, lead, loss_logs, usage)
    atomic_write_text(out / "judge_caveats.md", "# What the judge can and cannot tell\n\n"
                      + "\n".join(f"- {c}" for c in caveats) + "\n")
    return out / "leaderboard.json"
