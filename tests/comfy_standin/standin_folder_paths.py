"""Stand-in for ComfyUI's folder_paths (tests only): registered model folders under a temp root."""

from __future__ import annotations

import atexit
import os
import shutil
import tempfile

supported_pt_extensions = {".ckpt", ".pt", ".pt2", ".bin", ".pth", ".safetensors", ".pkl", ".sft"}
base_path = tempfile.mkdtemp(prefix="glyphsr_comfy_standin_")
atexit.register(shutil.rmtree, base_path, ignore_errors=True)
models_dir = os.path.join(base_path, "models")
output_directory = os.path.join(base_path, "output")
input_directory = os.path.join(base_path, "input")
temp_directory = os.path.join(base_path, "temp")

folder_names_and_paths: dict[str, tuple[list[str], set[str]]] = {
    "checkpoints": ([os.path.join(models_dir, "checkpoints")], supported_pt_extensions),
    "controlnet": ([os.path.join(models_dir, "controlnet"), os.path.join(models_dir, "t2i_adapter")],
                   supported_pt_extensions),
    "upscale_models": ([os.path.join(models_dir, "upscale_models")], supported_pt_extensions),
}


def add_model_folder_path(folder_name: str, full_folder_path: str, is_default: bool = False) -> None:
    paths, exts = folder_names_and_paths.setdefault(folder_name, ([], set()))
    if full_folder_path in paths:
        return
    if is_default:
        paths.insert(0, full_folder_path)
    else:
        paths.append(full_folder_path)


def get_folder_paths(folder_name: str) -> list[str]:
    return folder_names_and_paths[folder_name][0][:]


def get_filename_list(folder_name: str) -> list[str]:
    paths, exts = folder_names_and_paths[folder_name]
    found = set()
    for root_dir in paths:
        if not os.path.isdir(root_dir):
            continue
        for dirpath, _dirs, files in os.walk(root_dir, followlinks=True):
            for name in files:
                if not exts or os.path.splitext(name)[1].lower() in exts:
                    found.add(os.path.relpath(os.path.join(dirpath, name), root_dir).replace(os.sep, "/"))
    return sorted(found)


def get_full_path(folder_name: str, filename: str) -> str | None:
    if folder_name not in folder_names_and_paths:
        return None
    for root_dir in folder_names_and_paths[folder_name][0]:
        candidate = os.path.join(root_dir, os.path.normpath("/" + filename).lstrip(os.sep))
        if os.path.isfile(candidate):
            return candidate
    return None


def get_full_path_or_raise(folder_name: str, filename: str) -> str:
    path = get_full_path(folder_name, filename)
    if path is None:
        raise FileNotFoundError(f"Model in folder '{folder_name}' with filename '{filename}' not found.")
    return path


def get_output_directory() -> str:
    return output_directory


def get_input_directory() -> str:
    return input_directory


def get_temp_directory() -> str:
    return temp_directory
