"""What a run measured, each number with a 95% CI: the head of the experiment report.

- Answer length per arm (tokens and characters, mean over the evaluation prompts, bootstrap CI
  over prompts) beside the mean length of the responses the arm was trained on, and whether the
  arms' answer lengths follow their training-response lengths (the paper's Fig. 1b: a model
  fine-tuned on longer responses answers at greater length).
- The paired length gap of every compared pair (same prompts, bootstrap CI of the mean difference).
- The judge's preference between arms (logprob judge: win rate with its bootstrap CI).
- A plain statement of what a run of this size can and cannot show, from the run's own settings.

Everything is read through the run's RunLayout; `measure` returns a Measured record that the
report renders (HTML, Markdown, measured.json) and tests read.
"""

from __future__ import annotations

import html
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

from harness_ext.core.artifacts import read_json, read_jsonl
from harness_ext.pipeline.experiment import ExperimentConfig
from harness_ext.pipeline.layout import RunLayout

N_BOOT = 2000


@dataclass
class ArmLength:
    """One arm's answer length on one suite, with what it was trained on."""

    arm: str
    suite: str
    n: int
    tokens: float
    tokens_ci: tuple[float, float]
    chars: float
    chars_ci: tuple[float, float]
    train_length: float | None = None  # mean length of its training responses (selection unit)
    train_unit: str | None = None


@dataclass
class LengthGap:
    """Mean per-prompt difference in answer tokens between two arms (a minus b) on shared prompts."""

    a: str
    b: str
    suite: str
    n: int
    tokens: float
    ci: tuple[float, float]


@dataclass
class Measured:
    compared: str
    lengths: list[ArmLength] = field(default_factory=list)
    gaps: list[LengthGap] = field(default_factory=list)
    follows_training: str | None = None
    preferences: list[Any] = field(default_factory=list)  # judge.preference.PreferenceSummary
    preference_files: list[tuple[Any, str, Path]] = field(default_factory=list)  # (summary, suite, path)
    scale: list[str] = field(default_factory=list)

    def to_dict(self) -> dict[str, Any]:
        return {"compared": self.compared, "lengths": [asdict(x) for x in self.lengths],
                "gaps": [asdict(g) for g in self.gaps], "follows_training": self.follows_training,
                "preferences": [p.to_dict() for p in self.preferences], "scale": self.scale,
                "ci": {"level": 0.95, "method": "percentile bootstrap over prompts", "n_boot": N_BOOT}}


def _ci_mean(values: list[float], seed: int) -> tuple[float, tuple[float, float]]:
    import numpy as np

    from harness_ext.judge.scoring import bootstrap_ci

    arr = np.asarray(values, dtype=float)
    lo, hi = bootstrap_ci(arr, lambda s: s.mean(axis=1), n_boot=N_BOOT, seed=seed)
    return float(arr.mean()), (round(lo, 2), round(hi, 2))


def _answers(layout: RunLayout, arm: str, suite: str) -> dict[str, dict[str, Any]]:
    path = layout.answers(arm, suite)
    if not path.is_file():
        return {}
    return {f"{r.get('dataset')}\x00{r['id']}": r for r in read_jsonl(path) if isinstance(r, dict) and "id" in r}


def _train_length(cfg: ExperimentConfig, layout: RunLayout, arm) -> tuple[float | None, str | None]:
    if arm.train is None or arm.select is None:
        return None, None
    path = layout.selection_report(arm.name)
    if not path.is_file():
        return None, None
    report = read_json(path)
    mean = ((report.get("lengths") or {}).get("selected") or {}).get("mean")
    return (float(mean) if mean is not None else None), report.get("unit")


def arm_lengths(cfg: ExperimentConfig, layout: RunLayout, suite: str) -> list[ArmLength]:
    out = []
    for arm in cfg.arms:
        rows = list(_answers(layout, arm.name, suite).values())
        if not rows:
            continue
        tokens, tokens_ci = _ci_mean([float(r.get("completion_tokens") or 0) for r in rows], cfg.seed)
        chars, chars_ci = _ci_mean([float(len(r.get("output") or "")) for r in rows], cfg.seed)
        train_length, unit = _train_length(cfg, layout, arm)
        out.append(ArmLength(arm.name, suite, len(rows), round(tokens, 2), tokens_ci, round(chars, 1), chars_ci,
                             train_length, unit))
    return out


def length_gaps(cfg: ExperimentConfig, layout: RunLayout, suite: str, pairs: list[tuple[str, str]]) -> list[LengthGap]:
    gaps = []
    for a, b in pairs:
        ra, rb = _answers(layout, a, suite), _answers(layout, b, suite)
        shared = [k for k in ra if k in rb]
        if not shared:
            continue
        diffs = [float(ra[k].get("completion_tokens") or 0) - float(rb[k].get("completion_tokens") or 0) for k in shared]
        mean, ci = _ci_mean(diffs, cfg.seed)
        gaps.append(LengthGap(a, b, suite, len(shared), round(mean, 2), ci))
    return gaps


def _rank(xs: list[float]) -> list[float]:
    order = sorted(range(len(xs)), key=lambda i: xs[i])
    ranks = [0.0] * len(xs)
    for r, i in enumerate(order):
        ranks[i] = float(r)
    return ranks


def follows_training(lengths: list[ArmLength], gaps: list[LengthGap]) -> str | None:
    """Whether the arms' answer lengths rank as their training-response lengths do, and how sure."""
    arms = [x for x in lengths if x.train_length is not None]
    if len(arms) < 2:
        return None
    by_train = sorted(arms, key=lambda x: -x.train_length)
    same = _rank([x.train_length for x in arms]) == _rank([x.tokens for x in arms])
    order = " > ".join(f"{x.arm} ({x.tokens:.0f})" for x in sorted(arms, key=lambda x: -x.tokens))
    top, bottom = by_train[0], by_train[-1]
    gap = next((g for g in gaps if {g.a, g.b} == {top.arm, bottom.arm}), None)
    sure = ""
    if gap is not None:
        sign = 1 if gap.a == top.arm else -1
        lo, hi = sorted((sign * gap.ci[0], sign * gap.ci[1]))
        sure = (f" {top.arm} answers {sign * gap.tokens:+.1f} tokens per prompt against {bottom.arm} "
                f"(95% CI {lo:+.1f} to {hi:+.1f}; "
                + ("the CI excludes 0)." if lo > 0 or hi < 0 else "the CI includes 0: not shown at this size)."))
    if same:
        return (f"Yes: answer length follows training-response length, as in the paper's Fig. 1b. Mean answer "
                f"tokens: {order}.{sure}")
    return f"No: answer lengths do not rank as the training responses do. Mean answer tokens: {order}.{sure}"


def scale_statement(cfg: ExperimentConfig, lengths: list[ArmLength], prefs: list[Any]) -> list[str]:
    """What this run's size can and cannot show, from its own settings."""
    n = max((x.n for x in lengths), default=0)
    ks = sorted({a.select.k for a in cfg.arms if a.select})
    steps = sorted({a.train.overrides.get("max_steps") for a in cfg.arms if a.train and a.train.overrides.get("max_steps")})
    judge = cfg.judge
    judge_desc = ("the base model itself" if judge and judge.local == "base" else
                  (judge.local or judge.model) if judge else "no judge")
    size = (f"k={'/'.join(map(str, ks)) or 'all'} training examples"
            + (f", {'/'.join(map(str, steps))} optimizer steps" if steps else "")
            + f", {cfg.base_model} as base model, {n} evaluation prompts, judged by {judge_desc}")
    lines = [f"This run: {size}. The paper (arXiv 2402.04833): 1,000 examples, 15 epochs on Llama-2-7B "
             "(App. A, hyperparameter table), 1,030 evaluation instructions judged by GPT-4 and PaLM-2 (Sec. 3)."]
    lines.append("It can show: whether training on longer responses makes this model answer at greater length "
                 "(length is measured directly, with CIs over prompts), and which arm the judge prefers, with the "
                 "order of the answers unable to decide (both orders averaged).")
    lines.append("It cannot show: whether the longer answers are better. A judge this small may reward length, "
                 "style or fluency rather than correctness; a CI that excludes 50% says this judge prefers an "
                 "arm, not that a person or a strong judge would. For the paper's claim, point judge.model and "
                 "judge.base_url at a strong model served with logprobs (e.g. `vllm serve`).")
    for p in prefs:
        if p.first_position is not None and p.verdict_mass is not None:
            lines.append(f"Judge diagnostics ({p.a} vs {p.b}): in a single order it gave the answer shown first "
                         f"P={p.first_position:.2f} on average (0.50 = no position bias; averaging both orders "
                         f"cancels it), and put {100 * p.verdict_mass:.0f}% of its next-token probability on the "
                         "two verdict letters.")
    return lines


def _compared(cfg: ExperimentConfig, lengths: list[ArmLength]) -> str:
    arms = []
    for a in cfg.arms:
        how = f"{a.select.strategy} {a.select.k} of '{a.data}'" if a.select else (a.data or "no fine-tuning")
        arms.append(f"{a.name} ({how}{', trained' if a.train else ''})")
    n = max((x.n for x in lengths), default=0)
    j = cfg.judge
    judge = ""
    if j is not None and cfg.compare:
        method = "verdict-token probabilities in both answer orders" if j.method == "logprobs" else "written verdicts, both orders"
        judge = f" Judge: {'the base model' if j.local == 'base' else (j.local or j.model)}, {method}."
    return (f"{len(cfg.arms)} arms of {cfg.base_model}: {'; '.join(arms)}. Each answered the same {n} prompts "
            f"({', '.join(s for s in cfg.generate.suites)}).{judge}")


def measure(cfg: ExperimentConfig, layout: RunLayout, suites: list[str]) -> Measured:
    from harness_ext.judge.preference import load_preference_summary

    suite = suites[0] if suites else None
    lengths = arm_lengths(cfg, layout, suite) if suite else []
    pairs = [tuple(p) for p in cfg.compare]
    trained = [a for a in cfg.arms if a.select and a.train]
    if len(trained) >= 2:  # the extreme arms by training length, even when not compared by the judge
        by_len = sorted((x for x in lengths if x.train_length is not None), key=lambda x: -x.train_length)
        if len(by_len) >= 2 and (by_len[0].arm, by_len[-1].arm) not in pairs:
            pairs.append((by_len[0].arm, by_len[-1].arm))
    gaps = length_gaps(cfg, layout, suite, pairs) if suite else []
    m = Measured(compared=_compared(cfg, lengths), lengths=lengths, gaps=gaps,
                 follows_training=follows_training(lengths, gaps))
    for a, b in cfg.compare:
        for s in suites:
            path = layout.preference_summary(a, b, s)
            p = load_preference_summary(path)
            if p is not None:
                m.preferences.append(p)
                m.preference_files.append((p, s, path))
    m.scale = scale_statement(cfg, lengths, m.preferences)
    return m


# ---------------------------------------------------------------- rendering

_CSS = """#measured{max-width:1100px}#measured table{margin:.4em 0}#measured td.num{text-align:right}
#measured p{margin:.4em 0}#measured .finding{font-weight:600}#measured ul{margin:.3em 0}
#measured figure{margin:.5em 0}#measured h2{margin:.6em 0 .2em}"""


def _fmt_ci(ci: tuple[float, float], digits: int = 0) -> str:
    return f"{ci[0]:.{digits}f}-{ci[1]:.{digits}f}"


def lead_html(m: Measured, length_png: Path | None) -> str:
    e = html.escape
    parts = [f"<style>{_CSS}</style><section id='measured'>", "<h2>What this run measured (95% CIs)</h2>",
             f"<p><b>Compared:</b> {e(m.compared)}</p>"]
    if m.lengths:
        parts.append("<table><tr><th>Arm</th><th>Training responses (mean)</th><th>Answer tokens (mean)</th>"
                     "<th>95% CI</th><th>Answer characters</th><th>95% CI</th><th>Prompts</th></tr>")
        for x in m.lengths:
            train = f"{x.train_length:.0f} {x.train_unit}" if x.train_length is not None else "-"
            parts.append(f"<tr><td>{e(x.arm)}</td><td>{e(train)}</td><td class=num>{x.tokens:.1f}</td>"
                         f"<td>{_fmt_ci(x.tokens_ci, 1)}</td><td class=num>{x.chars:.0f}</td>"
                         f"<td>{_fmt_ci(x.chars_ci)}</td><td class=num>{x.n}</td></tr>")
        parts.append("</table>")
    if m.follows_training:
        parts.append(f"<p class='finding'>Length: {e(m.follows_training)}</p>")
    if m.preferences:
        from harness_ext.judge.preference import describe

        parts.append("<table><tr><th>Judge preference</th><th>Win rate of first arm</th><th>95% CI</th>"
                     "<th>Items favouring first / second</th></tr>")
        for p in m.preferences:
            wr = f"{100 * p.win_rate:.1f}%" if p.win_rate is not None else "-"
            ci = f"{100 * p.ci95[0]:.1f}-{100 * p.ci95[1]:.1f}%" if p.ci95 else "-"
            parts.append(f"<tr><td>{e(p.a)} vs {e(p.b)}</td><td class=num>{wr}</td><td>{ci}</td>"
                         f"<td>{p.prefers_a} / {p.prefers_b} of {p.n}</td></tr>")
        parts.append("</table>")
        parts += [f"<p class='finding'>Judge: {e(describe(p))}</p>" for p in m.preferences]
    parts.append("<h3>What this scale can and cannot show</h3><ul>"
                 + "".join(f"<li>{e(s)}</li>" for s in m.scale) + "</ul>")
    if length_png is not None:
        import base64

        data = base64.b64encode(length_png.read_bytes()).decode("ascii")
        parts.append(f"<figure><img alt='response length' src='data:image/png;base64,{data}'>"
                     "<figcaption>Average response length: the paper's models (left) and this run's arms (right, "
                     "95% CI)</figcaption></figure>")
    parts.append("</section>")
    return "\n".join(parts)


def lead_markdown(m: Measured, length_png: Path | None) -> str:
    lines = ["## What this run measured (95% CIs)", "", f"**Compared:** {m.compared}", ""]
    if m.lengths:
        lines += ["| Arm | Training responses (mean) | Answer tokens | 95% CI | Answer characters | 95% CI | Prompts |",
                  "|---|---|---|---|---|---|---|"]
        for x in m.lengths:
            train = f"{x.train_length:.0f} {x.train_unit}" if x.train_length is not None else "-"
            lines.append(f"| {x.arm} | {train} | {x.tokens:.1f} | {_fmt_ci(x.tokens_ci, 1)} | {x.chars:.0f} | "
                         f"{_fmt_ci(x.chars_ci)} | {x.n} |")
        lines.append("")
    if m.follows_training:
        lines += [f"**Length:** {m.follows_training}", ""]
    if m.preferences:
        from harness_ext.judge.preference import describe

        lines += [f"**Judge:** {describe(p)}" for p in m.preferences] + [""]
    lines += ["### What this scale can and cannot show", ""] + [f"- {s}" for s in m.scale] + [""]
    if length_png is not None:
        lines += [f"![response length]({length_png.name})", ""]
    return "\n".join(lines)


def plot_run_lengths(board, m: Measured, path: Path) -> Path | None:
    """Average response length: the paper's rows (left panel) beside this run's arms with 95% CIs
    (right panel); separate axes, since the scales differ by an order of magnitude."""
    from harness_ext.leaderboard.plots import _length_metric, _pyplot, _save

    paper = [(e.model.replace("paper: ", ""), mm) for e in board.entries
             if e.origin == "paper" and (mm := _length_metric(e))]
    if not m.lengths and not paper:
        return None
    plt = _pyplot()
    rows = max(len(paper), len(m.lengths), 1)
    fig, axes = plt.subplots(1, 2 if paper and m.lengths else 1, figsize=(11, 0.32 * rows + 1.5), squeeze=False)
    panels = list(axes[0])
    if paper:
        ax = panels.pop(0)
        ax.barh(range(len(paper)), [mm.value for _, mm in paper], color="#9aa9b8")
        ax.set_yticks(range(len(paper)), [name for name, _ in paper], fontsize=7)
        ax.invert_yaxis()
        units = sorted({mm.unit or "" for _, mm in paper})
        ax.set_xlabel(f"paper: AlpacaEval 2.0 average length ({', '.join(units)})", fontsize=8)
        # "Zhao et al. 2024, arXiv:2402.04833, Table 1, row '...'": name the table, not the first row
        cite = (paper[0][1].provenance.citation or "arXiv:2402.04833").split(", row ")[0]
        ax.set_title(f"Paper: {cite}", fontsize=8)
    if m.lengths:
        ax = panels.pop(0)
        xs = [x.chars for x in m.lengths]
        err = [[x.chars - x.chars_ci[0] for x in m.lengths], [x.chars_ci[1] - x.chars for x in m.lengths]]
        labels = [x.arm + (f"\n(trained on {x.train_length:.0f} {x.train_unit})" if x.train_length else "")
                  for x in m.lengths]
        ax.barh(range(len(xs)), xs, xerr=err, color="#4881b8", capsize=3)
        ax.set_yticks(range(len(xs)), labels, fontsize=8)
        ax.invert_yaxis()
        ax.set_xlabel("this run: average answer length (characters), 95% CI", fontsize=8)
        ax.set_title(f"This run ({m.lengths[0].n} prompts)", fontsize=9)
    fig.tight_layout()
    return _save(fig, path)
