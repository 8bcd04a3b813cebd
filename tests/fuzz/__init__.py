"""The differential fuzzer of the Python and JavaScript implementations (see differential.py)."""
