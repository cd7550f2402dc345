"""Judge: answers -> judgments and scores.

In: answer files from harness_ext.generate and a chat client from harness_ext.llm. Out: pairwise
judgments in both orders with win rates (pairwise, scoring), MT-Bench files FastChat reads (mt_bench,
mt_bench_files, mt_bench_show), AlpacaEval annotator configs and alpaca_eval's win rate, avg_length
and length-controlled win rate (alpaca_eval, lc_winrate). verdicts turns judge replies into numbers;
scoring holds the pairwise rules (PairRule) and the bootstrap. Records: core.records Judgment and
PairwiseSummary.
"""
