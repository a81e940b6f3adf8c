"""Data: 2D toys (Part I) and image data sets (Part II)."""

from .toys import TOYS, make_toy, toy_mixture

__all__ = ["TOYS", "make_toy", "toy_mixture"]
