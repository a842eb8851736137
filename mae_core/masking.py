"""Every way to make a patch mask, and the registry of mask strategies.

A strategy is registered once (``register_strategy``: its function, label, colour and help text); the app,
the sweep, the figures and the tests iterate over ``STRATEGIES``, so adding one touches this file only.

All makers return a bool tensor of shape (N, L) with L = grid * grid in row-major patch order and
True = hidden, False = visible (the official MAE meaning). Every maker that takes a ratio hides exactly
L - int(L * (1 - ratio)) patches, the count the official random masking hides, so strategies compare fairly.
"""
from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Callable, Optional, Sequence, Union

import numpy as np
import torch

Seed = Union[int, torch.Generator, None]


@dataclass(frozen=True)
class Strategy:
    """One way to generate masks: ``make(n, grid, ratio, seed, **kwargs)`` returns an (n, grid*grid) bool mask."""
    name: str
    make: Callable[..., torch.Tensor]
    label: str
    colour: str
    help: str = ""
    uses_seed: bool = True   # False: the same mask for every seed (re-rolling changes nothing)


STRATEGIES: dict[str, Strategy] = {}


def register_strategy(name: str, make: Callable[..., torch.Tensor], label: str, colour: str, help: str = "",
                      uses_seed: bool = True) -> Strategy:
    """Add a mask strategy (timm's register_model pattern). ``make(n, grid, ratio, seed, **kwargs)``."""
    if not name.isidentifier():
        raise ValueError(f"strategy names are identifiers, got {name!r}")
    STRATEGIES[name] = Strategy(name, make, label, colour, help, uses_seed)
    return STRATEGIES[name]


def unregister_strategy(name: str) -> None:
    STRATEGIES.pop(name, None)


def get_strategy(name: str) -> Strategy:
    try:
        return STRATEGIES[name]
    except KeyError:
        raise ValueError(f"unknown mask strategy {name!r}; choose one of: {', '.join(STRATEGIES)}") from None


def _check_grid(grid: int) -> int:
    if not isinstance(grid, (int, np.integer)) or isinstance(grid, bool) or grid < 1:
        raise ValueError(f"grid must be a positive integer (patches per side), got {grid!r}")
    return int(grid)


def _check_ratio(ratio: float) -> float:
    try:
        r = float(ratio)
    except (TypeError, ValueError):
        raise ValueError(f"mask ratio must be a number in [0, 1), got {ratio!r}") from None
    if not 0.0 <= r < 1.0 or math.isnan(r):
        raise ValueError(f"mask ratio must be in [0, 1), got {ratio!r}")
    return r


def _check_n(n: int) -> int:
    if not isinstance(n, (int, np.integer)) or isinstance(n, bool) or n < 1:
        raise ValueError(f"number of masks must be a positive integer, got {n!r}")
    return int(n)


def num_hidden(num_patches: int, ratio: float) -> int:
    """How many of num_patches a ratio hides (official: keep int(L * (1 - ratio)))."""
    return num_patches - int(num_patches * (1 - _check_ratio(ratio)))


def _generator(seed: Seed) -> torch.Generator:
    if isinstance(seed, torch.Generator):
        return seed
    g = torch.Generator()
    if seed is None:
        g.seed()
    else:
        g.manual_seed(int(seed))
    return g


def random_keep_ids(n: int, L: int, ratio: float, generator: Optional[torch.Generator] = None,
                    device=None) -> torch.Tensor:
    """Official MAE random masking: per-sample uniform noise, argsort, keep the first int(L * (1 - ratio)).
    Returns the kept patch indices (n, len_keep) in the shuffled order the official encoder sees them. The
    model's own random masking and ``random_mask`` both call this."""
    ratio = _check_ratio(ratio)
    len_keep = int(L * (1 - ratio))
    noise = torch.rand(n, L, generator=generator, device=generator.device if generator is not None else device)
    return torch.argsort(noise, dim=1)[:, :len_keep].to(device)


def keep_ids_to_mask(ids_keep: torch.Tensor, L: int) -> torch.Tensor:
    mask = torch.ones(ids_keep.shape[0], L, dtype=torch.bool, device=ids_keep.device)
    mask.scatter_(1, ids_keep, False)
    return mask


def random_mask(n: int, grid: int, ratio: float = 0.75, seed: Seed = None) -> torch.Tensor:
    """Official MAE random masking as a mask. With the same generator state it hides exactly the patches the
    model's own random masking would hide (both use ``random_keep_ids``)."""
    n, grid = _check_n(n), _check_grid(grid)
    return keep_ids_to_mask(random_keep_ids(n, grid * grid, ratio, _generator(seed)), grid * grid)


def block_mask(n: int, grid: int, ratio: float = 0.75, seed: Seed = None, min_block: int = 4,
               min_aspect: float = 0.3) -> torch.Tensor:
    """BEiT-style block-wise masking: hide random rectangles (area >= min_block patches, aspect ratio
    log-uniform in [min_aspect, 1/min_aspect]) until the ratio is reached. Each rectangle is capped so the
    count never overshoots; if rectangles cannot finish the job (tiny grids), the remaining patches are taken
    next to what is already hidden, so blocks stay compact and the count is exact."""
    n, grid, ratio = _check_n(n), _check_grid(grid), _check_ratio(ratio)
    L = grid * grid
    target = num_hidden(L, ratio)
    g = _generator(seed)
    rng = np.random.default_rng(int(torch.randint(0, 2**62, (1,), generator=g)))
    out = torch.zeros(n, L, dtype=torch.bool)
    log_aspect = (math.log(min_aspect), math.log(1 / min_aspect))
    for i in range(n):
        m = np.zeros((grid, grid), dtype=bool)
        count, failures = 0, 0
        while count < target and failures < 10:
            room = target - count
            lo = min(min_block, room)
            area = rng.uniform(lo, max(lo, room))
            aspect = math.exp(rng.uniform(*log_aspect))
            h = int(round(math.sqrt(area * aspect)))
            w = int(round(math.sqrt(area / aspect)))
            if not (1 <= h <= grid and 1 <= w <= grid):
                failures += 1
                continue
            top, left = rng.integers(0, grid - h + 1), rng.integers(0, grid - w + 1)
            patch = m[top:top + h, left:left + w]
            new = int((~patch).sum())
            if 0 < new <= room:
                patch[:] = True
                count += new
                failures = 0
            else:
                failures += 1
        if count < target:  # finish with neighbours of the hidden region (or anywhere if nothing is hidden)
            while count < target:
                nb = np.zeros_like(m)
                nb[1:] |= m[:-1]; nb[:-1] |= m[1:]; nb[:, 1:] |= m[:, :-1]; nb[:, :-1] |= m[:, 1:]
                cand = np.flatnonzero(nb & ~m) if m.any() else np.flatnonzero(~m)
                if cand.size == 0:
                    cand = np.flatnonzero(~m)
                m.flat[rng.choice(cand)] = True
                count += 1
        out[i] = torch.from_numpy(m.reshape(-1))
    return out


def _bayer(order: int) -> np.ndarray:
    """Ordered-dither (Bayer) threshold matrix of side 2**order: its lowest quarter is one cell in every
    2x2 square, its lowest half a checkerboard, and so on."""
    m = np.zeros((1, 1), dtype=np.int64)
    for _ in range(order):
        m = np.block([[4 * m, 4 * m + 2], [4 * m + 3, 4 * m + 1]])
    return m


def grid_mask(n: int, grid: int, ratio: float = 0.75, period: Optional[int] = None,
              offset: Sequence[int] = (0, 0)) -> torch.Tensor:
    """Regular masking (the paper's Figure 6).

    With ``period=k`` it keeps one patch in every k x k square (at ``offset`` inside the square) and hides the
    rest, the paper's exact pattern; the ratio then follows from k (k = 2 gives 75%) and ``ratio`` is ignored.
    Without a period it keeps exactly int(L * (1 - ratio)) patches chosen by an ordered-dither threshold:
    the most regular spread for any ratio, and identical to the keep-one-in-2x2 pattern at 75% when the grid
    side is even."""
    n, grid = _check_n(n), _check_grid(grid)
    if period is not None:
        if not isinstance(period, (int, np.integer)) or period < 1:
            raise ValueError(f"grid period must be a positive integer, got {period!r}")
        oy, ox = (int(offset[0]) % period, int(offset[1]) % period)
        rows, cols = np.meshgrid(np.arange(grid), np.arange(grid), indexing="ij")
        keep = ((rows % period) == oy) & ((cols % period) == ox)
        mask = torch.from_numpy(~keep.reshape(-1))
        return mask.unsqueeze(0).expand(n, -1).clone()
    ratio = _check_ratio(ratio)
    L = grid * grid
    len_keep = int(L * (1 - ratio))
    order = max(1, math.ceil(math.log2(grid)))
    thresh = _bayer(order)[:grid, :grid].reshape(-1)
    keep_ids = np.argsort(thresh, kind="stable")[:len_keep]
    mask = np.ones(L, dtype=bool)
    mask[keep_ids] = False
    return torch.from_numpy(mask).unsqueeze(0).expand(n, -1).clone()


def painted_mask(cells, grid: Optional[int] = None) -> torch.Tensor:
    """A mask from a painted cell grid: a (grid, grid) array-like of booleans/0-1 (True = hidden), or a flat
    list of L values, or (with ``grid``) a collection of hidden patch indices. Returns shape (1, L)."""
    if cells is None:
        raise ValueError("painted mask is empty: no cells were given")
    if grid is not None and not isinstance(cells, (np.ndarray, torch.Tensor)) and \
            all(isinstance(c, (int, np.integer)) and not isinstance(c, bool) for c in cells):
        grid = _check_grid(grid)
        L = grid * grid
        ids = sorted(set(int(c) for c in cells))
        if ids and (ids[0] < 0 or ids[-1] >= L):
            raise ValueError(f"painted patch index out of range 0..{L - 1}: {ids[0] if ids[0] < 0 else ids[-1]}")
        m = np.zeros(L, dtype=bool)
        m[ids] = True
        return torch.from_numpy(m).unsqueeze(0)
    arr = np.asarray(cells.cpu() if isinstance(cells, torch.Tensor) else cells)
    if arr.size == 0:
        raise ValueError("painted mask is empty: the cell grid has no cells")
    if arr.dtype == object or not (arr.dtype == bool or np.issubdtype(arr.dtype, np.number)):
        raise ValueError("painted mask cells must be booleans or 0/1 numbers")
    if arr.dtype != bool and not np.all((arr == 0) | (arr == 1)):
        raise ValueError("painted mask cells must be 0 (visible) or 1 (hidden)")
    if arr.ndim == 2:
        if arr.shape[0] != arr.shape[1]:
            raise ValueError(f"painted cell grid must be square, got {arr.shape[0]}x{arr.shape[1]}")
        side = arr.shape[0]
    elif arr.ndim == 1:
        side = int(round(math.sqrt(arr.size)))
        if side * side != arr.size:
            raise ValueError(f"a flat painted mask needs a square number of cells, got {arr.size}")
    else:
        raise ValueError(f"painted mask must be 1-D or 2-D, got {arr.ndim} dimensions")
    if grid is not None and side != grid:
        raise ValueError(f"painted cell grid is {side}x{side} but the model's patch grid is {grid}x{grid}")
    return torch.from_numpy(arr.reshape(1, -1).astype(bool))


def make_mask(strategy: str, n: int, grid: int, ratio: float = 0.75, seed: Seed = None, **kwargs) -> torch.Tensor:
    """Dispatch by registered name ('random', 'block', 'grid', ...). Strategies that do not use a seed ignore it."""
    return get_strategy(strategy).make(n, grid, ratio, seed, **kwargs)


register_strategy("random", random_mask, "Random", "#4f46e5",
                  "Uniform at random, as in pretraining")
register_strategy("block", block_mask, "Block", "#dc2626",
                  "Large rectangles (BEiT): whole regions go missing")
register_strategy("grid", lambda n, grid, ratio=0.75, seed=None, **kw: grid_mask(n, grid, ratio, **kw), "Grid",
                  "#059669", "A regular pattern (the paper's Figure 6): every region keeps some patches",
                  uses_seed=False)


def invert(mask: torch.Tensor) -> torch.Tensor:
    return ~mask.to(torch.bool)


def mask_to_grid(mask: torch.Tensor) -> np.ndarray:
    """(L,) or (1, L) mask -> (grid, grid) bool array for display or painting."""
    m = np.asarray(mask.to(torch.bool).cpu()).reshape(-1)
    side = int(round(math.sqrt(m.size)))
    if side * side != m.size:
        raise ValueError(f"mask of {m.size} patches is not a square grid")
    return m.reshape(side, side)
