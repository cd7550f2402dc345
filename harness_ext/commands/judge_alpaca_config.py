"""`harness-ext judge alpaca-config`: a ready-to-use AlpacaEval annotator folder outside site-packages."""

from __future__ import annotations

import argparse

HELP = "print the path of an AlpacaEval --annotators_config folder (copied out of the package)"
EPILOG = """\
alpaca_eval caches annotations next to configs.yaml, so the folder is copied to the user cache
($HARNESS_EXT_CACHE/alpaca_eval/<judge model>/<name>) or --dest first. Use it as:

  export OPENAI_API_BASE=http://127.0.0.1:8000/v1 OPENAI_API_KEY=EMPTY
  alpaca_eval evaluate --model_outputs outputs.json --reference_outputs reference.json \\
      --annotators_config "$(harness-ext judge alpaca-config --judge-model Qwen/Qwen2.5-7B-Instruct)" \\
      --fn_metric get_winrate --sort_by win_rate
"""


def configure(p: argparse.ArgumentParser) -> None:
    p.add_argument("name", nargs="?", default="harness_pairwise",
                   help="annotator folder in judges/alpaca_eval/ (default harness_pairwise)")
    p.add_argument("--judge-model", default=None,
                   help="model name the endpoint serves (default: the config's, 'harness-judge')")
    p.add_argument("--dest", default=None, help="copy into DEST/<name> instead of the user cache")


def run(args: argparse.Namespace) -> int:
    from harness_ext.judge.alpaca_eval import alpaca_config_dir

    print(alpaca_config_dir(args.name, dest=args.dest, judge_model=args.judge_model))
    return 0
