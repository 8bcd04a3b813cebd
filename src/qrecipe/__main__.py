"""``python -m qrecipe`` runs the command line."""

from .validator.cli import main

raise SystemExit(main())
