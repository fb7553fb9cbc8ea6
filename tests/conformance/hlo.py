"""Reading compiled HLO text: which instructions make values of a given shape, and the
collectives (shared by the donation and mesh tests)."""

from __future__ import annotations

import re

# What a program that updates the cache in place may do with a cache-shaped value.
IN_PLACE_OPS = {"parameter", "get-tuple-element", "tuple", "while", "bitcast", "scatter"}

# Instructions that move data between devices.
COLLECTIVES = ("all-gather", "all-reduce", "all-to-all", "collective-permute", "reduce-scatter")


def shaped_ops(text: str, shape: tuple[int, ...]) -> list[tuple[str, str]]:
    """``(opcode, name)`` of each instruction in compiled HLO text whose result has ``shape``,
    whatever its element type."""
    dims = rf"\[{','.join(map(str, shape))}\]"
    found = re.finditer(rf"%([\w.-]+) = \w+{dims}\S* ([\w-]+)\(", text)
    return [(match[2], match[1]) for match in found]


def copies(text: str, shape: tuple[int, ...]) -> list[tuple[str, str]]:
    """The ``shape``-d instructions that are neither the value itself nor a scatter into it."""
    return [
        (op, name)
        for op, name in shaped_ops(text, shape)
        if op not in IN_PLACE_OPS and "scatter" not in name
    ]


def collectives(text: str) -> list[str]:
    """Every collective instruction in the program, as its opcode."""
    return re.findall(rf" ({'|'.join(COLLECTIVES)})(?:-start)?\(", text)
