"""qrecipe: write, check, share and apply model-quantization recipes."""

__version__ = "0.1.0"
