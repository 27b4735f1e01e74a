"""The plan of a sweep and the state of each run: ``manifest.json``, what ``--resume`` reads.

The manifest is written atomically when the sweep starts and after every state
change, so an interrupted or killed sweep always leaves a complete plan behind.

Each sweep has an id, made once when its manifest is created and kept on resume: the
results database keys its runs by (sweep id, run id). Manifests written before sweeps
had ids get one derived from their creation time and run ids, the same every time.
"""

from __future__ import annotations

import hashlib
import json
import uuid
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from pathlib import Path

from mnistbench import __version__, layout
from mnistbench.atomic import atomic_writer
from mnistbench.errors import MnistbenchError
from mnistbench.plan import RunConfig
from mnistbench.record import utc_now

#: Bumped when the manifest changes incompatibly; --resume refuses other formats.
FORMAT = 1
# States of a run: planned → running → ok | failed | diverged | interrupted.


@dataclass
class Manifest:
    """The planned runs of one output directory, in order, with the state of each."""

    path: Path
    configs: list[RunConfig]
    states: dict[str, str]
    options: dict = field(default_factory=dict)
    created_at: str = ""
    sweep_id: str = ""

    @classmethod
    def create(
        cls, output_dir: Path, configs: list[RunConfig], options: dict, *, after: str = ""
    ) -> Manifest:
        """Start the manifest of a new sweep: every run planned. ``after``: a creation time
        this sweep's must follow (by a second where the clock has not moved on yet), so that
        sweeps made together keep their order by start."""
        run_ids = [config.run_id for config in configs]
        duplicates = sorted({run_id for run_id in run_ids if run_ids.count(run_id) > 1})
        if duplicates:
            raise MnistbenchError(f"the sweep plans run(s) twice: {', '.join(duplicates)}")
        created_at = utc_now()
        if after and datetime.fromisoformat(created_at) <= datetime.fromisoformat(after):
            later = datetime.fromisoformat(after) + timedelta(seconds=1)
            created_at = later.isoformat(timespec="seconds")
        manifest = cls(
            layout.MANIFEST_JSON.of(output_dir),
            list(configs),
            dict.fromkeys(run_ids, "planned"),
            options,
            created_at,
            new_sweep_id(created_at),
        )
        manifest.save()
        return manifest

    @classmethod
    def load(cls, output_dir: Path) -> Manifest:
        """Read a directory's manifest; a one-line error if it is missing, corrupt or foreign."""
        path = layout.MANIFEST_JSON.of(output_dir)
        if not path.is_file():
            raise MnistbenchError(
                f"{path}: not found; --resume needs a directory written by `mnistbench run`"
            )
        try:
            data = json.loads(path.read_text())
            if data.get("format") != FORMAT:
                raise MnistbenchError(
                    f"{path}: written by mnistbench {data.get('mnistbench', '?')} in results "
                    f"format {data.get('format')!r}; this mnistbench {__version__} reads format "
                    f"{FORMAT} only: start a new output directory"
                )
            configs = [RunConfig(**run["config"]) for run in data["runs"]]
            states = {run["run_id"]: run["state"] for run in data["runs"]}
        except MnistbenchError:
            raise
        except (ValueError, KeyError, TypeError) as error:
            raise MnistbenchError(f"{path}: corrupt manifest ({type(error).__name__})") from None
        created_at = data.get("created_at", "")
        sweep_id = data.get("sweep_id") or derived_sweep_id(created_at, list(states))
        return cls(path, configs, states, data.get("options", {}), created_at, sweep_id)

    def save(self) -> None:
        data = {
            "format": FORMAT,
            "mnistbench": __version__,
            "created_at": self.created_at,
            "sweep_id": self.sweep_id,
            "updated_at": utc_now(),
            "options": self.options,
            "runs": [
                {"run_id": c.run_id, "state": self.states[c.run_id], "config": c.to_dict()}
                for c in self.configs
            ],
        }
        with atomic_writer(self.path, "w") as handle:
            json.dump(data, handle, indent=2)
            handle.write("\n")

    def set_state(self, run_id: str, state: str) -> None:
        self.states[run_id] = state
        self.save()

    @property
    def order(self) -> list[str]:
        return [config.run_id for config in self.configs]


def new_sweep_id(created_at: str) -> str:
    """A new sweep's id: its UTC start to the second, then 8 random hex digits.

    ``2025-01-01T12:00:00+00:00`` gives ``20250101T120000Z-1f3a9c07``: ids sort by start
    and two sweeps started in the same second still differ.
    """
    stamp = created_at.split("+")[0].replace("-", "").replace(":", "")
    return f"{stamp}Z-{uuid.uuid4().hex[:8]}"


def derived_sweep_id(created_at: str, run_ids: list[str]) -> str:
    """The id of a sweep whose manifest predates sweep ids: a hash of its creation time
    and run ids, so importing its directory twice names the same sweep."""
    digest = hashlib.sha256(json.dumps([created_at, run_ids]).encode()).hexdigest()
    return f"derived-{digest[:16]}"


def read_sweep_identity(output_dir: Path) -> tuple[str, str]:
    """``(sweep_id, created_at)`` of an output directory, however old its manifest.

    Reads ``manifest.json`` leniently (any format): its ``sweep_id``, else one derived
    from its ``created_at`` and run ids. Without a readable manifest, the id is derived
    from the directory's absolute path and ``created_at`` is "".
    """
    try:
        data = json.loads((layout.MANIFEST_JSON.of(output_dir)).read_text())
        created_at = str(data.get("created_at", ""))
        run_ids = [str(run["run_id"]) for run in data.get("runs", [])]
    except (OSError, ValueError, TypeError, KeyError, AttributeError):
        digest = hashlib.sha256(str(Path(output_dir).resolve()).encode()).hexdigest()
        return f"derived-{digest[:16]}", ""
    return str(data.get("sweep_id") or derived_sweep_id(created_at, run_ids)), created_at
