"""Load, check and validate TOSCA templates; Agora's plain data about them.

    report = validate_bytes(data, filename="service.csar")   # an upload
    report = validate_path(Path("service.yaml"))            # a file on disk (CLI)
    report.valid, report.deployable, report.problems, report.inputs_schema()

Pure Python: no Django in this package. See docs/decisions/0001 for why
tosca-parser only ever sees files Agora has already checked.
"""

from orchestrator.tosca.model import (
    Artifact,
    Input,
    Limits,
    Metadata,
    NodeTemplate,
    Operation,
    Output,
    Problem,
    ProblemKind,
    Report,
    Requirement,
    Severity,
    Template,
)
from orchestrator.tosca.sources import AGORA_PROFILE_IMPORT, PROFILE_PATH
from orchestrator.tosca.validate import validate_bytes, validate_path

__all__ = [
    "AGORA_PROFILE_IMPORT",
    "PROFILE_PATH",
    "Artifact",
    "Input",
    "Limits",
    "Metadata",
    "NodeTemplate",
    "Operation",
    "Output",
    "Problem",
    "ProblemKind",
    "Report",
    "Requirement",
    "Severity",
    "Template",
    "validate_bytes",
    "validate_path",
]
