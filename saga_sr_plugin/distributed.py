"""This process's share of a job that ``torchrun`` (or SLURM through it) launched on many processes.

The package never launches processes itself: ``torchrun --nproc-per-node N`` (one per GPU, or
CPU processes) sets ``RANK``, ``WORLD_SIZE`` and ``LOCAL_RANK``, and :func:`current_share`
reads them through ``torch.distributed``. The process group is gloo: it only coordinates
(a barrier before a merge, small Python objects gathered to rank 0), so it works the same
with or without GPUs. A plain ``python`` run is the share 0 of 1 and needs no group.
"""
from __future__ import annotations

import dataclasses
import os
import typing as tp

T = tp.TypeVar("T")


@dataclasses.dataclass(frozen=True)
class Share:
    """Rank ``rank`` of ``world`` processes; ``local_rank`` picks the GPU on its node. ``grouped``: the ranks
    share a process group (torchrun); a share picked by hand (``--shard 2/8``) runs alone."""

    rank: int = 0
    world: int = 1
    local_rank: int = 0
    grouped: bool = False

    @property
    def distributed(self) -> bool:
        return self.world > 1

    @property
    def is_first(self) -> bool:
        return self.rank == 0

    def take(self, items: tp.Sequence[T]) -> list[T]:
        """Every ``world``-th item from ``rank``: the shares are disjoint and cover ``items``."""
        return list(items[self.rank::self.world])

    def device(self, requested: str = "auto") -> str:
        """``auto``: this rank's GPU (``cuda:LOCAL_RANK``) when there is one, else the CPU."""
        if requested != "auto":
            return requested
        import torch

        return f"cuda:{self.local_rank % max(torch.cuda.device_count(), 1)}" if torch.cuda.is_available() else "cpu"

    def barrier(self) -> None:
        if self.grouped:
            import torch.distributed as dist

            dist.barrier()

    def gather(self, value: T) -> list[T] | None:
        """Every rank's ``value`` on rank 0 (in rank order); ``None`` on the other ranks."""
        if not self.grouped:
            return [value]
        import torch.distributed as dist

        out: list[T] | None = [None] * self.world if self.is_first else None  # type: ignore[list-item]
        dist.gather_object(value, out, dst=0)
        return out

    def describe(self) -> str:
        return f"rank {self.rank} of {self.world}" if self.distributed else "one process"


def current_share() -> Share:
    """The share ``torchrun`` gave this process (joining its gloo group once), or 0 of 1."""
    world = int(os.environ.get("WORLD_SIZE", "1"))
    local_rank = int(os.environ.get("LOCAL_RANK", "0"))
    if world <= 1:
        return Share(0, 1, local_rank)
    import torch.distributed as dist

    if not dist.is_initialized():
        dist.init_process_group("gloo")
    return Share(dist.get_rank(), dist.get_world_size(), local_rank, grouped=True)


def parse_share(spec: str) -> Share:
    """``INDEX/COUNT`` (a share picked by hand, e.g. one SLURM array task) or ``auto`` (torchrun's)."""
    if spec == "auto":
        return current_share()
    try:
        index, count = (int(v) for v in spec.split("/"))
    except ValueError as err:
        raise ValueError(f"--shard must be INDEX/COUNT (e.g. 0/4) or auto, got {spec!r}") from err
    if count < 1 or not 0 <= index < count:
        raise ValueError(f"--shard {spec}: index must be in 0..{count - 1}")
    return Share(index, count)
