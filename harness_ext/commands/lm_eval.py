"""`harness-ext lm-eval ...`: lm_eval's own CLI with this package's tasks and metrics loaded."""

from __future__ import annotations

import argparse
from pathlib import Path

HELP = "run lm-evaluation-harness with harness-ext's tasks (every lm_eval flag passes through)"
DESCRIPTION = """\
Run lm-evaluation-harness (`lm_eval run ...`) in this process after registering harness-ext's
metrics (hx_gen_chars, hx_gen_words, hx_gen_tokens) and adding `--include_path` for the
package's tasks (hx_openllm*, hx_longform, hx_govreport, hx_summscreenfd, hx_qmsum, hx_ifs,
hx_ifs_partial, hx_objecqa)
unless you pass one. Every option other than --local-data goes to lm_eval unchanged
(see `lm_eval run --help`). When the results hold Open LLM v1 tasks and --output_path is set,
openllm_summary.json (leaderboard metric per task and their mean) is written next to them.
This command keeps lm_eval's CLI so that every one of its flags works; the pipeline's lm_eval
stage calls lm_eval's Python API (simple_evaluate) instead."""
EPILOG = """\
examples:
  harness-ext lm-eval --model hf --model_args pretrained=out/model --tasks hx_openllm_no_hellaswag --output_path runs/eval
  harness-ext lm-eval --model vllm --model_args pretrained=out/model,tensor_parallel_size=2 --tasks hx_longform
  harness-ext lm-eval --local-data my_data --model hf --model_args pretrained=out/model --tasks hx_ifs --limit 50
  harness-ext lm-eval ls tasks"""


def configure(parser: argparse.ArgumentParser) -> None:
    parser.allow_abbrev = False  # never mistake an lm_eval flag for an abbreviation of ours
    parser.add_argument(
        "--local-data", metavar="DIR", type=Path, default=None,
        help="folder of local task data, DIR/<task name>/<split>.jsonl; tasks found there read it "
        "instead of the Hugging Face Hub (see `harness-ext lm-eval-tasks`)",
    )
    original = parser.parse_known_args

    def parse_known_args(args=None, namespace=None):
        # Only --local-data (and a leading -h) are ours; everything else goes to lm_eval in order,
        # so `harness-ext lm-eval run --help` shows lm_eval's own help.
        args = list(args or [])
        ours: list[str] = []
        rest: list[str] = []
        i = 0
        while i < len(args):
            if args[i] == "--local-data" and i + 1 < len(args):
                ours += args[i : i + 2]
                i += 2
                continue
            (ours if args[i].startswith("--local-data=") else rest).append(args[i])
            i += 1
        if rest[:1] in (["-h"], ["--help"]):
            ours.append(rest.pop(0))
        ns, extra = original(ours, namespace)
        ns.lm_eval_args = [*extra, *rest]
        return ns, []

    parser.parse_known_args = parse_known_args  # type: ignore[method-assign]


def _output_path(argv: list[str]) -> Path | None:
    for i, a in enumerate(argv):
        if a in ("--output_path", "-o") and i + 1 < len(argv):
            return Path(argv[i + 1])
        if a.startswith("--output_path="):
            return Path(a.split("=", 1)[1])
    return None


def run(args: argparse.Namespace) -> int:
    import tempfile

    from harness_ext.evals.runner import newest_results, now, run_lm_eval_cli, write_openllm_summary

    argv: list[str] = list(args.lm_eval_args)
    started = now()
    if args.local_data is not None:
        from harness_ext.core.errors import ConfigError
        from harness_ext.evals.local_tasks import write_local_tasks

        if any(a == "--include_path" or a.startswith("--include_path=") for a in argv):
            raise ConfigError("--local-data and --include_path cannot be combined (lm_eval takes one include path).",
                              hint="pass your own task YAML files by path in --tasks instead.")
        with tempfile.TemporaryDirectory(prefix="hx-local-tasks-") as tmp:
            include = write_local_tasks(args.local_data, Path(tmp) / "tasks")
            code = run_lm_eval_cli(argv, include=include)
    else:
        code = run_lm_eval_cli(argv)
    out = _output_path(argv)
    if code == 0 and out is not None:
        results = newest_results(out, since=started)
        if results is not None:
            summary = write_openllm_summary(results)
            if summary is not None:
                print(f"Open LLM v1 summary: {summary}")
    return code
