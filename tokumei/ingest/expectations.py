"""Expectations on a day's input, checked by ``extract`` before anything is computed.

Why here and not in the output suites: a file in another encoding, or half a day, produced
*valid-looking* outputs (issue 17: a Shift-JIS events file lost every Japanese search, 12.5 % of
lines quarantined, exit 0). The quarantine absorbs a few bad lines by design; a lot of them, or
a day far smaller or larger than usual, means the delivery is broken and the run must stop with
a reason a person can act on. Limits are in the policy (``input:``, :class:`InputPolicy`).
Messages carry names, shares and counts of lines, never a value.

The same checks are a GX suite on the input side (``tokumei.expectations.inputs``): while
:func:`observing` is active, :func:`check_quarantine` and :func:`check_volume` record each
source's metrics (files, lines, shares, the volume ratio) *before* they decide, so a run they
stop still has the figures its Data Docs show. Why a recorder and not a return value: extract
calls these two functions with fixed arguments (docs/architecture.md §2), and the recorder
works wherever in extract they are called.
"""

from __future__ import annotations

import contextlib
import json
import statistics
import threading
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from tokumei.anonymize.policy import InputPolicy
from tokumei.infra.errors import TokumeiError

#: The quarantine reason of a line that is not UTF-8 (tokumei.ingest.sources).
INVALID_UTF8 = "invalid UTF-8"
#: Legacy Japanese encodings tried on lines that are not UTF-8 (cp932 is Windows' Shift-JIS).
_ENCODINGS = (("cp932", "Shift-JIS"), ("euc_jp", "EUC-JP"), ("iso2022_jp", "ISO-2022-JP"))
#: Lines sampled for the encoding guess.
_SAMPLE = 200


class InputExpectationFailed(TokumeiError):
    """A day's input is far off the policy's expectations: nothing is computed."""


@dataclass
class FileLines:
    """What one landing file gave: lines read, lines quarantined, lines not UTF-8 and the
    legacy encoding they all decode in (:func:`encoding_guess`, made where the raw lines are
    read: the raw lines themselves never leave that task)."""

    name: str  # relative to the landing: <source>/date=<day>/<file>
    lines: int
    quarantined: int
    not_utf8: int
    encoding: str | None = None

    def as_dict(self) -> dict[str, Any]:
        return {
            "name": self.name,
            "lines": self.lines,
            "quarantined": self.quarantined,
            "not_utf8": self.not_utf8,
            "encoding": self.encoding,
        }

    @classmethod
    def from_dict(cls, d: dict[str, Any]) -> FileLines:
        return cls(d["name"], d["lines"], d["quarantined"], d["not_utf8"], d.get("encoding"))


@dataclass
class InputObservations:
    """Metrics of each landing source as the input checks saw them (no value, no raw line).

    ``sources[source]`` holds ``files``, ``lines``, ``quarantine_share``, ``not_utf8_share``
    (:func:`check_quarantine`) and ``volume_ratio`` (:func:`check_volume`; ``None`` when not
    checked), in the order the sources were checked.
    """

    sources: dict[str, dict[str, Any]] = field(default_factory=dict)


_recording: InputObservations | None = None
_recording_lock = threading.Lock()


@contextlib.contextmanager
def observing() -> Iterator[InputObservations]:
    """Record what the input checks see until the block ends (one extract per process)."""
    global _recording
    observations = InputObservations()
    with _recording_lock:
        previous, _recording = _recording, observations
    try:
        yield observations
    finally:
        with _recording_lock:
            _recording = previous


def _observe(source: str, **metrics: Any) -> None:
    with _recording_lock:
        if _recording is not None:
            _recording.sources.setdefault(source, {}).update(metrics)


def encoding_guess(raws: list[bytes | None]) -> str | None:
    """The legacy encoding every sampled non-UTF-8 line decodes in, if any (a *guess*).

    Shift-JIS is tried first: most bytes sequences that are valid EUC-JP are also valid
    cp932, and Shift-JIS is by far the more common export encoding in Japan.
    """
    sample = [r for r in raws[:_SAMPLE] if r]
    if not sample:
        return None
    for codec, label in _ENCODINGS:
        try:
            for raw in sample:
                raw.decode(codec)
        except UnicodeDecodeError:
            continue
        return label
    return None


def check_quarantine(
    source: str, files: list[FileLines], reasons: dict[str, int], policy: InputPolicy
) -> None:
    """Raise when more than ``max_quarantine_share`` of the source's lines were quarantined.

    When lines that are not UTF-8 dominate, the message names the file with the largest
    share of them and guesses its encoding ("72 % of lines in events/…/part-00003.jsonl.gz are
    not UTF-8; is the file Shift-JIS?").
    """
    lines = sum(f.lines for f in files)
    bad = sum(f.quarantined for f in files)
    _observe(
        source,
        files=len(files),
        lines=lines,
        quarantine_share=bad / lines if lines else None,
        not_utf8_share=sum(f.not_utf8 for f in files) / lines if lines else None,
    )
    if not lines or bad / lines <= policy.max_quarantine_share:
        return
    share = f"{source}: {_pct(bad / lines)} of lines quarantined"
    limit = (
        f"the policy allows {_pct(policy.max_quarantine_share)} "
        "(policy.yaml input.max_quarantine_share); nothing was computed"
    )
    top = max(reasons.items(), key=lambda kv: kv[1])[0] if reasons else None
    worst = max(files, key=lambda f: f.not_utf8 / f.lines if f.lines else 0.0)
    if top == INVALID_UTF8 and worst.lines and worst.not_utf8:
        guess = worst.encoding
        hint = f"; is the file {guess}?" if guess else "; in which encoding was it written?"
        raise InputExpectationFailed(
            f"{_pct(worst.not_utf8 / worst.lines)} of lines in {worst.name} are not "
            f"UTF-8{hint} ({share}; {limit})"
        )
    most = f" (most: {top!r}, {reasons[top]} lines)" if top else ""
    raise InputExpectationFailed(f"{share}{most}; {limit}")


def _pct(x: float) -> str:
    return f"{x * 100:.3g} %"


def earlier_inputs(out: Path, day: str, source: str, runs: int) -> list[int]:
    """The input line counts of ``source`` in the last ``runs`` published complete days before
    ``day`` (from their manifests; counts printed as text, "< 100", are left out)."""
    reports = Path(out) / "reports"
    if not reports.is_dir():
        return []
    days = sorted(
        p.name.removeprefix("date=")
        for p in reports.glob("date=*")
        if p.name.removeprefix("date=") < day
    )
    found: list[int] = []
    for d in reversed(days):
        path = reports / f"date={d}" / "manifest.json"
        try:
            manifest: dict[str, Any] = json.loads(path.read_text(encoding="utf-8"))
        except (OSError, ValueError):
            continue
        if manifest.get("status") != "published" or manifest.get("partial"):
            continue
        value = (manifest.get("sources") or {}).get(source, {}).get("input")
        if isinstance(value, int) and not isinstance(value, bool):
            found.append(value)
        if len(found) >= runs:
            break
    return found


def check_volume(
    out: Path, day: str, inputs: dict[str, int], policy: InputPolicy, skip: set[str] = frozenset()
) -> dict[str, Any]:
    """Raise when a source's input is outside [min, max] x the median of earlier runs.

    Returns, per source, the ratio (or why it was not checked) for the run's record. Sources
    in ``skip`` (known incomplete, ``--allow-incomplete``) are not checked: they are short by
    definition and the release says so.
    """
    record: dict[str, Any] = {}
    refused: list[str] = []
    for source, n in inputs.items():
        if source in skip:
            record[source] = {"checked": False, "why": "incomplete landing"}
            _observe(source, volume_ratio=None)
            continue
        history = earlier_inputs(out, day, source, policy.volume_history_runs)
        if len(history) < policy.volume_min_runs:
            # no count in the text: the manifest prints counts by one rule (printed_count)
            record[source] = {"checked": False, "why": "too few earlier complete runs"}
            _observe(source, volume_ratio=None)
            continue
        median = statistics.median(history)
        ratio = n / median if median else (1.0 if n == 0 else float("inf"))
        record[source] = {"checked": True, "ratio_to_median": f"{ratio:.2f}"}
        # every source is recorded before the first refusal, for the input suite's Data Docs
        _observe(source, volume_ratio=ratio)
        if not refused and not policy.volume_min_ratio <= ratio <= policy.volume_max_ratio:
            refused.append(
                f"{source}: the day's input is {_pct(ratio)} of the median of the "
                f"{len(history)} earlier runs; the policy allows {_pct(policy.volume_min_ratio)}"
                f" to {_pct(policy.volume_max_ratio)} (policy.yaml input.volume_min_ratio / "
                "volume_max_ratio): half a day, or a day delivered twice? Nothing was computed"
            )
    if refused:
        raise InputExpectationFailed(refused[0])
    return record
