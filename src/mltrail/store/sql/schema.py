"""The SQL schema (SQLAlchemy Core), shared by SQLite and PostgreSQL.

Metric points are stored in chunks: one row holds up to ``CHUNK_POINTS`` points of one key as
three packed little-endian arrays (steps int64, timestamps int64, values float64). A per-run,
per-key summary row (last/min/max/count) is what search filters and sorts on; it also
remembers the open (partly filled) chunk so appends never scan. See docs/architecture.md for
the measurements behind these choices.

Summary values use NULL for NaN (SQLite cannot store NaN; PostgreSQL sorts it above +inf):
``count > 0`` with a NULL ``last_value`` means the last value was NaN. Series blobs keep every
value bit for bit.
"""

from __future__ import annotations

from sqlalchemy import (
    BigInteger,
    Boolean,
    Column,
    Float,
    ForeignKey,
    Index,
    Integer,
    LargeBinary,
    MetaData,
    String,
    Table,
    Text,
)

__all__ = [
    "CHUNK_POINTS",
    "SKETCH_BLOCK",
    "api_tokens",
    "audit_checkpoints",
    "audit_log",
    "artifact_aliases",
    "artifact_versions",
    "artifacts",
    "run_files",
    "run_inputs",
    "PG_STORAGE",
    "blobs",
    "console_lines",
    "run_state",
    "SCHEMA_REVISION",
    "VERSION_TABLE",
    "ingest_cursors",
    "metadata",
    "metric_chunks",
    "metric_sketches",
    "metric_summaries",
    "model_aliases",
    "model_cards",
    "model_history",
    "model_versions",
    "registered_models",
    "object_refs",
    "params",
    "projects",
    "run_blobs",
    "runs",
    "tags",
    "ui_views",
]

#: The Alembic head this code expects; a test checks it against the migrations.
SCHEMA_REVISION = "0010"
#: Our Alembic version table; Optuna owns ``alembic_version`` in a shared database.
VERSION_TABLE = "mltrail_alembic_version"
CHUNK_POINTS = 16384
#: Points per block of a chunk's sketch (see ``metric_sketches``).
SKETCH_BLOCK = 64
#: PostgreSQL only: chunk arrays are incompressible, and the default storage compresses
#: every value written (measured: 100 rows of 3 x 128 KB took 2.5 s, 0.14 s without).
PG_STORAGE = (
    *(
        f"ALTER TABLE metric_chunks ALTER COLUMN {column} SET STORAGE EXTERNAL"
        for column in ("steps", "timestamps", "vals")
    ),
    "ALTER TABLE metric_sketches ALTER COLUMN blocks SET STORAGE EXTERNAL",
)

Double = Float(precision=53).with_variant(Float(), "sqlite")

metadata = MetaData()

projects = Table(
    "projects",
    metadata,
    Column("project_id", String(32), primary_key=True),
    Column("name", String(250), nullable=False, unique=True),
    Column("created_ms", BigInteger, nullable=False),
)

runs = Table(
    "runs",
    metadata,
    Column("run_id", String(32), primary_key=True),
    Column("project_id", String(32), ForeignKey("projects.project_id"), nullable=False),
    Column("name", String(250), nullable=False),
    Column("status", String(16), nullable=False),
    Column("created_ms", BigInteger, nullable=False),
    Column("end_ms", BigInteger),
    Column("heartbeat_ms", BigInteger),
    Column("heartbeat_s", Double, nullable=False),
    Column("user_name", String(250), nullable=False, default=""),
    Column("host", String(250), nullable=False, default=""),
    Column("command", Text, nullable=False, default=""),
    Column("config", Text, nullable=False, default="{}"),
    Index("ix_runs_project_created", "project_id", "created_ms"),
    Index("ix_runs_created", "created_ms"),
)

params = Table(
    "params",
    metadata,
    Column("run_id", String(32), ForeignKey("runs.run_id"), primary_key=True),
    Column("key", String(250), primary_key=True),
    # the value as text (str values verbatim, others as JSON), its JSON type code
    # (s=str, i=int, f=float, b=bool, n=null) and, for numbers, its float value
    Column("value", Text, nullable=False),
    Column("vtype", String(1), nullable=False),
    Column("value_num", Double),
    # (0008) the run id last: a search ordered by the param reads its page in index order
    Index("ix_params_key_num_run", "key", "value_num", "value", "run_id"),
    Index("ix_params_key_value", "key", "value"),
)

tags = Table(
    "tags",
    metadata,
    Column("run_id", String(32), ForeignKey("runs.run_id"), primary_key=True),
    Column("key", String(250), primary_key=True),
    Column("value", Text, nullable=False),
    Index("ix_tags_key_value_run", "key", "value", "run_id"),
)

metric_summaries = Table(
    "metric_summaries",
    metadata,
    Column("run_id", String(32), ForeignKey("runs.run_id"), primary_key=True),
    Column("key", String(250), primary_key=True),
    Column("last_value", Double),
    Column("last_step", BigInteger, nullable=False),
    Column("last_ms", BigInteger, nullable=False),
    Column("min_value", Double),
    Column("max_value", Double),
    Column("count", BigInteger, nullable=False),
    Column("open_seq", Integer, nullable=False),  # seq of the newest chunk
    Column("open_n", Integer, nullable=False),  # points in it
    Index("ix_summaries_key_last_run", "key", "last_value", "run_id"),
)

metric_chunks = Table(
    "metric_chunks",
    metadata,
    Column("run_id", String(32), ForeignKey("runs.run_id"), primary_key=True),
    Column("key", String(250), primary_key=True),
    Column("seq", Integer, primary_key=True),
    Column("n", Integer, nullable=False),
    Column("step_min", BigInteger, nullable=False),
    Column("step_max", BigInteger, nullable=False),
    Column("ms_min", BigInteger, nullable=False),
    Column("ms_max", BigInteger, nullable=False),
    Column("is_sorted", Boolean, nullable=False),  # steps non-decreasing within the chunk
    Column("steps", LargeBinary, nullable=False),
    Column("timestamps", LargeBinary, nullable=False),
    Column("vals", LargeBinary, nullable=False),
)

ingest_cursors = Table(
    "ingest_cursors",
    metadata,
    Column("source", String(100), primary_key=True),
    Column("run_id", String(32), nullable=False),
    Column("position", BigInteger, nullable=False),
)

#: Captured state of a run, one JSON document per kind (code, environment, hardware, ...).
run_state = Table(
    "run_state",
    metadata,
    Column("run_id", String(32), ForeignKey("runs.run_id"), primary_key=True),
    Column("kind", String(64), primary_key=True),
    Column("data", Text, nullable=False),
)

#: Content-addressed blobs (uncommitted diffs, lock files, frozen requirements).
blobs = Table(
    "blobs",
    metadata,
    Column("digest", String(80), primary_key=True),
    Column("size", BigInteger, nullable=False),
    Column("data", LargeBinary, nullable=False),
)

#: Console output, one row per line, in the order it was applied.
console_lines = Table(
    "console_lines",
    metadata,
    Column(
        "id", BigInteger().with_variant(Integer, "sqlite"), primary_key=True, autoincrement=True
    ),
    Column("run_id", String(32), ForeignKey("runs.run_id"), nullable=False),
    Column("ts_ms", BigInteger, nullable=False),
    Column("stream", String(8), nullable=False),
    Column("text", Text, nullable=False),
    Index("ix_console_run", "run_id", "id"),
)


# -- server (0004) ------------------------------------------------------------------------

#: API tokens for ``mltrail server``. Only a SHA-256 of the secret is kept (the secrets are
#: 256-bit random, so a slow hash adds nothing); ``project`` NULL means every project.
api_tokens = Table(
    "api_tokens",
    metadata,
    Column("token_id", String(32), primary_key=True),
    Column("name", String(250), nullable=False, default=""),
    Column("secret_hash", String(128), nullable=False),
    Column("scope", String(8), nullable=False),  # read | write | admin
    Column("project", String(250)),
    Column("created_ms", BigInteger, nullable=False),
    Column("expires_ms", BigInteger),
    Column("revoked_ms", BigInteger),
)

#: Files of a run (console log, anything uploaded), by logical path; the bytes live in the
#: content-addressed file store under ``digest``, never under a client-supplied path.
run_files = Table(
    "run_files",
    metadata,
    Column("run_id", String(32), ForeignKey("runs.run_id"), primary_key=True),
    Column("path", String(1000), primary_key=True),
    Column("digest", String(100), nullable=False),
    Column("size", BigInteger, nullable=False),
    Column("created_ms", BigInteger, nullable=False),
    Index("ix_run_files_digest", "digest"),
)

# -- artifacts and lineage (0004) ---------------------------------------------------------

#: A named artifact of a project (a dataset, a model, ...).
artifacts = Table(
    "artifacts",
    metadata,
    Column("artifact_id", String(32), primary_key=True),
    Column("project_id", String(32), ForeignKey("projects.project_id"), nullable=False),
    Column("name", String(250), nullable=False),
    Column("type", String(64), nullable=False),
    Column("created_ms", BigInteger, nullable=False),
    Index("ux_artifacts_project_name", "project_id", "name", unique=True),
)

#: One content version of an artifact: ``vN``. The same content is the same version
#: (unique digest per artifact). ``run_id`` is the run that produced it (lineage: output).
#: ``kind`` is ``file``, ``tree`` or ``reference`` (recorded by digest, bytes not copied;
#: ``uri`` says where they are).
artifact_versions = Table(
    "artifact_versions",
    metadata,
    Column("artifact_id", String(32), ForeignKey("artifacts.artifact_id"), primary_key=True),
    Column("version", Integer, primary_key=True),
    Column("digest", String(100), nullable=False),
    Column("kind", String(16), nullable=False),
    Column("size", BigInteger, nullable=False),
    Column("file_count", Integer, nullable=False),
    Column("uri", Text),
    Column("meta", Text, nullable=False, default="{}"),
    Column("run_id", String(32), ForeignKey("runs.run_id")),
    Column("created_ms", BigInteger, nullable=False),
    Index("ux_artifact_versions_digest", "artifact_id", "digest", unique=True),
    Index("ix_artifact_versions_digest", "digest"),
    Index("ix_artifact_versions_run", "run_id"),
)

#: Aliases (``best``, ``production``; ``latest`` is implicit) pointing at one version.
artifact_aliases = Table(
    "artifact_aliases",
    metadata,
    Column("artifact_id", String(32), ForeignKey("artifacts.artifact_id"), primary_key=True),
    Column("alias", String(128), primary_key=True),
    Column("version", Integer, nullable=False),
)

#: Lineage: artifact versions a run used (inputs).
run_inputs = Table(
    "run_inputs",
    metadata,
    Column("run_id", String(32), ForeignKey("runs.run_id"), primary_key=True),
    Column("artifact_id", String(32), ForeignKey("artifacts.artifact_id"), primary_key=True),
    Column("version", Integer, primary_key=True),
    Column("created_ms", BigInteger, nullable=False),
    Index("ix_run_inputs_artifact", "artifact_id", "version"),
)


# -- project-scoped reads (0005) ----------------------------------------------------------

#: The runs whose batches carried a blob's bytes. A project-scoped token reads a blob only
#: through a run of its project listed here: one primary-key lookup by digest.
run_blobs = Table(
    "run_blobs",
    metadata,
    Column("digest", String(80), primary_key=True),
    Column("run_id", String(32), ForeignKey("runs.run_id"), primary_key=True),
)

#: The projects (by name, like ``api_tokens.project``) that reference an object of the
#: server's object store: a token of the project uploaded its bytes, or an artifact version
#: of the project is (or its tree holds) it. Project-scoped tokens read only these.
object_refs = Table(
    "object_refs",
    metadata,
    Column("digest", String(100), primary_key=True),
    Column("project", String(250), primary_key=True),
)


# -- chart summaries (0006) ---------------------------------------------------------------

#: One row per metric chunk (same key): what a chart needs without the chunk's points. The
#: chunk's bounds and order, its last point (in logging order) and its min/max (NaN skipped,
#: NULL when every value is NaN), then ``blocks``: per ``SKETCH_BLOCK`` points of the chunk,
#: packed little-endian records (last step i8, last timestamp i8, last value f8, min f8,
#: max f8; NaN only when the whole block is NaN). A separate table, small columns first, so
#: reading the bounds never touches the chunks' arrays (nor, in SQLite, overflow pages).
#: Chunks written before 0006 have no row here; readers fall back to their points.
metric_sketches = Table(
    "metric_sketches",
    metadata,
    Column("run_id", String(32), ForeignKey("runs.run_id"), primary_key=True),
    Column("key", String(250), primary_key=True),
    Column("seq", Integer, primary_key=True),
    Column("n", Integer, nullable=False),
    Column("step_min", BigInteger, nullable=False),
    Column("step_max", BigInteger, nullable=False),
    Column("is_sorted", Boolean, nullable=False),
    Column("last_step", BigInteger, nullable=False),
    Column("last_ms", BigInteger, nullable=False),
    Column("last_value", Double),
    Column("v_min", Double),
    Column("v_max", Double),
    Column("blocks", LargeBinary, nullable=False),
    # covering: a chart's scans read these, never the rows' blocks (10 KB a full chunk)
    Index(
        "ix_sketches_cover",
        *("run_id", "key", "seq", "n", "step_min", "step_max", "is_sorted"),
        *("last_step", "last_ms", "last_value", "v_min", "v_max"),
    ),
)


# -- model registry (0007) ----------------------------------------------------------------

#: A registered model of a project. ``tags`` is a JSON object; archived models stay.
registered_models = Table(
    "registered_models",
    metadata,
    Column("model_id", String(32), primary_key=True),
    Column("project_id", String(32), ForeignKey("projects.project_id"), nullable=False),
    Column("name", String(250), nullable=False),
    Column("description", Text, nullable=False, default=""),
    Column("owner", String(250), nullable=False, default=""),
    Column("tags", Text, nullable=False, default="{}"),
    Column("archived", Boolean, nullable=False, default=False),
    Column("created_ms", BigInteger, nullable=False),
    Column("updated_ms", BigInteger, nullable=False),
    Index("ux_registered_models_project_name", "project_id", "name", unique=True),
)

#: A version of a registered model: an artifact version pinned by its content digest.
model_versions = Table(
    "model_versions",
    metadata,
    Column("model_id", String(32), ForeignKey("registered_models.model_id"), primary_key=True),
    Column("version", Integer, primary_key=True),
    Column("artifact_id", String(32), ForeignKey("artifacts.artifact_id"), nullable=False),
    Column("artifact_version", Integer, nullable=False),
    Column("digest", String(100), nullable=False),
    Column("run_id", String(32), ForeignKey("runs.run_id")),
    Column("signature", Text, nullable=False, default="{}"),
    Column("meta", Text, nullable=False, default="{}"),
    Column("description", Text, nullable=False, default=""),
    Column("archived", Boolean, nullable=False, default=False),
    Column("created_ms", BigInteger, nullable=False),
    Column("created_by", String(250), nullable=False, default=""),
    Index("ix_model_versions_run", "run_id"),
)

#: Aliases of a model (``staging``, ``production``) pointing at one version each.
model_aliases = Table(
    "model_aliases",
    metadata,
    Column("model_id", String(32), ForeignKey("registered_models.model_id"), primary_key=True),
    Column("alias", String(128), primary_key=True),
    Column("version", Integer, nullable=False),
    Column("updated_ms", BigInteger, nullable=False),
)

#: Model cards, one row per revision of a version's card (append-only).
model_cards = Table(
    "model_cards",
    metadata,
    Column("model_id", String(32), ForeignKey("registered_models.model_id"), primary_key=True),
    Column("version", Integer, primary_key=True),
    Column("revision", Integer, primary_key=True),
    Column("data", Text, nullable=False),
    Column("created_ms", BigInteger, nullable=False),
    Column("actor", String(250), nullable=False, default=""),
)

#: Append-only history of every registry change, written in the change's transaction;
#: ``seq`` counts 1, 2, ... per model.
model_history = Table(
    "model_history",
    metadata,
    Column("model_id", String(32), ForeignKey("registered_models.model_id"), primary_key=True),
    Column("seq", Integer, primary_key=True),
    Column("created_ms", BigInteger, nullable=False),
    Column("actor", String(250), nullable=False),
    Column("action", String(32), nullable=False),
    Column("version", Integer),
    Column("alias", String(128)),
    Column("reason", Text, nullable=False, default=""),
    Column("before", Text),
    Column("after", Text),
)


# -- audit trail (0009) -------------------------------------------------------------------

#: The append-only audit log (docs/provenance.md): one entry per change, written in the
#: change's transaction; ``seq`` is gapless (1, 2, ...), ``hash`` chains each entry to the one
#: before. ``payload`` is the canonical JSON of what the change wrote, ``blobs`` a JSON list of
#: the blob digests it refers to. No index but the sequence: every batch appends here, and
#: lookups by subject (``audit log --subject``, proofs) read the log in order anyway.
audit_log = Table(
    "audit_log",
    metadata,
    Column("seq", BigInteger, primary_key=True, autoincrement=False),
    Column("ts_ms", BigInteger, nullable=False),
    Column("actor", String(250), nullable=False),
    Column("action", String(64), nullable=False),
    Column("subject", String(300), nullable=False),
    Column("payload", Text, nullable=False),
    Column("payload_digest", String(64), nullable=False),
    Column("blobs", Text, nullable=False, default="[]"),
    Column("prev_hash", String(64), nullable=False),
    Column("hash", String(64), nullable=False),
)

#: Signed checkpoints of the audit log (a copy also goes off-box). ``frontier`` caches the
#: Merkle tree's perfect-subtree roots at ``tree_size`` for the next checkpoint (unsigned,
#: never trusted by ``audit verify``).
audit_checkpoints = Table(
    "audit_checkpoints",
    metadata,
    Column("tree_size", BigInteger, primary_key=True, autoincrement=False),
    Column("root", String(64), nullable=False),
    Column("timestamp_ms", BigInteger, nullable=False),
    Column("key_id", String(64), nullable=False),
    Column("signature", String(128), nullable=False),
    Column("head_hash", String(64), nullable=False),
    Column("reason", String(16), nullable=False, default=""),
    Column("frontier", Text, nullable=False, default="[]"),
)


# -- saved UI views (0010) ----------------------------------------------------------------

#: The web UI's saved workspace views (:mod:`mltrail.store.ui_views`): one JSON document per
#: project and name, replaced on each save.
ui_views = Table(
    "ui_views",
    metadata,
    Column("project_id", String(32), ForeignKey("projects.project_id"), primary_key=True),
    Column("name", String(120), primary_key=True),
    Column("spec", Text, nullable=False),
    Column("updated_ms", BigInteger, nullable=False),
    Column("updated_by", String(250), nullable=False),
)
