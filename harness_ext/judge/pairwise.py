"""Pairwise head-to-head judging (Long Is More, arXiv 2402.04833, Sec. 3.2 and App. A.3).

For every instruction both models answered, the judge scores the two answers 1-10 twice, once
with A shown first and once with B first. A named rule (scoring.RULES) reads the replies and
turns the two judgments into win / tie / loss for A: "paper" is the authors' code (an unparsed
reply counts as [-1, -1], a tie for that order, as their parse_score does), "paper-strict" and
"fastchat" leave an item whose judgments did not both parse unscored. An item whose request
failed is unscored under every rule. Every parse failure is counted and reported.

A request that still fails after the client's retries stops the run before anything is written
(RequestsFailed), unless `allow_failures` asks to publish with it recorded as an error; a reply
that arrives but does not parse is a parse failure, always published and counted.

Outputs in `out/` (written together, only when the run finishes; rates and CIs over zero items
are null):
    judgments.jsonl  one row per (item, order) with the judge's raw text and parsed scores
    items.jsonl      one row per item: outcome, both score pairs, answer lengths
    summary.json     win/tie/loss with bootstrap 95% CIs per dataset and overall, diagnostics
                     (order agreement = position bias; win rate by length difference = length
                     bias), parse-failure counts, provenance
    report.md        the same as a table

Judge answers live in the client's cache, so an interrupted run resumes by running again.
"""

from __future__ import annotations

import hashlib
import logging
import re
from collections import Counter
from collections.abc import Callable
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Any

import yaml

from harness_ext.core.artifacts import (
    atomic_write_json,
    atomic_write_jsonl,
    atomic_write_text,
    provenance,
    sha256_file,
    sha256_text,
    staged_dir,
)
from harness_ext.core.errors import ConfigError, InputError, RequestsFailed
from harness_ext.core.paths import judges_dir
from harness_ext.core.records import (
    ChatClient,
    ChatRequest,
    Judgment,
    JudgmentCounts,
    OutcomeStats,
    PairwiseSummary,
    Turn,
)
from harness_ext.generate.outputs import ModelOutput, load_outputs, match_outputs
from harness_ext.judge.scoring import (
    RULES,
    PairRule,
    check_n_boot,
    length_buckets,
    win_tie_loss,
    word_count,
    word_stats,
)
from harness_ext.judge.verdicts import VerdictParseError
from harness_ext.llm.ledger import usage_block

log = logging.getLogger(__name__)

TEMPLATE_KEYS = {"name", "system", "user", "max_tokens", "temperature"}
_PLACEHOLDER = re.compile(r"\{(question|answer_1|answer_2|tag)\}")


@dataclass(frozen=True)
class PairwiseTemplate:
    """A pairwise judge prompt: system text, a user template with placeholders, and decoding settings."""

    name: str
    system: str
    user: str
    max_tokens: int = 512
    temperature: float = 0.0
    path: str = ""

    @property
    def sha256(self) -> str:
        return sha256_text(self.system + "\x00" + self.user)

    def render(self, question: str, answer_1: str, answer_2: str) -> tuple[Turn, ...]:
        # The nonce is a hash of the content, so an answer cannot contain its own closing marker.
        tag = hashlib.sha256("\x00".join([question, answer_1, answer_2]).encode()).hexdigest()[:12]
        values = {"question": question, "answer_1": answer_1, "answer_2": answer_2, "tag": tag}
        # One pass over the template (not str.format, not chained replace): braces or placeholder
        # names inside a question or answer stay literal text.
        user = _PLACEHOLDER.sub(lambda m: values[m.group(1)], self.user)
        turns = (Turn("user", user),)
        return ((Turn("system", self.system),) + turns) if self.system else turns


def load_template(path: str | Path | None = None) -> PairwiseTemplate:
    """Read a pairwise template YAML (default: judges/pairwise/default.yaml); unknown keys are errors."""
    p = Path(path) if path else judges_dir() / "pairwise" / "default.yaml"
    if not p.is_file():
        raise InputError("pairwise judge template not found.", path=p,
                         hint=f"use a YAML with keys {sorted(TEMPLATE_KEYS)}, e.g. judges/pairwise/default.yaml")
    try:
        data = yaml.safe_load(p.read_text(encoding="utf-8"))
    except yaml.YAMLError as exc:
        raise InputError(f"malformed YAML: {exc}", path=p) from None
    if not isinstance(data, dict):
        raise InputError("expected a mapping of template keys.", path=p)
    extra = set(data) - TEMPLATE_KEYS
    if extra:
        raise ConfigError(f"{p}: unknown key(s) {sorted(extra)}.", hint=f"allowed keys: {sorted(TEMPLATE_KEYS)}")
    if not isinstance(data.get("user"), str):
        raise ConfigError(f"{p}: 'user' must be a template string.", hint="see judges/pairwise/default.yaml")
    for ph in ("{question}", "{answer_1}", "{answer_2}"):
        if ph not in data["user"]:
            raise ConfigError(f"{p}: the 'user' template lacks the placeholder {ph}.",
                              hint="a pairwise template must show the question and both answers.")
    return PairwiseTemplate(name=str(data.get("name") or p.stem), system=str(data.get("system") or ""),
                            user=data["user"], max_tokens=int(data.get("max_tokens", 512)),
                            temperature=float(data.get("temperature", 0.0)), path=str(p))


@dataclass(frozen=True)
class PairwiseOptions:
    """How `judge_pairwise` judges and aggregates (the CLI flags of `harness-ext judge pairwise`)."""

    rule: str = "paper"  # scoring.RULES: paper, paper-strict, fastchat
    seed: int = 0  # bootstrap seed
    template: str | Path | PairwiseTemplate | None = None  # default judges/pairwise/default.yaml
    n_boot: int = 2000  # bootstrap resamples for the 95% CIs
    max_tokens: int | None = None  # judge reply limit (default: the template's)
    allow_failures: bool = False  # publish even when requests failed after retries


def _judgment(item: int, order: str, a: ModelOutput, judge_model: str, result: Any,
              parse: Callable[[str | None], tuple[float, float]]) -> Judgment:
    """One judgment: the raw reply, and A's and B's scores when the rule's parser reads them."""
    j = Judgment(item=item, id=a.id, dataset=a.dataset, instruction=a.instruction, order=order,  # type: ignore[arg-type]
                 judge_model=judge_model, raw=result.text, request_error=result.error)
    if result.ok:
        try:
            j.score_1, j.score_2 = parse(result.text)
        except VerdictParseError as exc:
            j.parse_error = str(exc)
        else:
            j.score_a, j.score_b = (j.score_1, j.score_2) if order == "ab" else (j.score_2, j.score_1)
    return j


def _item(i: int, a: ModelOutput, b: ModelOutput, ab: Judgment, ba: Judgment, rule: PairRule) -> dict[str, Any]:
    """One item row: the rule's outcome for A (None: unscored), both score pairs, answer lengths.

    A request that got no reply leaves the item unscored under every rule; a reply that did not
    parse does too, unless the rule scores it as a fixed pair (the authors' [-1, -1]).
    """
    answered = not (ab.request_error or ba.request_error)
    outcome = rule.outcome(ab.scores, ba.scores) if answered else None
    failed = [j.order for j in (ab, ba) if j.parse_error]
    return {"item": i, "id": a.id, "dataset": a.dataset, "instruction": a.instruction,
            "outcome": outcome, "scores_ab": [ab.score_a, ab.score_b], "scores_ba": [ba.score_a, ba.score_b],
            "unparsed_orders_scored_as": list(rule.failed_as) if failed and outcome is not None and rule.failed_as
            else None,
            "words_a": word_count(a.output), "words_b": word_count(b.output)}


def _pairs(a_path: str | Path, b_path: str | Path) -> tuple[list[ModelOutput], list[ModelOutput], list, dict]:
    a_all, b_all = load_outputs(a_path), load_outputs(b_path)
    pairs, counts = match_outputs(a_all, b_all)
    if not pairs:
        raise InputError(f"no instruction appears in both {a_path} and {b_path} "
                         f"({counts['a']} and {counts['b']} records).",
                         hint="judge outputs generated for the same prompts (same instructions and dataset names).")
    return a_all, b_all, pairs, counts


def _ask(client: ChatClient, judge_model: str, tpl: PairwiseTemplate, pairs: list,
         params: tuple[tuple[str, Any], ...]) -> list[Any]:
    """Both orders of every pair, in one batch: [ab_0, ba_0, ab_1, ba_1, ...]."""
    requests: list[ChatRequest] = []
    for a, b in pairs:
        requests.append(ChatRequest(judge_model, tpl.render(a.instruction, a.output, b.output), params))
        requests.append(ChatRequest(judge_model, tpl.render(a.instruction, b.output, a.output), params))
    results = client.complete_many(requests)
    if len(results) != len(requests):
        raise RuntimeError(f"judge client returned {len(results)} results for {len(requests)} requests")
    return results


def _check_failures(judgments: list[Judgment], out: Path, allow_failures: bool) -> None:
    failed = [j for j in judgments if j.request_error]
    if not failed:
        return
    first = failed[0]
    what = (f"{len(failed)} of {len(judgments)} judge requests got no answer after retries "
            f"(first: item {first.id!r}, order {first.order}: {first.request_error})")
    if not allow_failures:
        raise RequestsFailed(f"judge pairwise: {what}; nothing was published to {out}.")
    log.warning("judge pairwise: %s; publishing them as unscored (allow_failures)", what)


def judge_pairwise(a_path: str | Path, b_path: str | Path, out: Path, client: ChatClient, judge_model: str,
                   options: PairwiseOptions | None = None, **settings: Any) -> PairwiseSummary:
    """Judge model A against model B on every shared instruction, both orders; write `out/`; return the summary.

    `settings` are PairwiseOptions fields (rule=..., seed=..., n_boot=...), applied over `options`.
    Raises RequestsFailed, writing nothing, when a request failed after retries and not `allow_failures`.
    """
    try:
        opts = replace(options or PairwiseOptions(), **settings)
    except TypeError as exc:
        raise ConfigError(f"judge_pairwise: {exc}.",
                          hint=f"options: {sorted(PairwiseOptions.__dataclass_fields__)}") from None
    check_n_boot(opts.n_boot)
    rule = RULES.get(opts.rule)
    tpl = opts.template if isinstance(opts.template, PairwiseTemplate) else load_template(opts.template)
    a_all, b_all, pairs, counts = _pairs(a_path, b_path)
    params = (("max_tokens", int(opts.max_tokens or tpl.max_tokens)), ("temperature", tpl.temperature))
    results = _ask(client, judge_model, tpl, pairs, params)
    judgments: list[Judgment] = []
    items: list[dict[str, Any]] = []
    for i, (a, b) in enumerate(pairs):
        ab = _judgment(i, "ab", a, judge_model, results[2 * i], rule.parse)
        ba = _judgment(i, "ba", a, judge_model, results[2 * i + 1], rule.parse)
        judgments += [ab, ba]
        items.append(_item(i, a, b, ab, ba, rule))
    _check_failures(judgments, out, opts.allow_failures)
    summary = summarize(items, judgments, rule=opts.rule, seed=opts.seed, n_boot=opts.n_boot)
    summary.inputs = {
        "a": {"path": str(a_path), "sha256": sha256_file(a_path), "generator": a_all[0].generator},
        "b": {"path": str(b_path), "sha256": sha256_file(b_path), "generator": b_all[0].generator},
        "matching": counts,
    }
    summary.judge = {"model": judge_model, "template": tpl.name, "template_path": tpl.path,
                     "prompt_sha256": tpl.sha256, "params": dict(params)}
    summary.provenance = provenance(stage="judge pairwise", rule=opts.rule, seed=opts.seed)
    summary.usage = usage_block(client)  # tokens and cost of this run (llm/ledger.py)
    with staged_dir(out) as tmp:
        atomic_write_jsonl(tmp / "judgments.jsonl", [j.to_dict() for j in judgments])
        atomic_write_jsonl(tmp / "items.jsonl", items)
        atomic_write_json(tmp / "summary.json", summary.to_dict())
        atomic_write_text(tmp / "report.md", render_report(summary))
    return summary


def _stats(outcomes: list[str], *, n_boot: int, seed: int, unscored: int) -> OutcomeStats:
    stats = OutcomeStats.from_dict(win_tie_loss(outcomes, n_boot=n_boot, seed=seed))
    stats.unscored = unscored
    return stats


def _diagnostics(items: list[dict[str, Any]], judgments: list[Judgment], scored: list[dict[str, Any]]) -> dict:
    """Position bias (order agreement, preferred position) and length bias."""
    both = [it for it in items if None not in it["scores_ab"] + it["scores_ba"]]
    sign = lambda s: (s[0] > s[1]) - (s[0] < s[1])  # noqa: E731
    agree = sum(sign(it["scores_ab"]) == sign(it["scores_ba"]) for it in both)
    positions: Counter[str] = Counter()
    for j in judgments:
        if j.score_1 is not None:
            positions["first" if j.score_1 > j.score_2 else "second" if j.score_2 > j.score_1 else "equal"] += 1
    n_pos = sum(positions.values())
    diffs = [it["words_a"] - it["words_b"] for it in scored]
    return {
        "order_agreement": agree / len(both) if both else None,
        "order_agreement_n": len(both),
        "preferred_position": {k: positions[k] / n_pos if n_pos else None for k in ("first", "second", "equal")},
        "length_bias": length_buckets(diffs, [it["outcome"] for it in scored]),
        "length_a": word_stats([it["words_a"] for it in items]),
        "length_b": word_stats([it["words_b"] for it in items]),
    }


def summarize(items: list[dict[str, Any]], judgments: list[Judgment], *, rule: str, seed: int,
              n_boot: int = 2000) -> PairwiseSummary:
    """Win/tie/loss per dataset and overall with CIs, failure counts and bias diagnostics."""
    # in key order, so the bootstrap CIs do not depend on the order of the input files
    scored = sorted((it for it in items if it["outcome"] is not None),
                    key=lambda it: (it["dataset"] or "", str(it["id"]), it["instruction"]))
    by_dataset = {}
    for ds in sorted({it["dataset"] for it in items}):
        by_dataset[ds or "(none)"] = _stats(
            [it["outcome"] for it in scored if it["dataset"] == ds], n_boot=n_boot, seed=seed,
            unscored=sum(1 for it in items if it["dataset"] == ds and it["outcome"] is None))
    parse_failures = [j for j in judgments if j.parse_error]
    counts = JudgmentCounts(
        total=len(judgments), parsed=sum(1 for j in judgments if j.score_1 is not None),
        parse_failures=len(parse_failures), request_errors=sum(1 for j in judgments if j.request_error),
        parse_failures_scored=sum(1 for it in items if it.get("unparsed_orders_scored_as")),
        parse_failure_examples=[{"item": j.item, "order": j.order, "reason": j.parse_error}
                                for j in parse_failures[:5]])
    return PairwiseSummary(
        rule=rule, rule_doc=RULES.doc(rule), items=len(items), scored_items=len(scored),
        overall=_stats([it["outcome"] for it in scored], n_boot=n_boot, seed=seed, unscored=len(items) - len(scored)),
        by_dataset=by_dataset, judgments=counts, diagnostics=_diagnostics(items, judgments, scored))


def _pct(x: float | None) -> str:
    return "-" if x is None or x != x else f"{100 * x:.1f}"


def render_report(record: PairwiseSummary) -> str:
    """A Markdown report of a pairwise summary."""
    summary = record.to_dict()
    a = summary["inputs"]["a"]["generator"] or summary["inputs"]["a"]["path"]
    b = summary["inputs"]["b"]["generator"] or summary["inputs"]["b"]["path"]
    lines = [f"# Pairwise: {a} (A) vs {b} (B)", "",
             f"Judge `{summary['judge']['model']}`, template `{summary['judge']['template']}`, "
             f"rule `{summary['rule']}`; both orders per item; 95% bootstrap CIs.", "",
             "| test set | n | win % | tie % | loss % | win rate % [95% CI] | unscored |",
             "|---|---|---|---|---|---|---|"]
    rows = [*summary["by_dataset"].items(), ("overall", summary["overall"])]
    for name, r in rows:
        lo, hi = r["ci95"]["win_rate"]
        lines.append(f"| {name} | {r['n']} | {_pct(r['win'])} | {_pct(r['tie'])} | {_pct(r['loss'])} | "
                     f"{_pct(r['win_rate'])} [{_pct(lo)}, {_pct(hi)}] | {r['unscored']} |")
    j, d, m = summary["judgments"], summary["diagnostics"], summary["inputs"]["matching"]
    lines += ["", f"Items: {m['matched']} matched; {m['only_in_a']} only in A, {m['only_in_b']} only in B (not judged).",
              f"Judgments: {j['total']} total, {j['parsed']} parsed, {j['parse_failures']} parse failures, "
              f"{j['request_errors']} request errors.",
              f"Order agreement (position bias): {_pct(d['order_agreement'])}% of {d['order_agreement_n']} items; "
              f"preferred position first/second/equal: "
              + " / ".join(_pct(d["preferred_position"][k]) + "%" for k in ("first", "second", "equal")), "",
              "| words A - B | n | win rate % |", "|---|---|---|"]
    for bucket in d["length_bias"]:
        lo, hi = bucket["range_words"]  # null = unbounded
        span = f"< {hi:g}" if lo is None else f">= {lo:g}" if hi is None else f"[{lo:g}, {hi:g})"
        lines.append(f"| {span} | {bucket['n']} | {_pct(bucket['win_rate'])} |")
    return "\n".join(lines) + "\n"
