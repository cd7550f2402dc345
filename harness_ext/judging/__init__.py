"""Judges: the OpenAI-compatible client, a local transformers judge, parsers and pairwise judging.

Importing this package is light: the openai SDK, torch and transformers load only when a client
actually sends or generates.
"""

from __future__ import annotations

from harness_ext.judging.client import OpenAIChatClient, RetryPolicy, make_client

__all__ = ["OpenAIChatClient", "RetryPolicy", "make_client"]
