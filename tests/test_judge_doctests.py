"""The parsers' and statistics' doctests are their specification: run them in the default suite."""

from __future__ import annotations

import doctest

import pytest

import harness_ext.llm.client
import harness_ext.judge.parsers
import harness_ext.judge.scoring


@pytest.mark.parametrize("module", [harness_ext.judge.parsers, harness_ext.judge.scoring, harness_ext.llm.client])
def test_doctests(module):
    result = doctest.testmod(module, optionflags=doctest.ELLIPSIS)
    assert result.attempted > 0 and result.failed == 0
