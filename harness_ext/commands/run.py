"""`harness-ext run EXPERIMENT.yaml`: the whole experiment, resumable stage by stage."""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

from harness_ext.core.paths import resources_dir

HELP = "run an experiment file: select -> refine -> train -> generate -> judge/lm_eval -> leaderboard"
DESCRIPTION = (
    "Run every stage of an experiment in one run directory. A stage whose inputs and config are\n"
    "unchanged since its last successful run is skipped; a killed run continues where it stopped when\n"
    "the same command is run again. Ready experiment files (the paper's comparisons) are listed by\n"
    "`harness-ext run --list` and printed by `harness-ext run --show NAME`."
)


def experiments_dir() -> Path:
    return resources_dir() / "experiments"


def configure(p: argparse.ArgumentParser) -> None:
    from harness_ext.pipeline.experiment import describe_fields

    p.epilog = "experiment file keys:\n" + describe_fields()
    p.add_argument("experiment", nargs="?", help="experiment YAML file, or the name of a shipped one")
    p.add_argument("--out", type=Path, help="run directory (default: runs/<experiment name>)")
    p.add_argument("--list", action="store_true", help="list the shipped experiment files")
    p.add_argument("--show", metavar="NAME", help="print a shipped experiment file (to copy and edit)")
    p.add_argument("--dry-run", action="store_true",
                   help="check the whole experiment (names, options, data files), list the stages and price the API "
                   "judge stages whose answers exist (requests not cached, tokens, cost); send and run nothing")


def resolve_experiment(arg: str) -> Path:
    from harness_ext.core.errors import ConfigError, did_you_mean

    path = Path(arg)
    if path.exists():
        return path
    shipped = {p.stem: p for p in experiments_dir().glob("*.yaml")}
    if arg in shipped:
        return shipped[arg]
    raise ConfigError(
        f"experiment '{arg}' is neither a file nor a shipped experiment.{did_you_mean(arg, shipped)}",
        hint="give a path to a YAML file, or one of: " + ", ".join(sorted(shipped)),
    )


def run(args: argparse.Namespace) -> int:
    from harness_ext.core.errors import ConfigError

    if args.list:
        for p in sorted(experiments_dir().glob("*.yaml")):
            first = p.read_text(encoding="utf-8").splitlines()[0].lstrip("# ").strip()
            print(f"{p.stem:32s} {first}")
        return 0
    if args.show:
        print(resolve_experiment(args.show).read_text(encoding="utf-8"), end="")
        return 0
    if not args.experiment:
        raise ConfigError("no experiment given.", hint="harness-ext run FILE.yaml (or --list)")
    from harness_ext.pipeline.check import check_experiment
    from harness_ext.pipeline.experiment import ExperimentError, read_experiment
    from harness_ext.pipeline.runner import ExperimentRunner

    path = resolve_experiment(args.experiment)
    cfg, problems, lines = read_experiment(path)
    # Relative data paths resolve against the experiment file's folder; for a shipped experiment
    # (which lives inside the package) against the folder the command runs in.
    shipped = path.resolve().parent == experiments_dir().resolve()
    base_dir = Path.cwd() if shipped else path.resolve().parent
    if cfg is not None:
        problems += check_experiment(cfg, base_dir)
    # A missing package or API key stops a real run; a dry run may be planning one for another machine.
    notes = [p for p in problems if p.machine and args.dry_run]
    problems = [p for p in problems if not (p.machine and args.dry_run)]
    if problems or cfg is None:
        raise ExperimentError(str(path), problems, lines)
    run_dir = args.out or Path("runs") / cfg.name
    runner = ExperimentRunner(cfg, run_dir, base_dir=base_dir)
    if args.dry_run:
        for note in notes:
            print(f"harness-ext run: note: a real run on this machine would stop on: {note.render()}", file=sys.stderr)
        for name in runner.build().stages:
            print(name)
        import tempfile

        from harness_ext.pipeline.runner import estimate_judge_cost

        with tempfile.TemporaryDirectory(prefix="harness-ext-estimate-") as scratch:
            print(estimate_judge_cost(runner, Path(scratch)).report())
        return 0
    runner.run(check=False)
    print(f"run directory: {run_dir}")
    return 0
