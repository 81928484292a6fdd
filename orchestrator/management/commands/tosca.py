"""TOSCA tools for publishers and operators.

    python manage.py tosca validate PATH... [--json] [--root DIR]
    python manage.py tosca plan PATH [--input NAME=VALUE ...] [--json]

validate checks each template (a YAML file or a CSAR) exactly as an upload is
checked, except that a YAML's relative imports are read from disk (from its own
folder, or from under --root). It prints one line per problem,
"PATH:LINE: severity: message", and a summary line per file; with --json, one
JSON object per file per line. It exits with 1 when any file is not valid or
not deployable.

plan prints what deploying the template with these inputs would do, level by level
(the steps of a level run in parallel), without touching anything.
"""

from __future__ import annotations

import json
from argparse import ArgumentParser
from pathlib import Path
from typing import Any

from django.core.management.base import BaseCommand, CommandError, CommandParser

from orchestrator.limits import template_limits
from orchestrator.tosca import Problem, Report, validate_path
from orchestrator.tosca.csar import is_zip


class Command(BaseCommand):
    help = "TOSCA tools: validate templates and CSARs as Agora does on upload."

    def add_arguments(self, parser: CommandParser) -> None:
        actions = parser.add_subparsers(dest="action", required=True, metavar="ACTION")
        validate: ArgumentParser = actions.add_parser(
            "validate",
            help="Check TOSCA templates (YAML or CSAR): valid, deployable, and every problem with its line.",
            description="Check TOSCA templates (YAML or CSAR) as Agora checks an upload.",
        )
        validate.add_argument("paths", nargs="+", type=Path, metavar="PATH", help="A YAML template or a CSAR.")
        validate.add_argument("--json", action="store_true", help="Print one JSON object per file per line.")
        validate.add_argument(
            "--root",
            type=Path,
            default=None,
            metavar="DIR",
            help="Read a YAML template's relative imports from anywhere under DIR (default: the template's folder).",
        )

        plan: ArgumentParser = actions.add_parser(
            "plan",
            help="Show the steps deploying a template would take, level by level, without touching anything.",
        )
        plan.add_argument("path", type=Path, metavar="PATH")
        plan.add_argument("--input", action="append", default=[], metavar="NAME=VALUE")
        plan.add_argument("--root", type=Path, default=None, metavar="DIR")
        plan.add_argument("--json", action="store_true")

    def handle(self, *args: Any, **options: Any) -> None:
        if options["action"] == "validate":
            self.validate(options["paths"], as_json=options["json"], root=options["root"])
        elif options["action"] == "plan":
            self.plan(options["path"], options["input"], root=options["root"], as_json=options["json"])

    def plan(self, path: Path, pairs: list[str], *, root: Path | None, as_json: bool) -> None:
        from orchestrator.management.commands._common import parse_inputs
        from orchestrator.plan import PlanError, build_plan

        report = validate_path(path, root=root, limits=template_limits())
        if not report.deployable or report.template is None:
            self.print_report(path, report)
            raise CommandError(f"{path} cannot be deployed; see its problems above.", returncode=1)
        try:
            planned = build_plan(report.template, parse_inputs(pairs))
        except PlanError as exc:
            raise CommandError("\n".join(e.message for e in exc.errors), returncode=1) from None
        self.stdout.write(json.dumps(planned.to_dict()) if as_json else planned.render())

    def validate(self, paths: list[Path], *, as_json: bool, root: Path | None) -> None:
        failed = 0
        for path in paths:
            report = validate_path(path, root=root, limits=template_limits())
            if not (report.valid and report.deployable):
                failed += 1
            if as_json:
                self.stdout.write(json.dumps(_as_json(path, report), ensure_ascii=False))
            else:
                self.print_report(path, report)
        if failed:
            verb = "is" if failed == 1 else "are"
            raise CommandError(f"{failed} of {len(paths)} templates {verb} not valid or not deployable.", returncode=1)

    def print_report(self, path: Path, report: Report) -> None:
        archive = _is_archive(path)
        for problem in report.problems:
            where = _location(path, problem, archive)
            self.stdout.write(f"{where}: {problem.severity}: {problem.message}")
        if report.valid and report.deployable:
            self.stdout.write(self.style.SUCCESS(f"{path}: valid, deployable"))
        elif report.valid:
            self.stdout.write(self.style.WARNING(f"{path}: valid, not deployable"))
        else:
            self.stdout.write(self.style.ERROR(f"{path}: not valid"))


def _location(path: Path, problem: Problem, archive: bool) -> str:
    if problem.file is None or problem.file == str(path):
        where = str(path)
    elif archive:
        where = f"{path}/{problem.file}"  # a member of the archive
    else:
        where = problem.file  # an imported file, named relative to the template as given
    return f"{where}:{problem.line}" if problem.line is not None else where


def _is_archive(path: Path) -> bool:
    try:
        with open(path, "rb") as f:
            return is_zip(f.read(4))
    except OSError:
        return False


def _as_json(path: Path, report: Report) -> dict[str, Any]:
    return {
        "path": str(path),
        "valid": report.valid,
        "deployable": report.deployable,
        "problems": [
            {
                "severity": str(p.severity),
                "kind": str(p.kind),
                "message": p.message,
                "file": p.file,
                "line": p.line,
                "node": p.node,
                "property": p.property,
            }
            for p in report.problems
        ],
        "inputs": report.inputs_schema(),
    }
