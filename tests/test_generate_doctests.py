"""The examples in the generation modules' docstrings are true."""

from __future__ import annotations

import doctest

import pytest

import harness_ext.generate.backends.hf
import harness_ext.generate.backends.vllm
import harness_ext.generate.length_prompts


@pytest.mark.parametrize("module", [harness_ext.generate.backends.hf, harness_ext.generate.backends.vllm, harness_ext.generate.length_prompts])
def test_docstring_examples(module):
    result = doctest.testmod(module)
    assert result.attempted > 0 and result.failed == 0
