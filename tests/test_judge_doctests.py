"""The parsers' and statistics' doctests are their specification: run them in the default suite."""

from __future__ import annotations

import doctest

import pytest

import harness_ext.judging.client
import harness_ext.judging.parsers
import harness_ext.scoring


@pytest.mark.parametrize("module", [harness_ext.judging.parsers, harness_ext.scoring, harness_ext.judging.client])
def test_doctests(module):
    result = doctest.testmod(module, optionflags=doctest.ELLIPSIS)
    assert result.attempted > 0 and result.failed == 0
