"""Output folders that belong to one run: a marker, a lock, and checkpoint rotation limited to the run's own.

A run first writes ``.hf_genrec_run.json`` (the *run marker*) into its folder: what identifies the
run (its recipe and digests of its data, see ``training/run_identity.py``) and the fingerprint of
that.  A folder is the run's own when its marker carries the same fingerprint; a run refuses any
other non-empty folder unless told to overwrite (then files of the same names are replaced, and
nothing else is touched).  Every checkpoint folder gets the marker too, and checkpoint rotation
(``save_total_limit``) deletes only checkpoints that carry it: Trainer's own rotation deletes every
``checkpoint-*`` folder it finds, another run's included.  ``.hf_genrec.lock`` is held (``flock``)
while a run writes, so a second run into the same folder is refused; the OS releases it when the
process ends, however it ends.
"""

from __future__ import annotations

import hashlib
import json
import logging
import os
import re
import shutil
import tempfile
import time
import uuid
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Iterator, Mapping

from .errors import ConfigError
from .io_utils import atomic_write_json

logger = logging.getLogger(__name__)

RUN_MARKER_FILE = ".hf_genrec_run.json"
LOCK_FILE = ".hf_genrec.lock"
MARKER_FORMAT = "hf_genrec.run/1"
_CHECKPOINT = re.compile(r"^checkpoint-(\d+)$")
OVERWRITE_HINT = "pass --overwrite-output-dir (recipe: overwrite_output_dir: true) to write into it anyway"


@dataclass(frozen=True)
class RunMarker:
    """What makes two runs the same run (a JSON mapping), and its fingerprint."""

    identity: Mapping[str, Any]

    @property
    def fingerprint(self) -> str:
        text = json.dumps(self.identity, sort_keys=True, default=str, separators=(",", ":"))
        return hashlib.sha256(text.encode("utf-8")).hexdigest()[:32]

    @classmethod
    def unique(cls) -> "RunMarker":
        """A marker no other run has (a Trainer used outside a recipe run)."""
        return cls({"run": uuid.uuid4().hex})

    def as_json(self) -> dict[str, Any]:
        return {"format": MARKER_FORMAT, "fingerprint": self.fingerprint, "written": time.strftime("%Y-%m-%dT%H:%M:%S"),
                "identity": dict(self.identity)}

    def write(self, folder: str | os.PathLike) -> None:
        atomic_write_json(Path(folder) / RUN_MARKER_FILE, self.as_json(), indent=2)

    def differences(self, other: Mapping[str, Any] | None) -> str:
        """What differs between this run and a saved marker (``other``), in words."""
        if other is None:
            return f"it holds no run marker ({RUN_MARKER_FILE})"
        theirs = other.get("identity") if isinstance(other.get("identity"), Mapping) else {}
        found = []
        for part in sorted(set(self.identity) | set(theirs)):
            mine, saved = self.identity.get(part), theirs.get(part)
            if mine == saved:
                continue
            if isinstance(mine, Mapping) and isinstance(saved, Mapping):
                keys = sorted(k for k in set(mine) | set(saved) if mine.get(k) != saved.get(k))
                found += [f"{part} key {k!r} is {saved.get(k)!r} there, {mine.get(k)!r} here" for k in keys]
            else:
                found.append(f"its {part.replace('_', ' ')} differs")
        return "; ".join(found[:4]) + ("; ..." if len(found) > 4 else "") if found else "its marker is of another run"


def file_digest(path: str | os.PathLike, what: str) -> str:
    """A short digest of a file's bytes (part of a run's identity); a ConfigError naming ``what`` when unreadable."""
    try:
        return hashlib.sha256(Path(path).read_bytes()).hexdigest()[:32]
    except OSError as exc:
        raise ConfigError(f"{path}: cannot read the {what} ({exc.strerror or exc})") from None


def read_marker(folder: str | os.PathLike) -> dict[str, Any] | None:
    """The run marker of a folder, or ``None`` when it has none (or an unreadable one: then it is nobody's)."""
    path = Path(folder) / RUN_MARKER_FILE
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return None
    return data if isinstance(data, dict) and isinstance(data.get("fingerprint"), str) else None


def is_own(folder: str | os.PathLike, marker: RunMarker) -> bool:
    saved = read_marker(folder)
    return saved is not None and saved["fingerprint"] == marker.fingerprint


def checkpoint_folder(output_dir: str | os.PathLike, step: int) -> Path:
    """Where Trainer saves the checkpoint of ``step`` (``checkpoint-N``): named here once for every reader and writer."""
    return Path(output_dir) / f"checkpoint-{step}"


def checkpoint_step(folder: str | os.PathLike) -> int | None:
    """The step of a ``checkpoint-N`` folder's name; None for any other name."""
    match = _CHECKPOINT.match(Path(folder).name)
    return int(match.group(1)) if match else None


def own_checkpoints(output_dir: str | os.PathLike, marker: RunMarker | None, *, adopt_unmarked: bool = False,
                    complete: bool = False) -> list[Path]:
    """``checkpoint-N`` folders of ``output_dir`` that carry ``marker``, oldest step first.

    ``marker=None`` takes any; ``adopt_unmarked`` also takes those without a marker (written before
    markers existed); ``complete`` only those with a ``trainer_state.json`` (a save cut short by a crash has none).
    """
    folder = Path(output_dir)
    if not folder.is_dir():
        return []

    def belongs(path: Path) -> bool:
        return marker is None or is_own(path, marker) or (adopt_unmarked and read_marker(path) is None)

    found = [(step, p) for p in folder.iterdir() if (step := checkpoint_step(p)) is not None and p.is_dir()
             and (not complete or (p / "trainer_state.json").exists()) and belongs(p)]
    return [p for _, p in sorted(found)]


def check_writable_folder(folder: str | os.PathLike, what: str = "output_dir") -> Path:
    """Create ``folder`` if needed and prove a file can be written in it (a ConfigError naming it otherwise)."""
    folder = Path(folder)
    if folder.exists() and not folder.is_dir():
        raise ConfigError(f"{folder}: {what} is a file, not a folder")
    try:
        folder.mkdir(parents=True, exist_ok=True)
        fd, probe = tempfile.mkstemp(prefix=".write-test.", dir=folder)
        os.close(fd)
        os.unlink(probe)
    except OSError as exc:
        raise ConfigError(f"{folder}: {what} is not writable ({exc.strerror or exc})") from None
    return folder


def check_output_folder(folder: str | os.PathLike, marker: RunMarker, *, overwrite: bool = False, resume: bool = False) -> None:
    """ConfigError unless ``folder`` may take this run: absent or empty, the run's own (its marker), or ``overwrite``.

    ``resume`` continues a run: a marker of another run is refused even with ``overwrite`` (a
    non-empty folder without a marker needs ``overwrite``, as for a new run).  A non-empty
    ``checkpoint-N`` folder that is not the run's is refused even with ``overwrite`` (the run would
    save into it), except unmarked ones when resuming with ``overwrite`` (checkpoints written before
    markers existed).  Nothing is written.
    """
    folder = Path(folder)
    if folder.exists() and not folder.is_dir():
        raise ConfigError(f"{folder}: output_dir is a file, not a folder")
    if not folder.exists():
        return
    saved = read_marker(folder)
    others = sorted(p.name for p in folder.iterdir() if p.name not in (LOCK_FILE, RUN_MARKER_FILE))
    if saved is not None and saved["fingerprint"] == marker.fingerprint:
        pass  # the run's own folder
    elif resume and saved is not None:
        raise ConfigError(f"{folder}: cannot resume another run here: {marker.differences(saved)}")
    elif others and not overwrite:
        shown = ", ".join(others[:5]) + (", ..." if len(others) > 5 else "")
        raise ConfigError(f"{folder}: output_dir is not empty ({shown}) and is not this recipe's run "
                          f"({marker.differences(saved)}); choose another output_dir, or {OVERWRITE_HINT}")
    foreign = _foreign_checkpoints(folder, marker, allow_unmarked=resume and overwrite)
    if foreign:
        raise ConfigError(f"{folder}: holds checkpoints that are not this run's ({', '.join(foreign[:5])}): the run "
                          "would save its own checkpoints into them; move them away or choose another output_dir")


@contextmanager
def claim_output_folder(
    folder: str | os.PathLike, marker: RunMarker, *, overwrite: bool = False, resume: bool = False, main_process: bool = True
) -> Iterator[Path]:
    """Create and lock ``folder`` for this run, check it (:func:`check_output_folder`) and write the run marker.

    Only ``main_process`` checks, locks and writes; the other processes of a distributed run only
    use the folder (checking it too would race with the main process's temporary files; a main
    process that refuses the folder ends the whole launch).
    """
    if not main_process:
        yield Path(folder)
        return
    check_output_folder(folder, marker, overwrite=overwrite, resume=resume)
    folder = check_writable_folder(folder)
    with _folder_lock(folder):
        check_output_folder(folder, marker, overwrite=overwrite, resume=resume)  # again, now that no other run can write
        marker.write(folder)
        yield folder


def _foreign_checkpoints(folder: Path, marker: RunMarker, allow_unmarked: bool) -> list[str]:
    """Non-empty ``checkpoint-N`` folders without this run's marker (unmarked ones pass when ``allow_unmarked``)."""
    found = []
    for path in folder.iterdir():
        if _CHECKPOINT.match(path.name) and path.is_dir() and any(path.iterdir()) and not is_own(path, marker):
            if not (allow_unmarked and read_marker(path) is None):
                found.append(path.name)
    return sorted(found, key=lambda name: int(name.split("-")[1]))


@contextmanager
def _folder_lock(folder: Path, enabled: bool = True) -> Iterator[None]:
    """An exclusive ``flock`` on ``folder/.hf_genrec.lock`` (the file stays; the OS drops the lock with the process)."""
    try:
        import fcntl
    except ImportError:  # not POSIX: no lock
        enabled = False
    if not enabled:
        yield
        return
    path = folder / LOCK_FILE
    # opened in place, never replaced: a lock file renamed over would lock nothing
    fd = os.open(path, os.O_RDWR | os.O_CREAT, 0o644)
    try:
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            holder = os.pread(fd, 200, 0).decode("utf-8", "replace").strip() or "another process"
            raise ConfigError(f"{folder}: another hf-genrec run ({holder}) is writing to this folder; "
                              "wait for it to finish or choose another output_dir") from None
        os.ftruncate(fd, 0)
        os.pwrite(fd, f"pid {os.getpid()}, started {time.strftime('%Y-%m-%d %H:%M:%S')}\n".encode(), 0)
        try:
            yield
        finally:
            fcntl.flock(fd, fcntl.LOCK_UN)
    finally:
        os.close(fd)


class OwnCheckpointsMixin:
    """Trainer mixin: each checkpoint carries the run's marker; rotation deletes only checkpoints carrying it.

    ``run_marker`` (keyword) is the run's :class:`RunMarker`; without one the Trainer gets a marker of
    its own, so it still rotates only what it wrote.  Put it before the Trainer class.
    """

    def __init__(self, *args: Any, run_marker: RunMarker | None = None, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.run_marker = run_marker or RunMarker.unique()
        self._own_save_total_limit: int | None = None

    def train(self, *args: Any, **kwargs: Any) -> Any:
        limit = self.args.save_total_limit
        self._own_save_total_limit, self.args.save_total_limit = limit, None  # Trainer's rotation is off
        try:
            result = super().train(*args, **kwargs)
        finally:
            self.args.save_total_limit = limit
        best = self.state.best_model_checkpoint
        if limit == 1 and best is not None and self.args.should_save:  # as Trainer: keep only the best
            for checkpoint in own_checkpoints(self.args.output_dir, self.run_marker):
                if checkpoint.resolve() != Path(best).resolve():
                    shutil.rmtree(checkpoint, ignore_errors=True)
        return result

    def _save_checkpoint(self, model: Any, trial: Any) -> None:
        run_dir = Path(self._get_output_dir(trial=trial))
        checkpoint = checkpoint_folder(run_dir, self.state.global_step)
        # marked first, so a crash mid-save leaves a marked, incomplete checkpoint that resuming skips; a folder
        # of that name that is not the run's (adopted on resume) is never marked, so never rotated away
        if self.args.should_save and (not checkpoint.exists() or is_own(checkpoint, self.run_marker)):
            checkpoint.mkdir(parents=True, exist_ok=True)
            self.run_marker.write(checkpoint)
        super()._save_checkpoint(model, trial)
        if self.args.should_save and self._own_save_total_limit:
            rotate_own_checkpoints(run_dir, self.run_marker, self._own_save_total_limit, self.state.best_model_checkpoint)


def rotate_own_checkpoints(output_dir: str | os.PathLike, marker: RunMarker, limit: int, best: str | None = None) -> None:
    """Delete the oldest of the run's own checkpoints beyond ``limit``; the newest and the best are kept (as Trainer)."""
    checkpoints = own_checkpoints(output_dir, marker)
    if len(checkpoints) <= limit:
        return
    protected = {checkpoints[-1].resolve()} | ({Path(best).resolve()} if best else set())
    remaining = len(checkpoints)
    for checkpoint in checkpoints:
        if remaining <= max(limit, len(protected)):
            break
        if checkpoint.resolve() not in protected:
            logger.info("deleting older checkpoint %s (save_total_limit %d)", checkpoint, limit)
            shutil.rmtree(checkpoint, ignore_errors=True)
            remaining -= 1


__all__ = [
    "LOCK_FILE",
    "OVERWRITE_HINT",
    "OwnCheckpointsMixin",
    "RUN_MARKER_FILE",
    "RunMarker",
    "check_output_folder",
    "check_writable_folder",
    "claim_output_folder",
    "checkpoint_folder",
    "checkpoint_step",
    "is_own",
    "own_checkpoints",
    "read_marker",
    "rotate_own_checkpoints",
]
