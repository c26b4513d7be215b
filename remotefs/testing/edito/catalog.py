"""The emulated EDITO process catalog: the seed's hello-world and a CSV summary on S3.

* ``data-pre-post-processing-iliad-helloworld-0.0.21`` (the seed's process): input ``name``;
  result ``greeting``, ``"Hello <name>!"``.
* ``process-playground-csv-summary-0.1.0``: input ``input``, an ``s3://bucket/key`` URL or a
  key in the user's bucket. Like a real EDITO job it uses only the S3 keys of
  ``processInputs.s3``, through the S3 endpoint given there, so expired or foreign keys fail as
  they would in a pod. It writes ``outputs/<job>/result.csv`` (per numeric column: count, min,
  mean, max) and ``outputs/<job>/summary.json`` next to the input and returns their ``s3://``
  hrefs and the row count.

Each step of a process waits one ``step`` of the emulator, then reports its progress.
"""

from __future__ import annotations

import asyncio
import csv
import io
import json
from collections.abc import Awaitable, Callable, Mapping
from dataclasses import dataclass, field
from typing import Any

from remotefs.testing.edito.front import REGION, bucket_of

HELLO_ID = "data-pre-post-processing-iliad-helloworld-0.0.21"
CSV_SUMMARY_ID = "process-playground-csv-summary-0.1.0"
MINIO_CONFIG = {
    "s3": {"addressing_style": "path"},
    "request_checksum_calculation": "when_required",
    "response_checksum_validation": "when_required",
}


class ProcessFailure(Exception):
    """The process ended in failure; the message becomes the job's message."""


@dataclass
class Context:
    """What a running process sees: its job, owner, inputs, S3 block, and a progress step."""

    job_id: str
    user: str
    inputs: Mapping[str, Any]
    s3: Mapping[str, Any] | None
    advance: Callable[[int, str], Awaitable[None]]


Run = Callable[[Context], Awaitable[dict[str, Any]]]


@dataclass(frozen=True)
class ProcessSpec:
    """One catalog entry: its OGC description and the coroutine that runs it."""

    id: str
    title: str
    description: str
    version: str
    inputs: dict[str, Any]
    outputs: dict[str, Any]
    run: Run = field(repr=False)

    def summary(self, base: str) -> dict[str, Any]:
        """The entry of ``GET /processes``."""
        return {
            "id": self.id,
            "title": self.title,
            "description": self.description,
            "version": self.version,
            "jobControlOptions": ["async-execute", "dismiss"],
            "outputTransmission": ["value", "reference"],
            "links": [
                {"href": f"{base}/processes/{self.id}", "rel": "self", "type": "application/json"}
            ],
        }

    def describe(self, base: str) -> dict[str, Any]:
        """The reply of ``GET /processes/{id}``: the summary plus inputs and outputs."""
        return {**self.summary(base), "inputs": self.inputs, "outputs": self.outputs}

    def check(self, inputs: Mapping[str, Any]) -> str | None:
        """Why the inputs are unacceptable (a Helm values check would refuse them), or None."""
        for name, description in self.inputs.items():
            value = inputs.get(name)
            if value is None:
                if description.get("minOccurs", 1) >= 1:
                    return f"missing required input {name!r}"
                continue
            if not isinstance(value, str) or not value:
                return f"input {name!r} must be a non-empty string"
        unknown = sorted(set(inputs) - set(self.inputs))
        return f"unknown input(s) {unknown}" if unknown else None


def _string_input(title: str, description: str) -> dict[str, Any]:
    return {
        "title": title,
        "description": description,
        "schema": {"type": "string", "minLength": 1},
        "minOccurs": 1,
        "maxOccurs": 1,
    }


async def _hello(ctx: Context) -> dict[str, Any]:
    await ctx.advance(30, "Looking up the name")
    await ctx.advance(60, "Writing the greeting")
    await ctx.advance(90, "Cleaning up")
    return {"greeting": f"Hello {ctx.inputs['name']}!"}


async def _csv_summary(ctx: Context) -> dict[str, Any]:
    client = _s3_client(ctx.s3)
    bucket, key = _locate(str(ctx.inputs["input"]), ctx.user)
    await ctx.advance(20, f"Reading s3://{bucket}/{key}")
    body = await asyncio.to_thread(_s3_call, client, "get_object", Bucket=bucket, Key=key)
    data = await asyncio.to_thread(body["Body"].read)
    await ctx.advance(50, "Summarising")
    rows, table, summary = _summarise(data, f"s3://{bucket}/{key}")
    await ctx.advance(80, "Writing outputs")
    prefix = f"outputs/{ctx.job_id}"
    for name, content, kind in (
        ("result.csv", table, "text/csv"),
        ("summary.json", summary, "application/json"),
    ):
        await asyncio.to_thread(
            _s3_call,
            client,
            "put_object",
            Bucket=bucket,
            Key=f"{prefix}/{name}",
            Body=content,
            ContentType=kind,
        )
    return {
        "result": {"href": f"s3://{bucket}/{prefix}/result.csv", "type": "text/csv"},
        "summary": {"href": f"s3://{bucket}/{prefix}/summary.json", "type": "application/json"},
        "rows": rows,
    }


def _s3_client(block: Mapping[str, Any] | None) -> Any:
    """A boto3 client made only from the job's ``s3`` block, as a pod's tools would be."""
    import boto3
    from botocore.config import Config

    if not block or not block.get("enabled") or not block.get("accessKeyId"):
        raise ProcessFailure(
            "this process needs S3: processInputs.s3 is not enabled or has no keys"
        )
    endpoint = str(block.get("endpoint", ""))
    return boto3.client(
        "s3",
        endpoint_url=endpoint if "://" in endpoint else f"http://{endpoint}",
        region_name=str(block.get("defaultRegion") or REGION),
        aws_access_key_id=str(block["accessKeyId"]),
        aws_secret_access_key=str(block.get("secretAccessKey", "")),
        aws_session_token=str(block.get("sessionToken") or "") or None,
        config=Config(retries={"max_attempts": 1}, **MINIO_CONFIG),
    )


def _s3_call(client: Any, operation: str, **kwargs: Any) -> Any:
    """One S3 call; its failure becomes the job's message."""
    from botocore.exceptions import BotoCoreError, ClientError

    where = f"s3://{kwargs.get('Bucket')}/{kwargs.get('Key')}"
    try:
        return getattr(client, operation)(**kwargs)
    except ClientError as exc:
        error = exc.response.get("Error", {})
        code, message = error.get("Code", "Error"), error.get("Message", "")
        verb = "read" if operation.startswith("get") else "write"
        raise ProcessFailure(f"cannot {verb} {where}: {code}: {message}".rstrip(": ")) from None
    except BotoCoreError as exc:
        raise ProcessFailure(f"S3 unreachable for {where}: {exc}") from None


def _locate(url: str, user: str) -> tuple[str, str]:
    """(bucket, key) of an ``s3://bucket/key`` URL, or of a key in the user's bucket."""
    if url.startswith("s3://"):
        bucket, _, key = url[len("s3://") :].partition("/")
    else:
        bucket, key = bucket_of(user), url.lstrip("/")
    if not bucket or not key:
        raise ProcessFailure(f"input {url!r} names no S3 object")
    return bucket, key


def _summarise(data: bytes, source: str) -> tuple[int, bytes, bytes]:
    """Row count, the statistics table as CSV, and the summary as JSON."""
    try:
        reader = csv.reader(io.StringIO(data.decode("utf-8")))
        header = next(reader)
        rows = [row for row in reader if row]
    except (UnicodeDecodeError, StopIteration, csv.Error) as exc:
        raise ProcessFailure(f"{source} is not a CSV table with a header: {exc}") from None
    stats: dict[str, dict[str, float]] = {}
    for index, column in enumerate(header):
        try:
            values = [float(row[index]) for row in rows]
        except (ValueError, IndexError):
            continue
        if values:
            stats[column] = {
                "count": len(values),
                "min": min(values),
                "mean": round(sum(values) / len(values), 6),
                "max": max(values),
            }
    table = io.StringIO()
    writer = csv.writer(table, lineterminator="\n")
    writer.writerow(["column", "count", "min", "mean", "max"])
    for column, numbers in stats.items():
        writer.writerow([column, *numbers.values()])
    summary = {"input": source, "rows": len(rows), "columns": header, "numeric": stats}
    return len(rows), table.getvalue().encode(), json.dumps(summary, indent=2).encode()


CATALOG = (
    ProcessSpec(
        id=HELLO_ID,
        title="ILIAD hello world",
        description="Greets the name it is given (the seed notebook's process).",
        version="0.0.21",
        inputs={"name": _string_input("Name", "Who to greet")},
        outputs={"greeting": {"title": "Greeting", "schema": {"type": "string"}}},
        run=_hello,
    ),
    ProcessSpec(
        id=CSV_SUMMARY_ID,
        title="CSV summary",
        description="Reads a CSV table from your bucket and writes per-column statistics there.",
        version="0.1.0",
        inputs={
            "input": _string_input(
                "Input table", "s3://bucket/key of a CSV file, or a key in your bucket"
            )
        },
        outputs={
            "result": {"title": "Statistics per numeric column", "schema": {"type": "string"}},
            "summary": {"title": "Summary", "schema": {"type": "object"}},
            "rows": {"title": "Number of rows", "schema": {"type": "integer"}},
        },
        run=_csv_summary,
    ),
)
