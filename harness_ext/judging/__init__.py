"""Judges: the OpenAI-compatible client, a local transformers judge, parsers and pairwise judging.

Importing this package is light: the openai SDK, torch and transformers load only when a client
actually sends or generates.
"""

from __future__ import annotations

from harness_ext.judging.client import OpenAIChatClient, RetryPolicy, make_client
from harness_ext.judging.local import LocalChatClient, make_local_client
from harness_ext.judging.pairwise import judge_pairwise

__all__ = ["LocalChatClient", "OpenAIChatClient", "RetryPolicy", "judge_pairwise", "make_client",
           "make_local_client"]
