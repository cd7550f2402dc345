"""Judge prompt folders (judges/<name>/config.yaml + prompt files) loaded and checked up front.

A folder holds data only: the config names the prompt files and sets numbers; the parsing and
the flow live in code. Unknown config keys and unknown or missing prompt placeholders are errors
at load time, not surprises halfway through a paid run.

Judge prompts come in three formats, each with one loader. Two of them belong to other tools and
stay exactly as those tools read them; only the first two are ours:

- judge folders, loaded here: judges/alpagasus (`harness-ext score`), judges/refine (`refine`) or
  the user's own folder. Placeholders are str.format fields that must match exactly what the judge
  fills in (a typo is a load error); literal braces are written {{ }}; the prompt hash covers the
  texts and every setting.
- the pairwise template, one YAML with the texts inline (judges/pairwise/default.yaml, `judge
  pairwise --template`), loaded by judge/pairwise.load_template. It is kept apart because its
  rendering differs on purpose: the two answers are untrusted text, so only the named placeholders
  are replaced, in one pass, and a per-item nonce {tag} fences each answer; any other brace is
  literal. Its prompt_sha256 (system + user text) is recorded in every pairwise summary.json and on
  leaderboards; folding it into this format would change that hash for the same prompt, and so
  make existing summaries look judged with another prompt.
- FastChat's judge_prompts.jsonl (MT-Bench), loaded by judge/mt_bench_files.load_judge_prompts:
  FastChat's own scripts read the same file, so it is used as released, never copied or rewritten.
  (AlpacaEval's annotator folder, judges/alpaca_eval/, is read by alpaca_eval only; we copy it.)
"""

from __future__ import annotations

import string
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from harness_ext.core.artifacts import sha256_text
from harness_ext.core.errors import ConfigError, InputError, did_you_mean
from harness_ext.core.paths import judges_dir
from harness_ext.core.records import ChatRequest, Turn

_COMMON_KEYS = {"name", "description", "system_prompt_file", "prompt_template_file", "temperature", "max_tokens"}


@dataclass(frozen=True)
class PromptTemplate:
    """A judge prompt: system text, user template with named fields, sampling settings."""

    name: str
    system: str
    user: str
    temperature: float
    max_tokens: int
    folder: Path
    settings: dict[str, Any] = field(default_factory=dict)

    @property
    def sha256(self) -> str:
        """Hash of the prompt text and settings, recorded in every output's provenance."""
        return sha256_text(repr((self.system, self.user, self.temperature, self.max_tokens,
                                 sorted(self.settings.items()))))

    def request(self, model: str, **fields: str) -> ChatRequest:
        """The chat request for one item: system message plus the filled-in user template."""
        # str.format substitutes values verbatim, so braces inside answers are safe.
        messages = (Turn("system", self.system), Turn("user", self.user.format(**fields)))
        params = (("max_tokens", self.max_tokens), ("temperature", self.temperature))
        return ChatRequest(model=model, messages=messages, params=params)


def resolve_folder(name_or_path: str | Path) -> Path:
    """A bundled judge folder name (e.g. 'alpagasus') or a path to the user's own folder."""
    p = Path(name_or_path)
    if (p / "config.yaml").is_file():
        return p
    bundled = judges_dir() / str(name_or_path)
    if (bundled / "config.yaml").is_file():
        return bundled
    if p.is_dir():
        raise InputError("judge prompt folder has no config.yaml.", path=p,
                         hint="add config.yaml naming system_prompt_file and prompt_template_file.")
    choices = sorted(d.name for d in judges_dir().iterdir() if (d / "config.yaml").exists())
    raise ConfigError(
        f"judge prompt folder '{name_or_path}' not found.{did_you_mean(str(name_or_path), choices)}",
        hint=f"pass a folder holding config.yaml, or one of the bundled: {', '.join(choices)}",
    )


def load_template(
    name_or_path: str | Path, *, fields: set[str], settings: dict[str, type] | None = None
) -> PromptTemplate:
    """Load and validate a judge folder whose user template uses exactly the placeholders `fields`.

    `settings` names the extra numeric config keys this judge accepts and their types.
    """
    folder = resolve_folder(name_or_path)
    cfg_path = folder / "config.yaml"
    settings = settings or {}
    cfg = _read_config(cfg_path, _COMMON_KEYS | set(settings))

    def read(key: str) -> str:
        p = folder / str(cfg[key])
        if not p.is_file():
            raise InputError(f"'{key}' names a file that does not exist.", path=p, hint="fix the config or add the file.")
        return p.read_text(encoding="utf-8").strip("\n")

    system, user = read("system_prompt_file"), read("prompt_template_file")
    _check_placeholders(user, fields, folder / str(cfg["prompt_template_file"]))
    extra: dict[str, Any] = {}
    for key, typ in settings.items():
        if key not in cfg:
            raise ConfigError(f"{cfg_path}: missing key '{key}'.", hint=f"add '{key}: <{typ.__name__}>'.")
        try:
            extra[key] = typ(cfg[key])
        except (TypeError, ValueError):
            raise ConfigError(f"{cfg_path}: '{key}' must be a {typ.__name__}, got {cfg[key]!r}.") from None
    try:
        temperature = float(cfg.get("temperature", 0.0))
        max_tokens = int(cfg.get("max_tokens", 1024))
    except (TypeError, ValueError):
        raise ConfigError(f"{cfg_path}: 'temperature' must be a number and 'max_tokens' an integer.") from None
    if max_tokens < 1:
        raise ConfigError(f"{cfg_path}: 'max_tokens' must be >= 1, got {max_tokens}.")
    return PromptTemplate(str(cfg["name"]), system, user, temperature, max_tokens, folder, extra)


def _read_config(cfg_path: Path, allowed: set[str]) -> dict[str, Any]:
    """The folder's config.yaml as a mapping with only `allowed` keys and the three required ones."""
    import yaml

    try:
        cfg = yaml.safe_load(cfg_path.read_text(encoding="utf-8"))
    except (OSError, yaml.YAMLError) as exc:
        raise InputError(f"cannot read judge config: {exc}", path=cfg_path) from None
    if not isinstance(cfg, dict):
        raise InputError("judge config must be a mapping of keys to values.", path=cfg_path)
    for key in cfg:
        if key not in allowed:
            raise ConfigError(
                f"{cfg_path}: unknown key '{key}'.{did_you_mean(str(key), allowed)}",
                hint=f"allowed keys: {', '.join(sorted(allowed))}",
            )
    for key in ("name", "system_prompt_file", "prompt_template_file"):
        if not cfg.get(key):
            raise ConfigError(f"{cfg_path}: missing key '{key}'.", hint=f"add '{key}: ...' to the config.")
    return cfg


def _check_placeholders(user: str, fields: set[str], user_path: Path) -> None:
    try:
        used = {f for _, f, _, _ in string.Formatter().parse(user) if f is not None}
    except ValueError as exc:
        raise InputError(f"bad placeholder syntax: {exc}.", path=user_path,
                         hint="write literal braces as {{ and }}.") from None
    if used - fields or fields - used:
        raise InputError(
            f"placeholders {sorted(used)} do not match what this judge fills in {sorted(fields)}.",
            path=user_path,
            hint=f"use exactly these placeholders: {', '.join('{' + f + '}' for f in sorted(fields))}",
        )
