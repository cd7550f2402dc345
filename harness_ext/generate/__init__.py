"""Generate: a model answers an evaluation suite.

In: a checkpoint (or API model) and a suite (AlpacaEval, MT-Bench, the paper's pairwise test sets, a
prompts file). Out: answer files in the formats alpaca_eval and FastChat read (answers), which outputs
reads back as ModelOutput records for judging. backends/ holds hf, vllm and openai.
"""
