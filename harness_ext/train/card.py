"""The model card (README.md) and run record written next to a trained checkpoint."""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from harness_ext.train.config import TrainConfig


def selection_report(data: Path) -> dict[str, Any] | None:
    """The selection report.json written next to the data file by `harness-ext select`, if any."""
    path = data.parent / "report.json"
    if not path.is_file():
        return None
    try:
        return {"path": str(path), "content": json.loads(path.read_text(encoding="utf-8"))}
    except (OSError, json.JSONDecodeError) as exc:
        return {"path": str(path), "error": f"unreadable: {exc}"}


@dataclass
class CardInputs:
    """What the model card is written from."""

    config: TrainConfig
    base_path: Path
    data: Path
    data_sha256: str
    selection: dict[str, Any] | None
    data_report: dict[str, Any]
    result: dict[str, Any]
    prov: dict[str, Any]


_SCALING_TEXT = {
    "reference": "alpha / sqrt(L_i * d), L_i each example's own length (NEFTune paper, Algorithm 1)",
    "hf": "alpha / sqrt(T * d), T the padded length of each of our length-grouped batches (transformers' hook)",
    "padded": "alpha / sqrt(max_length * d) on every token (as the Long Is More authors' runs: FastChat "
              "padding to model_max_length + transformers' hook)",
}


def recipe_record(config: TrainConfig) -> dict[str, Any]:
    """Which preset and Table 3 row the run follows, what differs from it, and the NEFTune scaling."""
    from harness_ext.train.presets import PRESETS

    preset = PRESETS.get(config.preset) if config.preset else None
    row = preset.row if preset else None
    neftune = ({"alpha": config.neftune_alpha, "scaling": config.neftune_scaling,
                "magnitude": _SCALING_TEXT.get(config.neftune_scaling, config.neftune_scaling),
                "max_length": config.max_length}
               if config.neftune_alpha else None)
    diff = {k: {"preset": a, "used": b} for k, (a, b) in _differences(config, preset).items()}
    return {
        "preset": config.preset,
        "table3_row": ({"label": row.label, "base": row.base, "data": row.data} if row else None),
        "preset_sources": preset.sources if preset else None,
        "differs_from_preset": diff,
        "neftune": neftune,
    }


def _differences(config: TrainConfig, preset) -> dict[str, tuple[Any, Any]]:
    """Every option where `config` differs from its preset's full config: name -> (preset, used)."""
    if preset is None:
        return {}
    from harness_ext.train.presets import load_preset

    start = load_preset(preset.name).to_dict()
    return {k: (start[k], v) for k, v in config.to_dict().items() if start.get(k) != v}


def _recipe_lines(config: TrainConfig) -> list[str]:
    rec = recipe_record(config)
    if rec["table3_row"]:
        row = f"{rec['table3_row']['label']} (arXiv 2402.04833)"
    elif rec["preset"]:
        row = "none (this preset has no Table 3 row)"
    else:
        row = "none (no preset)"
    diffs = rec["differs_from_preset"]
    changed = ", ".join(f"{k}={d['used']!r} (preset: {d['preset']!r})" for k, d in diffs.items()) or "none"
    neftune = (f"alpha {config.neftune_alpha}, scaling '{config.neftune_scaling}': "
               f"{rec['neftune']['magnitude']}" if rec["neftune"] else "off")
    return [
        f"| preset | {('`' + rec['preset'] + '`') if rec['preset'] else 'none'} |",
        f"| paper recipe | {row} |",
        f"| changed from the preset | {changed} |",
        f"| NEFTune | {neftune} |",
    ]


def render_card(inputs: CardInputs) -> str:
    """Markdown model card recording everything that decides the checkpoint."""
    config, data_report, result, prov = inputs.config, inputs.data_report, inputs.result, inputs.prov
    selection = inputs.selection
    base_model = config.base_model
    lines = [
        "---",
        "library_name: transformers",
        "tags: [harness-ext, sft, long-is-more]",
        "---",
        "",
        f"# {base_model} fine-tuned with harness-ext",
        "",
        "Supervised fine-tuning in the recipe of \"Long Is More for Alignment\" (arXiv 2402.04833).",
        "Loss is computed on response tokens only.",
        "",
        "| what | value |",
        "|---|---|",
        f"| base model | `{base_model}` (loaded from `{inputs.base_path}`) |",
        *_recipe_lines(config),
        f"| training data | `{inputs.data}` |",
        f"| data sha256 | `{inputs.data_sha256}` |",
        f"| selection report | {('`' + selection['path'] + '`') if selection else 'none next to the data file'} |",
        f"| prompt format | `{config.prompt_format}` (recorded in harness_ext_format.json) |",
        f"| seed | {config.seed} |",
        f"| examples used | {data_report['kept']} of {data_report['rows_read']} "
        f"(truncated {data_report['truncated']}, dropped {sum(data_report['dropped'].values())}) |",
        f"| optimizer steps | {result.get('global_step')} |",
        f"| final training loss | {result.get('final_loss')} |",
        f"| stopped early by IFS | {result.get('stopped_early', False)} |",
        f"| package | harness-ext {prov.get('version')} (git {prov.get('git_commit') or 'n/a'}) |",
        "",
        "## Hyperparameters",
        "",
        "```json",
        json.dumps(config.to_dict(), indent=2),
        "```",
        "",
        "## Data report",
        "",
        "```json",
        json.dumps(data_report, indent=2),
        "```",
    ]
    if selection and "content" in selection:
        lines += ["", "## Selection report", "", "```json", json.dumps(selection["content"], indent=2)[:20000], "```"]
    lines += ["", "## Provenance", "", "```json", json.dumps(prov, indent=2, default=str), "```", ""]
    return "\n".join(lines)
