"""Data: 2D toys (Part I) and image data sets (Part II)."""

from .download import DataUnavailableError, cache_dir
from .images import DATASETS, ImageBatcher, ImageData, image_grid, load_dataset, save_image_grid
from .toys import HELD_OUT_TOYS, TOYS, ToyStructure, make_toy, toy_mixture, toy_structure

__all__ = ["DATASETS", "TOYS", "DataUnavailableError", "ImageBatcher", "ImageData", "cache_dir", "image_grid",
           "load_dataset", "make_toy", "save_image_grid", "toy_mixture",
           "HELD_OUT_TOYS", "ToyStructure", "toy_structure"]
