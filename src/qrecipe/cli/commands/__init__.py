"""One module per subcommand. Each defines ``register(subparsers)``, which adds its parser and
sets ``run``: a function from the parsed arguments to an :class:`~qrecipe.cli.common.ExitStatus`.

A new subcommand is a new module here, listed in :data:`COMMANDS` in the order ``--help``
shows them.
"""

from __future__ import annotations

from . import (
    check_flat,
    diff,
    explain,
    fingerprint,
    lint,
    listing,
    quantize,
    resolve,
    schema,
    validate,
)

COMMANDS = (
    validate,
    lint,
    explain,
    diff,
    resolve,
    listing,
    schema,
    fingerprint,
    check_flat,
    quantize,
)
