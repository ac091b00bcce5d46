"""The one place that decides which torch device to use."""

from __future__ import annotations

import logging

logger = logging.getLogger(__name__)

DEVICES = ("auto", "cpu", "cuda")


def resolve_device(name: str = "auto") -> str:
    """Map ``auto``/``cpu``/``cuda`` (or ``cuda:N``) to a device string torch accepts.

    ``auto`` picks CUDA when torch sees a GPU, else the CPU. Asking for ``cuda`` on a machine without one is an
    error rather than a silent fallback: a cluster config that expects GPUs should fail loudly.
    """
    import torch

    if name == "auto":
        return "cuda" if torch.cuda.is_available() else "cpu"
    if name == "cpu":
        return "cpu"
    if name.startswith("cuda"):
        if not torch.cuda.is_available():
            raise RuntimeError(f"device {name!r} was requested but torch sees no CUDA GPU; use 'auto' or 'cpu'")
        return name
    raise ValueError(f"unknown device {name!r}: use one of {', '.join(DEVICES)} (or cuda:N)")
