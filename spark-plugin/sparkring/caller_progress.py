"""Progress of a run where its caller is: the CLI's lines on stdout in a script (or a Livy
statement, whose output is its stdout); in a Jupyter kernel, the lines plus one table, updated in
place, of each worker's step, loss (and other metrics) and samples/s."""

from __future__ import annotations

import html
import sys
from typing import Any, Optional


def in_notebook() -> bool:
    try:
        from IPython import get_ipython  # type: ignore[import-not-found]
    except ImportError:
        return False
    shell = get_ipython()
    return shell is not None and "IPKernelApp" in getattr(shell, "config", {})


class LineProgress:
    """The CLI's progress lines, as they come."""

    def line(self, text: str) -> None:
        print(text, file=sys.stdout, flush=True)

    def event(self, event: dict[str, Any]) -> None:
        pass

    def close(self) -> None:
        pass


class NotebookProgress(LineProgress):
    """The lines, and a table with a row per worker (IPython's display, updated in place)."""

    def __init__(self) -> None:
        from IPython.display import HTML, display  # type: ignore[import-not-found]

        self._html = HTML
        self._rows: dict[tuple[int, str], dict[str, Any]] = {}
        self._attempt = 1
        self._handle: Optional[Any] = display(HTML(self._table()), display_id=True)

    def event(self, event: dict[str, Any]) -> None:
        if event.get("type") == "driver" and event.get("stage") == "attempt":
            self._attempt = int(event.get("attempt", 0)) + 1
        elif event.get("type") == "metrics":
            row = {"step": event.get("step"), **dict(event.get("metrics") or {})}
            if event.get("samplesPerSec") is not None:
                row["samples/s"] = round(float(event["samplesPerSec"]))
            trial = event.get("trial")
            key = (0, f"trial {trial}") if trial is not None else (int(event["rank"]), f"worker {event['rank']}")
            self._rows[key] = row
        else:
            return
        if self._handle is not None:
            self._handle.update(self._html(self._table()))

    def _table(self) -> str:
        columns: list[str] = []
        for row in self._rows.values():
            columns += [c for c in row if c not in columns]
        head = "".join(f"<th>{html.escape(c)}</th>" for c in ["", *columns])
        body = "".join(
            "<tr>" + f"<td>{html.escape(label)}</td>" + "".join(f"<td>{_cell(row.get(c))}</td>" for c in columns) + "</tr>"
            for (_, label), row in sorted(self._rows.items(), key=lambda item: (item[0][0], _natural(item[0][1])))
        )
        return f"<b>sparkring</b> attempt {self._attempt}<table><tr>{head}</tr>{body}</table>"


def _natural(label: str) -> tuple[str, int]:
    """'trial 10' after 'trial 9'."""
    head, _, tail = label.rpartition(" ")
    return (head, int(tail)) if tail.isdigit() else (label, 0)


def _cell(v: Any) -> str:
    if isinstance(v, float):
        return f"{v:.4g}"
    return html.escape("" if v is None else str(v))


def progress_for(progress: Optional[bool]) -> LineProgress:
    """The notebook table in a Jupyter kernel (unless `progress` is False: lines only)."""
    if progress is not False and in_notebook():
        return NotebookProgress()
    return LineProgress()
