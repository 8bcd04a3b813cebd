"""The ``qrecipe`` command line: one program, every tool a subcommand.

Exit statuses: 0 success, 1 a recipe problem (invalid, stale, different), 2 usage error.
The command line never imports torch; subcommands that need the runtime import it when run.
"""

from .app import build_parser, main

__all__ = ["build_parser", "main"]
