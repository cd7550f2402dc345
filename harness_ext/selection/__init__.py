"""Selection: dataset -> the k examples to fine-tune on.

In: a dataset (see harness_ext.data). Out: a selection folder (selected.json in the chosen format,
selection_report.json, a length histogram). units measures response length, scan streams the pool
keeping only the running top-k, strategies are the registered selection rules, run ties them together.
"""
