"""Work on an image list in fixed chunks, each with its own random stream, shared out over processes.

The images are cut into consecutive chunks of ``chunk_size`` (the ``--batch-size``),
whatever the number of processes. Chunk ``c`` draws its randomness (random starts,
AutoAttack's seed) from :func:`chunk_seed` ``(seed, c)``, so every image meets the same
random numbers in the same batch whether one process does every chunk or N processes
share them. :func:`map_chunks` gives chunk ``c`` to process ``c % N``; the processes go
through the chunks in rounds of N and agree after each round (a failure anywhere stops
every process within one chunk), then every process receives every chunk's rows.
"""

from __future__ import annotations

from typing import Callable

import numpy as np
import torch

from semprobe.distributed import Processes


def derive_seed(*parts: int) -> int:
    """A 32-bit seed from integers (numpy SeedSequence): one independent stream per tuple (also the
    trainers' streams, trainers.validation)."""
    return int(np.random.SeedSequence([int(p) for p in parts]).generate_state(1)[0])


def chunk_seed(seed: int, chunk: int) -> int:
    """The seed of chunk ``chunk``'s random stream: :func:`derive_seed` of ``(seed, chunk)``."""
    return derive_seed(seed, chunk)


def chunk_generator(seed: int, chunk: int, device: torch.device | str) -> torch.Generator:
    """A generator on ``device`` seeded with :func:`chunk_seed`."""
    return torch.Generator(device=device).manual_seed(chunk_seed(seed, chunk))


def chunk_slices(count: int, chunk_size: int) -> list[slice]:
    """The chunks of ``range(count)``: consecutive slices of ``chunk_size`` (the last may be shorter)."""
    return [slice(start, min(start + chunk_size, count)) for start in range(0, count, chunk_size)]


def map_chunks(
    count: int,
    chunk_size: int,
    compute: Callable[[int, slice], torch.Tensor],
    *,
    dtype: torch.dtype,
    processes: Processes | None = None,
    device: torch.device | str = "cpu",
    progress=None,
) -> torch.Tensor:
    """``compute(chunk, rows)`` for every chunk of ``range(count)``, stacked in order, as ``dtype`` on the CPU.

    ``compute`` returns one row per image of the slice ``rows`` (one trailing shape for
    all chunks). With ``processes`` of more than one, this process computes its share of
    the chunks and the rows of all are gathered on every process (``device``: where the
    exchange happens). ``progress`` (tqdm-like) advances by the images of each finished
    round, all processes counted.
    """
    processes = processes or Processes()
    chunks = chunk_slices(count, chunk_size)
    size, rank = processes.world_size, processes.rank
    sent = torch.uint8 if dtype == torch.bool else dtype  # Gloo exchanges no booleans
    if not chunks:
        return torch.empty(0, dtype=dtype)
    mine = []
    for first in range(0, len(chunks), size):
        if first + rank < len(chunks):
            mine.append(compute(first + rank, chunks[first + rank]).cpu().to(sent))
        processes.agree()
        if progress is not None:
            progress.update(sum(s.stop - s.start for s in chunks[first:first + size]))
    local = torch.cat(mine) if mine else torch.empty(0, dtype=sent)
    if not processes.distributed:
        return local.to(dtype)
    shares = [chunks[r::size] for r in range(size)]
    parts = processes.gather_rows(local, [sum(s.stop - s.start for s in share) for share in shares],
                                  torch.device(device))
    ordered: list[torch.Tensor] = [local[:0]] * len(chunks)
    for r, (part, share) in enumerate(zip(parts, shares)):
        offsets = np.cumsum([0] + [s.stop - s.start for s in share])
        for k in range(len(share)):
            ordered[r + k * size] = part[offsets[k]:offsets[k + 1]]
    return torch.cat(ordered).to(dtype)
