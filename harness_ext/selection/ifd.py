"""Instruction-Following Difficulty (IFD) and embeddings from a small causal LM: a resumable stage.

IFD (Li et al. 2023, arXiv 2308.12032) as Superfiltering scores it with GPT-2 (Li et al. 2024,
arXiv 2402.00530; tianyi-lab/Superfiltering code_ifd/data_analysis.py + put_analysis_to_data.py):

    prompt = "{instruction}\\n{input}\\n"   (or "{instruction}\\n" when the input is empty)
    ppl_conditional = exp(mean NLL of the response tokens of tokenizer.encode(prompt + response),
                          truncated to max_length; the first len(encode(prompt)) tokens are masked)
    ppl_response    = exp(mean NLL of tokenizer.encode(response), truncated to
                          max_length - len(encode(prompt, truncated to max_length)) + 1)
    IFD = ppl_conditional / ppl_response          (max_length 1024, Superfiltering's default)

As in the reference, the first token of a sequence is never predicted (no BOS is added unless the
tokenizer adds one itself). Rows with an empty response, or with no response token left to score
after truncation, get NaN (the reference writes `{}` there, and its IFD < 1 filter drops them).

What differs from the reference, and why: the reference runs one model call per sequence with the
full-vocabulary logits of every position; here sequences are length-sorted and right-padded into
batches bounded by a token budget (no attention mask: causal attention never looks right), the
output layer is applied only at the positions that are scored, in chunks, and on a CPU several
batches run at once, sharing the torch threads. Same numbers to about 3e-5, bounded memory. The
embedding of a row (for the diversity strategy) is the mean of the scoring model's last hidden
states over prompt + response, taken from the same forward pass (Cherry_LLM mean-pools the last
hidden state the same way).

Scores are cached per (model, max_length, dtype, row content) in shards written after each chunk
of rows, so an interrupted run resumes and a second strategy or a rerun pays nothing twice.
"""

from __future__ import annotations

import hashlib
import logging
import math
import os
import threading
import time
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from harness_ext.core.artifacts import atomic_write_bytes, stable_hash
from harness_ext.core.errors import ConfigError
from harness_ext.core.paths import cache_dir

log = logging.getLogger(__name__)

#: Superfiltering's defaults (code_ifd/data_analysis.py): GPT-2's context and its "none" prompt.
DEFAULT_MAX_LENGTH = 1024
DEFAULT_MODEL = "smollm2-135m-instruct"
#: Bumped whenever the way a score is computed changes, so old cache shards are not reused.
SCORE_VERSION = 1
IFD_FIELDS = ("ifd", "ppl_response", "ppl_conditional")


def superfiltering_prompt(instruction: str, input_text: str) -> str:
    """The prompt Superfiltering puts before the response (its PROMPT_DICT_NONE).

    >>> superfiltering_prompt("Add 2 and 3.", "")
    'Add 2 and 3.\\n'
    >>> superfiltering_prompt("Translate.", "bonjour")
    'Translate.\\nbonjour\\n'
    """
    return f"{instruction}\n{input_text}\n" if input_text else f"{instruction}\n"


def row_key(instruction: str, input_text: str, response: str) -> str:
    """Content key of a row: the cache never confuses two rows with different text."""
    h = hashlib.blake2b(digest_size=16)
    for part in (instruction, input_text, response):
        h.update(part.encode("utf-8"))
        h.update(b"\x00")
    return h.hexdigest()


@dataclass
class ScoreConfig:
    """How rows are scored (the `score_*` selection options)."""

    #: Any transformers causal LM: a folder, a hub id, or the embedded 'smollm2-135m-instruct'.
    model: str = DEFAULT_MODEL
    max_length: int = DEFAULT_MAX_LENGTH
    #: Tokens (padded) per forward pass; lower it when memory is short (a longer row goes alone).
    #: None: 1024 on a CPU (activations that stay in a core's cache beat bigger batches there),
    #: 16384 on a GPU.
    batch_tokens: int | None = None
    #: Rows per cache shard: the unit of resumption.
    chunk_rows: int = 256
    device: str | None = None  # None: cuda when available, else cpu
    #: Batches scored concurrently on a CPU (None: one per torch thread, at most 4; 1: one at a time).
    cpu_lanes: int | None = None
    cache: Path | None = None  # None: <cache_dir>/scores
    progress: bool = True


@dataclass
class RowScore:
    """IFD and its two perplexities for one row (NaN where undefined), and its embedding."""

    ifd: float
    ppl_response: float
    ppl_conditional: float
    embedding: Any = None  # numpy float32 vector


@dataclass
class Tokenized:
    """The two sequences the reference scores for one row, and where scoring starts in each."""

    key: str
    conditional: list[int]
    cond_start: int
    response: list[int]


@dataclass
class ScoreStats:
    """What one scoring call did: rows scored now, rows served from the cache, seconds spent."""

    rows: int = 0
    cached: int = 0
    scored: int = 0
    forward_calls: int = 0
    seconds: float = 0.0
    notes: dict[str, Any] = field(default_factory=dict)


def tokenize_row(tok: Any, instruction: str, input_text: str, response: str, max_length: int) -> Tokenized:
    """Token ids exactly as Superfiltering's data_analysis.py builds them (see the module doc)."""
    prompt = superfiltering_prompt(instruction, input_text)
    whole = prompt + response
    prompt_len = len(tok.encode(prompt, truncation=True, max_length=max_length))
    conditional = tok.encode(whole, truncation=True, max_length=max_length)
    cond_start = len(tok.encode(whole[: whole.rfind(response)])) if response else len(conditional)
    alone = tok.encode(response, truncation=True, max_length=max_length - prompt_len + 1) if response else []
    return Tokenized(row_key(instruction, input_text, response), conditional, cond_start, alone)


def _ppl(total_nll: float, count: int) -> float:
    return math.exp(total_nll / count) if count > 0 else math.nan


def _score_from_sums(cond: tuple[float, int], alone: tuple[float, int]) -> tuple[float, float, float]:
    pc, pr = _ppl(*cond), _ppl(*alone)
    ifd = pc / pr if pr and not (math.isnan(pc) or math.isnan(pr)) else math.nan
    return ifd, pr, pc


class Scorer:
    """Batched, length-sorted, cached IFD (+ embedding) scoring with one causal LM."""

    def __init__(self, cfg: ScoreConfig | None = None) -> None:
        self.cfg = cfg or ScoreConfig()
        if self.cfg.max_length < 2:
            raise ConfigError(f"score_max_length must be at least 2 (got {self.cfg.max_length}).",
                              hint="e.g. 1024 (Superfiltering's default)")
        if (self.cfg.batch_tokens is not None and self.cfg.batch_tokens < 1) or self.cfg.chunk_rows < 1:
            raise ConfigError(f"score_batch_tokens and score_chunk_rows must be at least 1 (got "
                              f"{self.cfg.batch_tokens}, {self.cfg.chunk_rows}).", hint="e.g. 1024 and 256")
        self.model: Any = None
        self.tok: Any = None
        self.forward_calls = 0
        self._lock = threading.Lock()
        self._path: Path | None = None

    # -- model -----------------------------------------------------------------------------------
    def model_path(self) -> Path:
        if self._path is None:
            from harness_ext.train.basemodel import resolve_base_model

            self._path = resolve_base_model(self.cfg.model)
        return self._path

    def tokenizer(self) -> Any:
        if self.tok is None:
            from transformers import AutoTokenizer

            self.tok = AutoTokenizer.from_pretrained(self.model_path())
        return self.tok

    def _load(self) -> None:
        if self.model is not None:
            return
        self.tokenizer()
        from transformers import AutoModelForCausalLM

        device = self.device()
        model = AutoModelForCausalLM.from_pretrained(self.model_path(), dtype=self.dtype())
        self.model = model.to(device).eval()

    def device(self) -> str:
        if self.cfg.device:
            return self.cfg.device
        import torch

        if torch.cuda.is_available():
            from accelerate import PartialState  # one device per process under `accelerate launch`

            return str(PartialState().device)
        return "cpu"

    def dtype(self) -> Any:
        import torch

        dev = self.device()
        return torch.bfloat16 if dev.startswith("cuda") and torch.cuda.is_bf16_supported() else torch.float32

    def batch_tokens(self) -> int:
        """Padded tokens per forward pass (ScoreConfig.batch_tokens, or the device's default)."""
        if self.cfg.batch_tokens is not None:
            return self.cfg.batch_tokens
        return 1024 if self.device() == "cpu" else 16384

    def cache_dir(self) -> Path:
        """One folder per (model, max_length, dtype, score version): its shards hold row scores."""
        path = self.model_path()
        weights = sorted((p.name, p.stat().st_size, int(p.stat().st_mtime)) for p in path.glob("*")
                         if p.suffix in (".safetensors", ".bin", ".json"))
        ident = stable_hash({"model": str(path.resolve()), "files": weights, "max_length": self.cfg.max_length,
                             "dtype": str(self.dtype()), "version": SCORE_VERSION})
        return (self.cfg.cache or cache_dir() / "scores") / f"ifd-{ident[:16]}"

    # -- forward ---------------------------------------------------------------------------------
    def forward(self, seqs: Sequence[tuple[list[int], int]], want_embedding: Sequence[bool]) -> list[Any]:
        """One right-padded batch: per sequence (sum of NLL, tokens scored, mean last hidden state or None).

        Token t is scored for start <= t < len(ids), t >= 1, predicted from position t - 1. No
        attention mask is passed: the padding is on the right and attention is causal, so no real
        position ever sees a pad, and the unmasked kernel is the fast one.
        """
        import torch

        self._load()
        with self._lock:
            self.forward_calls += 1
        dev = self.device()
        width = max(len(ids) for ids, _ in seqs)
        # Any id fills the padding (nothing real attends to it); not the pad id, which makes some
        # models warn about a missing attention mask.
        fill = 1 if self.tokenizer().pad_token_id == 0 else 0
        ids = torch.full((len(seqs), width), fill, dtype=torch.long)
        for b, (s, _) in enumerate(seqs):
            ids[b, : len(s)] = torch.tensor(s)
        with torch.inference_mode():
            hidden = self.model.base_model(input_ids=ids.to(dev)).last_hidden_state
            rows, cols, targets = [], [], []
            for b, (s, start) in enumerate(seqs):
                first = max(start, 1)
                rows.extend([b] * (len(s) - first))
                cols.extend(range(first - 1, len(s) - 1))
                targets.extend(s[first:])
            nll = self._token_nll(hidden, rows, cols, targets)
            out: list[Any] = []
            sums = torch.zeros(len(seqs), dtype=torch.float64)
            counts = torch.zeros(len(seqs), dtype=torch.long)
            if rows:
                sums.index_add_(0, torch.tensor(rows), nll)
                counts.index_add_(0, torch.tensor(rows), torch.ones(len(rows), dtype=torch.long))
            for b, (s, _) in enumerate(seqs):
                emb = hidden[b, : len(s)].float().mean(dim=0).cpu().numpy() if want_embedding[b] else None
                out.append((float(sums[b]), int(counts[b]), emb))
        return out

    def _token_nll(self, hidden: Any, rows: list[int], cols: list[int], targets: list[int]) -> Any:
        """NLL of each target token: the output layer and a float32 log-sum-exp over the vocabulary,
        in chunks of positions sized to stay in cache on a CPU (in place: no second logits tensor)."""
        import torch

        if not rows:
            return torch.zeros(0, dtype=torch.float64)
        head = self.model.get_output_embeddings()
        cfg = self.model.config
        picked = hidden[torch.tensor(rows, device=hidden.device), torch.tensor(cols, device=hidden.device)]
        tgt = torch.tensor(targets, device=hidden.device)
        step = _logit_chunk(head.weight.shape[0], hidden.device.type)
        parts = []
        for i in range(0, len(rows), step):
            logits = head(picked[i: i + step]).float()
            if getattr(cfg, "logit_scale", None):
                logits = logits * cfg.logit_scale
            if getattr(cfg, "final_logit_softcapping", None):
                cap = cfg.final_logit_softcapping
                logits = torch.tanh(logits / cap) * cap
            target = logits.gather(1, tgt[i: i + step, None])[:, 0]
            top = logits.amax(dim=1)
            lse = logits.sub_(top[:, None]).exp_().sum(dim=1).log_().add_(top)
            parts.append(lse - target)
        return torch.cat(parts).double().cpu()

    def lanes(self) -> int:
        """Batches scored at once: on a CPU, one per torch thread up to 4 (measured on 2 cores; on a
        bigger CPU the torch threads are shared out among 4 lanes, a hedge nobody has measured)."""
        if self.cfg.cpu_lanes is not None:
            return self.cfg.cpu_lanes
        import torch

        return min(torch.get_num_threads(), 4) if self.device() == "cpu" else 1

    def _map(self, fn: Callable[[Any], Any], items: Sequence[Any]) -> Iterator[Any]:
        """fn over items, in order. On a CPU with n lanes: n Python threads, the torch threads shared
        out among them for the duration. The kernels release the GIL, so the lanes run in parallel;
        on 2 cores, two single-thread lanes beat one batch on 2 threads by 15-20%
        (benchmarks/bench_ifd.py): the small matrix products and the element-wise steps between them
        do not split well across threads."""
        lanes = min(self.lanes(), len(items))
        if lanes <= 1:
            yield from map(fn, items)
            return
        from concurrent.futures import ThreadPoolExecutor

        import torch

        threads = torch.get_num_threads()
        torch.set_num_threads(max(1, threads // lanes))
        try:
            with ThreadPoolExecutor(lanes, thread_name_prefix="ifd-lane") as pool:
                yield from pool.map(fn, items)
        finally:
            torch.set_num_threads(threads)

    # -- rows ------------------------------------------------------------------------------------
    def score_tokenized(self, rows: Sequence[Tokenized],
                        tick: Callable[[int], None] | None = None) -> dict[str, RowScore]:
        """Score rows (no cache): both sequences of every row, length-sorted into token-bounded batches."""
        seqs: list[tuple[int, str, list[int], int]] = []  # (row index, which, ids, first scored token)
        sums: dict[tuple[int, str], tuple[float, int]] = {}
        for i, r in enumerate(rows):
            seqs.append((i, "c", r.conditional, r.cond_start))
            if len(r.response) >= 2:
                seqs.append((i, "r", r.response, 0))
            else:  # nothing to predict (the reference's loss is NaN there): no model call
                sums[(i, "r")] = (0.0, 0)
        seqs.sort(key=lambda s: len(s[2]))
        embs: dict[int, Any] = {}
        batches: list[list[tuple[int, str, list[int], int]]] = []
        budget = self.batch_tokens()
        for s in seqs:
            if batches and (len(batches[-1]) + 1) * len(s[2]) <= budget:
                batches[-1].append(s)
            else:
                batches.append([s])

        def run(batch: list[tuple[int, str, list[int], int]]) -> tuple[list[Any], list[Any]]:
            return batch, self.forward([(b[2], b[3]) for b in batch], [b[1] == "c" for b in batch])

        self._load()
        # Longest batches first: the last ones, which may run while a lane idles, are the shortest.
        for batch, res in self._map(run, batches[::-1]):
            for b, (tot, cnt, emb) in zip(batch, res, strict=True):
                sums[(b[0], b[1])] = (tot, cnt)
                if emb is not None:
                    embs[b[0]] = emb
            if tick is not None:
                tick(len(batch))
        out = {}
        for i, r in enumerate(rows):
            ifd, pr, pc = _score_from_sums(sums[(i, "c")], sums[(i, "r")])
            out[r.key] = RowScore(ifd, pr, pc, embs.get(i))
        return out

    def score(self, rows: Sequence[tuple[str, str, str]],
              on_chunk: Callable[[int], None] | None = None) -> tuple[dict[str, RowScore], ScoreStats]:
        """Scores of (instruction, input, response) rows by content key, through the cache.

        Rows already cached cost nothing (the model is not even loaded). The rest are scored in
        chunks of similar length; each chunk is written as a shard before the next starts, so an
        interrupted run resumes where it stopped. Under `accelerate launch` every process scores its
        share of the missing rows and all of them read the union afterwards.
        """
        started = time.time()
        stats = ScoreStats(rows=len(rows))
        folder = self.cache_dir()
        have = load_shards(folder)
        todo: dict[str, tuple[str, str, str]] = {}
        for r in rows:
            key = row_key(*r)
            if key not in have:
                todo.setdefault(key, r)
        stats.cached = sum(1 for r in rows if row_key(*r) in have)
        state = _dist_state()
        mine = sorted(todo.values(), key=lambda r: len(r[0]) + len(r[1]) + 2 * len(r[2]))
        if state is not None and state.num_processes > 1:
            mine = mine[state.process_index:: state.num_processes]
        self._score_missing(mine, folder, on_chunk)
        if state is not None and state.num_processes > 1:
            state.wait_for_everyone()
            have = load_shards(folder)
        elif mine:
            have = load_shards(folder)
        stats.scored = len(todo)
        stats.forward_calls = self.forward_calls
        stats.seconds = round(time.time() - started, 3)
        stats.notes = {"model": self.cfg.model, "max_length": self.cfg.max_length, "cache": str(folder),
                       "device": self.device(), "dtype": str(self.dtype()).replace("torch.", "")}
        return {row_key(*r): have[row_key(*r)] for r in rows}, stats

    def _score_missing(self, rows: list[tuple[str, str, str]], folder: Path,
                       on_chunk: Callable[[int], None] | None) -> None:
        if not rows:
            return
        from tqdm.auto import tqdm

        tok = self.tokenizer()
        # The bar counts sequences (two per row) so it moves, with an ETA, after every batch.
        bar = tqdm(total=2 * len(rows), desc=f"IFD scoring {len(rows)} rows ({self.cfg.model})", unit="seq",
                   disable=not self.cfg.progress, mininterval=2.0)
        for start in range(0, len(rows), self.cfg.chunk_rows):
            chunk = rows[start: start + self.cfg.chunk_rows]
            toks = [tokenize_row(tok, *r, self.cfg.max_length) for r in chunk]
            write_shard(folder, self.score_tokenized(toks, tick=bar.update))
            bar.n = 2 * (start + len(chunk))  # rows with a one-token response have one sequence
            bar.refresh()
            if on_chunk is not None:
                on_chunk(start + len(chunk))
        bar.close()


def _logit_chunk(vocab: int, device_type: str) -> int:
    """Positions per output-layer chunk: about 16 MB of float32 logits on a CPU (cache-sized), 256 MB on a GPU."""
    budget = (1 << 22) if device_type == "cpu" else (1 << 26)
    return max(16, budget // max(vocab, 1))


def is_main_process() -> bool:
    """False in the secondary processes of an `accelerate launch` / torchrun run (RANK > 0)."""
    return int(os.environ.get("RANK", "0")) == 0


def _dist_state() -> Any:
    """accelerate's process state when launched with several processes; None otherwise."""
    if int(os.environ.get("WORLD_SIZE", "1")) <= 1:
        return None
    from accelerate import PartialState

    return PartialState()


def write_shard(folder: Path, scores: dict[str, RowScore]) -> Path:
    """One cache shard (npz): keys, the three numbers, float16 embeddings; written atomically."""
    import io

    import numpy as np

    keys = list(scores)
    embs = [scores[k].embedding for k in keys]
    dim = next((len(e) for e in embs if e is not None), 0)
    mat = np.stack([e if e is not None else np.full(dim, np.nan, np.float32) for e in embs]) if dim \
        else np.zeros((len(keys), 0), np.float32)
    buf = io.BytesIO()
    np.savez(buf, keys=np.array(keys), ifd=np.array([scores[k].ifd for k in keys]),
             ppl_response=np.array([scores[k].ppl_response for k in keys]),
             ppl_conditional=np.array([scores[k].ppl_conditional for k in keys]), emb=mat.astype(np.float16))
    name = f"{time.time_ns():x}-{os.getpid()}.npz"
    return atomic_write_bytes(Path(folder) / name, buf.getvalue())


def load_shards(folder: Path) -> dict[str, RowScore]:
    """Every score cached in `folder` (later shards win; a damaged shard is skipped and rescored)."""
    import numpy as np

    out: dict[str, RowScore] = {}
    for path in sorted(Path(folder).glob("*.npz")) if Path(folder).is_dir() else []:
        try:
            with np.load(path) as z:
                keys, ifd, pr, pc, emb = z["keys"], z["ifd"], z["ppl_response"], z["ppl_conditional"], z["emb"]
        except (OSError, ValueError, KeyError) as exc:
            log.warning("ignoring damaged score shard %s (%s); its rows will be scored again", path, exc)
            continue
        for i, k in enumerate(keys):
            vec = emb[i].astype(np.float32) if emb.shape[1] else None
            out[str(k)] = RowScore(float(ifd[i]), float(pr[i]), float(pc[i]), vec)
    return out
