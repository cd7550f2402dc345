"""API keys never reach a log line, an error message or a file, wherever the user put them."""

from __future__ import annotations

import logging

from harness_ext.core.secrets import RedactingFilter, register, scrub
from tests.conftest import cli_env, run_cli
from tests.judge_helpers import outputs, quality_judge, write_outputs
from tests.openai_server import LoopbackServer


def test_scrub_removes_registered_keys_url_credentials_and_key_parameters():
    register("plain-looking-secret-42")
    text = ("POST http://alice:hunter2pass@127.0.0.1:8000/v1/chat?api-key=abc123def&x=1 "
            "Authorization: Bearer tok.en.value with plain-looking-secret-42 and sk-live_ABCDEF123")
    out = scrub(text)
    for secret in ("hunter2pass", "alice", "abc123def", "tok.en.value", "plain-looking-secret-42", "sk-live_ABCDEF123"):
        assert secret not in out
    assert "127.0.0.1:8000/v1/chat" in out and "&x=1" in out  # the rest of the message stays readable


def test_log_filter_scrubs_arguments_and_tracebacks(caplog):
    register("canary-in-a-traceback-777")
    record = logging.LogRecord("httpx", logging.INFO, __file__, 1, "HTTP Request: %s %s", ("POST",
                               "http://u:canary-in-a-traceback-777@h/v1"), None)
    try:
        raise RuntimeError("failed with canary-in-a-traceback-777")
    except RuntimeError:
        import sys

        record.exc_info = sys.exc_info()
    assert RedactingFilter().filter(record)
    assert "canary" not in record.getMessage() and "canary" not in (record.exc_text or "")
    assert "RuntimeError" in record.exc_text


def test_keys_in_flags_env_and_base_url_never_reach_output_or_files(tmp_path):
    flag_key, env_key, url_secret = "canaryFLAG-SECRET-111", "canaryENV-SECRET-222", "canaryURL-SECRET-333"
    rows = {("vicuna", f"Question {i}?"): f"answer {i} " * (i + 1) for i in range(3)}
    a = write_outputs(tmp_path / "a.json", outputs("model-a", rows))
    b = write_outputs(tmp_path / "b.json", outputs("model-b", {k: "short" for k in rows}))
    env = {**cli_env(), "OPENAI_API_KEY": env_key, "HARNESS_EXT_CACHE": str(tmp_path / "cache")}
    with LoopbackServer(quality_judge) as srv:
        host = srv.base_url.removeprefix("http://")
        runs = [
            # the key by flag, in the URL's credentials and in a query parameter; -v logs everything
            ["-v", "judge", "pairwise", "--a", str(a), "--b", str(b), "--judge-model", "judge",
             "--base-url", f"http://user:{url_secret}@{host}", "--api-key", flag_key, "--n-boot", "10",
             "--out", str(tmp_path / "o1")],
            ["judge", "pairwise", "--a", str(a), "--b", str(b), "--judge-model", "judge",
             "--base-url", f"{srv.base_url}?api-key={url_secret}", "--n-boot", "10", "--out", str(tmp_path / "o2")],
            # a failing endpoint: the error path prints URLs too
            ["-v", "judge", "pairwise", "--a", str(a), "--b", str(b), "--judge-model", "judge2",
             "--base-url", f"http://user:{url_secret}@127.0.0.1:9/v1", "--api-key", flag_key,
             "--n-boot", "10", "--out", str(tmp_path / "o3"), "--max-retries", "0"],
        ]
        results = [run_cli(*args, env=env, timeout=120) for args in runs]
    assert results[0].returncode == 0, results[0].stderr
    assert results[2].returncode != 0
    texts = [r.stdout + r.stderr for r in results]
    texts += [p.read_text(errors="replace") for p in tmp_path.rglob("*") if p.is_file()]
    for secret in (flag_key, env_key, url_secret):
        assert not any(secret in t for t in texts), secret
