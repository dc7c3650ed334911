"""Named arrays that are views into one flat buffer.

A ``FlatParams`` is a dict ``name -> ndarray`` (transformers' names, in their order) whose arrays
are views into one 1-D buffer, ``.flat``. It is the one layout of the model's parameters, their
gradients and AdamW's moments. Code that works name by name sees a plain dict; code that treats
every parameter alike (AdamW, gradient clipping, zeroing and summing gradients, sending them
between processes) makes a few passes over ``.flat`` instead of a few per tensor. Assigning to a
name copies into its view, so the buffer stays the storage of every name.

The order of the arrays in the buffer can differ from the key order: arrays that are used
together can sit side by side, so that ``span`` gives them as one view (the query, key and value
projections of a layer as one stacked matrix).
"""

from __future__ import annotations

import math
from collections.abc import Iterable, Mapping, Sequence

import numpy as np


class FlatParams(dict):
    """``name -> view`` into ``self.flat``; keys in the order of ``shapes``, the buffer in
    ``order`` (default: the same)."""

    def __init__(
        self,
        shapes: Mapping[str, tuple[int, ...]],
        dtype: np.dtype,
        order: Sequence[str] | None = None,
    ) -> None:
        super().__init__()
        order = tuple(shapes if order is None else order)
        if sorted(order) != sorted(shapes):
            raise ValueError("the buffer order must name every array exactly once")
        self.order = order
        self.offsets: dict[str, tuple[int, int]] = {}
        start = 0
        for name in order:
            self.offsets[name] = (start, start + math.prod(shapes[name]))
            start += math.prod(shapes[name])
        self.flat = np.zeros(start, dtype=dtype)
        for name, shape in shapes.items():
            low, high = self.offsets[name]
            dict.__setitem__(self, name, self.flat[low:high].reshape(shape))

    @classmethod
    def of(
        cls,
        arrays: Mapping[str, np.ndarray],
        dtype: np.dtype | None = None,
        order: Sequence[str] | None = None,
    ) -> FlatParams:
        """A new buffer holding a copy of ``arrays`` (converted to ``dtype`` if given)."""
        shapes = {name: np.shape(value) for name, value in arrays.items()}
        if dtype is None:
            dtype = np.result_type(*arrays.values()) if arrays else np.float32
        out = cls(shapes, dtype, order)
        for name, value in arrays.items():
            out[name] = value
        return out

    def zeros_like(self) -> FlatParams:
        """Zeros in the same layout (same keys, shapes, buffer order and dtype)."""
        return FlatParams({name: value.shape for name, value in self.items()}, self.flat.dtype,
                          self.order)

    def same_layout(self, other: object) -> bool:
        """Whether ``other`` is a FlatParams whose buffer holds the same names at the same
        places, so that elementwise work over both buffers pairs each name with itself."""
        return isinstance(other, FlatParams) and other.offsets == self.offsets

    def span(self, names: Iterable[str]) -> np.ndarray | None:
        """The 1-D view covering the arrays ``names`` if they follow each other in the buffer in
        this order, else None."""
        names = list(names)
        for before, after in zip(names, names[1:], strict=False):
            if self.offsets[before][1] != self.offsets[after][0]:
                return None
        return self.flat[self.offsets[names[0]][0]:self.offsets[names[-1]][1]]

    def __setitem__(self, name: str, value: np.ndarray) -> None:
        if name not in self:
            raise KeyError(f"{name!r} is not one of the arrays of this buffer")
        np.copyto(dict.__getitem__(self, name), value)

    def update(self, *args, **kwargs) -> None:
        for name, value in dict(*args, **kwargs).items():
            self[name] = value

    def __reduce__(self):
        return FlatParams.of, (dict(self), self.flat.dtype, self.order)
