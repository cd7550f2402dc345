"""Evals: lm-evaluation-harness integration.

In: a checkpoint and task names from tasks/. Out: lm_eval results JSON and summaries (runner), offline
copies of task data (local_tasks), the functions our task YAMLs name with !function (task_functions),
and the Instruction Following Score (ifs).
"""
