"""HTTP throughput and latency: ``lifecycle serve`` against moto's server, on loopback.

One run prints, for each of

- lifecycle DescribeInferenceExperiment (on experiments that are Running),
- lifecycle StopInferenceExperiment (each request stops its own Running experiment),
- moto DescribeEndpointConfig (the comparable SageMaker JSON 1.1 read),

requests per second and p50/p99 latency from concurrent keep-alive clients.
Both servers run as subprocesses with their default logging (one line per
request, sent to /dev/null); the load generator is raw asyncio streams in
this process so the client is not the bottleneck. Counts and time are
bounded; everything stays on 127.0.0.1.

    python benchmarks/bench_http.py [--clients 16] [--requests 20000] [--seconds 10]
                                    [--store memory|sqlite|sqlite-normal]
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import http.client
import json
import os
import shutil
import socket
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent
HOST = "127.0.0.1"
JSON11 = "application/x-amz-json-1.1"
# Unchecked by either server; moto reads the region from it.
AUTHORIZATION = (
    "AWS4-HMAC-SHA256 Credential=testing/20240101/us-east-1/sagemaker/aws4_request, "
    "SignedHeaders=host, Signature=0"
)


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind((HOST, 0))
        port: int = sock.getsockname()[1]
        return port


def request_bytes(port: int, target: str, body: dict[str, object]) -> bytes:
    raw = json.dumps(body).encode()
    head = (
        f"POST / HTTP/1.1\r\nHost: {HOST}:{port}\r\nContent-Type: {JSON11}\r\n"
        f"X-Amz-Target: {target}\r\nAuthorization: {AUTHORIZATION}\r\n"
        f"Content-Length: {len(raw)}\r\n\r\n"
    )
    return head.encode() + raw


def call(port: int, target: str, body: dict[str, object]) -> tuple[int, dict[str, object]]:
    connection = http.client.HTTPConnection(HOST, port, timeout=30)
    try:
        raw = json.dumps(body).encode()
        connection.request(
            "POST",
            "/",
            raw,
            {"Content-Type": JSON11, "X-Amz-Target": target, "Authorization": AUTHORIZATION},
        )
        response = connection.getresponse()
        return response.status, json.loads(response.read() or b"{}")
    finally:
        connection.close()


def wait_until_up(port: int, path: str, process: subprocess.Popen[bytes]) -> None:
    deadline = time.monotonic() + 30
    while time.monotonic() < deadline:
        if process.poll() is not None:
            raise RuntimeError(f"server exited with {process.returncode}")
        with contextlib.suppress(OSError):
            connection = http.client.HTTPConnection(HOST, port, timeout=1)
            connection.request("GET", path)
            connection.getresponse().read()
            connection.close()
            return
        time.sleep(0.05)
    raise RuntimeError("server did not come up")


@contextlib.contextmanager
def running(argv: Sequence[str], port: int, probe: str) -> Iterator[None]:
    path = os.pathsep.join(p for p in (str(REPO), os.environ.get("PYTHONPATH")) if p)
    env = dict(os.environ, PYTHONPATH=path)
    process = subprocess.Popen(
        argv, cwd=REPO, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL
    )
    try:
        wait_until_up(port, probe, process)
        yield
    finally:
        process.terminate()
        try:
            process.wait(15)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait()


# -- the load generator ----------------------------------------------------------------------


async def _read_response(reader: asyncio.StreamReader) -> tuple[int, bool]:
    head = await reader.readuntil(b"\r\n\r\n")
    lines = head.split(b"\r\n")
    status = int(lines[0].split(b" ", 2)[1])
    length = 0
    close = lines[0].startswith(b"HTTP/1.0")
    for line in lines[1:]:
        name, _, value = line.partition(b":")
        lowered = name.strip().lower()
        if lowered == b"content-length":
            length = int(value)
        elif lowered == b"connection":
            close = value.strip().lower() == b"close"
    if length:
        await reader.readexactly(length)
    return status, close


@dataclass
class Result:
    label: str
    latencies: list[float]
    elapsed: float
    errors: int

    def line(self, clients: int) -> str:
        done = len(self.latencies)
        ordered = sorted(self.latencies)
        p50 = statistics.median(ordered) * 1000 if ordered else float("nan")
        p99 = ordered[min(done - 1, int(done * 0.99))] * 1000 if ordered else float("nan")
        return (
            f"{self.label:<55} clients={clients:<3} requests={done:<6} "
            f"rps={done / self.elapsed:8.0f}  p50={p50:6.2f}ms  p99={p99:6.2f}ms  "
            f"errors={self.errors}"
        )

    @property
    def rps(self) -> float:
        return len(self.latencies) / self.elapsed

    @property
    def p99(self) -> float:
        ordered = sorted(self.latencies)
        return ordered[min(len(ordered) - 1, int(len(ordered) * 0.99))] * 1000


async def _load(
    label: str, port: int, payloads: list[bytes], clients: int, seconds: float
) -> Result:
    queue = iter(payloads)
    latencies: list[float] = []
    errors = 0
    stop_at = time.perf_counter() + seconds

    async def client() -> None:
        nonlocal errors
        reader, writer = await asyncio.open_connection(HOST, port)
        try:
            for payload in queue:
                if time.perf_counter() > stop_at:
                    return
                began = time.perf_counter()
                writer.write(payload)
                status, close = await _read_response(reader)
                latencies.append(time.perf_counter() - began)
                if status != 200:
                    errors += 1
                if close:
                    writer.close()
                    reader, writer = await asyncio.open_connection(HOST, port)
        finally:
            writer.close()

    began = time.perf_counter()
    await asyncio.gather(*(client() for _ in range(clients)))
    return Result(label, latencies, time.perf_counter() - began, errors)


def load(label: str, port: int, payloads: list[bytes], clients: int, seconds: float) -> Result:
    warmup = payloads[: min(200, len(payloads) // 10)]
    asyncio.run(_load("warmup", port, warmup, clients, seconds))
    return asyncio.run(_load(label, port, payloads[len(warmup) :], clients, seconds))


# -- the two servers ----------------------------------------------------------------------------


def create_body(name: str) -> dict[str, object]:
    infra = {
        "InfrastructureType": "RealTimeInference",
        "RealTimeInferenceConfig": {"InstanceType": "ml.m5.xlarge", "InstanceCount": 1},
    }
    return {
        "Name": name,
        "Type": "ShadowMode",
        "RoleArn": "arn:aws:iam::123456789012:role/SageMakerRole",
        "EndpointName": f"ep-{name}",
        "ModelVariants": [
            {"ModelName": "model-a", "VariantName": "prod", "InfrastructureConfig": infra},
            {"ModelName": "model-b", "VariantName": "shadow", "InfrastructureConfig": infra},
        ],
        "ShadowModeConfig": {
            "SourceModelVariantName": "prod",
            "ShadowModelVariants": [{"ShadowModelVariantName": "shadow", "SamplingPercentage": 50}],
        },
    }


def seed(port: int, names: list[str], clients: int) -> None:
    """Create the experiments (concurrently, through the same raw client) and wait for Running."""
    payloads = [
        request_bytes(port, "SageMaker.CreateInferenceExperiment", create_body(n)) for n in names
    ]
    created = asyncio.run(_load("seed", port, payloads, clients, 600))
    if created.errors:
        raise RuntimeError(f"{created.errors} creates failed")
    deadline = time.monotonic() + 120
    for name in reversed(names):
        while True:
            status, body = call(port, "SageMaker.DescribeInferenceExperiment", {"Name": name})
            if status == 200 and body.get("Status") == "Running":
                break
            if time.monotonic() > deadline:
                raise RuntimeError(f"{name} is not Running: {body}")
            time.sleep(0.05)


def bench_lifecycle(clients: int, requests: int, seconds: float, store: str) -> list[Result]:
    port = free_port()
    with tempfile.TemporaryDirectory() as scratch:
        url = {
            "memory": "memory://",
            "sqlite": f"sqlite:///{scratch}/bench.db",
            "sqlite-normal": f"sqlite:///{scratch}/bench.db?synchronous=NORMAL",
        }[store]
        return _bench_lifecycle(port, url, clients, requests, seconds)


def _bench_lifecycle(
    port: int, url: str, clients: int, requests: int, seconds: float
) -> list[Result]:
    store = url.split(":", 1)[0]
    argv = [
        sys.executable,
        "-m",
        "lifecycle.http.serve",
        "--host",
        HOST,
        "--port",
        str(port),
        "--store",
        url,
        "--settle-seconds",
        "0",
        "--max-live-experiments",
        "1000000",
    ]
    with running(argv, port, "/health"):
        described = [f"describe-{i}" for i in range(100)]
        stopped = [f"stop-{i}" for i in range(requests // 4)]
        seed(port, described + stopped, clients)
        describe = [
            request_bytes(
                port, "SageMaker.DescribeInferenceExperiment", {"Name": described[i % 100]}
            )
            for i in range(requests)
        ]
        stop = [
            request_bytes(
                port,
                "SageMaker.StopInferenceExperiment",
                {
                    "Name": name,
                    "ModelVariantActions": {"prod": "Retain", "shadow": "Remove"},
                    "DesiredState": "Completed",
                    "Reason": "benchmark",
                },
            )
            for name in stopped
        ]
        return [
            load(
                f"lifecycle ({store}) DescribeInferenceExperiment", port, describe, clients, seconds
            ),
            load(f"lifecycle ({store}) StopInferenceExperiment", port, stop, clients, seconds),
        ]


def bench_moto(clients: int, requests: int, seconds: float) -> Result | None:
    moto = shutil.which("moto_server")
    if moto is None:
        print("moto_server not found: pip install 'moto[server]' to compare", file=sys.stderr)
        return None
    port = free_port()
    with running([moto, "-H", HOST, "-p", str(port)], port, "/moto-api/"):
        import boto3

        client = boto3.client(
            "sagemaker",
            endpoint_url=f"http://{HOST}:{port}",
            region_name="us-east-1",
            aws_access_key_id="testing",
            aws_secret_access_key="testing",
        )
        client.create_model(
            ModelName="model-a",
            ExecutionRoleArn="arn:aws:iam::123456789012:role/SageMakerRole",
            PrimaryContainer={"Image": "123456789012.dkr.ecr.us-east-1.amazonaws.com/model:1"},
        )
        client.create_endpoint_config(
            EndpointConfigName="bench-config",
            ProductionVariants=[
                {
                    "VariantName": "prod",
                    "ModelName": "model-a",
                    "InstanceType": "ml.m5.xlarge",
                    "InitialInstanceCount": 1,
                }
            ],
        )
        describe = [
            request_bytes(
                port, "SageMaker.DescribeEndpointConfig", {"EndpointConfigName": "bench-config"}
            )
        ] * requests
        return load("moto_server DescribeEndpointConfig", port, describe, clients, seconds)


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--clients", type=int, default=16, help="concurrent connections")
    parser.add_argument("--requests", type=int, default=20000, help="requests per measurement")
    parser.add_argument("--seconds", type=float, default=10.0, help="time cap per measurement")
    parser.add_argument(
        "--store",
        choices=("memory", "sqlite", "sqlite-normal"),
        default="memory",
        help="the lifecycle server's store (sqlite: a file in a temporary directory, synchronous=FULL; sqlite-normal: synchronous=NORMAL)",
    )
    args = parser.parse_args(argv)

    results = bench_lifecycle(args.clients, args.requests, args.seconds, args.store)
    moto = bench_moto(args.clients, args.requests, args.seconds)
    for result in results + ([moto] if moto else []):
        print(result.line(args.clients))
    if moto is not None:
        describe, stop = results
        for result in (describe, stop):
            print(
                f"{result.label} vs moto: {result.rps / moto.rps:.1f}x requests/s, "
                f"p99 {result.p99:.2f}ms vs {moto.p99:.2f}ms"
            )
    return 0


if __name__ == "__main__":
    sys.exit(main())
