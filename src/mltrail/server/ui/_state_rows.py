"""Captured-state documents as label/value rows (the run page's environment, hardware,
seeds and invocation sections), read as defensively as ``mltrail runs show`` reads them."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from mltrail.formatting import KEY_PACKAGES, fmt_bytes

if TYPE_CHECKING:
    from collections.abc import Callable

    from mltrail.server.ui._run_view import Section

__all__ = ["sections"]

Rows = list[tuple[str, str]]


def _pairs(d: Any) -> str:
    return ", ".join(f"{k}={v}" for k, v in d.items()) if isinstance(d, dict) else ""


def _environment(doc: dict[str, Any]) -> Rows:
    py = doc.get("python") or {}
    packages = doc.get("packages") or {}
    keys = [f"{n} {packages[n]}" for n in KEY_PACKAGES if n in packages]
    rows: Rows = [
        ("python", f"{py.get('version')} {py.get('implementation')} ({py.get('executable')})"),
        ("packages", f"{len(packages)} installed" + (f"; {', '.join(keys)}" if keys else "")),
        ("container", _pairs(doc.get("container")) or "(none)"),
        ("nix", _pairs(doc.get("nix")) or "(none)"),
        ("env vars", _pairs(doc.get("env")) or "(none of the allow-listed set)"),
    ]
    errors = doc.get("errors") or {}
    rows += [(f"error ({probe})", str(err)) for probe, err in errors.items()]
    return rows


def _hardware(doc: dict[str, Any]) -> Rows:
    os_ = doc.get("os") or {}
    cpu = doc.get("cpu") or {}
    counts = f"{cpu.get('physical')} physical / {cpu.get('logical')} logical"
    rows: Rows = [
        ("os", f"{os_.get('system')} {os_.get('release')} {os_.get('machine')}"),
        ("host", str(doc.get("hostname"))),
        ("cpu", f"{cpu.get('model') or 'unknown'}, {counts}, {cpu.get('usable')} usable"),
        ("memory", fmt_bytes(doc.get("memory_bytes"))),
    ]
    gpus = [g for g in doc.get("gpus") or [] if isinstance(g, dict)]
    if not gpus:
        rows.append(("gpus", f"no GPU ({(doc.get('nvml') or {}).get('reason') or 'none found'})"))
    for gpu in gpus:
        mig = gpu.get("mig_mode") or {}
        rows.append(
            (
                f"gpu {gpu.get('index')}",
                f"{gpu.get('name')}, {fmt_bytes(gpu.get('memory_total_bytes'))}, "
                f"driver {gpu.get('driver_version')}, CUDA {gpu.get('cuda_driver_version')}, "
                f"sm {gpu.get('compute_capability')}, MIG {'on' if mig.get('current') else 'off'}",
            )
        )
    for name, info in (doc.get("frameworks") or {}).items():
        if isinstance(info, dict) and info:
            extra = {k: v for k, v in info.items() if k not in ("version", "errors")}
            rows.append((str(name), f"{info.get('version')} {_pairs(extra)}".strip()))
    return rows


def _seeds(doc: dict[str, Any]) -> Rows:
    seeding = doc.get("seeding")
    state = doc.get("state") or {}
    rows: Rows = []
    if isinstance(seeding, dict):
        seeded = ", ".join(str(s) for s in seeding.get("seeded") or [])
        rows.append(("seed", f"{seeding.get('seed')} ({seeding.get('source')}); {seeded}"))
        rows.append(("deterministic", "yes" if seeding.get("deterministic") else "no"))
        rows.append(("switches set", _pairs(seeding.get("switches")) or "(none)"))
    else:
        rows.append(("seed", "not seeded with mltrail.seed_everything"))
    env = {k: "unset" if v is None else v for k, v in (state.get("env") or {}).items()}
    rows.append(("env", _pairs(env)))
    rows.append(("hash random", str(state.get("python_hash_randomization"))))
    torch = state.get("torch")
    if isinstance(torch, dict):
        rows.append(("torch", _pairs({k: v for k, v in torch.items() if k != "errors"})))
    return rows


def _invocation(doc: dict[str, Any]) -> Rows:
    rows: Rows = [
        ("source", str(doc.get("source") or "(no config)")),
        ("argv", " ".join(str(a) for a in doc.get("argv") or [])),
    ]
    hydra = doc.get("hydra")
    if isinstance(hydra, dict):
        if hydra.get("error"):
            rows.append(("hydra", str(hydra["error"])))
        else:
            rows.append(("hydra config", str(hydra.get("config_name"))))
            rows.append(("overrides", " ".join(hydra.get("overrides") or []) or "(none)"))
    return rows


def sections(state: dict[str, dict[str, Any]]) -> list[Section]:
    """The environment, hardware, seeds and invocation sections of a run's state."""
    from mltrail.server.ui._run_view import Section

    spec: list[tuple[str, str, Callable[[dict[str, Any]], Rows]]] = [
        ("Environment", "environment", _environment),
        ("Hardware", "hardware", _hardware),
        ("Seeds and determinism", "seeds", _seeds),
        ("Invocation", "config", _invocation),
    ]
    out: list[Section] = []
    for title, kind, render in spec:
        doc = state.get(kind)
        if not isinstance(doc, dict):
            out.append(Section(title, note="not recorded"))
        elif isinstance(doc.get("error"), str) and len(doc) == 1:
            out.append(Section(title, note=f"capture failed: {doc['error']}"))
        else:
            try:
                out.append(Section(title, render(doc)))
            except (AttributeError, TypeError) as exc:  # a document of an unexpected shape
                out.append(Section(title, note=f"unreadable ({type(exc).__name__})"))
    return out
