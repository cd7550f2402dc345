"""NEFTune: uniform noise on the input embeddings during training (Jain et al., arXiv 2310.05914).

Three scalings, each a named option (``neftune_scaling``):

* ``reference`` (default): the paper's Algorithm 1 as its authors run it on padded batches. Each
  example i gets noise drawn from U(-1, 1) * alpha / sqrt(L_i * d), where L_i is the example's own
  number of real tokens and d the embedding width; padding positions get no noise. Under packing
  (several examples in one row, marked by ``position_ids`` restarting at 0) every packed example
  is scaled by its own length, which is what transformers issue #34659 asks for.
* ``hf``: transformers' built-in hook: alpha / sqrt(T * d) with T the padded row length, and
  noise on padding as well. Kept for comparison with runs made with ``neftune_noise_alpha``.
* ``padded``: what the "Long Is More" authors' runs got. Their FastChat trainer pads every example
  to ``model_max_length`` and transformers' hook then scales by that padded length, so every token
  gets alpha / sqrt(max_length * d), whatever the example's length or the batch it lands in. We
  give real tokens exactly that magnitude and leave padding alone (their padding got noise too, but
  it is masked out of attention and loss, so it changes nothing the model learns).

The noise is added by a forward hook on the input embedding that acts only while the embedding
module is in training mode, so evaluation, generation and the IFS callback see clean embeddings.
"""

from __future__ import annotations

from typing import Any

from harness_ext.core.errors import ConfigError


def token_lengths(mask, position_ids=None):
    """For each real token, the number of real tokens in its sequence ([B, T] long; 0 on padding).

    `mask` is the attention mask (1 = real token). With `position_ids`, a row may pack several
    sequences: a new sequence starts wherever the position id is 0.
    """
    import torch

    mask = mask.long()
    if position_ids is None:
        return mask.sum(dim=1, keepdim=True) * mask
    starts = (position_ids == 0).long() * mask
    seg = torch.cumsum(starts, dim=1)  # segment id per token; 0 = tokens before the first start
    counts = torch.zeros(mask.size(0), mask.size(1) + 1, dtype=torch.long, device=mask.device)
    counts.scatter_add_(1, seg, mask)
    return counts.gather(1, seg) * mask


SCALINGS = ("reference", "hf", "padded")


def noise_scale(scaling: str, alpha: float, mask, position_ids, width: int, max_length: int | None = None):
    """Per-token noise magnitude ([B, T] float32): the half-width of the uniform noise.

    `max_length` is the length every row is taken to be padded to under the ``padded`` scaling."""
    import torch

    if scaling == "padded":
        if not max_length:
            raise ConfigError("neftune_scaling='padded' needs the max_length rows are padded to.")
        return alpha / (max_length * width) ** 0.5 * mask.float()
    if scaling == "hf":
        value = alpha / (mask.size(1) * width) ** 0.5
        return torch.full(mask.shape, value, dtype=torch.float32, device=mask.device)
    lengths = token_lengths(mask, position_ids).float().clamp(min=1.0)
    return alpha / torch.sqrt(lengths * width) * mask.float()


def from_config(config) -> NEFTune | None:
    """The hook a TrainConfig asks for (alpha, scaling, and max_length for ``padded``), or None when off."""
    if not config.neftune_alpha:
        return None
    return NEFTune(config.neftune_alpha, config.neftune_scaling, config.max_length)


class NEFTune:
    """A NEFTune hook pair attached to a model; `detach()` removes it."""

    def __init__(self, alpha: float, scaling: str = "reference", max_length: int | None = None) -> None:
        if scaling not in SCALINGS:
            raise ConfigError(f"neftune_scaling='{scaling}' is not allowed.", hint=f"use one of: {', '.join(SCALINGS)}")
        if scaling == "padded" and not (max_length and max_length > 0):
            raise ConfigError(f"neftune_scaling='padded' needs a positive max_length, got {max_length!r}.",
                              hint="set max_length to the length the authors padded to (2048 for the 1k recipe).")
        self.alpha = float(alpha)
        self.scaling = scaling
        self.max_length = max_length
        self._batch: dict[str, Any] = {}
        self._handles: list[Any] = []
        self.last_scale = None  # the per-token magnitude of the last noisy call (read by tests, logs)

    def attach(self, model) -> NEFTune:
        """Hook `model` (a transformers model, possibly wrapped by peft) and return self."""
        embedding = model.get_input_embeddings()
        # The embedding sees only input_ids; the model call carries the mask and position ids.
        self._handles.append(model.register_forward_pre_hook(self._capture, with_kwargs=True))
        self._handles.append(embedding.register_forward_hook(self._add_noise))
        return self

    def detach(self) -> None:
        for handle in self._handles:
            handle.remove()
        self._handles.clear()

    def _capture(self, module, args, kwargs):
        self._batch = {"attention_mask": kwargs.get("attention_mask"), "position_ids": kwargs.get("position_ids")}

    def _add_noise(self, module, inputs, output):
        import torch

        if not module.training or self.alpha == 0:
            return output
        batch, self._batch = self._batch, {}
        mask = batch.get("attention_mask")
        position_ids = batch.get("position_ids")
        shape = output.shape[:2]
        if mask is None or mask.dim() != 2 or tuple(mask.shape) != tuple(shape):
            mask = torch.ones(shape, dtype=torch.long, device=output.device)
        if position_ids is not None and tuple(position_ids.shape) != tuple(shape):
            position_ids = None
        scale = noise_scale(self.scaling, self.alpha, mask, position_ids, output.size(-1), self.max_length)
        self.last_scale = scale.detach()
        noise = torch.empty(output.shape, dtype=torch.float32, device=output.device).uniform_(-1.0, 1.0)
        return output + (noise * scale.unsqueeze(-1)).to(output.dtype)
