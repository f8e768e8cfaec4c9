"""Read what a W&B run logged, from its transaction log (``run-<id>.wandb``, written offline and online alike).

A resumed run reads its earlier segments' logs so that no step reaches W&B twice; the tests read them back.

wandb 0.31 writes the log from its Go backend (``wandb-core``, ``core/pkg/leveldb`` and
``core/internal/transactionlog``) and ships no public Python reader, so this module parses it directly.
The format is LevelDB's log format (https://github.com/google/leveldb/blob/main/doc/log_format.md)
behind a W&B file header:

* File header, 7 bytes at offset 0: ident ``b":W&B"`` (bytes 0-3), magic ``0xBEE1`` as a little-endian
  uint16 (bytes 4-5, i.e. ``e1 be`` on disk), store version ``0`` as a uint8 (byte 6). These 7 bytes
  belong to the first 32 KiB block: block boundaries are absolute file offsets (multiples of 32768).
* Then 32 KiB blocks of chunks. Each chunk is a 7-byte header followed by its payload:
  bytes 0-3 CRC32 as a little-endian uint32; bytes 4-5 payload length as a little-endian uint16;
  byte 6 chunk type (1 FULL, 2 FIRST, 3 MIDDLE, 4 LAST). A chunk never crosses a block boundary; when
  fewer than 7 bytes are left in a block, they are zero padding and the next chunk starts in the next
  block. A record too big for the rest of its block is split into FIRST, MIDDLE..., LAST chunks
  (a FIRST chunk may carry 0 bytes when exactly 7 bytes were left).
* The checksum is the plain (unmasked) IEEE CRC-32, ``zlib.crc32``, of the chunk type byte followed by
  the payload. wandb-core opens transaction logs with ``leveldb.CRCAlgoIEEE``; its other option,
  ``CRCAlgoCustom`` (LevelDB's masked CRC-32C), is not used for ``.wandb`` files. The old pure-Python
  writer (``wandb/sdk/internal/datastore.py``, removed since) computed the same thing as
  ``zlib.crc32(payload, zlib.crc32(bytes([type])))``.
* Each reassembled payload is one serialized ``wandb.proto.wandb_internal_pb2.Record``.

Only that protobuf class is taken from wandb; the framing is read here.
"""

from __future__ import annotations

import json
import struct
import time
import zlib
from pathlib import Path
from typing import Any, Dict, Iterator, List, Optional, Set, Tuple, Union

from wandb.proto.wandb_internal_pb2 import Record

__all__ = [
    "TransactionLog",
    "WandbRecordError",
    "WandbRun",
    "find_wandb_file",
    "flatten",
    "logged_keys",
    "payloads",
    "records",
    "segments",
    "wait_until_written",
]

FILE_IDENT = b":W&B"
FILE_MAGIC = 0xBEE1
FILE_VERSION = 0
FILE_HEADER = struct.Struct("<4sHB")  # ident, magic, version: 7 bytes

BLOCK_SIZE = 32 * 1024
CHUNK_HEADER = struct.Struct("<IHB")  # crc32, length, type: 7 bytes
FULL, FIRST, MIDDLE, LAST = 1, 2, 3, 4

PathLike = Union[str, Path]


class WandbRecordError(ValueError):
    """The file is not a W&B transaction log, or it is corrupt (bad header, checksum, chunk order)."""


class _TornTail(Exception):
    """The file ends before its last chunk or record does: what a writer killed mid-record leaves."""

    def __init__(self, offset: int) -> None:
        super().__init__(offset)
        self.offset = offset


def _chunks(data: bytes, path: PathLike) -> Iterator[Tuple[int, bytes, int]]:
    """Yield ``(chunk_type, payload, offset)`` for every chunk after the file header."""
    pos = FILE_HEADER.size
    end = len(data)
    while pos < end:
        left_in_block = BLOCK_SIZE - pos % BLOCK_SIZE
        if left_in_block < CHUNK_HEADER.size:
            if data[pos : pos + left_in_block].strip(b"\x00"):
                raise WandbRecordError(f"{path}: non-zero block padding at offset {pos}")
            pos += left_in_block
            continue
        if end - pos < CHUNK_HEADER.size:
            raise _TornTail(pos)
        crc, length, chunk_type = CHUNK_HEADER.unpack_from(data, pos)
        if crc == 0 and length == 0 and chunk_type == 0:
            # A zeroed tail of a block (LevelDB readers skip it); nothing real follows in this block.
            if data[pos : pos + left_in_block].strip(b"\x00"):
                raise WandbRecordError(f"{path}: zero chunk header followed by data at offset {pos}")
            pos += left_in_block
            continue
        start = pos + CHUNK_HEADER.size
        if length > left_in_block - CHUNK_HEADER.size:
            raise WandbRecordError(f"{path}: chunk at offset {pos} overflows its block (length {length})")
        if start + length > end:
            raise _TornTail(pos)
        payload = data[start : start + length]
        if zlib.crc32(payload, zlib.crc32(bytes([chunk_type]))) != crc:
            raise WandbRecordError(f"{path}: checksum mismatch in chunk at offset {pos}")
        yield chunk_type, payload, pos
        pos = start + length


class TransactionLog:
    """The records of one ``.wandb`` file, read in order: iterate it for each record's raw payload.

    A run killed while W&B was writing leaves a torn tail: a last chunk cut short, or a record whose
    later chunks never came. Iteration yields every complete record before it and stops there, and
    ``torn_tail_at`` then holds the offset where the torn part begins (``None`` for a file that ends
    cleanly). Anything else that is wrong (header, checksum, chunk order) raises ``WandbRecordError``.
    """

    def __init__(self, path: PathLike) -> None:
        self.path = Path(path)
        self.torn_tail_at: Optional[int] = None

    def __iter__(self) -> Iterator[bytes]:
        data = self.path.read_bytes()
        if len(data) < FILE_HEADER.size:
            raise WandbRecordError(f"{self.path}: shorter than the {FILE_HEADER.size}-byte W&B header")
        ident, magic, version = FILE_HEADER.unpack_from(data, 0)
        if ident != FILE_IDENT or magic != FILE_MAGIC:
            raise WandbRecordError(f"{self.path}: not a W&B transaction log (header {data[:7]!r})")
        if version != FILE_VERSION:
            raise WandbRecordError(f"{self.path}: unsupported W&B store version {version}")
        parts: Optional[List[bytes]] = None
        first_offset = 0
        try:
            for chunk_type, payload, offset in _chunks(data, self.path):
                if chunk_type == FULL:
                    if parts is not None:
                        raise WandbRecordError(f"{self.path}: FULL chunk at offset {offset} inside a fragmented record")
                    yield payload
                elif chunk_type == FIRST:
                    if parts is not None:
                        raise WandbRecordError(
                            f"{self.path}: FIRST chunk at offset {offset} inside a fragmented record"
                        )
                    parts, first_offset = [payload], offset
                elif chunk_type in (MIDDLE, LAST):
                    if parts is None:
                        raise WandbRecordError(
                            f"{self.path}: chunk type {chunk_type} at offset {offset} without a FIRST"
                        )
                    parts.append(payload)
                    if chunk_type == LAST:
                        yield b"".join(parts)
                        parts = None
                else:
                    raise WandbRecordError(f"{self.path}: unknown chunk type {chunk_type} at offset {offset}")
        except _TornTail as torn:
            self.torn_tail_at = first_offset if parts is not None else torn.offset
            return
        if parts is not None:
            self.torn_tail_at = first_offset


def payloads(path: PathLike) -> Iterator[bytes]:
    """Yield each complete record's raw payload (chunks reassembled, checksums verified), in file order."""
    return iter(TransactionLog(path))


def records(path: PathLike) -> Iterator[Record]:
    """Yield every ``Record`` of a ``.wandb`` file (or of the run found at ``path``, see ``find_wandb_file``), in order."""
    for payload in payloads(find_wandb_file(path)):
        yield _parsed(payload)


def _parsed(payload: bytes) -> Record:
    record = Record()
    record.ParseFromString(payload)
    return record


def find_wandb_file(path: PathLike) -> Path:
    """The one ``run-*.wandb`` file for ``path``.

    ``path`` may be the file itself, an ``offline-run-*`` (or ``run-*``) folder holding it, a ``wandb/``
    folder holding one such run folder, or a job's run directory holding ``wandb/``. Raises
    ``FileNotFoundError`` when none is found and ``ValueError`` when several are (pass a narrower path).
    """
    path = Path(path)
    if path.is_file():
        return path
    if not path.is_dir():
        raise FileNotFoundError(f"no such file or folder: {path}")
    for pattern in ("run-*.wandb", "*run-*/run-*.wandb", "wandb/*run-*/run-*.wandb"):
        found = sorted(path.glob(pattern))
        if len(found) == 1:
            return found[0]
        if len(found) > 1:
            names = ", ".join(str(p.relative_to(path)) for p in found)
            raise ValueError(f"several W&B runs under {path}: {names}")
    raise FileNotFoundError(f"no run-*.wandb file under {path}")


def flatten(tree: Dict[str, Any], sep: str = "/") -> Dict[str, Any]:
    """A nested dict's leaves keyed by their paths joined with ``sep``: ``{"a": {"b": 1}}`` -> ``{"a/b": 1}``.

    Keys that already contain ``sep`` (Lightning's ``"loss/d"``) are kept as they are, so flattening may
    merge paths that were distinct in the log; use the nested dicts when that matters.
    """
    flat: Dict[str, Any] = {}
    for key, value in tree.items():
        if isinstance(value, dict) and value:
            for sub, leaf in flatten(value, sep).items():
                flat[f"{key}{sep}{sub}"] = leaf
        else:
            flat[key] = value
    return flat


def _history_value(item: Any) -> Any:
    """A ``HistoryItem``'s value: its typed ``value`` field when set, else ``json.loads(value_json)``."""
    kind = item.WhichOneof("value")
    if kind is None:
        return json.loads(item.value_json) if item.value_json else None
    if kind == "none":
        return None
    if kind == "json":
        return json.loads(item.json)
    return getattr(item, kind)


def _json_value(item: Any) -> Any:
    return json.loads(item.value_json) if item.value_json else None


def _set_path(tree: Dict[str, Any], parts: List[str], value: Any) -> None:
    for part in parts[:-1]:
        child = tree.get(part)
        if not isinstance(child, dict):
            child = tree[part] = {}
        tree = child
    tree[parts[-1]] = value


def _del_path(tree: Dict[str, Any], parts: List[str]) -> None:
    for part in parts[:-1]:
        tree = tree.get(part)
        if not isinstance(tree, dict):
            return
    tree.pop(parts[-1], None)


def _apply(tree: Dict[str, Any], update: Any, remove: Any) -> None:
    """Apply a ``ConfigRecord``/``SummaryRecord`` (updates then removals) to a nested dict."""
    for item in update:
        parts = list(item.nested_key) or [item.key]
        _set_path(tree, parts, _json_value(item))
    for item in remove:
        _del_path(tree, list(item.nested_key) or [item.key])


class WandbRun:
    """Everything one offline W&B run logged, decoded from its ``run-*.wandb`` file.

    Build it from the file, its ``offline-run-*`` folder, or a job's run directory holding ``wandb/``.

    Attributes:
        path: the ``.wandb`` file read.
        records: every ``Record`` in file order.
        history: one dict per history record (one ``wandb.log`` row), values decoded from JSON, with
            wandb's own ``_step``, ``_runtime`` and ``_timestamp``. wandb-core writes every key as a
            ``nested_key`` path and splits logged dicts and media into one item per leaf (an image logged
            as ``"samples"`` arrives as ``["samples", "_type"]``, ``["samples", "filenames"]``, ...), so
            rows are rebuilt as nested dicts: ``row["samples"]["_type"]``. A logged key that contains '/'
            (Lightning's ``"loss/d"``) is one path element and stays one key: ``row["loss/d"]``. Use
            ``flatten(row)`` for '/'-joined leaf paths.
        history_keys: the union of the top-level keys of ``history``; ``history_paths``: of their leaf paths.
        summary: the run summary, summary records merged in order, nested like ``history``. For metrics
            given ``define_metric(summary="max")`` the value is ``{"max": ...}``.
        config: the run config (the run record's config, then config records merged in order); W&B keeps
            internal keys such as ``_wandb`` here too.
        run: fields of the (last) run record: ``run_id``, ``project``, ``entity``, ``group``, ``job_type``,
            ``display_name``, ``tags`` (list), ``notes``, ``host``, ``sweep_id``, ``starting_step``, ``resumed``.
        metric_definitions: one dict per ``define_metric`` (``metric`` record), in order: ``name`` or
            ``glob_name``, and when set ``step_metric``, ``summary`` (list of aggregations such as
            ``["min", "max"]``), ``goal`` (``"minimize"``/``"maximize"``), ``hidden``, ``step_sync``,
            ``defined`` (False for metrics wandb defined implicitly), ``expanded_from_glob``.
        files: paths from ``files`` records (files saved to the run), in order, without duplicates.
        artifacts: one dict per ``artifact`` record: ``name``, ``type``, ``aliases``, ``digest``.
        exit_code: the exit record's code, or None if the run did not finish cleanly.
        torn_tail_at: where the record a kill cut short begins, or None (see ``TransactionLog``).
    """

    def __init__(self, path: PathLike) -> None:
        self.path = find_wandb_file(path)
        log = TransactionLog(self.path)
        self.records: List[Record] = [_parsed(payload) for payload in log]
        self.torn_tail_at = log.torn_tail_at
        self.history: List[Dict[str, Any]] = []
        self.summary: Dict[str, Any] = {}
        self.config: Dict[str, Any] = {}
        self.run: Dict[str, Any] = {}
        self.metric_definitions: List[Dict[str, Any]] = []
        self.files: List[str] = []
        self.artifacts: List[Dict[str, Any]] = []
        self.exit_code: Optional[int] = None
        for record in self.records:
            kind = record.WhichOneof("record_type")
            handler = getattr(self, f"_on_{kind}", None)
            if handler is not None:
                handler(getattr(record, kind))

    @property
    def history_keys(self) -> Set[str]:
        """All top-level keys that appear in any history row (``"loss/d"``, ``"samples"``, ``"_step"``...)."""
        return {key for row in self.history for key in row}

    @property
    def history_paths(self) -> Set[str]:
        """All leaf paths of the history rows, joined with '/' (``"samples/_type"``, ``"loss/d"``...)."""
        return {key for row in self.history for key in flatten(row)}

    def metric(self, key: str) -> List[Tuple[Optional[int], Any]]:
        """``(_step, value)`` for each history row that has ``key``, in order."""
        return [(row.get("_step"), row[key]) for row in self.history if key in row]

    def _on_run(self, rec: Any) -> None:
        self.run = {
            "run_id": rec.run_id,
            "project": rec.project,
            "entity": rec.entity,
            "group": rec.run_group,
            "job_type": rec.job_type,
            "display_name": rec.display_name,
            "tags": list(rec.tags),
            "notes": rec.notes,
            "host": rec.host,
            "sweep_id": rec.sweep_id,
            "starting_step": rec.starting_step,
            "resumed": rec.resumed,
        }
        if rec.HasField("config"):
            _apply(self.config, rec.config.update, rec.config.remove)
        if rec.HasField("summary"):
            _apply(self.summary, rec.summary.update, rec.summary.remove)

    def _on_history(self, rec: Any) -> None:
        row: Dict[str, Any] = {}
        for item in rec.item:
            _set_path(row, list(item.nested_key) or [item.key], _history_value(item))
        if "_step" not in row and rec.HasField("step"):
            row["_step"] = rec.step.num
        self.history.append(row)

    def _on_summary(self, rec: Any) -> None:
        _apply(self.summary, rec.update, rec.remove)

    def _on_config(self, rec: Any) -> None:
        _apply(self.config, rec.update, rec.remove)

    def _on_metric(self, rec: Any) -> None:
        entry: Dict[str, Any] = {}
        if rec.name:
            entry["name"] = rec.name
        if rec.glob_name:
            entry["glob_name"] = rec.glob_name
        if rec.step_metric:
            entry["step_metric"] = rec.step_metric
        if rec.HasField("summary"):
            chosen = [field.name for field, value in rec.summary.ListFields() if value is True]
            if chosen:
                entry["summary"] = chosen
        if rec.goal:
            entry["goal"] = {1: "minimize", 2: "maximize"}.get(rec.goal, rec.goal)
        if rec.HasField("options"):
            for field, value in rec.options.ListFields():
                entry[field.name] = value
        if rec.expanded_from_glob:
            entry["expanded_from_glob"] = True
        self.metric_definitions.append(entry)

    def _on_files(self, rec: Any) -> None:
        for item in rec.files:
            if item.path not in self.files:
                self.files.append(item.path)

    def _on_artifact(self, rec: Any) -> None:
        self.artifacts.append({"name": rec.name, "type": rec.type, "aliases": list(rec.aliases), "digest": rec.digest})

    def _on_exit(self, rec: Any) -> None:
        self.exit_code = rec.exit_code

    def __repr__(self) -> str:
        return f"WandbRun({str(self.path)!r}, {len(self.history)} history rows)"


def _has_exit_record(path: PathLike) -> bool:
    try:
        return any(_parsed(payload).WhichOneof("record_type") == "exit" for payload in payloads(find_wandb_file(path)))
    except (OSError, ValueError):  # no log yet, or not yet readable (WandbRecordError is a ValueError)
        return False


def wait_until_written(path: PathLike, timeout_s: float) -> bool:
    """Wait at most ``timeout_s`` until the finished run at ``path`` has its exit record on disk; True when it has.

    ``run.finish()`` may return before W&B's service closes the transaction log, and the service holds the log's
    last, partial 32 KiB block in memory until then: a reader straight after ``finish`` may find only the header.
    """
    deadline = time.monotonic() + timeout_s
    while not _has_exit_record(path):
        if time.monotonic() >= deadline:
            return False
        time.sleep(0.05)
    return True


# Keys W&B adds to every history row itself, and the step axis every row of this project carries.
ROW_BOOKKEEPING = ("_step", "_runtime", "_timestamp", "trainer/global_step", "epoch")


def segments(wandb_dir: PathLike, run_id: str) -> List[Path]:
    """The transaction logs of every segment of W&B run ``run_id`` under ``wandb_dir`` (one per start or resume), oldest first."""
    return sorted(Path(wandb_dir).glob(f"*run-*-{run_id}/run-{run_id}.wandb"))


def logged_keys(wandb_dir: PathLike, run_id: str) -> Dict[int, Set[str]]:
    """For each ``trainer/global_step``, the keys that earlier segments of run ``run_id`` already logged at it.

    A segment cut short by a kill may end in a torn record: what precedes it is read, the rest ignored, so
    the steps it held are logged again. A corrupt segment counts for what was read before the fault.
    """
    seen: Dict[int, Set[str]] = {}
    for path in segments(wandb_dir, run_id):
        try:
            for record in records(path):
                if record.WhichOneof("record_type") != "history":
                    continue
                row: Dict[str, Any] = {}
                for item in record.history.item:
                    key = (list(item.nested_key) or [item.key])[0]
                    row[key] = item
                step_item = row.get("trainer/global_step")
                if step_item is None:
                    continue
                step = int(_history_value(step_item))
                seen.setdefault(step, set()).update(k for k in row if k not in ROW_BOOKKEEPING)
        except WandbRecordError:
            continue
    return seen
