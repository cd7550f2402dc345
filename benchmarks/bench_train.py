"""Real (non-padding) training tokens per second: harness-ext's trainer vs plain TRL SFTTrainer.

Both train the same model on the same length-skewed dataset (most answers short, a few long, as in
instruction data) with the same batch size, learning rate and max length, for the same number of
optimizer steps, on this machine, in one run. The baseline is TRL's SFTTrainer with its defaults
(random order, each batch padded to its longest example; bf16 only where a GPU is present,
since TRL's bf16 default refuses to run on CPU); ours groups examples of similar length
into a batch (a seeded length-grouped sampler), so far fewer padding tokens are computed. NEFTune is
off in both. Real tokens/s = non-padding tokens consumed / wall time of the measured steps (the
first step is a warm-up and not counted).

Needs the train and dev extras (`pip install -e '.[train,dev]'`): TRL is a dev dependency only,
since the package itself never imports it.

    python benchmarks/bench_train.py                 # tiny random Llama (fast)
    python benchmarks/bench_train.py --model smollm2 # the embedded SmolLM2-135M-Instruct (slow on CPU)
"""

from __future__ import annotations

import argparse
import json
import random
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

WORDS = ["alpha", "beta", "gamma", "delta", "river", "mountain", "garden", "window", "silver", "orange", "music", "paper", "stone", "light", "quiet", "rapid", "simple", "honest", "bright", "early"]


def skewed_rows(n: int, seed: int) -> list[dict]:
    """Instruction/response pairs whose response lengths follow a heavy-tailed (log-normal) law."""
    rng = random.Random(seed)
    rows = []
    for i in range(n):
        words = min(400, max(3, int(rng.lognormvariate(3.0, 1.0))))
        rows.append({"id": f"b{i}", "instruction": " ".join(rng.choices(WORDS, k=rng.randint(5, 20))),
                     "response": " ".join(rng.choices(WORDS, k=words))})
    return rows


def step_timer():
    """A callback recording (time, real tokens seen) after every optimizer step."""
    from transformers import TrainerCallback

    class StepTimer(TrainerCallback):
        def __init__(self):
            self.marks: list[tuple[float, int]] = []

        def on_step_end(self, args, state, control, **kw):
            self.marks.append((time.perf_counter(), int(state.num_input_tokens_seen)))

    return StepTimer()


def rate(marks: list[tuple[float, int]]) -> tuple[float, int, float]:
    (t0, n0), (t1, n1) = marks[0], marks[-1]
    return (n1 - n0) / (t1 - t0), n1 - n0, t1 - t0


def run_ours(model_dir: Path, data: Path, work: Path, args) -> tuple[float, int, float]:
    from harness_ext.train import TrainConfig, train

    cfg = TrainConfig.from_dict({
        "base_model": str(model_dir), "prompt_format": "chat-template", "max_length": args.max_length,
        "per_device_batch_size": args.batch, "effective_batch_size": args.batch, "max_steps": args.steps,
        "learning_rate": 1e-4, "neftune_alpha": None, "save_steps": 10_000, "logging_steps": 10_000,
        "seed": 0, "group_by_length": True,
    })
    timer = step_timer()
    train(cfg, data, work / "ours", callbacks=[timer])
    return rate(timer.marks)


def run_trl(model_dir: Path, rows: list[dict], work: Path, args) -> tuple[float, int, float]:
    import torch
    from datasets import Dataset
    from transformers import AutoModelForCausalLM, AutoTokenizer
    from trl import SFTConfig, SFTTrainer

    tok = AutoTokenizer.from_pretrained(model_dir)
    model = AutoModelForCausalLM.from_pretrained(model_dir)
    ds = Dataset.from_list([{"messages": [{"role": "user", "content": r["instruction"]},
                                          {"role": "assistant", "content": r["response"]}]} for r in rows])
    cfg = SFTConfig(output_dir=str(work / "trl"), per_device_train_batch_size=args.batch, max_steps=args.steps,
                    max_length=args.max_length, learning_rate=1e-4, save_strategy="no", report_to=[],
                    logging_steps=10_000, seed=0, include_num_input_tokens_seen="non_padding",
                    dataloader_pin_memory=False, bf16=torch.cuda.is_available())
    timer = step_timer()
    SFTTrainer(model=model, args=cfg, train_dataset=ds, processing_class=tok, callbacks=[timer]).train()
    return rate(timer.marks)


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--model", choices=("tiny", "smollm2"), default="tiny")
    p.add_argument("--examples", type=int, default=256)
    p.add_argument("--steps", type=int, default=12)
    p.add_argument("--batch", type=int, default=8)
    p.add_argument("--max-length", type=int, default=512)
    p.add_argument("--json", type=Path, help="also write the figures to this JSON file")
    p.add_argument("--peak-tflops", type=float, default=989.0,
                   help="GPU peak dense bf16 TFLOP/s for model FLOPs utilisation (default: H100 SXM, 989)")
    args = p.parse_args()

    import torch

    torch.manual_seed(0)
    n_params = 0
    with tempfile.TemporaryDirectory() as tmp:
        work = Path(tmp)
        if args.model == "tiny":
            from tests.tiny_models import build_tiny_llama

            model_dir = build_tiny_llama(work / "model", hidden=256, layers=4)
        else:
            from harness_ext.train import resolve_base_model

            model_dir = resolve_base_model("smollm2-135m-instruct")
        from transformers import AutoConfig, AutoModelForCausalLM

        with torch.device("meta"):
            n_params = AutoModelForCausalLM.from_config(AutoConfig.from_pretrained(model_dir)).num_parameters()
        rows = skewed_rows(args.examples, seed=0)
        data = work / "data.jsonl"
        data.write_text("".join(json.dumps(r) + "\n" for r in rows))
        trl_rate, trl_tokens, trl_time = run_trl(model_dir, rows, work, args)
        ours_rate, ours_tokens, ours_time = run_ours(model_dir, data, work, args)
    figures = {
        "model": args.model, "examples": args.examples, "steps_measured": args.steps - 1, "batch": args.batch,
        "max_length": args.max_length, "threads": torch.get_num_threads(),
        "trl_sfttrainer": {"real_tokens_per_s": round(trl_rate, 1), "real_tokens": trl_tokens, "seconds": round(trl_time, 2)},
        "harness_ext": {"real_tokens_per_s": round(ours_rate, 1), "real_tokens": ours_tokens, "seconds": round(ours_time, 2)},
        "speedup": round(ours_rate / trl_rate, 2),
    }
    print(f"model={args.model} examples={args.examples} batch={args.batch} max_length={args.max_length} "
          f"measured steps={args.steps - 1} threads={figures['threads']}")
    print(f"TRL SFTTrainer defaults : {trl_rate:10.1f} real tokens/s ({trl_tokens} tokens in {trl_time:.2f} s)")
    print(f"harness-ext train       : {ours_rate:10.1f} real tokens/s ({ours_tokens} tokens in {ours_time:.2f} s)")
    print(f"speedup (same run)      : {figures['speedup']:.2f}x  (target >= 1.3x)")
    if torch.cuda.is_available():
        # Model FLOPs utilisation: ~6 FLOPs per parameter per real token (forward + backward),
        # attention FLOPs ignored, against the GPU's peak dense bf16 rate.
        for key, r in (("trl_sfttrainer", trl_rate), ("harness_ext", ours_rate)):
            figures[key]["mfu"] = round(6 * n_params * r / (args.peak_tflops * 1e12), 4)
        print(f"MFU (6*N*tokens/s / {args.peak_tflops} TFLOP/s): TRL {figures['trl_sfttrainer']['mfu']:.2%}, "
              f"harness-ext {figures['harness_ext']['mfu']:.2%}")
    if args.json:
        args.json.write_text(json.dumps(figures, indent=2) + "\n")


if __name__ == "__main__":
    main()
