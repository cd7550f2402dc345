"""Judge: answers -> judgments and scores.

In: answer files from harness_ext.generate and a chat client from harness_ext.llm. Out: pairwise
judgments in both orders with win rates (pairwise, scoring), MT-Bench files FastChat reads (mt_bench,
mt_bench_files, mt_bench_show), AlpacaEval annotator configs and win rates (alpaca_eval). parsers and
verdicts turn judge replies into numbers.
"""
