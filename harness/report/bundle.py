"""`harness bundle`: one archive of a run that a user can send or attach, and the way back.

The archive `<run-id>.tar.gz` holds one directory `<run-id>/`: the run directory as stored
(manifest.json, the parquet tables, raw/, calibration/ when there is one) and `report/` (the
HTML report and the exports beside it, written fresh from the stored tables).
"""

from __future__ import annotations

import tarfile
import tempfile
from pathlib import Path

from harness.atomic import TMP_SUFFIX, write_atomic
from harness.errors import HarnessError

SUFFIX = ".tar.gz"


def write_bundle(run_dir: Path, output: Path, report_dir: Path) -> Path:
    """Archive run_dir and the report in report_dir as output (written whole, then renamed)."""
    run_id = run_dir.name
    output.parent.mkdir(parents=True, exist_ok=True)

    def archive(tmp: Path) -> None:
        with tarfile.open(tmp, "w:gz") as tar:
            for path in sorted(run_dir.rglob("*")):
                if path.is_file() and not path.name.endswith(TMP_SUFFIX):
                    tar.add(path, arcname=f"{run_id}/{path.relative_to(run_dir)}", recursive=False)
            for path in sorted(report_dir.rglob("*")):
                if path.is_file():
                    tar.add(path, arcname=f"{run_id}/report/{path.relative_to(report_dir)}")

    write_atomic(output, archive)
    return output


def is_bundle(path: Path) -> bool:
    return path.is_file() and path.name.endswith(SUFFIX)


def open_bundle(path: Path, into: Path) -> Path:
    """Unpack a bundle under `into` (plain files and directories only, nothing outside it);
    returns its run directory."""
    try:
        with tarfile.open(path, "r:gz") as tar:
            members = tar.getmembers()
            tops = {m.name.split("/", 1)[0] for m in members}
            if len(tops) != 1 or not any(m.name.endswith("/manifest.json") for m in members):
                raise HarnessError(
                    f"{path} is not a run bundle (one directory with a manifest.json); make one "
                    "with `harness bundle RESULTS_DIR`"
                )
            tar.extractall(into, filter="data")
    except (tarfile.TarError, EOFError, OSError) as exc:
        raise HarnessError(
            f"cannot read the bundle {path}: {exc}; make it again with `harness bundle`"
        ) from exc
    return into / tops.pop()


def scratch() -> tempfile.TemporaryDirectory[str]:
    return tempfile.TemporaryDirectory(prefix="harness-bundle-")
