"""Where every stage of an experiment run keeps its files: the one place that knows the names.

A run folder holds one folder per stage, named after the stage (`select:longest-k` lives in
`select/longest-k`), plus the run's own files:

    run_dir/experiment.json, timings.json
    select/ARM/selected.jsonl, report.json          refine/ARM/refined.jsonl
    train/ARM/train_report.json, train_log.jsonl    generate/ARM/SUITE/outputs.jsonl, generation_meta.json
    judge/A-vs-B/SUITE/summary.json                 (the pairwise judge: verdicts, both orders)
    judge/A-vs-B/SUITE/preference.json              (the logprob judge: per-item preferences)
    mt_bench/ARM, alpaca_eval/ARM, lm_eval/ARM      report/

The runner names stages through this class, the report and the checks read files through it, and
nothing else spells a stage name or a file name of another stage.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

from harness_ext.generate.answers import META_NAME
from harness_ext.train.callbacks import LOG_FILE
from harness_ext.train.trainer import REPORT_FILE

SELECTED_FILE = "selected.jsonl"
SELECTION_REPORT = "report.json"
REFINED_FILE = "refined.jsonl"
ANSWERS_FILE = "outputs.jsonl"
PAIRWISE_SUMMARY = "summary.json"
PREFERENCE_SUMMARY = "preference.json"
PREFERENCES_FILE = "preferences.jsonl"
REPORT_STAGE = "report"


def stage_dir(run_dir: Path, stage: str) -> Path:
    """The folder of stage `stage` (KIND:ARM -> run_dir/KIND/ARM)."""
    return Path(run_dir) / stage.replace(":", "/")


@dataclass(frozen=True)
class RunLayout:
    """Stage names and file paths of one run folder."""

    run_dir: Path

    # ------------------------------------------------------------ stage names

    @staticmethod
    def select(arm: str) -> str:
        return f"select:{arm}"

    @staticmethod
    def refine(arm: str) -> str:
        return f"refine:{arm}"

    @staticmethod
    def train(arm: str) -> str:
        return f"train:{arm}"

    @staticmethod
    def generate(arm: str) -> str:
        return f"generate:{arm}"

    @staticmethod
    def judge(a: str, b: str) -> str:
        return f"judge:{a}-vs-{b}"

    @staticmethod
    def mt_bench(arm: str) -> str:
        return f"mt_bench:{arm}"

    @staticmethod
    def alpaca_eval(arm: str) -> str:
        return f"alpaca_eval:{arm}"

    @staticmethod
    def lm_eval(arm: str) -> str:
        return f"lm_eval:{arm}"

    report = REPORT_STAGE

    # ------------------------------------------------------------ folders and files

    def dir(self, stage: str) -> Path:
        return stage_dir(self.run_dir, stage)

    def selected(self, arm: str) -> Path:
        return self.dir(self.select(arm)) / SELECTED_FILE

    def selection_report(self, arm: str) -> Path:
        return self.dir(self.select(arm)) / SELECTION_REPORT

    def refined(self, arm: str) -> Path:
        return self.dir(self.refine(arm)) / REFINED_FILE

    def model_dir(self, arm: str) -> Path:
        return self.dir(self.train(arm))

    def train_report(self, arm: str) -> Path:
        return self.model_dir(arm) / REPORT_FILE

    def train_log(self, arm: str) -> Path:
        return self.model_dir(arm) / LOG_FILE

    def answers(self, arm: str, suite: str) -> Path:
        """The per-prompt answers (id, instruction, output, dataset, generator) of one suite, which the
        judges read; written by generate_suite for every single-turn suite."""
        return self.dir(self.generate(arm)) / suite / ANSWERS_FILE

    def generation_meta(self, arm: str, suite: str) -> Path:
        return self.dir(self.generate(arm)) / suite / META_NAME

    def mt_bench_answers(self, arm: str) -> Path:
        return self.dir(self.generate(arm)) / "mt_bench" / "model_answer"

    def alpaca_eval_outputs(self, arm: str) -> Path:
        return self.dir(self.generate(arm)) / "alpaca_eval" / "model_outputs.json"

    def pairwise_summary(self, a: str, b: str, suite: str) -> Path:
        return self.dir(self.judge(a, b)) / suite / PAIRWISE_SUMMARY

    def preference_summary(self, a: str, b: str, suite: str) -> Path:
        return self.dir(self.judge(a, b)) / suite / PREFERENCE_SUMMARY

    def experiment_file(self) -> Path:
        return Path(self.run_dir) / "experiment.json"

    def timings_file(self) -> Path:
        return Path(self.run_dir) / "timings.json"
