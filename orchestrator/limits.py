"""The limits every reader of a template uses, from the settings: upload, validation, planning, the
worker's steps and the CLI. orchestrator/tosca is pure and takes its Limits from its caller; on the
Django side this is the one place they are made, so raising AGORA_MAX_TEMPLATE_BYTES lets a larger
template all the way through, and lowering it refuses one everywhere with the same sentence.
"""

from __future__ import annotations

from django.conf import settings

from orchestrator.tosca import Limits

_BUILT_IN = Limits()
# A CSAR may expand to this many times its own limit (100 MiB for 20 MiB), so raising the file limit
# never leaves a CSAR that uploads within it but cannot be unpacked.
_EXPANSION = _BUILT_IN.max_uncompressed_bytes // _BUILT_IN.max_bytes
# Room for the multipart envelope and the other fields of an upload request.
REQUEST_OVERHEAD = 1024 * 1024


def template_limits() -> Limits:
    """Read each time, never cached: the settings are the truth (and tests change them)."""
    max_bytes: int = settings.AGORA_MAX_TEMPLATE_BYTES
    return Limits(
        max_bytes=max_bytes,
        max_uncompressed_bytes=max(_BUILT_IN.max_uncompressed_bytes, _EXPANSION * max_bytes),
    )


def request_limit() -> int:
    """The largest request body: AGORA_MAX_REQUEST_BYTES when set, else room for the largest template."""
    explicit: int | None = settings.AGORA_MAX_REQUEST_BYTES
    return explicit if explicit is not None else template_limits().max_bytes + REQUEST_OVERHEAD
