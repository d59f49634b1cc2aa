"""Stand-in for comfy.model_management (tests only): devices, interrupts, model loading."""

from __future__ import annotations

import torch


class InterruptProcessingException(Exception):
    pass


interrupt_processing = False
#: every call of load_models_gpu, recorded for assertions: (models, kwargs)
load_calls: list[tuple[list, dict]] = []


def interrupt_current_processing(value: bool = True) -> None:
    global interrupt_processing
    interrupt_processing = value


def processing_interrupted() -> bool:
    return interrupt_processing


def throw_exception_if_processing_interrupted() -> None:
    global interrupt_processing
    if interrupt_processing:
        interrupt_processing = False
        raise InterruptProcessingException()


def get_torch_device() -> torch.device:
    return torch.device("cpu")


def intermediate_device() -> torch.device:
    return torch.device("cpu")


def unet_offload_device() -> torch.device:
    return torch.device("cpu")


def text_encoder_device() -> torch.device:
    return torch.device("cpu")


def text_encoder_offload_device() -> torch.device:
    return torch.device("cpu")


def should_use_fp16(device=None, model_params=0, prioritize_performance=True, manual_cast=False) -> bool:
    return False


def should_use_bf16(device=None, model_params=0, prioritize_performance=True, manual_cast=False) -> bool:
    return False


def module_size(module: torch.nn.Module) -> int:
    return sum(t.nelement() * t.element_size() for t in module.state_dict().values())


def load_models_gpu(models, memory_required=0, force_patch_weights=False, minimum_memory_required=None,
                    force_full_load=False) -> None:
    load_calls.append((list(models), {"memory_required": memory_required, "force_full_load": force_full_load}))
    for model in models:
        loader = getattr(model, "patch_model", None)
        if loader is not None:
            loader(device_to=model.load_device)


def soft_empty_cache(force: bool = False) -> None:
    pass
