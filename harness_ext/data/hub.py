"""`hf:` dataset specs: the one syntax every command uses for a Hugging Face dataset.

    hf:NAME[:CONFIG][@SPLIT]        e.g. hf:tatsu-lab/alpaca_eval:alpaca_eval@eval, hf:GAIR/lima@train

NAME is the hub repo id (or a local dataset script/folder `datasets.load_dataset` accepts), CONFIG its
configuration, SPLIT the split. Each command has its own default split: `train` for instruction data
(select, refine, score, train), `eval` for evaluation suites (generate). A single colon after NAME
names a CONFIG; a split always follows `@`. (Earlier versions read `hf:NAME:SPLIT` in the data commands;
a load that fails with a config given and no `@` says how to write the split.)
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any

from harness_ext.core.errors import ConfigError, InputError, require

PREFIX = "hf:"


def is_hf(data: object) -> bool:
    """True when `data` is an `hf:` spec string rather than a path."""
    return isinstance(data, str) and data.startswith(PREFIX)


@dataclass(frozen=True)
class HubSpec:
    """A parsed `hf:NAME[:CONFIG][@SPLIT]`; `split` is None when the spec names none."""

    name: str
    config: str | None = None
    split: str | None = None

    def __str__(self) -> str:
        return PREFIX + self.name + (f":{self.config}" if self.config else "") + (f"@{self.split}" if self.split else "")


def parse_hf(spec: str) -> HubSpec:
    """Parse an `hf:` spec.

    >>> parse_hf("hf:tatsu-lab/alpaca_eval:alpaca_eval@eval")
    HubSpec(name='tatsu-lab/alpaca_eval', config='alpaca_eval', split='eval')
    >>> parse_hf("hf:GAIR/lima@train")
    HubSpec(name='GAIR/lima', config=None, split='train')
    >>> parse_hf("hf:user/data")
    HubSpec(name='user/data', config=None, split=None)
    """
    if not is_hf(spec):
        raise ConfigError(f"{spec!r} is not an hf: dataset spec.", hint="write hf:NAME[:CONFIG][@SPLIT].")
    body, at, split = spec[len(PREFIX):].partition("@")
    name, colon, config = body.partition(":")
    bad = [what for what, value, given in (("NAME", name, True), ("CONFIG", config, colon), ("SPLIT", split, at))
           if given and (not value or ":" in value or "@" in value)]
    if bad:
        raise ConfigError(f"hf: dataset spec {spec!r} has an empty or malformed {' and '.join(bad)}.",
                          hint="write hf:NAME[:CONFIG][@SPLIT], e.g. hf:tatsu-lab/alpaca_eval:alpaca_eval@eval.")
    return HubSpec(name=name, config=config or None, split=split or None)


def iter_hf_rows(spec: str, *, default_split: str, purpose: str) -> Iterator[dict[str, Any]]:
    """Rows of the dataset `spec` names, as dicts, in the dataset's order.

    Loading problems (offline, unknown name, config or split) are one InputError naming the spec.
    """
    hub = parse_hf(spec)
    split = hub.split or default_split
    datasets = require("datasets", extra="train", purpose=purpose)
    try:
        ds = datasets.load_dataset(hub.name, hub.config, split=split)
    except Exception as exc:  # offline / missing dataset errors come in many types
        first = str(exc).splitlines()[0] if str(exc) else type(exc).__name__
        hint = ("check the name and your network; offline (HF_HUB_OFFLINE=1) only datasets already in "
                "the local HF cache load; or export it to JSON/JSONL/parquet and pass the file.")
        if hub.config and not hub.split:
            hint = (f"'{hub.config}' was read as the CONFIG; for a split write "
                    f"{PREFIX}{hub.name}@{hub.config}. " + hint)
        where = f"'{hub.name}'" + (f" (config '{hub.config}')" if hub.config else "")
        raise InputError(f"could not load the Hugging Face dataset {where}, split '{split}': {first}",
                         path=spec, hint=hint) from None
    for item in ds:
        yield dict(item)
