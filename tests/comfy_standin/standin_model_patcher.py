"""Stand-in for comfy.model_patcher (tests only): the classic ModelPatcher's loading contract.

Like the real one it assigns `model.device` on construction (when missing) and on every load or
unload, so a transformers model passed in directly fails here too (its `.device` is read-only).
"""

from __future__ import annotations

import torch


class ModelPatcher:
    def __init__(self, model: torch.nn.Module, load_device, offload_device, size: int = 0,
                 weight_inplace_update: bool = False):
        self.model = model
        self.load_device = load_device
        self.offload_device = offload_device
        self.size = size
        self.parent = None
        #: devices this patcher moved the model to, in order (for assertions)
        self.moves: list[torch.device] = []
        if not hasattr(model, "device"):
            model.device = offload_device

    def is_dynamic(self) -> bool:
        return False

    def model_size(self) -> int:
        if self.size > 0:
            return self.size
        return sum(t.nelement() * t.element_size() for t in self.model.state_dict().values())

    def patch_model(self, device_to=None, lowvram_model_memory=0, load_weights=True, force_patch_weights=False):
        if device_to is not None:
            self.model.to(device_to)
            self.model.device = device_to
            self.moves.append(torch.device(device_to))
        return self.model

    def detach(self, unpatch_all: bool = True):
        self.model.to(self.offload_device)
        self.model.device = self.offload_device
        self.moves.append(torch.device(self.offload_device))
        return self.model
