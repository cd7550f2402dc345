"""Refine: LLM passes over a dataset before training.

In: a dataset and a chat client. Out: introspection-refined examples (introspect) or AlpaGasus-style
quality scores per example (quality), each with a log that makes the pass resumable. Both run the
same resumable per-example pass (passes.py) and differ only in the job, the record and the report.
"""
