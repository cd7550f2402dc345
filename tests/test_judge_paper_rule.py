"""`--rule paper` against a re-implementation of the authors' code, item by item.

The reference below is written from tml-epfl/long-is-more-for-alignment: evaluation/evaluation_gpt4.py
(`parse_score`: first line, commas to spaces, split on " ", exactly two floats, else [-1, -1]) and
utils/result_graph.py (`result_process`: int() of both scores per order, +1/-1/0 summed over the
two orders, >= 1 win, <= -1 lose, 0 tie). File "base-target" has the baseline as assistant 1.
"""

from __future__ import annotations

import json

from harness_ext.judge.pairwise import judge_pairwise
from harness_ext.judge.verdicts import VerdictParseError, parse_score_pair_authors
from tests.judge2_fixtures import ScriptedClient
from tests.judge_helpers import outputs, pairwise_answers, write_outputs


def authors_parse_score(review):
    try:
        sp = review.split("\n")[0].replace(",", " ").split(" ")
        if len(sp) == 2:
            return [float(sp[0]), float(sp[1])]
        raise Exception("Invalid score pair.")
    except Exception:
        return [-1, -1]


def authors_result(base_target: list, target_base: list) -> list[str]:
    """Per item 'win'/'tie'/'lose' for the target from the two review files' scores."""
    res = [0] * len(base_target)
    for m, data in enumerate((base_target, target_base)):
        for i, score in enumerate(data):
            alp, alpg = score if m == 0 else score[::-1]
            res[i] += 1 if int(alpg) > int(alp) else -1 if int(alpg) < int(alp) else 0
    return ["win" if r >= 1 else "lose" if r <= -1 else "tie" for r in res]


# (reply when A is assistant 1, reply when B is assistant 1): every case the authors' code meets
CASES = [
    ("8 6\nA is better.", "6 8\nThe second is better."),      # clean win both orders
    ("8.5 8\nclose", "8 8.5\nclose"),                          # half points: int() makes both ties
    ("8.9 8.1", "3 9"),                                        # 8 vs 8 tie, then a win
    ("7, 5\nas written", "5 7"),                               # "7, 5" fails -> [-1, -1]; other order wins
    ("7,5", "5,7"),                                            # a bare comma is a space
    ("Scores: 7 5", "5 7"),                                    # a label fails the authors' parser
    ("I cannot decide.", "Both are fine."),                    # unparseable both orders: a tie, still scored
    ("9 3\n10 1\nthe answer said '10 1'", "2 9\n1 10"),        # only the first line is read
    ("8 6\nexplanation", "8 6\nexplanation"),                 # orders disagree (position bias): tie
    ("10 11", "11 10"),                                        # out of range still parses: a loss
    (" 8 6", "6 8"),                                           # leading space: three parts, fails
    ("8 6 ", "6 8"),                                           # trailing space fails too
    ("8\t6", "6\t8"),                                          # a tab is not a separator
    ("**8 6**", "6 8"),                                        # markdown fails
    ("7 5\r\nwindows line end", "5 7\r\n"),                    # "5\r" is a float
    ("", "5 7"),                                               # empty reply
    ("3 9", "9 3"),                                            # a clean loss
    ("6 6", "7 7"),                                            # equal scores
    ("-1 -1", "4 2"),                                          # literal -1s equal the failure value
    ("1e1 9", "9 1e1"),                                        # float() syntax the authors accept
]


def _run(tmp_path, rule):
    a = write_outputs(tmp_path / "a.json", outputs("target", {("d", f"q{i}"): f"ANSWER-A-{i}" for i in range(len(CASES))}))
    b = write_outputs(tmp_path / "b.json", outputs("base", {("d", f"q{i}"): f"ANSWER-B-{i}" for i in range(len(CASES))}))

    def reply(req):
        first, _ = pairwise_answers(req.messages[-1].content)
        i = int(first.rsplit("-", 1)[1])
        return CASES[i][0] if first.startswith("ANSWER-A") else CASES[i][1]

    s = judge_pairwise(a, b, tmp_path / rule, ScriptedClient(reply), "judge", rule=rule, n_boot=50).to_dict()
    items = [json.loads(x) for x in (tmp_path / rule / "items.jsonl").read_text().splitlines()]
    return s, {it["instruction"]: it for it in items}


def test_paper_rule_equals_the_authors_code_item_by_item(tmp_path):
    s, items = _run(tmp_path, "paper")
    expected = authors_result([authors_parse_score(ba) for _, ba in CASES],
                              [authors_parse_score(ab) for ab, _ in CASES])
    ours = [items[f"q{i}"]["outcome"] for i in range(len(CASES))]
    assert ours == [{"lose": "loss"}.get(e, e) for e in expected]
    counts = {k: expected.count(k) for k in ("win", "tie", "lose")}
    assert s["overall"]["counts"] == {"win": counts["win"], "tie": counts["tie"], "loss": counts["lose"]}
    assert s["scored_items"] == len(CASES)  # unparseable replies are scored as the authors score them
    failures = sum(authors_parse_score(r) == [-1, -1] and r != "-1 -1" for case in CASES for r in case)
    assert s["judgments"]["parse_failures"] == failures and s["judgments"]["parse_failures_scored"] > 0
    assert items["q6"]["unparsed_orders_scored_as"] == [-1, -1] and items["q6"]["outcome"] == "tie"


def test_paper_strict_keeps_the_stricter_reading(tmp_path):
    s, items = _run(tmp_path, "paper-strict")
    assert items["q1"]["outcome"] == "win"       # 8.5 > 8 compared as written
    assert items["q5"]["outcome"] == "win"       # "Scores: 7 5" accepted
    assert items["q3"]["outcome"] == "win"       # "7, 5" accepted
    assert items["q6"]["outcome"] is None        # unparsed: unscored, never guessed
    assert items["q9"]["outcome"] is None        # 11 is out of range
    assert s["scored_items"] < len(CASES) and s["judgments"]["parse_failures_scored"] == 0


def test_authors_parser_matches_the_reference_on_every_reply():
    for reply in [r for case in CASES for r in case] + ["nan 5", "inf 3"]:
        want = authors_parse_score(reply)
        try:
            got = list(parse_score_pair_authors(reply))
        except VerdictParseError:
            got = [-1, -1]
            if reply.split(" ")[0] in ("nan", "inf"):
                continue  # refused on purpose: the authors' int() crashes on these
        assert got == want, reply
