"""The secret sweep: every command that talks to an endpoint, with a canary key in each place a
user can put one, against a server that echoes the credentials it received in its error answers
(as OpenAI's "Incorrect API key provided: ..." does). Afterwards no file written (outputs, caches,
HOME), and neither output stream, holds the canary in any form: plain, percent-encoded, base64 of
the key, of `user:KEY` (HTTP Basic) or of `Bearer KEY`, or the `user:KEY` pair itself.
"""

from __future__ import annotations

import base64
import json
from pathlib import Path
from urllib.parse import quote

import pytest

from tests.conftest import cli_env, run_cli
from tests.judge2_fixtures import mt_judge, write_mt_bench
from tests.judge_helpers import outputs, quality_judge, write_outputs
from tests.openai_server import LoopbackServer, last_user_text

pytest.importorskip("openai")

USER = "sweepuser"
# One canary per place, so a leak names the place it came from.
CANARIES = {"env": "canaryENV-7f3a9c", "flag": "canaryFLAG-2b8d4e", "userinfo": "canaryURL-5c1e7a",
            "query": "canaryQUERY-9a4f6b"}


def _forms(secret: str) -> set[str]:
    """Every form of `secret` a leak could take (what the sweep greps for)."""
    forms = {secret, quote(secret, safe=""), f"{USER}:{secret}"}
    for raw in (secret, f"{USER}:{secret}", f":{secret}", f"Bearer {secret}"):
        for enc in (base64.b64encode(raw.encode()), base64.urlsafe_b64encode(raw.encode())):
            forms |= {enc.decode(), enc.decode().rstrip("=")}
    return forms


def _reply(body: dict) -> str:
    """One scripted endpoint for every command: judge verdicts, scores, refinements, answers."""
    user = last_user_text(body)
    if "[question " in user:
        return quality_judge(body)
    if "<<A" in user or "<<ANSWER" in user:
        from harness_ext.core.records import ChatRequest, Turn

        return mt_judge(ChatRequest(body["model"], tuple(Turn(m["role"], m["content"]) for m in body["messages"])))
    if "[Answer begins]" in user:
        open_, close = user.strip().splitlines()[-2:]
        return f"Helpfulness: short.\n{open_}\nA longer, better answer.\n{close}\n"
    if "[Response begins]" in user:
        return "Fine.\nScore: [[4]]"
    return "A plain answer."


def _inputs(tmp: Path, model_dir: Path) -> dict[str, Path]:
    tmp.mkdir(parents=True, exist_ok=True)
    rows = {("vicuna", f"Question {i}?"): f"GOOD answer {i}" for i in range(3)}
    data = tmp / "data.jsonl"
    data.write_text("".join(json.dumps({"id": f"r{i}", "instruction": f"Explain {i}.", "output": f"Because {i}."})
                            + "\n" for i in range(3)))
    prompts = tmp / "gen_prompts.jsonl"
    prompts.write_text("".join(json.dumps({"id": f"p{i}", "instruction": f"Say {i}."}) + "\n" for i in range(3)))
    bench = write_mt_bench(tmp / "mt")
    exp = tmp / "exp.yaml"
    exp.write_text(f"""
name: sweep
base_model: {model_dir}
arms:
  - name: base
  - name: other
generate: {{suites: [demo], backend: openai, max_new_tokens: 8, limit: 2}}
judge: {{model: judge-x, base_url: "BASE_URL", concurrency: 4, max_retries: 0, allow_failures: true}}
compare: [[base, other]]
""")
    return {"a": write_outputs(tmp / "a.json", outputs("model-a", rows)),
            "b": write_outputs(tmp / "b.json", outputs("model-b", {k: "short" for k in rows})),
            "data": data, "gen_prompts": prompts, "exp": exp, **bench}


def _commands(inp: dict[str, Path], out: Path) -> dict[str, list[str]]:
    common = ["--judge-model", "judge-x", "--max-retries", "0", "--allow-failures"]
    return {
        "pairwise": ["judge", "pairwise", "--a", str(inp["a"]), "--b", str(inp["b"]), "--n-boot", "10",
                     "--out", str(out / "pairwise"), *common],
        "mt-bench": ["mt-bench", "judge", "--question-file", str(inp["questions"]), "--answer-dir",
                     str(inp["answers"]), "--judge-prompts", str(inp["prompts"]), "--ref-answers", str(inp["refs"]),
                     "--model-list", "long", "short", "--out", str(out / "mt"), *common],
        "score": ["score", "--data", str(inp["data"]), "--out", str(out / "score"), *common],
        "refine": ["refine", "--data", str(inp["data"]), "--out", str(out / "refine"), *common],
        "generate": ["generate", "--backend", "openai", "--model", "gen-x", "--suite", str(inp["gen_prompts"]),
                     "--out", str(out / "generate"), "--max-retries", "0", "--no-progress"],
        "run": ["run", str(inp["exp"]), "--out", str(out / "run")],
    }


def _placements(srv: LoopbackServer) -> list[tuple[str, dict[str, str], list[str]]]:
    """(name, extra env, extra flags) for each place a key can be put."""
    host = srv.base_url.removeprefix("http://")
    return [
        ("env", {"OPENAI_API_KEY": CANARIES["env"], "HARNESS_EXT_JUDGE_API_KEY": CANARIES["env"]},
         ["--base-url", srv.base_url]),
        ("flag", {}, ["--base-url", srv.base_url, "--api-key", CANARIES["flag"]]),
        ("userinfo", {}, ["--base-url", f"http://{USER}:{CANARIES['userinfo']}@{host}"]),
        ("query", {}, ["--base-url", f"{srv.base_url}?api-key={CANARIES['query']}"]),
    ]


def test_no_canary_in_any_file_or_stream(tmp_path, tiny_model_dir):
    home = tmp_path / "home"
    home.mkdir()
    inp = _inputs(tmp_path / "in", tiny_model_dir)
    leaks, texts, ran = [], [], []
    # The first two requests of every command are refused with the credentials echoed back.
    with LoopbackServer(_reply) as srv:
        for name, env_extra, flags in _placements(srv):
            out = tmp_path / "out" / name
            # a cache per placement (in HOME), so every placement sends its requests
            env = cli_env(HOME=str(home), HARNESS_EXT_CACHE=str(home / ".cache" / name), **env_extra)
            for k in ("OPENAI_BASE_URL", "HARNESS_EXT_JUDGE_BASE_URL") if name != "env" else ():
                env.pop(k, None)
            for cmd, args in _commands(inp, out).items():
                if cmd == "run" and name in ("env", "flag"):  # the run's own part is the URL in its record
                    continue
                run_env = dict(env)
                if cmd == "run":  # an experiment file names its endpoint; the key comes from the environment
                    url = flags[flags.index("--base-url") + 1]
                    exp = tmp_path / "keyed" / name / "exp.yaml"  # the user's own file: not swept
                    exp.parent.mkdir(parents=True, exist_ok=True)
                    exp.write_text(inp["exp"].read_text().replace("BASE_URL", url))
                    args = ["run", str(exp), *args[2:]]
                    run_env["OPENAI_BASE_URL"] = url
                    if "--api-key" in flags:
                        run_env["OPENAI_API_KEY"] = flags[flags.index("--api-key") + 1]
                    extra = []
                else:
                    extra = flags
                # `run` stops at a failed generation (only judges may publish failures), so it meets
                # a well-behaved server: what it adds to the sweep is the run record and its logs.
                srv.echo_credentials = srv._echoed + (0 if cmd == "run" else 2)
                res = run_cli("-v", *args, *extra, env=run_env, timeout=300)
                ran.append((name, cmd, res.returncode, srv._echoed))
                texts.append((f"{name}/{cmd} stdout+stderr", res.stdout + res.stderr))
        echoed, served = srv._echoed, srv.served
    for path in tmp_path.rglob("*"):
        if path.is_file() and "keyed" not in path.relative_to(tmp_path).parts:
            texts.append((str(path.relative_to(tmp_path)), path.read_text(errors="replace")))
    forms = {name: _forms(secret) for name, secret in CANARIES.items()}
    for where, text in texts:
        for name, fs in forms.items():
            hit = next((f for f in fs if f in text), None)
            if hit:
                leaks.append(f"{name} canary as {hit!r} in {where}")
    assert not leaks, "\n".join(leaks[:20])
    # The sweep only means something if every command ran and met the echoing server:
    assert echoed == 2 * (len(ran) - 2) and served > 0, ran
    # judges publish failed requests as unscored (--allow-failures); generate reports them and exits 2
    assert not [r for r in ran if r[2] != (2 if r[1] == "generate" else 0)], ran
    outputs_written = {p.name for p in (tmp_path / "out").rglob("*") if p.is_file()}
    assert {"judgments.jsonl", "refined.jsonl", "refine_log.jsonl", "experiment.json"} <= outputs_written, \
        (ran, sorted(outputs_written))
    assert any("request" in t and "401" in t for _, t in texts), ran


ALPACA_CHILD = """
import json, sys
from pathlib import Path
from harness_ext.core.errors import HarnessError
from harness_ext.judge.alpaca_eval import run_alpaca_eval
tmp, base_url, api_key = Path(sys.argv[1]), sys.argv[2], sys.argv[3] or None
rows = [{"instruction": f"Task {i}", "generator": g, "dataset": "helpful_base", "output": o}
        for i in range(3) for g, o in (("ours", "GOOD answer"), ("reference", "ref"))]
tmp.mkdir(parents=True, exist_ok=True)
for g in ("ours", "reference"):
    (tmp / f"{g}.json").write_text(json.dumps([r for r in rows if r["generator"] == g]))
try:
    report = run_alpaca_eval(tmp / "ours.json", tmp / "reference.json", tmp / "out", judge_model="loopback-judge",
                             base_url=base_url, api_key=api_key, timeout=240)
    print("win rate", report["models"]["ours"]["win_rate"])
except HarnessError as exc:
    print("error:", exc, file=sys.stderr)
    sys.exit(2)
"""


def test_alpaca_eval_stage_keeps_credentials_out(tmp_path):
    """The alpaca_eval stage runs alpaca_eval's own CLI (its own OpenAI client, its own caches)."""
    import shutil
    import subprocess
    import sys

    from tests.test_judge_alpaca import _alpaca_judge

    if not shutil.which("alpaca_eval") and not (Path(sys.executable).parent / "alpaca_eval").exists():
        pytest.skip("alpaca_eval CLI not installed")
    home = tmp_path / "home"
    home.mkdir()
    texts, codes = [], []
    with LoopbackServer(_alpaca_judge) as srv:
        host = srv.base_url.removeprefix("http://")
        runs = [  # (base URL, --api-key, env key, echoed requests): the failing run first, then one that succeeds
            (f"http://{USER}:{CANARIES['userinfo']}@{host}", CANARIES["flag"], None, 1),
            (f"http://{USER}:{CANARIES['userinfo']}@{host}", CANARIES["flag"], None, 0),
            (srv.base_url, "", CANARIES["env"], 1),
        ]
        for i, (url, key, env_key, echo) in enumerate(runs):
            srv.echo_credentials = srv._echoed + echo
            env = cli_env(HOME=str(home), HARNESS_EXT_CACHE=str(home / ".cache" / f"a{i}"))
            if env_key:
                env["OPENAI_API_KEY"] = env_key
            r = subprocess.run([sys.executable, "-c", ALPACA_CHILD, str(tmp_path / f"a{i}"), url, key],
                               env=env, capture_output=True, text=True, timeout=300)
            codes.append(r.returncode)
            texts.append((f"alpaca run {i}", r.stdout + r.stderr))
    assert codes == [2, 0, 2], texts
    assert "Incorrect API key provided" in texts[0][1] and "win rate" in texts[1][1]
    texts += [(str(p), p.read_text(errors="replace")) for p in tmp_path.rglob("*") if p.is_file()]
    leaks = [f"{name} canary in {where}" for where, text in texts for name, secret in CANARIES.items()
             if any(f in text for f in _forms(secret))]
    assert not leaks, (leaks, texts[2])
