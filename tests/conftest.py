"""Shared test setup.

Triton reads TRITON_INTERPRET when a kernel is decorated, so it must be set before any test
module imports the runtime: that is why it lives here, at the top of the root conftest.
"""

import os

os.environ.setdefault("TRITON_INTERPRET", "1")
os.environ.setdefault("HF_HUB_OFFLINE", "1")
os.environ.setdefault("TRANSFORMERS_OFFLINE", "1")
