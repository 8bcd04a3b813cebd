"""Entry points of the pre-commit hooks declared in ``.pre-commit-hooks.yaml``.

``qrecipe-validate`` runs ``qrecipe validate``; ``qrecipe-check-flat`` runs
``python -m qrecipe.hooks.check_flat``. See ``docs/pre-commit.md``.
"""
