"""Core: what every stage shares and nothing in it imports a stage.

records (Example, Turn, ChatRequest/ChatResult, SamplingParams, ...), errors (hint-carrying exceptions
with did-you-mean), registry, artifacts (atomic writes, hashes, staged output folders, provenance),
paths (package data folders and caches), secrets (scrubbing keys from anything persisted) and config
(the one strict YAML/dict -> dataclass parser, with did-you-mean and YAML line locations).
"""
