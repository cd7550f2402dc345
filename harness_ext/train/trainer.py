"""`train(config, data, out)`: supervised fine-tuning on a transformers Trainer, resumable.

What we add to a stock Trainer: response-only labels from the recorded prompt format, NEFTune
with the paper's per-example scaling, length-grouped batches, a JSONL log, the IFS monitor, and
an output folder that is either a complete checkpoint or absent. Resumable state lives in
OUT/checkpoints/ until the run finishes; running the same command again continues from there.
"""

from __future__ import annotations

import json
import logging
import os
import shutil
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from harness_ext.core.artifacts import (
    atomic_write_json,
    atomic_write_text,
    provenance,
    read_json,
    sha256_file,
    stable_hash,
)
from harness_ext.core.errors import ConfigError, InputError, StageError
from harness_ext.core.records import ToneClassifier
from harness_ext.train.basemodel import resolve_base_model
from harness_ext.train.callbacks import (
    LOG_FILE,
    GenerationProbe,
    MonitorSchedule,
    TrainLog,
    load_classifier,
    load_instructions,
    make_ifs_callback,
    make_log_callback,
    rewind_log,
)
from harness_ext.train.card import CardInputs, recipe_record, render_card, selection_report
from harness_ext.train.config import TrainConfig
from harness_ext.train.data import (
    ResponseOnlyCollator,
    SeededLengthGroupedSampler,
    special_prefix,
    tokenize_examples,
)
from harness_ext.train.neftune import from_config as neftune_for

log = logging.getLogger(__name__)

RUN_FILE = "harness_ext_run.json"  # in OUT/checkpoints: what the resumable state belongs to
REPORT_FILE = "train_report.json"  # in OUT: written last; its presence marks a finished run
CHECKPOINTS = "checkpoints"

OOM_HINT = ("enable gradient_checkpointing=true, lower per_device_batch_size (effective_batch_size is kept "
            "by gradient accumulation), lower max_length, use lora=true, or launch with an FSDP / ZeRO-3 "
            "accelerate config.")


def checkpoint_complete(path: Path) -> bool:
    """A checkpoint folder is usable only once the Trainer has finished saving it. transformers writes
    weights, optimizer, scheduler and RNG state first and trainer_state.json last, so a parseable
    trainer_state.json next to the weights and optimizer marks a complete save; a run killed while
    saving leaves some of them missing or torn."""
    has_weights = any(path.glob("*.safetensors")) or any(path.glob("pytorch_model*.bin"))
    state = path / "trainer_state.json"
    if not (has_weights and (path / "optimizer.pt").is_file() and state.is_file()):
        return False
    try:
        json.loads(state.read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return False
    return True


def last_complete_checkpoint(ckpt_root: Path) -> str | None:
    """The newest complete checkpoint-N folder; newer incomplete ones (a save cut off by a kill)
    are deleted so the Trainer neither resumes from nor rotates them."""
    import shutil

    found = sorted((int(p.name.split("-")[1]), p) for p in Path(ckpt_root).glob("checkpoint-*")
                   if p.is_dir() and p.name.split("-")[1].isdigit())
    for _, path in reversed(found):
        if checkpoint_complete(path):
            return str(path)
        log.warning("discarding incomplete checkpoint %s (the run was stopped while saving it)", path)
        shutil.rmtree(path, ignore_errors=True)
    return None


def _run_key(config: TrainConfig, data_sha: str) -> str:
    # Keys that do not change the trained weights may differ between an interrupted and a resumed run.
    cosmetic = {"save_steps", "save_total_limit", "keep_checkpoints", "logging_steps"}
    return stable_hash({"config": {k: v for k, v in config.to_dict().items() if k not in cosmetic}, "data": data_sha})


def train(config: TrainConfig, data: str | os.PathLike[str], out: str | os.PathLike[str], *,
          tone_classifier: ToneClassifier | None = None, callbacks: Sequence[Any] = (),
          replace_stale: bool = False) -> Path:
    """Fine-tune `config.base_model` on `data` and write a checkpoint folder to `out`; return it.

    Re-running with the same config and data resumes an interrupted run from its last checkpoint,
    and returns at once when `out` already holds the finished run. `tone_classifier` overrides
    `config.ifs_classifier` for the IFS callback; `callbacks` are extra TrainerCallbacks.
    A finished or interrupted run of a different config/data in `out` is an error, unless
    `replace_stale` (what a pipeline re-running a changed stage wants): then it is deleted first.
    """
    config.validate()
    data, out = Path(data).resolve(), Path(out)
    if not data.is_file():
        raise InputError("training data file not found.", path=data, hint="pass the JSONL written by `harness-ext select`.")
    # Files the run refers to are read now, before any model is loaded or anything is written.
    instructions = load_instructions(config.ifs_instructions) if config.ifs_every else []
    if config.ifs_every and tone_classifier is None and config.ifs_classifier != "default":
        load_classifier(config.ifs_classifier)  # raises: the only named classifier is 'default'
    data_sha = sha256_file(data)
    key = _run_key(config, data_sha)
    finished = out / REPORT_FILE
    ckpt_root = out / CHECKPOINTS
    run_file = ckpt_root / RUN_FILE
    if finished.is_file() and read_json(finished).get("run_key") == key:
        log.info("%s already holds this finished run; nothing to do", out)
        return out
    stale = finished.is_file() or (run_file.is_file() and read_json(run_file).get("run_key") != key)
    if stale and replace_stale:
        log.info("%s holds a run of other settings; replacing it", out)
        _clear_run(out)
    elif finished.is_file():
        raise ConfigError(
            f"{out} already holds a finished training run with a different config or data.",
            hint="choose a new --out folder (or delete the old one).",
        )
    elif stale:
        raise ConfigError(
            f"{ckpt_root} holds an interrupted run with a different config or data, so it cannot be resumed.",
            hint="rerun with the original settings to resume, or choose a new --out folder.",
        )
    try:
        return _train(_Run(config, data, data_sha, out, key, tone_classifier, instructions, callbacks))
    except RuntimeError as exc:
        if "out of memory" in str(exc).lower() or type(exc).__name__ == "OutOfMemoryError":
            raise StageError(f"training ran out of memory ({str(exc).splitlines()[0][:200]}).", hint=OOM_HINT) from exc
        raise


def _clear_run(out: Path) -> None:
    """Remove the checkpoint files, log and resumable state train() wrote into `out`."""
    shutil.rmtree(out / CHECKPOINTS, ignore_errors=True)
    shutil.rmtree(out / ".final.partial", ignore_errors=True)
    (out / REPORT_FILE).unlink(missing_ok=True)  # first: without it the folder is not a finished run
    for pattern in ("*.safetensors", "*.json", "*.jinja", "*.model", "*.bin", "tokenizer*", "README.md", LOG_FILE):
        for path in out.glob(pattern):
            if path.is_file() and not path.name.startswith("."):  # keep hidden files such as a pipeline stamp
                path.unlink()


def _load_tokenizer(base: Path):
    from transformers import AutoTokenizer

    tokenizer = AutoTokenizer.from_pretrained(base)
    if tokenizer.pad_token is None:
        # Padding is masked out of attention and loss, so any existing token serves.
        tokenizer.pad_token = tokenizer.unk_token or tokenizer.eos_token
    tokenizer.padding_side = "right"
    return tokenizer


def _load_model(base: Path, config: TrainConfig):
    import torch
    from transformers import AutoModelForCausalLM, GenerationConfig

    dtype = torch.bfloat16 if config.bf16 else torch.float32
    model = AutoModelForCausalLM.from_pretrained(base, dtype=dtype)
    if getattr(model, "generation_config", None) is None:
        model.generation_config = GenerationConfig.from_model_config(model.config)
    if config.lora:
        from harness_ext.core.errors import require

        peft = require("peft", extra="train", purpose="LoRA training")
        targets: Any = config.lora_target_modules
        if targets != "all-linear":
            targets = [t.strip() for t in targets.split(",") if t.strip()]
            names = [name for name, _ in model.named_modules() if name]
            # peft matches a list entry against the end of a module name and ignores entries that
            # match nothing as long as one does; a misspelt name must not silently train fewer layers.
            missing = [t for t in targets if not any(n == t or n.endswith("." + t) for n in names)]
            if missing or not targets:
                raise ConfigError(
                    f"lora_target_modules='{config.lora_target_modules}': no module of {base} is called "
                    f"{', '.join(repr(t) for t in missing) or 'anything'}.",
                    hint=f"use 'all-linear' or a comma-separated list of this model's linear layers: "
                    f"{', '.join(linear_module_names(model))}",
                )
        lora = peft.LoraConfig(r=config.lora_r, lora_alpha=config.lora_alpha, lora_dropout=config.lora_dropout,
                               target_modules=targets, task_type="CAUSAL_LM")
        if config.gradient_checkpointing:
            model.enable_input_require_grads()
        try:
            model = peft.get_peft_model(model, lora)
        except ValueError as exc:  # peft's NoMatchingPeftModuleError and its other target checks
            names = linear_module_names(model)
            raise ConfigError(
                f"lora_target_modules='{config.lora_target_modules}' does not fit {base}: "
                f"{str(exc).splitlines()[0]}",
                hint=f"use 'all-linear' or a comma-separated list of this model's linear layers: {', '.join(names)}",
            ) from None
    return model


def linear_module_names(model) -> list[str]:
    """The distinct leaf names of the model's linear layers (what lora_target_modules may name)."""
    import torch

    return sorted({name.rsplit(".", 1)[-1] for name, module in model.named_modules()
                   if isinstance(module, torch.nn.Linear) and name})


def _training_args(config: TrainConfig, ckpt_root: Path):
    import torch
    from transformers import TrainingArguments

    # Several processes without CUDA (torchrun on CPU): ask for the CPU/gloo setup explicitly, else
    # transformers treats each process as a separate single-process run.
    cpu_distributed = int(os.environ.get("WORLD_SIZE", "1")) > 1 and not torch.cuda.is_available()
    args = TrainingArguments(
        use_cpu=cpu_distributed,
        output_dir=str(ckpt_root),
        per_device_train_batch_size=config.per_device_batch_size,
        gradient_accumulation_steps=1,  # set below, once the number of processes is known
        num_train_epochs=config.num_train_epochs,
        max_steps=config.max_steps,
        learning_rate=config.learning_rate,
        lr_scheduler_type=config.lr_scheduler_type,
        warmup_steps=config.warmup_ratio,  # a float in [0, 1) is a ratio of the total steps
        weight_decay=config.weight_decay,
        max_grad_norm=config.max_grad_norm,
        adam_beta1=config.adam_beta1,
        adam_beta2=config.adam_beta2,
        logging_steps=config.logging_steps,
        save_strategy="steps",
        save_steps=config.save_steps,
        save_total_limit=config.save_total_limit,
        seed=config.seed,
        data_seed=config.seed,
        bf16=config.bf16,
        activation_checkpointing=config.gradient_checkpointing,
        dataloader_pin_memory=torch.cuda.is_available(),
        # group_by_length is done by our own seeded sampler (see _make_trainer); "random" here
        # keeps transformers from building its own.
        train_sampling_strategy="random",
        remove_unused_columns=False,
        include_num_input_tokens_seen="non_padding",
        report_to=[],
        dataloader_num_workers=0,
        disable_tqdm=not bool(os.environ.get("HARNESS_EXT_PROGRESS", "1") == "1"),
    )
    args.gradient_accumulation_steps = config.gradient_accumulation(args.world_size)
    return args


def _make_trainer(*, group_by_length: bool, **kwargs: Any):
    """A stock transformers Trainer; with `group_by_length`, one whose training order comes from
    SeededLengthGroupedSampler, so a resumed run sees the same batches as an uninterrupted one."""
    from transformers import Trainer

    if not group_by_length:
        return Trainer(**kwargs)

    class LengthGroupedTrainer(Trainer):
        # The one hook we replace: where the Trainer asks for its training sampler.
        def _get_train_sampler(self, train_dataset=None):
            dataset = train_dataset if train_dataset is not None else self.train_dataset
            lengths = [len(ids) for ids in dataset["input_ids"]]
            group = self.args.train_batch_size * self.args.gradient_accumulation_steps
            return SeededLengthGroupedSampler(lengths, group, self.args.data_seed or self.args.seed)

    return LengthGroupedTrainer(**kwargs)


@dataclass
class _Run:
    """What one call of train() works on; passed between the steps below instead of long argument lists."""

    config: TrainConfig
    data: Path
    data_sha: str
    out: Path
    key: str
    tone_classifier: ToneClassifier | None = None
    instructions: list[str] = field(default_factory=list)
    extra_callbacks: Sequence[Any] = ()


@dataclass
class _Prepared:
    """Everything loaded before the first file is written: a failure up to here leaves `out` as it was."""

    args: Any
    base: Path
    tokenizer: Any
    fmt: Any
    tokenized: Any
    model: Any
    classifier: ToneClassifier | None

    @property
    def is_main(self) -> bool:
        return self.args.process_index == 0


def _train(run: _Run) -> Path:
    prep = _prepare(run)
    resumed_step, last, history = _resume_point(run, prep)
    train_log = TrainLog(run.out / LOG_FILE, history) if prep.is_main else None
    trainer = _make_trainer(
        model=prep.model, args=prep.args, train_dataset=_dataset(prep.tokenized.rows),
        data_collator=ResponseOnlyCollator(prep.tokenizer.pad_token_id), processing_class=prep.tokenizer,
        callbacks=_callbacks(run, prep, train_log, history), group_by_length=run.config.group_by_length,
    )
    hook = neftune_for(run.config)
    if hook:
        hook.attach(trainer.model)
    try:
        trainer.train(resume_from_checkpoint=last)
    finally:
        if hook:
            hook.detach()
        if train_log:
            train_log.close()
    summary = _summary(trainer.state, resumed_step, prep.args.world_size)
    _save_final(trainer, run, prep, summary)
    return run.out


def _prepare(run: _Run) -> _Prepared:
    """Training arguments, tokenizer, tokenized data, model and IFS classifier (nothing written yet)."""
    from harness_ext.llm.formats import get_format

    config = run.config
    try:
        args = _training_args(config, run.out / CHECKPOINTS)
    except ValueError as exc:  # transformers' own checks, e.g. bf16 without hardware support
        raise ConfigError(
            f"transformers rejected the training arguments: {str(exc).splitlines()[0]}",
            hint="on a machine without a bf16-capable GPU set bf16=false; see `harness-ext train --help`.",
        ) from None
    base = resolve_base_model(config.base_model)
    tokenizer = _load_tokenizer(base)
    fmt = get_format(config.prompt_format, tokenizer)
    tokenized = tokenize_examples(run.data, tokenizer, fmt, max_length=config.max_length, overlength=config.overlength)
    log.info("data: %s", tokenized.report())
    # Everything that can still fail on the user's settings (LoRA targets, the IFS classifier) runs
    # before the first file is written, so such a failure leaves `out` as it was.
    model = _load_model(base, config)
    classifier = (run.tone_classifier or load_classifier(config.ifs_classifier)) if config.ifs_every else None
    return _Prepared(args, base, tokenizer, fmt, tokenized, model, classifier)


def _resume_point(run: _Run, prep: _Prepared) -> tuple[int, str | None, list[dict[str, Any]]]:
    """Record what the resumable state belongs to; return (resumed step, checkpoint or None, log so far)."""
    from transformers.trainer_utils import get_last_checkpoint

    ckpt_root = run.out / CHECKPOINTS
    ckpt_root.mkdir(parents=True, exist_ok=True)
    if prep.is_main:
        atomic_write_json(ckpt_root / RUN_FILE, {"run_key": run.key, "config": run.config.to_dict(),
                                                  "data_sha256": run.data_sha})
    single = prep.args.world_size == 1
    last = last_complete_checkpoint(ckpt_root) if prep.is_main or single else get_last_checkpoint(str(ckpt_root))
    resumed_step = int(read_json(Path(last) / "trainer_state.json")["global_step"]) if last else 0
    history = rewind_log(run.out / LOG_FILE, resumed_step) if prep.is_main else []
    if last:
        log.info("resuming from %s (step %d)", last, resumed_step)
    return resumed_step, last, history


def _callbacks(run: _Run, prep: _Prepared, train_log: TrainLog | None, history: list[dict[str, Any]]) -> list[Any]:
    config = run.config
    callbacks: list[Any] = [make_log_callback(train_log)] if train_log else []
    if prep.classifier is not None:
        callbacks.append(make_ifs_callback(
            classifier=prep.classifier, instructions=run.instructions,
            probe=GenerationProbe(prep.fmt, prep.tokenizer, special_prefix(prep.tokenizer), config.ifs_max_new_tokens),
            schedule=MonitorSchedule(config.ifs_every, config.ifs_patience, config.ifs_min_delta),
            write=train_log.write if train_log else (lambda record: None), history=history,
        ))
    callbacks.extend(run.extra_callbacks)
    return callbacks


def _dataset(rows: list[dict[str, Any]]):
    from datasets import Dataset

    return Dataset.from_list(rows)


def _summary(state, resumed_step: int, world_size: int) -> dict[str, Any]:
    losses = [h["loss"] for h in state.log_history if "loss" in h]
    return {
        "global_step": state.global_step, "max_steps": state.max_steps, "epoch": state.epoch,
        "final_loss": losses[-1] if losses else None,
        "real_tokens": int(getattr(state, "num_input_tokens_seen", 0) or 0),
        "resumed_from_step": resumed_step, "stopped_early": bool(state.global_step < state.max_steps),
        "world_size": world_size,
    }


def _save_final(trainer, run: _Run, prep: _Prepared, summary: dict[str, Any]) -> None:
    """Write the checkpoint into a sibling folder and move it into `out` only when complete."""
    from harness_ext.llm.formats import save_format

    config, out, tokenizer, is_main = run.config, run.out, prep.tokenizer, prep.is_main
    tmp = out / ".final.partial"  # a fixed name: every rank of a distributed run must agree on it
    if is_main and tmp.exists():
        shutil.rmtree(tmp)
    trainer.accelerator.wait_for_everyone()
    model = trainer.model
    if config.lora:
        model = trainer.accelerator.unwrap_model(model).merge_and_unload()
        if is_main:
            model.save_pretrained(tmp)
    else:
        trainer.save_model(str(tmp))
    if not is_main:
        return
    generation = model.generation_config
    generation.eos_token_id = tokenizer.eos_token_id
    generation.pad_token_id = tokenizer.pad_token_id
    generation.save_pretrained(tmp)
    tokenizer.save_pretrained(tmp)
    (tmp / "training_args.bin").unlink(missing_ok=True)
    save_format(tmp, config.prompt_format)
    data_report = prep.tokenized.report()
    prov = provenance(config=config.to_dict(), data=str(run.data), data_sha256=run.data_sha)
    selection = selection_report(run.data)
    atomic_write_text(tmp / "README.md", render_card(CardInputs(
        config=config, base_path=prep.base, data=run.data, data_sha256=run.data_sha,
        selection=selection, data_report=data_report, result=summary, prov=prov,
    )))
    for item in sorted(tmp.iterdir()):
        os.replace(item, out / item.name)
    tmp.rmdir()
    atomic_write_json(out / REPORT_FILE, {
        "run_key": run.key, "result": summary, "data": data_report, "config": config.to_dict(),
        "recipe": recipe_record(config),
        "selection_report": selection["path"] if selection else None, "provenance": prov,
    })
    if not config.keep_checkpoints:
        shutil.rmtree(out / CHECKPOINTS, ignore_errors=True)
