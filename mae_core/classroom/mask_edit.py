"""The mask a user works on: where it came from (painted by hand or generated), and undo / redo.

A page keeps one ``MaskEditor`` per visitor. Generated masks follow the strategy, ratio and seed; a painted mask
stays until the user asks for a generated one, so touching the ratio slider never discards a drawing. Every change
(stroke, generate, invert, clear, ...) is one undo step; undo and redo restore the mask *and* its source.
"""
from __future__ import annotations

from dataclasses import dataclass, field
from typing import Optional

from ..masking import STRATEGIES, make_mask

GENERATED, PAINTED = "generated", "painted"


@dataclass
class Recipe:
    """How a generated mask was made."""
    strategy: str
    ratio: float
    seed: int

    def describe(self, n_hidden: int, n: int) -> str:
        label = STRATEGIES[self.strategy].label if self.strategy in STRATEGIES else self.strategy
        seed = f", seed {self.seed}" if self.strategy in STRATEGIES and STRATEGIES[self.strategy].uses_seed else ""
        out = f"{label} mask at ratio {self.ratio:.2f}{seed}: {n_hidden} of {n} patches hidden"
        if n and f"{n_hidden / n:.0%}" != f"{self.ratio:.0%}":   # whole patches: 45 of 49 is 92%, not 90%
            out += f" ({n_hidden / n:.0%}: the ratio rounds to whole patches)"
        return out


@dataclass
class MaskEditor:
    grid: int
    mask: list = field(default_factory=list)       # L ints, 1 = hidden
    source: str = GENERATED
    recipe: Optional[Recipe] = None                # set while source == GENERATED
    undo_stack: list = field(default_factory=list)
    redo_stack: list = field(default_factory=list)
    limit: int = 50                                # undo steps kept

    @property
    def n(self) -> int:
        return self.grid * self.grid

    @property
    def n_hidden(self) -> int:
        return int(sum(self.mask))

    def _snapshot(self) -> tuple:
        return (list(self.mask), self.source, self.recipe)

    def _apply(self, mask, source: str, recipe: Optional[Recipe]) -> bool:
        mask = [int(bool(v)) for v in mask]
        if len(mask) != self.n:
            raise ValueError(f"a mask for a {self.grid}x{self.grid} grid has {self.n} cells, got {len(mask)}")
        if mask == self.mask and source == self.source and recipe == self.recipe:
            return False  # nothing changed: no undo step
        if self.mask:
            self.undo_stack.append(self._snapshot())
            del self.undo_stack[:-self.limit]
        self.mask, self.source, self.recipe = mask, source, recipe
        self.redo_stack.clear()
        return True

    # -- changes -----------------------------------------------------------------------------------
    def generate(self, strategy: str, ratio: float, seed: int) -> bool:
        """Replace the mask with a generated one (the user asked: Generate, Re-roll, a strategy choice)."""
        m = make_mask(strategy, 1, self.grid, float(ratio), seed=int(seed))[0]
        return self._apply(m.to(int).tolist(), GENERATED, Recipe(strategy, float(ratio), int(seed)))

    def settings_changed(self, strategy: str, ratio: float, seed: int) -> bool:
        """Ratio or seed moved. A generated mask follows them; a painted one is kept (returns False)."""
        if self.source != GENERATED:
            return False
        return self.generate(strategy, ratio, seed)

    def paint(self, mask) -> bool:
        """A finished stroke (or key press) in the painter: the whole new mask."""
        return self._apply(mask, PAINTED, None)

    def invert(self) -> bool:
        return self._apply([1 - v for v in self.mask], PAINTED, None)

    def fill(self, value: int) -> bool:
        return self._apply([int(bool(value))] * self.n, PAINTED, None)

    # -- history -----------------------------------------------------------------------------------
    def undo(self) -> bool:
        if not self.undo_stack:
            return False
        self.redo_stack.append(self._snapshot())
        self.mask, self.source, self.recipe = self.undo_stack.pop()
        return True

    def redo(self) -> bool:
        if not self.redo_stack:
            return False
        self.undo_stack.append(self._snapshot())
        self.mask, self.source, self.recipe = self.redo_stack.pop()
        return True

    def describe(self) -> str:
        """One line for the page: which mask is shown, and how it was made."""
        if self.source == GENERATED and self.recipe is not None:
            return "Generated: " + self.recipe.describe(self.n_hidden, self.n)
        return (f"Painted by hand: {self.n_hidden} of {self.n} patches hidden "
                f"({self.n_hidden / self.n:.0%}). Strategy, ratio and seed apply to generated masks: press "
                "Generate to use them.")
