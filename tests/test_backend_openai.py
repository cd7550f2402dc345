"""The openai generation backend against the loopback server."""

from __future__ import annotations

import pytest

from harness_ext.core.errors import StageError
from harness_ext.core.records import Backend, SamplingParams, Turn
from harness_ext.generate.backends import BACKENDS
from harness_ext.generate.backends.openai import OpenAIBackend
from tests.openai_server import LoopbackServer

pytest.importorskip("openai")


def test_generate_maps_params_and_resumes_from_cache(tmp_path):
    convs = [[Turn("user", f"Say {i}")] for i in range(5)] + [[Turn("user", "hi"), Turn("assistant", "old")]]
    params = SamplingParams(max_new_tokens=64, temperature=0.0, min_new_tokens=10, stop=("###",), seed=3)
    with LoopbackServer() as srv:
        backend = BACKENDS.get("openai")("served-model", base_url=srv.base_url, api_key="k",
                                          cache_dir=tmp_path / "c", system_prompt="Be kind.")
        assert isinstance(backend, Backend) and backend.name == "openai"
        out = backend.generate(convs, params)
        assert [c.text for c in out] == [f"echo: Say {i}" for i in range(5)] + ["echo: hi"]
        assert all(c.finish_reason == "stop" and c.completion_tokens > 0 for c in out)
        body = srv.bodies[0]
        assert body["model"] == "served-model" and body["max_tokens"] == 64 and body["min_tokens"] == 10
        assert body["stop"] == ["###"] and body["seed"] == 3 and body["messages"][0]["content"] == "Be kind."
        assert all(b["messages"][-1]["role"] == "user" for b in srv.bodies)  # trailing reply dropped
        OpenAIBackend("served-model", base_url=srv.base_url, api_key="k", cache_dir=tmp_path / "c",
                      system_prompt="Be kind.").generate(convs, params)
        assert srv.requests == 6


def test_failed_requests_raise_stage_error_naming_the_fix(tmp_path):
    with LoopbackServer(fault_rate=1.0, faults=("500",)) as srv:
        backend = OpenAIBackend("m", base_url=srv.base_url, api_key="sk-should-not-leak-1", max_retries=0,
                                cache_dir=tmp_path / "c")
        with pytest.raises(StageError, match="2 of 2 generation requests") as exc:
            backend.generate([[Turn("user", "a")], [Turn("user", "b")]], SamplingParams(max_new_tokens=8))
        assert "rerun" in str(exc.value) and "sk-should-not-leak-1" not in str(exc.value) + repr(backend)
