"""The parsers' and statistics' doctests are their specification: run them in the default suite."""

from __future__ import annotations

import doctest

import pytest

import harness_ext.judge.alpaca_eval
import harness_ext.judge.lc_winrate
import harness_ext.judge.mt_bench_show
import harness_ext.judge.scoring
import harness_ext.judge.verdicts
import harness_ext.llm.client


@pytest.mark.parametrize("module", [harness_ext.judge.verdicts, harness_ext.judge.mt_bench_show, harness_ext.judge.scoring,
                                    harness_ext.judge.alpaca_eval, harness_ext.judge.lc_winrate, harness_ext.llm.client])
def test_doctests(module):
    result = doctest.testmod(module, optionflags=doctest.ELLIPSIS)
    assert result.attempted > 0 and result.failed == 0
