"""`harness-ext train`: supervised fine-tuning with NEFTune from a preset or YAML config."""

from __future__ import annotations

import argparse
from pathlib import Path

from harness_ext.core.errors import ConfigError

HELP = "fine-tune a model on selected data (SFT + NEFTune; resumable)"
DESCRIPTION = (
    "Fine-tune a causal LM on a selected dataset with loss on response tokens only, NEFTune and the\n"
    "'Long Is More' presets (arXiv 2402.04833, Table 3). Writes a Hugging Face checkpoint to --out.\n"
    "Rerunning the same command resumes an interrupted run from its last checkpoint.\n\n"
    "  harness-ext train --preset smollm2-135m-cpu --data selected.jsonl --out runs/smol max_steps=20\n"
    "  harness-ext train --config my.yaml --data selected.jsonl --out runs/x learning_rate=1e-5\n"
    "  accelerate launch --config_file $(harness-ext train --accelerate-config fsdp) \\\n"
    "      -m harness_ext train --preset llama2-7b-alpaca-1k-longest --data selected.jsonl --out runs/l7"
)


def _epilog() -> str:
    from harness_ext.train.config import help_epilog
    from harness_ext.train.presets import preset_help

    return f"presets:\n{preset_help()}\n\noptions (key=value):\n{help_epilog()}"


EPILOG = _epilog()


class _IntermixedParser(argparse.ArgumentParser):
    """Lets KEY=VALUE overrides stand before, between or after the options
    (`--data d.jsonl k=v --out x max_steps=1`); a plain parser takes positionals only up front."""

    _inner = False

    def parse_known_args(self, args=None, namespace=None):  # type: ignore[override]
        if self._inner:  # parse_known_intermixed_args calls back into this method
            return super().parse_known_args(args, namespace)
        self._inner = True
        try:
            return self.parse_known_intermixed_args(args, namespace)
        finally:
            self._inner = False


def configure(parser: argparse.ArgumentParser) -> None:
    parser.__class__ = _IntermixedParser  # the subparser cli.py made for us; same state, one method more
    parser.add_argument("overrides", nargs="*", metavar="KEY=VALUE", help="override any option (see below)")
    parser.add_argument("--preset", help="a named preset (see below)")
    parser.add_argument("--config", type=Path, help="YAML file of options (may name a `preset:` to start from)")
    parser.add_argument("--data", type=Path, help="training data: JSONL from `harness-ext select`, Alpaca JSON, "
                        "or FastChat conversations")
    parser.add_argument("--out", type=Path, help="output checkpoint folder")
    parser.add_argument("--accelerate-config", choices=("fsdp", "deepspeed_zero3"),
                        help="print the path of a shipped accelerate config and exit")
    parser.add_argument("--print-config", action="store_true", help="print the resolved config as YAML and exit")


def build_config(preset: str | None, config_file: Path | None, overrides: list[str]):
    """Preset, then YAML file, then key=value overrides; every key checked against TrainConfig."""
    from harness_ext.train.config import TrainConfig, load_config_file, parse_overrides
    from harness_ext.train.presets import load_preset

    file = load_config_file(config_file) if config_file else None
    file_preset = file.preset if file else None
    if preset and file_preset and preset != file_preset:
        raise ConfigError(f"--preset {preset} and the config file's preset '{file_preset}' disagree.",
                          hint="give the preset in one place only.")
    name = preset or file_preset
    cfg = load_preset(name) if name else TrainConfig()
    if file and file.values:
        cfg = TrainConfig.from_dict(file.values, source=str(config_file), base=cfg, lines=file.lines)
    values = parse_overrides(overrides)
    return TrainConfig.from_dict(values, source="command line", base=cfg) if values else cfg


def run(args: argparse.Namespace) -> int:
    from harness_ext.core.paths import resources_dir

    if args.accelerate_config:
        print(resources_dir() / "accelerate" / f"{args.accelerate_config}.yaml")
        return 0
    cfg = build_config(args.preset, args.config, args.overrides)
    if args.print_config:
        import yaml

        print(yaml.safe_dump(cfg.to_dict(), sort_keys=False), end="")
        return 0
    if args.data is None or args.out is None:
        raise ConfigError("--data and --out are required to train.", hint="e.g. --data selected.jsonl --out runs/x")
    from harness_ext.train.trainer import train

    out = train(cfg, args.data, args.out)
    print(out)
    return 0
