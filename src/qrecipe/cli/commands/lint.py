"""``qrecipe lint``: review recipes for mistakes that validate cannot see (the ``qrecipe-lint``
pre-commit hook)."""

from __future__ import annotations

import argparse

from ...language import RecipeError, validate
from ...review import RULES, ModelSkeleton, UnknownRuleError, check_rule_ids, lint, read_recipe
from ..common import ExitStatus, UsageError, add_model, add_search_path, model_from, notices, unique
from ..reporting import RULE_FORMAT_HELP, RULE_FORMATS, Result, make_reporter

SNIPPET_NOTICE = (
    "a snippet, not a recipe: lint reviews recipes ('qrecipe validate' checks snippets)"
)


def register(commands: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    rules = "\n".join(
        f"  {rule.id:<27} {rule.level:<8}{' (--model)' if rule.needs_model else ''} {rule.summary}"
        for rule in RULES
    )
    parser = commands.add_parser(
        "lint",
        help="review recipes for likely mistakes (with --model, against a model)",
        description="Review recipes for mistakes that are valid YAML and schema: entries that "
        "can never match or never take effect, duplicates, a missing base disable; with "
        "--model, entries matching nothing in that model, quantizers left undecided, fused "
        "layers with different formats, KV-cache settings on a model without a KV cache. "
        "Every finding is reported at the file:line:column of its entry, with a hint. A "
        "recipe that does not validate is reported as validate reports it.",
        formatter_class=argparse.RawDescriptionHelpFormatter,
        epilog=f"rules:\n{rules}\n\nexamples:\n  qrecipe lint my_recipe.yaml\n"
        "  qrecipe lint my_recipe.yaml --model path/to/Llama-3-8B\n"
        "  qrecipe lint --format sarif recipes/*.yaml > qrecipe.sarif",
    )
    parser.add_argument("files", nargs="+", metavar="RECIPE", help="recipe: path or name")
    add_model(parser)
    parser.add_argument(
        "--ignore",
        metavar="RULE",
        action="append",
        default=[],
        help="skip the rule with this id (repeatable)",
    )
    parser.add_argument("--format", choices=RULE_FORMATS, default="text", help=RULE_FORMAT_HELP)
    add_search_path(parser)
    parser.set_defaults(run=run)


def check(file: str, roots: list[str], model: ModelSkeleton | None, ignore: list[str]) -> Result:
    """Lint one recipe into a :class:`Result`; an invalid one gets validate's diagnostics."""
    with notices() as found:
        problems = validate(file, path=roots)
        if problems:
            return Result(file, problems, notices=found)
        try:
            recipe = read_recipe(file, path=roots)
        except RecipeError:
            # It validated, so it is a well-formed snippet: not ours to review.
            return Result(file, notices=[*found, SNIPPET_NOTICE])
        diagnostics = lint(recipe, model, ignore=ignore)
    return Result(file, diagnostics, notices=unique(found))


def run(args: argparse.Namespace) -> ExitStatus:
    try:
        check_rule_ids(args.ignore)
    except UnknownRuleError as error:
        raise UsageError(f"--ignore: {error}") from None
    model = model_from(args.model) if args.model else None
    reporter = make_reporter(args.format, rules={rule.id: rule for rule in RULES})
    results = []
    for file in args.files:
        result = check(file, args.path, model, args.ignore)
        reporter.result(result)
        results.append(result)
    findings = sum(len(r.diagnostics) for r in results)
    failed = sum(1 for r in results if not r.ok)
    reporter.finish(results, f"{findings} finding(s) in {failed} of {len(results)} recipe(s)")
    return ExitStatus.PROBLEMS if failed else ExitStatus.OK
