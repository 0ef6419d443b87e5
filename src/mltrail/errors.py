"""The mltrail exception tree: every error mltrail raises on purpose, in one module.

Every error a user can see is an :class:`MltrailError`; each class carries the HTTP status a
server answers with (and a stable ``code``), so the mapping lives in one place::

    MltrailError (500)
    ├── InvalidArgumentError (422)       bad input at an edge (SDK call, CLI, REST); also ValueError
    │   ├── FilterSyntaxError (400)      a filter/order_by string that does not parse
    │   ├── UnsafePathError (400)        a path that would leave its root (``..``, a symlink out)
    │   ├── PayloadTooLargeError (413)   a body, batch or value over its limit
    │   ├── JsonValueError (422)         JSON that parses but misleads (1e309, a repeated key)
    │   ├── BadPageTokenError (400)      a page token this server did not issue
    │   └── DigestMismatchError (400)    uploaded bytes that do not match their digest or size
    ├── NotFoundError (404)              no such project / run / key / object; also LookupError
    ├── AmbiguousIdError (409)           a run id prefix or name that matches several
    ├── AlreadyExistsError (409)
    │   └── ParamConflictError (409)     a param re-logged with a different value
    ├── RunFinishedError (409)           logging to a run that has ended
    ├── DirtyWorkingTreeError (409)      uncommitted changes and no allow_dirty override
    ├── EnvironmentBuildError (500)      a recorded environment could not be rebuilt (uv, venv)
    ├── LaunchError (500)                a command ``mltrail run`` could not start (exit 127)
    ├── NotReproducibleError (409)       a run that cannot be re-run (no command recorded)
    ├── VersionConflictError (409)       a model alias is not at the version the caller expected
    ├── PolicyViolationError (409)       a protected alias move that breaks the team's rules
    ├── GitError (500)                   git missing, timed out or failed (git's own message)
    │   └── CodeRestoreError (409)       a recorded commit or diff that cannot be checked out
    ├── StoreError (503)                 the backing store failed (driver errors are chained)
    │   ├── IntegrityError (500)         stored data fails a consistency check
    │   │   └── AuditTrailError (500)    the audit trail fails verification (names the entry)
    │   └── SchemaVersionError (503)     a database at another schema revision (mltrail db upgrade)
    ├── SpoolError (507)                 the local spool cannot be written (disk full, read-only)
    ├── CorruptObjectError (500)         stored bytes that do not hash to their digest
    ├── AuthenticationError (401)        no token, or a bad, expired or revoked one
    ├── PermissionDeniedError (403)      a token without the scope for the operation
    ├── ArtifactsUnsupportedError (501)  a kind of store that keeps no artifacts
    ├── NotSupportedError (501)          a call of MLflow's API that mltrail does not offer
    └── MissingExtraError (501)          an optional dependency is not installed (names the extra)

A test walks every subclass of :class:`MltrailError` in the package and checks it is drawn here.
"""

from __future__ import annotations

__all__ = [
    "ArtifactsUnsupportedError",
    "AuditTrailError",
    "AuthenticationError",
    "BadPageTokenError",
    "CodeRestoreError",
    "DigestMismatchError",
    "EnvironmentBuildError",
    "GitError",
    "JsonValueError",
    "LaunchError",
    "MissingExtraError",
    "NotSupportedError",
    "CorruptObjectError",
    "PayloadTooLargeError",
    "PermissionDeniedError",
    "UnsafePathError",
    "PolicyViolationError",
    "VersionConflictError",
    "AlreadyExistsError",
    "AmbiguousIdError",
    "DirtyWorkingTreeError",
    "FilterSyntaxError",
    "IntegrityError",
    "InvalidArgumentError",
    "MltrailError",
    "NotFoundError",
    "NotReproducibleError",
    "ParamConflictError",
    "RunFinishedError",
    "SchemaVersionError",
    "SpoolError",
    "StoreError",
]


class MltrailError(Exception):
    """Base of every error mltrail raises on purpose."""

    http_status: int = 500
    code: str = "internal_error"

    def __init__(self, message: str) -> None:
        super().__init__(message)
        self.message = message

    def to_dict(self) -> dict[str, str]:
        """The JSON error body a server sends for this error."""
        return {"code": self.code, "message": self.message}


class InvalidArgumentError(MltrailError, ValueError):
    """An argument failed validation; the message names the field and the limit."""

    http_status = 422
    code = "invalid_argument"


class FilterSyntaxError(InvalidArgumentError):
    """A filter or order-by expression does not parse; the message names the position."""

    http_status = 400
    code = "filter_syntax"

    def __init__(self, message: str, position: int | None = None) -> None:
        if position is not None:
            message = f"{message} (at position {position})"
        super().__init__(message)
        self.position = position


class NotFoundError(MltrailError, LookupError):
    """The project, run or key does not exist."""

    http_status = 404
    code = "not_found"


class AmbiguousIdError(MltrailError, LookupError):
    """A run-id prefix matches more than one run."""

    http_status = 409
    code = "ambiguous_id"


class AlreadyExistsError(MltrailError):
    """The record already exists and cannot be created again."""

    http_status = 409
    code = "already_exists"


class ParamConflictError(AlreadyExistsError):
    """A param was logged again with a different value (params are immutable)."""

    code = "param_conflict"


class RunFinishedError(MltrailError):
    """The run has ended; it takes no more data."""

    http_status = 409
    code = "run_finished"


class DirtyWorkingTreeError(MltrailError):
    """The code has uncommitted changes and the run was not allowed to record them.

    The message lists the changed files and names the overrides (``allow_dirty=True``,
    ``--allow-dirty``, ``MLTRAIL_ALLOW_DIRTY=1``).
    """

    http_status = 409
    code = "dirty_working_tree"

    def __init__(self, message: str, files: list[str] | None = None) -> None:
        super().__init__(message)
        self.files = files or []


class StoreError(MltrailError):
    """The backing store failed; the driver's exception is chained as ``__cause__``."""

    http_status = 503
    code = "store_unavailable"


class SchemaVersionError(StoreError):
    """A database whose schema revision is not this mltrail's: older (and not migrated
    automatically: the message names ``mltrail db upgrade``) or newer (upgrade mltrail)."""

    code = "schema_version"


class IntegrityError(StoreError):
    """Stored data failed a consistency check."""

    http_status = 500
    code = "integrity_error"


class AuditTrailError(IntegrityError):
    """The audit trail fails verification: the message names the first bad sequence number
    (or checkpoint) and why."""

    code = "audit_failed"


class SpoolError(MltrailError, OSError):
    """The local spool could not be written; the message names the path and the cause."""

    http_status = 507
    code = "spool_unwritable"


class CorruptObjectError(MltrailError):
    """A stored object's bytes do not match its digest (flipped, truncated, or missing)."""

    http_status = 500
    code = "corrupt_object"


class UnsafePathError(InvalidArgumentError):
    """A path would leave its root (absolute, ``..``, a symlink out, NUL); nothing was written."""

    http_status = 400
    code = "unsafe_path"


class AuthenticationError(MltrailError):
    """No valid credentials: a missing, malformed, unknown, expired or revoked token."""

    http_status = 401
    code = "invalid_token"


class PermissionDeniedError(MltrailError):
    """The credentials are valid but do not allow this (a read token writing)."""

    http_status = 403
    code = "permission_denied"


class PayloadTooLargeError(InvalidArgumentError):
    """A request body, batch or upload is over its limit; the message states the limit."""

    http_status = 413
    code = "payload_too_large"


class ArtifactsUnsupportedError(MltrailError):
    """Artifacts are not available for this kind of store."""

    http_status = 501
    code = "not_implemented"


class MissingExtraError(MltrailError):
    """An optional dependency is not installed; the message names the extra to install."""

    http_status = 501
    code = "missing_extra"


class GitError(MltrailError):
    """git is missing, timed out, or exited with an unexpected code; the message is git's own
    first ``fatal:``/``error:`` line, with the subcommand."""

    http_status = 500
    code = "git_error"

    def __init__(self, message: str, returncode: int | None = None) -> None:
        super().__init__(message)
        self.returncode = returncode


class CodeRestoreError(GitError):
    """The recorded code could not be checked out or its diff did not apply."""

    http_status = 409
    code = "code_restore_failed"


class BadPageTokenError(InvalidArgumentError):
    """A ``page_token`` this server did not issue for this search."""

    http_status = 400
    code = "invalid_page_token"


class DigestMismatchError(InvalidArgumentError):
    """The uploaded bytes do not match the declared digest or size; nothing was stored."""

    http_status = 400
    code = "digest_mismatch"


class JsonValueError(InvalidArgumentError):
    """JSON that parses but would be read misleadingly; ``field`` says where (``body.a.0``)."""

    def __init__(self, field: str, reason: str) -> None:
        super().__init__(f"{field}: {reason}")
        self.field = field
        self.reason = reason


class EnvironmentBuildError(MltrailError):
    """A virtual environment for a reproduction could not be created."""

    http_status = 500
    code = "environment_failed"


class LaunchError(MltrailError):
    """The command could not be started (not found, not executable); its run ended ``failed``.

    A shell exits 127 for this; ``mltrail run`` does too (:attr:`exit_code`).
    """

    http_status = 500
    code = "launch_failed"
    exit_code = 127


class NotReproducibleError(MltrailError):
    """The run cannot be re-run at all (no command recorded, ``python -c``)."""

    http_status = 409
    code = "not_reproducible"


class VersionConflictError(MltrailError):
    """A registry change expected a model alias at one version and found it at another; the
    message names the current version (another writer moved it first)."""

    http_status = 409
    code = "version_conflict"


class PolicyViolationError(MltrailError):
    """Moving a protected model alias breaks the registry policy; the message lists every
    unmet rule (an admin may override it with a reason, which the history records)."""

    http_status = 409
    code = "policy_violation"


class NotSupportedError(MltrailError):
    """A call a foreign API defines (MLflow's REST API) that mltrail does not offer; the
    message says what to do instead (docs/mlflow-compat.md lists what is out of scope)."""

    http_status = 501
    code = "not_supported"
