"""The model card (README.md) and run record written next to a trained checkpoint."""

from __future__ import annotations

import json
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


def render_card(*, config: TrainConfig, base_model: str, base_path: Path, data: Path, data_sha256: str,
                selection: dict[str, Any] | None, data_report: dict[str, Any], result: dict[str, Any],
                prov: dict[str, Any]) -> str:
    """Markdown model card recording everything that decides the checkpoint."""
    neftune = (
        f"alpha {config.neftune_alpha}, scaling '{config.neftune_scaling}'"
        if config.neftune_alpha is not None else "off"
    )
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
        f"| base model | `{base_model}` (loaded from `{base_path}`) |",
        f"| training data | `{data}` |",
        f"| data sha256 | `{data_sha256}` |",
        f"| selection report | {('`' + selection['path'] + '`') if selection else 'none next to the data file'} |",
        f"| prompt format | `{config.prompt_format}` (recorded in harness_ext_format.json) |",
        f"| NEFTune | {neftune} |",
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
