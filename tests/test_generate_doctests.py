"""The examples in the generation modules' docstrings are true."""

from __future__ import annotations

import doctest

import pytest

import harness_ext.backends.hf
import harness_ext.backends.vllm
import harness_ext.length


@pytest.mark.parametrize("module", [harness_ext.backends.hf, harness_ext.backends.vllm, harness_ext.length])
def test_docstring_examples(module):
    result = doctest.testmod(module)
    assert result.attempted > 0 and result.failed == 0
