"""Two roles on one loaded base: the ranker scores passages, the answerer generates, each with its own LoRA adapter
(or none).

RankRAG trains one adapter for both jobs; a small model does better with one per job (the shipped ranking adapter
answered worse than the base in the prompts users write, docs/evaluation.md). Both roles share the base weights.
The ranker's adapter is merged into them, so ranking, which runs most of the forward passes, costs what the base
costs. Each ``Linear`` that another role's adapter (or the merged one) touches gets one forward hook: in a thread
working in that role (:meth:`RoleWeights.active`), it adds the role's low-rank term and removes the merged one,
``x @ A.T @ B.T`` with both terms stacked into one ``(A, B)`` pair, so a hooked layer costs two thin matmuls.
Other threads see the merged weights untouched, so scoring and generating at once need no lock.

The result equals the role's own weights up to float rounding (logits within 1e-4 of a model with that adapter
merged, in float32: ``tests/core/test_roles.py``), not bit for bit.
"""

from __future__ import annotations

import threading
import weakref
from collections.abc import Iterator, Mapping
from contextlib import AbstractContextManager, contextmanager, nullcontext
from dataclasses import dataclass
from typing import Literal, cast

import torch
from torch import nn

Role = Literal["ranker", "answerer"]
ROLES: tuple[Role, ...] = ("ranker", "answerer")
# The role whose adapter is merged into the loaded weights (the one that runs the most forward passes).
MERGED_ROLE: Role = "ranker"
_ROLE_WEIGHTS: weakref.WeakKeyDictionary[nn.Module, RoleWeights] = weakref.WeakKeyDictionary()


@dataclass(frozen=True)
class LowRankDelta:
    """The term a LoRA layer adds to its base output: ``scale * x @ a.T @ b.T``."""

    a: torch.Tensor
    b: torch.Tensor
    scale: float

    def folded(self, sign: float = 1.0) -> LowRankDelta:
        """The same term with ``sign * scale`` folded into ``b``."""
        return LowRankDelta(self.a, self.b * (sign * self.scale), 1.0)


def switch_delta(target: LowRankDelta | None, merged: LowRankDelta | None) -> LowRankDelta | None:
    """One low-rank pair that turns a layer with ``merged`` into one with ``target``: ``+target - merged``."""
    terms = [d for d in (target.folded() if target else None, merged.folded(-1.0) if merged else None) if d]
    if not terms:
        return None
    return LowRankDelta(torch.cat([d.a for d in terms]), torch.cat([d.b for d in terms], dim=1), 1.0)


class RoleWeights:
    """Forward hooks that give each thread the weights of the role it works in (see :meth:`active`)."""

    def __init__(self, switches: Mapping[Role, Mapping[nn.Module, LowRankDelta]]) -> None:
        self._local = threading.local()
        self._switches = {role: dict(layers) for role, layers in switches.items()}
        modules = {module for layers in self._switches.values() for module in layers}
        self._handles = [module.register_forward_hook(self._hook(module)) for module in modules]
        self.layers = {role: len(layers) for role, layers in self._switches.items()}

    def _hook(self, module: nn.Module):  # type: ignore[no-untyped-def]  # torch's hook signature
        def switch_role(_: nn.Module, inputs: tuple[torch.Tensor, ...], output: torch.Tensor) -> torch.Tensor:
            role = getattr(self._local, "role", None)
            delta = self._switches[role].get(module) if role in self._switches else None
            if delta is None:
                return output
            x = inputs[0].to(delta.a.dtype)
            low_rank = nn.functional.linear(nn.functional.linear(x, delta.a), delta.b)
            return output + low_rank.to(output.dtype)

        return switch_role

    @contextmanager
    def active(self, role: Role) -> Iterator[None]:
        """Inside this block, forward passes in the current thread run on ``role``'s weights."""
        previous = getattr(self._local, "role", None)
        self._local.role = role
        try:
            yield
        finally:
            self._local.role = previous

    def remove(self) -> None:
        for handle in self._handles:
            handle.remove()


def collect_deltas(peft_model: nn.Module, adapter_name: str) -> dict[str, LowRankDelta]:
    """The low-rank terms of one adapter of a peft model, keyed by the layer's name in the unwrapped model
    (``merge_and_unload`` returns the inner model, whose names lack peft's ``base_model.model.`` prefix)."""
    deltas = {}
    for name, module in peft_model.named_modules():
        lora_a = getattr(module, "lora_A", None)
        lora_b = getattr(module, "lora_B", None)
        if not isinstance(lora_a, nn.ModuleDict) or adapter_name not in lora_a or lora_b is None:
            continue
        if getattr(module, "use_dora", {}).get(adapter_name, False):
            raise ValueError(f"adapter {adapter_name!r} uses DoRA, which roles cannot switch per thread; use LoRA")
        scale = float(module.scaling[adapter_name])  # type: ignore[index]  # peft's LoraLayer.scaling is a dict
        a = cast(nn.Linear, lora_a[adapter_name]).weight.detach().float().clone()
        b = cast(nn.Linear, cast(nn.ModuleDict, lora_b)[adapter_name]).weight.detach().float().clone()
        deltas[name.removeprefix("base_model.model.")] = LowRankDelta(a=a, b=b, scale=scale)
    return deltas


def install(
    model: nn.Module, deltas: Mapping[Role, Mapping[str, LowRankDelta]], merged_role: Role | None
) -> RoleWeights | None:
    """Hook ``model`` (the ``merged_role``'s adapter merged, or still wrapped by peft) so that each role in
    ``deltas`` (role -> that role's adapter terms by layer name; a role absent has no adapter) can be switched to
    per thread. Returns None when every role already has the loaded weights."""
    prefix = "base_model.model." if any(n.startswith("base_model.model.") for n, _ in model.named_modules()) else ""
    device = next(model.parameters()).device
    merged = deltas.get(merged_role, {}) if merged_role is not None else {}
    switches: dict[Role, dict[nn.Module, LowRankDelta]] = {}
    for role in ROLES:
        if role == merged_role:
            continue
        own = deltas.get(role, {})
        layers = {}
        for name in sorted({*own, *merged}):
            switch = switch_delta(own.get(name), merged.get(name))
            if switch is not None:
                layers[model.get_submodule(prefix + name)] = LowRankDelta(switch.a.to(device), switch.b.to(device), 1.0)
        if layers:
            switches[role] = layers
    if not switches:
        return None
    role_weights = RoleWeights(switches)
    _ROLE_WEIGHTS[model] = role_weights
    return role_weights


def role_weights_for(model: nn.Module | None) -> RoleWeights | None:
    """The role switch installed on ``model``, or None when all roles have the loaded weights."""
    return None if model is None else _ROLE_WEIGHTS.get(model)


def weights_of(model: nn.Module, role: Role) -> AbstractContextManager[None]:
    """A context in which the current thread runs ``model`` with ``role``'s weights."""
    role_weights = role_weights_for(model)
    return role_weights.active(role) if role_weights is not None else nullcontext()
