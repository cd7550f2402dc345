"""Prompt-based length control (Zhao et al. 2024, arXiv 2402.04833, Sec. 5).

Besides holding back EOS for `min_new_tokens`, a model can be *asked* for a length. A length
prompt is one sentence appended to every user turn. Named templates:

    paragraphs=N   "Answer in N paragraphs."
    sentences=N    "Answer in N sentences."
    words=N        "Answer in about N words."
    concise        "Answer in as few words as possible."
    detailed       "Answer in as much detail as possible."

Any other text containing a space is used verbatim ("{n}" in it needs NAME=N form, so it is
rejected in free text). Outputs keep the original instruction, so AlpacaEval and pairwise judges
compare the same instructions with and without length prompts.
"""

from __future__ import annotations

from harness_ext.core.errors import ConfigError, did_you_mean

LENGTH_PROMPTS: dict[str, str] = {
    "paragraphs": "Answer in {n} paragraphs.",
    "sentences": "Answer in {n} sentences.",
    "words": "Answer in about {n} words.",
    "concise": "Answer in as few words as possible.",
    "detailed": "Answer in as much detail as possible.",
}


def resolve_length_prompt(spec: str | None) -> str | None:
    """The sentence to append for a --length-prompt value (None/"" -> no length prompt).

    >>> resolve_length_prompt("paragraphs=3")
    'Answer in 3 paragraphs.'
    >>> resolve_length_prompt("concise")
    'Answer in as few words as possible.'
    >>> resolve_length_prompt("Reply with a haiku.")
    'Reply with a haiku.'
    """
    if spec is None or not spec.strip():
        return None
    spec = spec.strip()
    name, sep, value = spec.partition("=")
    if " " in name:  # free text
        if "{n}" in spec:
            raise ConfigError(f"length prompt {spec!r} has a {{n}} placeholder but no value.",
                              hint="use a named template such as paragraphs=3, or write the number in.")
        return spec
    if name not in LENGTH_PROMPTS:
        raise ConfigError(
            f"Unknown length prompt '{name}'.{did_you_mean(name, LENGTH_PROMPTS)}",
            hint=f"use one of: {', '.join(LENGTH_PROMPTS)} (NAME=N where the template has a number), "
            "or a full sentence in quotes.",
        )
    template = LENGTH_PROMPTS[name]
    needs_n = "{n}" in template
    if needs_n and not sep:
        raise ConfigError(f"length prompt '{name}' needs a number, e.g. {name}=3.")
    if not needs_n and sep:
        raise ConfigError(f"length prompt '{name}' takes no number, got '{spec}'.", hint=f"use '{name}'.")
    if needs_n:
        if not value.isdigit() or int(value) < 1:
            raise ConfigError(f"length prompt '{name}' needs a positive whole number, got '{value}'.")
        return template.format(n=int(value))
    return template


def apply_length_prompt(text: str, sentence: str | None) -> str:
    """The user turn with the length sentence appended on its own paragraph."""
    return f"{text}\n\n{sentence}" if sentence else text
