"""Data: reading instruction datasets into Example records and writing them back out.

In: Alpaca JSON, FastChat/ShareGPT JSON, JSONL, parquet, hf:NAME. Out: Example records (loaders), the
bundled demo dataset (demo), exports in Alpaca/FastChat formats (exports), n-gram contamination reports
between training data and evaluation sets (contamination).
"""
