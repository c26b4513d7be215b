"""pygeoapi plugins for the OGC backend tests (loaded by the pygeoapi server subprocess).

``SleepProcessor`` sleeps ``seconds`` and fails on request; ``EscapeProcessor`` returns results
whose names try to leave a download directory; ``RunningTinyDBManager`` reports ``running``
while a process runs (pygeoapi's stock manager stays at ``accepted``).
"""

from __future__ import annotations

import time
from typing import Any

from pygeoapi.process.base import BaseProcessor, ProcessorExecuteError
from pygeoapi.process.manager.tinydb_ import TinyDBManager


def _metadata(identifier: str, inputs: dict[str, Any], outputs: dict[str, Any]) -> dict[str, Any]:
    return {
        "version": "1.0.0",
        "id": identifier,
        "title": identifier,
        "description": f"test process {identifier}",
        "jobControlOptions": ["sync-execute", "async-execute"],
        "keywords": ["test"],
        "links": [],
        "inputs": inputs,
        "outputs": outputs,
    }


SLEEPER = _metadata(
    "sleeper",
    {
        "seconds": {"title": "Seconds", "schema": {"type": "number"}, "minOccurs": 0},
        "fail": {"title": "Fail", "schema": {"type": "boolean"}, "minOccurs": 0},
    },
    {"slept": {"title": "Seconds slept", "schema": {"type": "number"}}},
)
ESCAPE = _metadata(
    "escape",
    {},
    {
        "a": {"title": "A", "schema": {"type": "string"}},
        "b": {"title": "B", "schema": {"type": "string"}},
    },
)


class SleepProcessor(BaseProcessor):  # type: ignore[misc]
    """Sleeps, then answers ``{"slept": seconds}``, or fails with "asked to fail"."""

    def __init__(self, processor_def: dict[str, Any]) -> None:
        super().__init__(processor_def, SLEEPER)

    def execute(self, data: dict[str, Any], outputs: Any = None) -> tuple[str, Any]:
        seconds = float(data.get("seconds", 0))
        time.sleep(seconds)
        if data.get("fail"):
            raise ProcessorExecuteError("asked to fail")
        return "application/json", {"slept": seconds}


class EscapeProcessor(BaseProcessor):  # type: ignore[misc]
    """Answers results named to climb out of wherever they are downloaded."""

    def __init__(self, processor_def: dict[str, Any]) -> None:
        super().__init__(processor_def, ESCAPE)

    def execute(self, data: dict[str, Any], outputs: Any = None) -> tuple[str, Any]:
        return "application/json", {"a": "fine", "../../escaped": "gotcha"}


class RunningTinyDBManager(TinyDBManager):  # type: ignore[misc]
    """TinyDB manager that marks a job ``running`` (progress 10) when its process starts."""

    def _execute_handler_sync(
        self,
        p: Any,
        job_id: str,
        data_dict: dict[str, Any],
        requested_outputs: Any = None,
        subscriber: Any = None,
        requested_response: Any = "raw",
    ) -> Any:
        self.update_job(job_id, {"status": "running", "message": "Job running", "progress": 10})
        return super()._execute_handler_sync(
            p, job_id, data_dict, requested_outputs, subscriber, requested_response
        )
