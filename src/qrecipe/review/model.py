"""``--model``: the model a recipe is reviewed against, loaded only when one is named.

Building a model needs torch and transformers; nothing else in :mod:`qrecipe.review` does,
so this module imports them only inside :func:`load_model`.
"""

from __future__ import annotations

import importlib.util
import os

from .quantizers import ModelSkeleton

CONFIG_FILE = "config.json"
NEEDED = ("torch", "transformers")


class ModelLoadError(Exception):
    """``--model`` names no usable model configuration; the message says why, in one line."""


def load_model(source: str | os.PathLike[str]) -> ModelSkeleton:
    """The quantizers of the model that a directory or ``config.json`` describes.

    The model is built on the ``meta`` device (no weights are read or allocated) and its
    quantizers are planned as :func:`qrecipe.runtime.apply` would place them.
    """
    missing = [name for name in NEEDED if importlib.util.find_spec(name) is None]
    if missing:
        raise ModelLoadError(
            f"--model needs {' and '.join(missing)}; install them with "
            "pip install 'qrecipe[review]'"
        )
    from .skeleton import load_skeleton

    return load_skeleton(source)
