"""Many LoRA adapters in one forward pass: every adapter's factors stacked, one batched matmul pair per layer.

PEFT's mixed batches (``adapter_names=[...]``) run each targeted layer once per adapter, on that
adapter's rows: with 8 adapters over minilm's 37 LoRA layers that is ~1,800 small ops per forward
pass, more than the base model's own cost: 8-adapter mixed batches served far fewer texts/s than
one merged adapter (figures: benchmarks/README.md, Measurements behind the code). Here each layer
holds the factors of all adapters stacked,

    A: [adapters, in, r]      B: [adapters, r, out]  (B scaled by each adapter's scaling)

and a batch whose row ``i`` belongs to adapter ``k_i`` adds ``(x_i A[k_i]) B[k_i]`` to the base
output with two batched matmuls over the rows' gathered factors: the work of one adapter, whatever
the number of adapters in the batch. Ranks that differ between adapters are zero-padded to the
largest in the layer. Each adapter's head (PEFT's ``modules_to_save``) runs on its own rows.

Where the model is ours alone (the bf16 twin of lorakit.infer.engine) and the adapters' ranks add
up to at most half the layer's width, the LoRA branch goes inside the base matmul instead:

    y = [x | (x A_all) ⊙ M[row]] · [W | B_all]ᵀ + bias

(``M[row]`` keeps the row's own rank columns): the output is written once. On a CPU with AMX,
writing and adding a second output costs about as much as a small layer's matmul, so mixed batches
come closer to one merged adapter's speed this way than with the gathered branch (figures:
benchmarks/README.md, Measurements behind the code).

PEFT still loads the adapters (key names, rank patterns, rsLoRA and AdaLoRA scalings); its
adapter layers are switched off while stacked and only hold the weights the stacks are built from.
"""

from contextlib import contextmanager

import torch
import torch.nn.functional as F
from peft.tuners.adalora.layer import SVDLinear
from peft.tuners.lora.layer import Linear as LoraLinear
from peft.utils.other import ModulesToSaveWrapper


def factors(layer, name: str) -> tuple[torch.Tensor, torch.Tensor] | None:
    """(A [r, in], s·B [out, r]) of adapter ``name`` in ``layer``, None where it has none there."""
    if name not in layer.lora_A:
        return None
    if isinstance(layer, SVDLinear):  # AdaLoRA: B (A ⊙ E) · scaling / ranknum, as PEFT computes it
        scale = layer.scaling[name] / (layer.ranknum[name] + 1e-5)
        return layer.lora_A[name] * layer.lora_E[name], layer.lora_B[name] * scale
    return layer.lora_A[name].weight, layer.lora_B[name].weight * layer.scaling[name]


def unstackable(model, name: str) -> str | None:
    """Why adapter ``name`` cannot join a stack (None when it can)."""
    for path, m in model.named_modules():
        if not hasattr(m, "lora_A") or name not in m.lora_A:
            continue
        if not isinstance(m, (LoraLinear, SVDLinear)):
            return f"{path} is a {type(m).__name__} LoRA layer"
        if (variant := m.lora_variant.get(name)) is not None:
            return "it is a DoRA adapter" if "Dora" in type(variant).__name__ else f"it uses {type(variant).__name__}"
        if m.lora_bias.get(name):
            return "it trains LoRA biases"
    return None


class Fused(torch.nn.Module):
    """A base Linear whose weight carries every adapter's B factors as extra input columns.

    Where the layer narrows (in > out, BERT's output.dense), widening its large input costs more
    than a second pass over its small output: there the branch is added to the output in place.
    """

    def __init__(self, base: torch.nn.Linear, a: torch.Tensor, b: torch.Tensor, mask: torch.Tensor, stacks: "Stacks"):
        super().__init__()
        self.in_features, self.out_features = base.in_features, base.out_features
        self.widen = base.in_features <= base.out_features
        if self.widen:
            self.weight = torch.cat([base.weight.detach(), b.t()], dim=1)  # [out, in + all ranks]
            base.weight.data = self.weight[:, :self.in_features]  # the base layer now reads the same memory
        else:
            self.weight, self.b = base.weight.detach(), b  # b: [all ranks, out]
        self.bias = None if base.bias is None else base.bias.detach()
        self.a, self.mask, self.stacks = a, mask, stacks

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        if self.stacks._rows is None:
            return F.linear(x, self.weight[:, :self.in_features], self.bias)
        h = (x @ self.a).mul_(self.stacks.keep(self.mask, x.dim()))
        if self.widen:
            return F.linear(torch.cat([x, h], dim=-1), self.weight, self.bias)
        y = F.linear(x, self.weight, self.bias)
        y.view(-1, self.out_features).addmm_(h.view(-1, h.shape[-1]), self.b)
        return y


class Stacks:
    """The stacked factors of a PEFT model's adapters: forward hooks, or fused base layers (``fuse``)."""

    def __init__(self, model, fuse: bool = False):
        self.model = model
        self.fuse = fuse  # only for a model nobody else uses: its base layers are swapped while stacked
        self.slots: dict[str, int] = {}
        self._rows: torch.Tensor | None = None  # adapter slot of each row, while a batch runs
        self._layers: dict[torch.nn.Module, tuple[torch.Tensor, torch.Tensor]] = {}
        self._heads: list[ModulesToSaveWrapper] = []
        self._hooks = []
        self._swapped: list[tuple[torch.nn.Module, torch.nn.Module]] = []  # (LoRA layer, its own base layer)
        self._keep: dict = {}  # the rows' masks of the running batch, by (mask, input rank)

    def build(self, names: list[str]) -> None:
        """(Re)build the stacks for ``names`` in that order; every other adapter is ignored."""
        self.close()
        self.slots = {n: i for i, n in enumerate(names)}
        masks: dict[int, torch.Tensor] = {}
        for m in self.model.modules():
            if isinstance(m, (LoraLinear, SVDLinear)):
                parts = {i: f for i, n in enumerate(names) if (f := factors(m, n)) is not None}
                r = max((a.shape[0] for a, _ in parts.values()), default=0)
                if r == 0:
                    continue
                base = m.get_base_layer()
                a = base.weight.new_zeros(len(names), m.in_features, r)
                b = base.weight.new_zeros(len(names), r, m.out_features)
                for i, (ai, bi) in parts.items():
                    a[i, :, :ai.shape[0]] = ai.detach().t()
                    b[i, :bi.shape[1]] = bi.detach().t()
                if self.fuse and isinstance(base, torch.nn.Linear) and 2 * r * len(names) <= min(m.in_features, m.out_features):
                    if r not in masks:  # [adapters, adapters x r], one per rank: shared by the layers
                        masks[r] = torch.block_diag(*[base.weight.new_ones(1, r)] * len(names))
                    fused = Fused(base, a.permute(1, 0, 2).reshape(m.in_features, -1), b.reshape(-1, m.out_features),
                                  masks[r], self)
                    self._swapped.append((m, base))
                    m.base_layer = fused
                    continue
                self._layers[m] = (a, b)
                self._hooks.append(m.register_forward_hook(self._lora_hook))
            elif isinstance(m, ModulesToSaveWrapper):
                self._heads.append(m)
                self._hooks.append(m.register_forward_hook(self._head_hook))
        self.model.base_model.disable_adapter_layers()

    def close(self) -> None:
        """Remove the hooks and switch PEFT's adapter layers back on."""
        for h in self._hooks:
            h.remove()
        for layer, base in self._swapped:
            layer.base_layer = base
        self._hooks, self._layers, self._heads, self.slots, self._swapped = [], {}, [], {}, []
        self.model.base_model.enable_adapter_layers()

    @contextmanager
    def rows(self, names: list[str]):
        """Run the batch whose row ``i`` belongs to adapter ``names[i]``."""
        self._rows = torch.tensor([self.slots[n] for n in names])
        try:
            yield
        finally:
            self._rows = None
            self._keep = {}

    def keep(self, mask: torch.Tensor, dim: int) -> torch.Tensor:
        """Each row's mask, shaped to multiply an input of ``dim`` dimensions; once per batch."""
        key = (id(mask), dim)
        if key not in self._keep:
            self._keep[key] = mask[self._rows].view(len(self._rows), *([1] * (dim - 2)), -1)
        return self._keep[key]

    def _lora_hook(self, layer, args, out):
        if self._rows is None:
            return None
        x = args[0]
        a, b = self._layers[layer]
        rows = x.reshape(x.shape[0], -1, x.shape[-1])  # [batch, tokens, in]; a pooler's input has no tokens
        delta = torch.bmm(torch.bmm(rows, a[self._rows]), b[self._rows])
        return out + delta.view(out.shape)

    def _head_hook(self, wrapper, args, out):
        if self._rows is None:
            return None
        x = args[0]
        out = out.clone()
        for name, slot in self.slots.items():
            if name in wrapper.modules_to_save and (idx := (self._rows == slot).nonzero().flatten()).numel():
                out[idx] = wrapper.modules_to_save[name](x[idx])
        return out
