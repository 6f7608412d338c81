"""Generating with the base weights of a model whose LoRA adapter serves ranking: one instance, two behaviours.

The shipped adapter ranks better than the base model but answers worse in the prompts users write (it learned
RankRAG's prompt shape only; see docs/evaluation.md). So a model can rank with its adapter and generate without
it, on the same loaded weights. The adapter stays merged (ranking runs at the base model's speed); each adapted
``Linear`` gets a forward hook that, only inside :meth:`AdapterBypass.active` and only in the thread that
entered it, subtracts the adapter's low-rank term ``scale * B(A(x))`` from its output. Other threads (a
concurrent scoring call, say) keep seeing the adapted model, so no lock is needed.

The subtraction gives the base model's outputs up to float rounding (measured: logits within 1e-4 of the base
model's in float32, ``tests/core/test_adapter_bypass.py``), not bit for bit.
"""

from __future__ import annotations

import threading
import weakref
from collections.abc import Iterator
from contextlib import AbstractContextManager, contextmanager, nullcontext
from dataclasses import dataclass
from typing import cast

import torch
from torch import nn

_BYPASSES: weakref.WeakKeyDictionary[nn.Module, AdapterBypass] = weakref.WeakKeyDictionary()


@dataclass(frozen=True)
class LowRankDelta:
    """The term a LoRA layer adds to its base output: ``scale * x @ a.T @ b.T``."""

    a: torch.Tensor
    b: torch.Tensor
    scale: float


class AdapterBypass:
    """Forward hooks that remove the adapter's contribution in the threads that ask for the base weights."""

    def __init__(self, deltas: dict[nn.Module, LowRankDelta]) -> None:
        self._local = threading.local()
        self._handles = [module.register_forward_hook(self._hook(delta)) for module, delta in deltas.items()]
        self.layers = len(deltas)

    def _hook(self, delta: LowRankDelta):  # type: ignore[no-untyped-def]  # torch's hook signature
        def remove_adapter(module: nn.Module, inputs: tuple[torch.Tensor, ...], output: torch.Tensor) -> torch.Tensor:
            if not getattr(self._local, "active", False):
                return output
            x = inputs[0].to(delta.a.dtype)
            low_rank = nn.functional.linear(nn.functional.linear(x, delta.a), delta.b) * delta.scale
            return output - low_rank.to(output.dtype)

        return remove_adapter

    @contextmanager
    def active(self) -> Iterator[None]:
        """Inside this block, forward passes in the current thread run on the base weights."""
        previous = getattr(self._local, "active", False)
        self._local.active = True
        try:
            yield
        finally:
            self._local.active = previous


def collect_deltas(peft_model: nn.Module) -> dict[str, LowRankDelta]:
    """The low-rank terms of every LoRA layer of a peft model, keyed by the layer's name in the unwrapped model
    (``merge_and_unload`` returns the inner model, whose names lack peft's ``base_model.model.`` prefix)."""
    deltas = {}
    for name, module in peft_model.named_modules():
        lora_a = getattr(module, "lora_A", None)
        lora_b = getattr(module, "lora_B", None)
        if not isinstance(lora_a, nn.ModuleDict) or "default" not in lora_a or lora_b is None:
            continue
        scale = float(module.scaling["default"])  # type: ignore[index]  # peft's LoraLayer.scaling is a dict
        a = cast(nn.Linear, lora_a["default"]).weight.detach().float().clone()
        b = cast(nn.Linear, cast(nn.ModuleDict, lora_b)["default"]).weight.detach().float().clone()
        deltas[name.removeprefix("base_model.model.")] = LowRankDelta(a=a, b=b, scale=scale)
    return deltas


def install(model: nn.Module, deltas: dict[str, LowRankDelta]) -> AdapterBypass:
    """Hook the named layers of ``model`` (merged or still wrapped by peft) and remember the bypass for it."""
    prefix = "base_model.model." if any(n.startswith("base_model.model.") for n, _ in model.named_modules()) else ""
    device = next(model.parameters()).device
    resolved = {
        model.get_submodule(prefix + name): LowRankDelta(delta.a.to(device), delta.b.to(device), delta.scale)
        for name, delta in deltas.items()
    }
    bypass = AdapterBypass(resolved)
    _BYPASSES[model] = bypass
    return bypass


def bypass_for(model: nn.Module | None) -> AdapterBypass | None:
    """The bypass installed on ``model``, or None when it was loaded without an adapter (or holds no weights)."""
    return None if model is None else _BYPASSES.get(model)


def base_weights(model: nn.Module) -> AbstractContextManager[None]:
    """A context in which the current thread generates with ``model``'s base weights (a no-op without adapter)."""
    bypass = bypass_for(model)
    return bypass.active() if bypass is not None else nullcontext()
