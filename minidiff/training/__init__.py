"""Training: a minimal in-memory loop (Part I)."""

from .fit import fit

__all__ = ["fit"]
