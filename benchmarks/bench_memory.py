"""The memory of `lifecycle serve` does not grow with the experiments it has served.

Starts `lifecycle serve` on a fresh SQLite file (the default store and the
simulated actuator), and runs experiments through their whole life over HTTP
in batches: create, wait until Running, stop with a promotion, wait until
Completed, delete. It prints the serving process's resident memory (VmRSS)
after the first batches and after all of them:

    python benchmarks/bench_memory.py                 # 2,000 then 20,000 experiments
    python benchmarks/bench_memory.py --total 4000 --first 1000 --batch 500

Target (issue: steps you can trust): RSS after 20,000 within a few MB of RSS
after 2,000.
"""

from __future__ import annotations

import argparse
import http.client
import json
import socket
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

REPO = Path(__file__).resolve().parents[1]
TARGET = "application/x-amz-json-1.1"


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port: int = sock.getsockname()[1]
        return port


class Client:
    """One keep-alive connection to the server."""

    def __init__(self, port: int) -> None:
        self.conn = http.client.HTTPConnection("127.0.0.1", port, timeout=30)

    def call(self, operation: str, body: dict[str, Any]) -> dict[str, Any]:
        headers = {"Content-Type": TARGET, "X-Amz-Target": f"SageMaker.{operation}"}
        self.conn.request("POST", "/", json.dumps(body), headers)
        response = self.conn.getresponse()
        data: dict[str, Any] = json.loads(response.read() or b"{}")
        if response.status != 200:
            raise RuntimeError(f"{operation}: HTTP {response.status} {data}")
        return data


def create_request(name: str) -> dict[str, Any]:
    def variant(v: str, model: str) -> dict[str, Any]:
        infra = {"InstanceType": "ml.m5.xlarge", "InstanceCount": 1}
        return {
            "ModelName": model,
            "VariantName": v,
            "InfrastructureConfig": {
                "InfrastructureType": "RealTimeInference",
                "RealTimeInferenceConfig": infra,
            },
        }

    return {
        "Name": name,
        "Type": "ShadowMode",
        "RoleArn": "arn:aws:iam::123456789012:role/bench",
        "EndpointName": f"{name}-ep",
        "ModelVariants": [variant("prod", "model-a"), variant("shadow", "model-b")],
        "ShadowModeConfig": {
            "SourceModelVariantName": "prod",
            "ShadowModelVariants": [{"ShadowModelVariantName": "shadow", "SamplingPercentage": 50}],
        },
    }


def rss_mb(pid: int) -> float:
    for row in Path(f"/proc/{pid}/status").read_text().splitlines():
        if row.startswith("VmRSS:"):
            return int(row.split()[1]) / 1024
    raise RuntimeError("no VmRSS")


def wait_all(client: Client, names: list[str], status: str, timeout: float = 120.0) -> None:
    deadline = time.monotonic() + timeout
    for name in names:
        while client.call("DescribeInferenceExperiment", {"Name": name})["Status"] != status:
            if time.monotonic() > deadline:
                raise RuntimeError(f"{name} did not reach {status} within {timeout}s")
            time.sleep(0.05)


def life(client: Client, names: list[str]) -> None:
    """Create, run, promote, complete and delete ``names``."""
    for name in names:
        client.call("CreateInferenceExperiment", create_request(name))
    wait_all(client, names, "Running")
    for name in names:
        client.call(
            "StopInferenceExperiment", {"Name": name, "ModelVariantActions": {"shadow": "Promote"}}
        )
    wait_all(client, names, "Completed")
    for name in names:
        client.call("DeleteInferenceExperiment", {"Name": name})


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument(
        "--total", type=int, default=20_000, help="experiments in all (default 20,000)"
    )
    parser.add_argument(
        "--first",
        type=int,
        default=2_000,
        help="the first reading, after this many (default 2,000)",
    )
    parser.add_argument(
        "--batch",
        type=int,
        default=100,
        help="experiments live at once (default 100, the live limit)",
    )
    args = parser.parse_args(argv)
    with tempfile.TemporaryDirectory(prefix="lifecycle-bench-memory-") as scratch:
        port = free_port()
        argv_serve = [sys.executable, "-m", "lifecycle.http.serve", "--port", str(port),
                      "--store", f"sqlite:///{scratch}/bench.db", "--log-level", "warning"]  # fmt: skip
        process = subprocess.Popen(
            argv_serve, cwd=REPO, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE
        )
        try:
            deadline = time.monotonic() + 30
            while True:
                try:
                    client = Client(port)
                    client.call("ListInferenceExperiments", {})
                    break
                except OSError:
                    if time.monotonic() > deadline:
                        raise
                    time.sleep(0.1)
            readings: dict[int, float] = {}
            started = time.monotonic()
            for done in range(0, args.total, args.batch):
                life(client, [f"m{i}" for i in range(done, min(done + args.batch, args.total))])
                served = min(done + args.batch, args.total)
                if served in (args.first, args.total):
                    readings[served] = rss_mb(process.pid)
            took = time.monotonic() - started
        finally:
            process.terminate()
            process.wait(timeout=30)
    first, last = readings[args.first], readings[args.total]
    print(
        f"lifecycle serve (sqlite, simulated actuator): {args.total:,} experiments created, run, stopped and deleted in {took:.0f} s"
    )
    print(f"RSS after {args.first:>6,} experiments: {first:7.1f} MB")
    print(
        f"RSS after {args.total:>6,} experiments: {last:7.1f} MB  ({last - first:+.1f} MB; target: within a few MB)"
    )
    return 0


if __name__ == "__main__":
    sys.exit(main())
