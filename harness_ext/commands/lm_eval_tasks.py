"""`harness-ext lm-eval-tasks`: print the tasks folder, or write one that reads local data."""

from __future__ import annotations

import argparse
from pathlib import Path

HELP = "print the lm_eval --include_path of harness-ext's tasks, or write one pointing tasks at local data"
DESCRIPTION = """\
Without options: print the installed tasks folder, for `lm_eval --include_path "$(harness-ext lm-eval-tasks)"`.

With --local-data DIR --out OUT: write OUT, an lm_eval include folder holding all of harness-ext's
tasks plus, for every folder DIR/<task name>/ (ours or lm_eval's own, e.g. arc_challenge,
mmlu_anatomy, hx_qmsum), an override of that task reading DIR/<task name>/<split>.jsonl
instead of the Hugging Face Hub. Use OUT as lm_eval's --include_path."""
EPILOG = """\
examples:
  harness-ext lm-eval-tasks --local-data tests/fixtures/lmeval_data --out runs/local_tasks
  harness-ext lm-eval-tasks --qmsum-original ../shared/data/qmsum/val.jsonl --local-data runs/qmsum_data
  lm_eval --model hf --model_args pretrained=out/model --include_path runs/local_tasks --tasks hx_openllm --limit 3"""


def configure(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--local-data", metavar="DIR", type=Path, default=None,
                        help="folder of <task name>/<split>.jsonl files")
    parser.add_argument("--out", metavar="OUT", type=Path, default=None,
                        help="folder to write (replaced if this command wrote it before)")
    parser.add_argument("--qmsum-original", metavar="FILE", type=Path, default=None,
                        help="first convert original-format QMSum (Yale-LILY jsonl) into "
                        "DIR/hx_qmsum/validation.jsonl (needs --local-data DIR)")


def run(args: argparse.Namespace) -> int:
    from harness_ext.core.errors import ConfigError
    from harness_ext.evals.runner import tasks_path

    if args.qmsum_original is not None:
        if args.local_data is None:
            raise ConfigError("--qmsum-original needs --local-data DIR to write into.",
                              hint="add --local-data DIR (the rows go to DIR/hx_qmsum/validation.jsonl).")
        from harness_ext.evals.local_tasks import convert_qmsum

        dst = args.local_data / "hx_qmsum" / "validation.jsonl"
        print(f"{convert_qmsum(args.qmsum_original, dst)} QMSum queries -> {dst}")
        if args.out is None:
            return 0
    if args.local_data is None and args.out is None:
        print(tasks_path())
        return 0
    if args.local_data is None or args.out is None:
        raise ConfigError("--local-data and --out go together.",
                          hint="pass both, or neither to print the tasks folder.")
    from harness_ext.evals.local_tasks import write_local_tasks

    print(write_local_tasks(args.local_data, args.out))
    return 0
