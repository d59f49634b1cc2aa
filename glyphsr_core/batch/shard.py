"""Many processes on one machine: under `accelerate launch` (or torchrun) each process takes every
N-th job, on its own device, and the first waits for the others before merging the manifest.

The launcher is recognised by the variables it sets (RANK, WORLD_SIZE, LOCAL_RANK,
LOCAL_WORLD_SIZE); without them (or with WORLD_SIZE 1) nothing changes. The processes meet at the
start and twice at the end (jobs done; manifest merged) through gloo barriers (`torch.distributed`,
CPU-side, with a timeout no run reaches), which work whether the images run on GPUs or CPUs.
"""

from __future__ import annotations

import datetime
import os
from dataclasses import dataclass
from typing import Sequence, TypeVar

T = TypeVar("T")


@dataclass(frozen=True)
class Shard:
    """This process's place among the launcher's processes (the defaults: a single process)."""

    rank: int = 0
    world_size: int = 1
    local_rank: int = 0
    local_world_size: int = 1

    @property
    def active(self) -> bool:
        return self.world_size > 1

    def take(self, jobs: Sequence[T]) -> list[T]:
        """This process's jobs: every `world_size`-th, starting at `rank` (the same order in every process)."""
        return list(jobs[self.rank::self.world_size])


def detect_shard() -> Shard:
    """The launcher's rank and size, or a single process."""
    def number(name: str, default: int) -> int:
        value = os.environ.get(name, "")
        return int(value) if value.strip().isdigit() else default

    world = number("WORLD_SIZE", 1)
    if world <= 1:
        return Shard()
    rank = number("RANK", 0)
    return Shard(rank, world, number("LOCAL_RANK", rank), number("LOCAL_WORLD_SIZE", world))


def device_for(shard: Shard) -> str | None:
    """cuda:LOCAL_RANK when CUDA is there, else cpu; None (the command's own default) for one process.
    On the CPU the cores are shared: torch threads = cores / processes on this machine (at least 1)."""
    if not shard.active:
        return None
    import torch

    if torch.cuda.is_available():
        return f"cuda:{shard.local_rank % torch.cuda.device_count()}"
    torch.set_num_threads(max(1, (os.cpu_count() or 1) // shard.local_world_size))
    return "cpu"


def join(shard: Shard) -> None:
    """Meet the other processes (the launcher's rendezvous); a no-op for one process."""
    if not shard.active:
        return
    import torch.distributed as dist

    if not dist.is_initialized():
        dist.init_process_group("gloo", rank=shard.rank, world_size=shard.world_size,
                                timeout=datetime.timedelta(days=7))


def wait_for_everyone(shard: Shard) -> None:
    """Block until every process got here (a no-op for one process)."""
    if shard.active:
        import torch.distributed as dist

        dist.barrier()


def leave(shard: Shard) -> None:
    if shard.active:
        import torch.distributed as dist

        if dist.is_initialized():
            dist.destroy_process_group()
