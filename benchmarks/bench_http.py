"""HTTP throughput and latency: ``lifecycle serve`` against the floor, and moto's server, on loopback.

The floor is ``benchmarks/_bare_app.py``: a bare ASGI app that reads the
request's body and answers 200 (``application/x-amz-json-1.1``) with a body
of the size the measured lifecycle answer had, served by the same uvicorn
settings as ``lifecycle serve`` (uvicorn's httptools protocol, without the
connection guard lifecycle wraps round it, that being lifecycle's own work;
the ``auto`` loop, so uvloop; no access log; as many ``--workers``). One run prints, each as
requests per second, p50 and p99 latency and "= X% of the floor" (the floor
measured by the same load, the same connections and the same body size):

- DescribeInferenceExperiment, rotating over 100 Running experiments;
- ListInferenceExperiments with MaxResults=10 (over those 100);
- StopInferenceExperiment on the memory store and on the default SQLite
  store (a file in a temporary directory, synchronous=FULL), each request
  stopping a different Running experiment, and "SQLite Stop = X% of memory
  Stop" for the two;
- moto_server's DescribeEndpointConfig (the comparable SageMaker JSON 1.1
  read), with Describe's ratio to it and the two p99s;
- with ``--compare-workers N``: Describe on the SQLite store with one worker
  and with ``lifecycle serve --workers N`` (fresh servers, each seeded the
  same way), as "Describe with --workers N = X times one worker".

The load is wrk when it is installed (``--client auto``), driven by
``benchmarks/_wrk/json11.lua`` (POSTs carrying X-Amz-Target, Content-Type
and an Authorization header that neither server checks), and otherwise a
client of raw asyncio streams in this process. Each figure comes after a
warm-up of the same requests, except Stop's, which comes after a probe: the
same load for the warm-up's length over a few hundred experiments of its
own, whose rate, times ``--seconds``, times ``--stop-margin``, is how many
experiments are created (over HTTP, then waited for until Running) for the
measured run.
wrk runs for a duration, so a run that gets through the seeded experiments
before its time is up goes round them again, and those Stops answer
ConflictException; such a run is
reported (how many went past the seed) with its 4xx/5xx count, never
dropped. Describe and List are measured on ``--store`` (memory unless told).
Each answer size is taken from one lifecycle answer before its run.

``--workers N`` is passed to every ``lifecycle serve`` and to the floor; a
memory store is one per process, so with N > 1 the memory figures hold only
if ``lifecycle serve`` shares it (``--store sqlite`` moves Describe and List
off it). When ``lifecycle serve --help`` has no ``--workers``, ``--workers``
stops the run with a message and ``--compare-workers`` prints that its line
was skipped.

``lifecycle serve`` logs its request lines at info (sent to a file in the
temporary directory); every server is a subprocess on 127.0.0.1, waited
for with a bound and stopped at the end (SIGTERM, then SIGKILL to its
process group, so no worker is left behind); every load run has a time limit.

    python benchmarks/bench_http.py [--connections 16] [--seconds 5] [--warmup 1] [--threads 1]
                                    [--client auto|wrk|python] [--store memory|sqlite]
                                    [--workers N] [--compare-workers N] [--stop-margin 2.0]
                                    [--max-seed 200000] [--no-moto]
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import http.client
import importlib.util
import json
import math
import os
import shutil
import signal
import socket
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass, field
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent
BARE_APP = REPO / "benchmarks" / "_bare_app.py"
WRK_SCRIPT = REPO / "benchmarks" / "_wrk" / "json11.lua"
HOST = "127.0.0.1"
JSON11 = "application/x-amz-json-1.1"
# Unchecked by either server; moto reads the region from it.
AUTHORIZATION = (
    "AWS4-HMAC-SHA256 Credential=testing/20240101/us-east-1/sagemaker/aws4_request, "
    "SignedHeaders=host, Signature=0"
)
#: how long a server may take to answer its first probe
STARTUP_SECONDS = 60
#: how long past its duration a load run may take before it is stopped
LOAD_GRACE_SECONDS = 30


def note(message: str) -> None:
    """Progress, on stderr (the figures go to stdout at the end)."""
    print(f"... {message}", file=sys.stderr, flush=True)


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind((HOST, 0))
        port: int = sock.getsockname()[1]
        return port


# -- what is sent --------------------------------------------------------------------------------


@dataclass(frozen=True)
class Scenario:
    """``count`` requests to ``target``, the i-th with the body ``body_format % i``.

    ``body_format`` is a printf format that Python and Lua read alike (``%07d``);
    one without ``%`` is the same body every time.
    """

    target: str
    body_format: str
    count: int = 1

    def body(self, index: int) -> str:
        return self.body_format % index if "%" in self.body_format else self.body_format

    def payloads(self, port: int) -> list[bytes]:
        return [request_bytes(port, self.target, self.body(i)) for i in range(self.count)]


def request_bytes(port: int, target: str, body: str) -> bytes:
    raw = body.encode()
    head = (
        f"POST / HTTP/1.1\r\nHost: {HOST}:{port}\r\nContent-Type: {JSON11}\r\n"
        f"X-Amz-Target: {target}\r\nAuthorization: {AUTHORIZATION}\r\n"
        f"Content-Length: {len(raw)}\r\n\r\n"
    )
    return head.encode() + raw


def call(port: int, target: str, body: dict[str, object]) -> tuple[int, bytes]:
    """One request on a connection of its own: the status and the raw body."""
    connection = http.client.HTTPConnection(HOST, port, timeout=30)
    try:
        connection.request(
            "POST",
            "/",
            json.dumps(body).encode(),
            {"Content-Type": JSON11, "X-Amz-Target": target, "Authorization": AUTHORIZATION},
        )
        response = connection.getresponse()
        return response.status, response.read()
    finally:
        connection.close()


DESCRIBED = Scenario("SageMaker.DescribeInferenceExperiment", '{"Name": "describe-%03d"}', 100)
LISTED = Scenario("SageMaker.ListInferenceExperiments", '{"MaxResults": 10}')
MOTO_DESCRIBE = Scenario(
    "SageMaker.DescribeEndpointConfig", '{"EndpointConfigName": "bench-config"}'
)
STOP_BODY = (
    '{"Name": "%s-%%07d", "ModelVariantActions": {"prod": "Retain", "shadow": "Remove"}, '
    '"DesiredState": "Completed", "Reason": "benchmark"}'
)


def stops(prefix: str, count: int) -> Scenario:
    """Stops of ``{prefix}-0000000`` onwards (the names ``seed`` creates for the same scenario)."""
    return Scenario("SageMaker.StopInferenceExperiment", STOP_BODY % prefix, count)


def names_of(scenario: Scenario) -> list[str]:
    return [json.loads(scenario.body(i))["Name"] for i in range(scenario.count)]


# -- the figures ---------------------------------------------------------------------------------


@dataclass
class Figures:
    """One measured run."""

    requests: int
    seconds: float
    p50_ms: float
    p99_ms: float
    #: answers with a status of 400 or more (wrk's "status errors")
    failed: int = 0
    #: connect, read and write errors and timeouts
    socket_errors: int = 0
    #: requests sent after the scenario's distinct requests were used up (a Stop past the seed)
    past_seed: int = 0

    @property
    def rps(self) -> float:
        return self.requests / self.seconds if self.seconds else 0.0

    def summary(self) -> str:
        return f"{self.rps:>9,.0f} req/s  p50 {self.p50_ms:7.2f} ms  p99 {self.p99_ms:7.2f} ms"

    def problems(self) -> str:
        return f"4xx/5xx {self.failed:,}, socket errors {self.socket_errors:,}"


def percentiles(latencies: list[float]) -> tuple[float, float]:
    """p50 and p99 in milliseconds of latencies in seconds (NaN when there are none)."""
    if not latencies:
        return float("nan"), float("nan")
    ordered = sorted(latencies)
    p99 = ordered[min(len(ordered) - 1, int(len(ordered) * 0.99))]
    return statistics.median(ordered) * 1000, p99 * 1000


# -- the asyncio client --------------------------------------------------------------------------


async def _read_response(reader: asyncio.StreamReader) -> tuple[int, bool, bytes]:
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
    body = await reader.readexactly(length) if length else b""
    return status, close, body


async def _drive(
    port: int,
    payloads: list[bytes],
    connections: int,
    seconds: float,
    cycle: bool,
    on_answer: Callable[[int, int, bytes], None] | None = None,
) -> Figures:
    """Send ``payloads`` in order over ``connections`` keep-alive connections for up to
    ``seconds``: going round them again when ``cycle``, else stopping when they run out.
    ``on_answer(index, status, body)`` sees each answer."""
    latencies: list[float] = []
    issued = failed = errors = 0
    total = len(payloads)
    stop_at = time.perf_counter() + seconds

    async def connection() -> None:
        nonlocal issued, failed, errors
        streams: tuple[asyncio.StreamReader, asyncio.StreamWriter] | None = None
        while time.perf_counter() < stop_at and (cycle or issued < total):
            try:
                if streams is None:
                    streams = await asyncio.open_connection(HOST, port)
                if not cycle and issued >= total:  # used up while this one connected
                    break
                reader, writer = streams
                index = issued
                issued += 1
                began = time.perf_counter()
                writer.write(payloads[index % total])
                status, close, body = await _read_response(reader)
                latencies.append(time.perf_counter() - began)
                if status >= 400:
                    failed += 1
                if on_answer is not None:
                    on_answer(index, status, body)
                if close:
                    writer.close()
                    streams = None
            except (OSError, asyncio.IncompleteReadError, ValueError):
                errors += 1
                if streams is not None:
                    streams[1].close()
                    streams = None
                await asyncio.sleep(0.01)
        if streams is not None:
            streams[1].close()

    began = time.perf_counter()
    await asyncio.wait_for(
        asyncio.gather(*(connection() for _ in range(connections))),
        seconds + LOAD_GRACE_SECONDS,
    )
    elapsed = time.perf_counter() - began
    p50, p99 = percentiles(latencies)
    return Figures(
        len(latencies), elapsed, p50, p99, failed, errors, max(0, issued - total) if cycle else 0
    )


def drive(
    port: int,
    payloads: list[bytes],
    connections: int,
    seconds: float,
    cycle: bool,
    on_answer: Callable[[int, int, bytes], None] | None = None,
) -> Figures:
    return asyncio.run(_drive(port, payloads, connections, seconds, cycle, on_answer))


# -- the load generators -------------------------------------------------------------------------


class PythonLoad:
    """The asyncio client above, in this process."""

    def __init__(self, connections: int, seconds: int, warmup: int) -> None:
        self.connections, self.seconds, self.warmup = connections, seconds, warmup

    def describe(self) -> str:
        return f"the asyncio client in this process, {self.connections} connections"

    def run(
        self, port: int, scenario: Scenario, *, warm: bool = True, seconds: int | None = None
    ) -> Figures:
        payloads = scenario.payloads(port)
        if warm and self.warmup:
            drive(port, payloads, self.connections, self.warmup, cycle=True)
        return drive(port, payloads, self.connections, seconds or self.seconds, cycle=True)


class WrkLoad:
    """wrk with ``_wrk/json11.lua``."""

    def __init__(self, wrk: str, connections: int, seconds: int, warmup: int, threads: int) -> None:
        self.wrk, self.connections, self.seconds, self.warmup = wrk, connections, seconds, warmup
        self.threads = max(1, min(threads, connections))

    def describe(self) -> str:
        version = (
            subprocess.run(
                [self.wrk, "--version"], capture_output=True, text=True, timeout=10, check=False
            )
            .stdout.split("[")[0]
            .strip()
        )
        threads = "thread" if self.threads == 1 else "threads"
        return f"{version or 'wrk'}, {self.threads} {threads}, {self.connections} connections"

    def run(
        self, port: int, scenario: Scenario, *, warm: bool = True, seconds: int | None = None
    ) -> Figures:
        if warm and self.warmup:
            self._wrk(port, scenario, self.warmup)
        return self._wrk(port, scenario, seconds or self.seconds)

    def _wrk(self, port: int, scenario: Scenario, seconds: int) -> Figures:
        argv = [
            self.wrk,
            "-t",
            str(self.threads),
            "-c",
            str(self.connections),
            "-d",
            f"{seconds}s",
            "--timeout",
            "10s",
            "-s",
            str(WRK_SCRIPT),
            f"http://{HOST}:{port}/",
            "--",
            scenario.target,
            scenario.body_format,
            str(scenario.count),
            str(self.threads),
            AUTHORIZATION,
        ]
        done = subprocess.run(
            argv, capture_output=True, text=True, timeout=seconds + LOAD_GRACE_SECONDS, check=False
        )
        line = next((x for x in done.stdout.splitlines() if x.startswith("BENCH ")), None)
        if done.returncode != 0 or line is None:
            raise RuntimeError(f"wrk failed ({done.returncode}): {done.stdout}{done.stderr}")
        report = json.loads(line.removeprefix("BENCH "))
        past = sum(max(0, t["issued"] - t["owned"]) for t in report["threads"])
        return Figures(
            requests=report["requests"],
            seconds=report["duration_us"] / 1e6,
            p50_ms=report["p50_us"] / 1000,
            p99_ms=report["p99_us"] / 1000,
            failed=report["status"],
            socket_errors=sum(report[k] for k in ("connect", "read", "write", "timeout")),
            past_seed=past,
        )


Load = PythonLoad | WrkLoad


# -- the servers ---------------------------------------------------------------------------------


def wait_until_up(port: int, path: str, process: subprocess.Popen[bytes]) -> None:
    deadline = time.monotonic() + STARTUP_SECONDS
    while time.monotonic() < deadline:
        if process.poll() is not None:
            raise RuntimeError(f"server exited with {process.returncode}")
        with contextlib.suppress(OSError, http.client.HTTPException):
            connection = http.client.HTTPConnection(HOST, port, timeout=1)
            connection.request("GET", path)
            connection.getresponse().read()
            connection.close()
            return
        time.sleep(0.05)
    raise RuntimeError(f"server did not answer {path} within {STARTUP_SECONDS} s")


def _stop(process: subprocess.Popen[bytes]) -> None:
    """SIGTERM, then (after 15 s) SIGKILL to the process group it leads (uvicorn's workers)."""
    if process.poll() is None:
        process.terminate()
    with contextlib.suppress(subprocess.TimeoutExpired):
        process.wait(15)
    with contextlib.suppress(ProcessLookupError, PermissionError):
        os.killpg(process.pid, signal.SIGKILL)
    process.wait(5)


@contextlib.contextmanager
def running(argv: Sequence[str], port: int, probe: str, log: Path) -> Iterator[None]:
    """Run ``argv`` (its output to ``log``) until it answers ``GET probe``; stop it after.
    A server that does not come up is an error quoting the end of its log."""
    path = os.pathsep.join(p for p in (str(REPO), os.environ.get("PYTHONPATH")) if p)
    env = dict(os.environ, PYTHONPATH=path)
    with log.open("ab") as out:
        process = subprocess.Popen(
            argv,
            cwd=REPO,
            env=env,
            stdin=subprocess.DEVNULL,
            stdout=out,
            stderr=subprocess.STDOUT,
            start_new_session=True,
        )
    try:
        try:
            wait_until_up(port, probe, process)
        except RuntimeError as exc:
            tail = log.read_text(errors="replace").splitlines()[-15:]
            raise RuntimeError(
                f"{' '.join(argv)}: {exc}; its log ends:\n" + "\n".join(tail)
            ) from None
        yield
    finally:
        _stop(process)


def lifecycle_argv(port: int, url: str, workers: int) -> list[str]:
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
    return argv + (["--workers", str(workers)] if workers != 1 else [])


def workers_supported() -> bool:
    """Whether ``lifecycle serve`` takes ``--workers`` (it says so in its ``--help``)."""
    done = subprocess.run(
        [sys.executable, "-m", "lifecycle.http.serve", "--help"],
        cwd=REPO,
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    return "--workers" in done.stdout


# -- seeding -------------------------------------------------------------------------------------


def create_body(name: str) -> str:
    infra = {
        "InfrastructureType": "RealTimeInference",
        "RealTimeInferenceConfig": {"InstanceType": "ml.m5.xlarge", "InstanceCount": 1},
    }
    return json.dumps(
        {
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
                "ShadowModelVariants": [
                    {"ShadowModelVariantName": "shadow", "SamplingPercentage": 50}
                ],
            },
        }
    )


def statuses(port: int, names: list[str], connections: int) -> list[str]:
    """Each experiment's Status by Describe ("" for one not answered 200)."""
    found = [""] * len(names)

    def record(index: int, status: int, body: bytes) -> None:
        if status == 200:
            found[index] = json.loads(body).get("Status", "")

    describes = [
        request_bytes(port, "SageMaker.DescribeInferenceExperiment", json.dumps({"Name": n}))
        for n in names
    ]
    drive(port, describes, connections, 600, cycle=False, on_answer=record)
    return found


def seed(port: int, names: list[str], connections: int) -> None:
    """Create the experiments (concurrently, through the asyncio client) and wait until
    every one is Running (a bound that grows with their number)."""
    began = time.monotonic()
    creates = [
        request_bytes(port, "SageMaker.CreateInferenceExperiment", create_body(n)) for n in names
    ]
    created = drive(port, creates, connections, 600, cycle=False)
    if created.failed or created.socket_errors or created.requests != len(names):
        raise RuntimeError(
            f"seeding: {created.requests:,} of {len(names):,} creates answered, "
            f"{created.failed:,} failed, {created.socket_errors:,} socket errors"
        )
    deadline = time.monotonic() + 60 + len(names) / 100
    pending = names
    while pending:
        pending = [
            n
            for n, status in zip(pending, statuses(port, pending, connections), strict=True)
            if status != "Running"
        ]
        if pending and time.monotonic() > deadline:
            raise RuntimeError(
                f"seeding: {len(pending):,} experiments not Running, e.g. {pending[0]}"
            )
        if pending:
            time.sleep(0.1)
    note(f"seeded {len(names):,} Running experiments in {time.monotonic() - began:.1f} s")


# -- the measurements ----------------------------------------------------------------------------


@dataclass
class Measured:
    """A lifecycle figure with the answer size its floor needs."""

    label: str
    scenario: Scenario
    body_size: int
    workers: int
    figures: Figures
    notes: list[str] = field(default_factory=list)
    floor: Figures | None = None


def answer_size(port: int, scenario: Scenario, index: int = 0) -> int:
    status, raw = call(port, scenario.target, json.loads(scenario.body(index)))
    if status != 200:
        raise RuntimeError(f"{scenario.target} answered {status}: {raw[:300]!r}")
    return len(raw)


def measure_reads(
    port: int, store: str, workers: int, load: Load, connections: int
) -> list[Measured]:
    """Describe (rotating over 100 Running experiments) and List MaxResults=10."""
    seed(port, names_of(DESCRIBED), connections)
    size = answer_size(port, DESCRIBED)
    note(f"Describe ({store}): {size}-byte answers")
    describe = load.run(port, DESCRIBED)
    list_size = answer_size(port, LISTED)
    note(f"List ({store}): {list_size}-byte answers")
    listed = load.run(port, LISTED)
    tag = f"{store}" + (f", --workers {workers}" if workers != 1 else "")
    return [
        Measured(f"Describe ({tag})", DESCRIBED, size, workers, describe),
        Measured(f"List MaxResults=10 ({tag})", LISTED, list_size, workers, listed),
    ]


def measure_stop(
    port: int, store: str, workers: int, load: Load, args: argparse.Namespace
) -> Measured:
    """A probe to learn the rate (which warms the server up too), a seed sized for it,
    then the measured Stops."""
    connections = args.connections
    probe = stops("probe", max(200, 40 * connections))
    seed(port, names_of(probe), connections)
    size = answer_size(port, probe)
    # the same load for a second or so; past its seed, its rate counts the quicker
    # ConflictExceptions too, so it errs towards seeding more
    probed = load.run(port, probe, warm=False, seconds=max(1, args.warmup))
    rate = probed.rps
    wanted = math.ceil(rate * args.seconds * args.stop_margin) + 4 * connections
    count = min(args.max_seed, wanted)
    note(
        f"Stop ({store}): {size}-byte answers; the probe ran at {rate:,.0f} req/s "
        f"({probed.past_seed:,} past its {probe.count:,}); seeding {count:,}"
    )
    scenario = stops("stop", count)
    seed(port, names_of(scenario), connections)
    figures = load.run(port, scenario, warm=False)
    notes = [
        f"seeded {count:,} Running experiments (the probe's {rate:,.0f} req/s x {args.seconds} s "
        f"x {args.stop_margin} margin{', capped by --max-seed' if count < wanted else ''})"
    ]
    if figures.past_seed:
        notes.append(
            f"! the run outran the seed: {figures.past_seed:,} Stops went to experiments it had "
            "already stopped (ConflictException, counted in 4xx/5xx); raise --stop-margin "
            "or --max-seed"
        )
    elif figures.failed:
        notes.append(f"! {figures.failed:,} Stops failed (4xx/5xx) within the seed")
    tag = {"memory": "memory", "sqlite": "SQLite, synchronous=FULL"}[store]
    tag += f", --workers {workers}" if workers != 1 else ""
    return Measured(f"Stop ({tag})", scenario, size, workers, figures, notes)


def store_url(store: str, scratch: str, name: str) -> str:
    return "memory://" if store == "memory" else f"sqlite:///{scratch}/{name}.db"


def measure_lifecycle(
    args: argparse.Namespace, load: Load, scratch: str
) -> tuple[list[Measured], Measured, Measured]:
    """Describe and List on ``--store``; Stop on memory and on SQLite."""
    reads: list[Measured] = []
    stopped: dict[str, Measured] = {}
    for store in ("memory", "sqlite"):
        port = free_port()
        log = Path(scratch) / f"lifecycle-{store}.log"
        argv = lifecycle_argv(port, store_url(store, scratch, "bench"), args.workers)
        with running(argv, port, "/health", log):
            if store == args.store:
                reads = measure_reads(port, store, args.workers, load, args.connections)
            stopped[store] = measure_stop(port, store, args.workers, load, args)
    return reads, stopped["memory"], stopped["sqlite"]


def measure_workers(
    args: argparse.Namespace, load: Load, scratch: str
) -> tuple[Measured, Measured]:
    """Describe on SQLite with one worker and with ``--compare-workers`` N, fresh servers each."""
    described: list[Measured] = []
    for workers in (1, args.compare_workers):
        port = free_port()
        log = Path(scratch) / f"lifecycle-workers-{workers}.log"
        argv = lifecycle_argv(port, store_url("sqlite", scratch, f"workers-{workers}"), workers)
        with running(argv, port, "/health", log):
            seed(port, names_of(DESCRIBED), args.connections)
            size = answer_size(port, DESCRIBED)
            tag = "1 worker" if workers == 1 else f"--workers {workers}"
            described.append(
                Measured(
                    f"Describe (SQLite, {tag})", DESCRIBED, size, workers, load.run(port, DESCRIBED)
                )
            )
    return described[0], described[1]


def measure_floors(measured: list[Measured], load: Load, scratch: str) -> None:
    """The bare app's figure for each (requests, answer size, workers), once each."""
    floors: dict[tuple[str, int, int], Figures] = {}
    for item in measured:
        key = (item.scenario.target, item.body_size, item.workers)
        if key not in floors:
            port = free_port()
            argv = [
                sys.executable,
                str(BARE_APP),
                "--host",
                HOST,
                "--port",
                str(port),
                "--body-size",
                str(item.body_size),
                "--workers",
                str(item.workers),
            ]
            note(f"the floor: {item.body_size}-byte answers to {item.scenario.target}")
            with running(argv, port, "/", Path(scratch) / "bare.log"):
                floors[key] = load.run(port, item.scenario)
        item.floor = floors[key]


def measure_moto(load: Load, scratch: str) -> Figures | None:
    moto = shutil.which("moto_server")
    if moto is None:
        note("moto_server not found: pip install 'moto[server]' to compare")
        return None
    port = free_port()
    with running(
        [moto, "-H", HOST, "-p", str(port)], port, "/moto-api/", Path(scratch) / "moto.log"
    ):
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
        note("moto_server DescribeEndpointConfig")
        return load.run(port, MOTO_DESCRIBE)


# -- the report ----------------------------------------------------------------------------------


def _ratio(part: float, whole: float) -> str:
    return f"{100 * part / whole:.0f}%" if whole else "n/a"


def report_line(item: Measured) -> list[str]:
    floor = item.floor
    share = f"= {_ratio(item.figures.rps, floor.rps)} of the floor" if floor else ""
    lines = [f"{item.label:<42} {item.figures.summary()}  {share}  ({item.figures.problems()})"]
    if floor is not None:
        lines.append(
            f"  {'floor: bare app, ' + f'{item.body_size:,}-byte body':<40} {floor.summary()}"
            f"  ({floor.problems()})"
        )
    lines.extend(f"  {text}" for text in item.notes)
    return lines


def header(args: argparse.Namespace, load: Load) -> str:
    import uvicorn

    stack = ["httptools" if importlib.util.find_spec("httptools") else "h11 (no httptools)"]
    stack.append("uvloop" if importlib.util.find_spec("uvloop") else "asyncio (no uvloop)")
    workers = "1 worker" if args.workers == 1 else f"--workers {args.workers}"
    return (
        f"lifecycle serve and the floor on uvicorn {uvicorn.__version__} ({', '.join(stack)}), "
        f"{workers}; load: {load.describe()}; {args.seconds} s a figure after a {args.warmup} s "
        f"warm-up; {os.cpu_count()} CPUs, load average {os.getloadavg()[0]:.2f} at the start"
    )


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument(
        "--connections",
        "--clients",
        type=int,
        default=16,
        help="concurrent keep-alive connections (default 16)",
    )
    parser.add_argument(
        "--seconds", type=int, default=5, help="length of each measurement (default 5)"
    )
    parser.add_argument(
        "--warmup", type=int, default=1, help="warm-up before each measurement (default 1)"
    )
    parser.add_argument("--threads", type=int, default=1, help="wrk threads (default 1)")
    parser.add_argument(
        "--client",
        choices=("auto", "wrk", "python"),
        default="auto",
        help="the load generator: wrk when installed (auto), or the asyncio client",
    )
    parser.add_argument(
        "--store",
        choices=("memory", "sqlite"),
        default="memory",
        help="the store Describe and List are measured on (default memory)",
    )
    parser.add_argument(
        "--workers", type=int, default=1, help="lifecycle serve --workers N (and the floor's)"
    )
    parser.add_argument(
        "--compare-workers",
        type=int,
        default=0,
        metavar="N",
        help="also measure Describe on SQLite with --workers N against one worker",
    )
    parser.add_argument(
        "--stop-margin",
        type=float,
        default=2.0,
        help="experiments seeded for Stop: the probe's rate x --seconds x this (default 2.0)",
    )
    parser.add_argument(
        "--max-seed", type=int, default=200_000, help="at most this many seeded for one Stop run"
    )
    parser.add_argument("--no-moto", action="store_true", help="skip moto_server")
    args = parser.parse_args(argv)
    if args.connections < 1 or args.seconds < 1 or args.warmup < 0 or args.workers < 1:
        parser.error("--connections, --seconds and --workers are at least 1, --warmup at least 0")

    wrk = shutil.which("wrk")
    if args.client == "wrk" and wrk is None:
        parser.error("--client wrk: wrk is not installed (apt-get install wrk)")
    load: Load
    if wrk is not None and args.client != "python":
        load = WrkLoad(wrk, args.connections, args.seconds, args.warmup, args.threads)
    else:
        load = PythonLoad(args.connections, args.seconds, args.warmup)

    skipped: list[str] = []
    if (args.workers != 1 or args.compare_workers > 1) and not workers_supported():
        if args.workers != 1:
            print(
                "lifecycle serve does not accept --workers yet: nothing measured", file=sys.stderr
            )
            return 2
        skipped.append(
            f"Describe with --workers {args.compare_workers}: skipped, lifecycle serve "
            "does not accept --workers yet (python -m lifecycle.http.serve --help)"
        )
        args.compare_workers = 0

    lines = [header(args, load)]
    with tempfile.TemporaryDirectory(prefix="bench-http-") as scratch:
        reads, memory_stop, sqlite_stop = measure_lifecycle(args, load, scratch)
        measured = [*reads, memory_stop, sqlite_stop]
        compared = measure_workers(args, load, scratch) if args.compare_workers > 1 else None
        if compared is not None:
            measured.extend(compared)
        measure_floors(measured, load, scratch)
        moto = None if args.no_moto else measure_moto(load, scratch)

    for item in measured:
        lines.extend(report_line(item))
    outran = (
        " (! a run outran its seed: see above)"
        if any(item.figures.past_seed for item in (sqlite_stop, memory_stop))
        else ""
    )
    lines.append(
        f"SQLite Stop = {_ratio(sqlite_stop.figures.rps, memory_stop.figures.rps)} of memory Stop "
        f"({sqlite_stop.figures.rps:,.0f} vs {memory_stop.figures.rps:,.0f} req/s; "
        f"p99 {sqlite_stop.figures.p99_ms:.2f} vs {memory_stop.figures.p99_ms:.2f} ms){outran}"
    )
    if moto is not None:
        lines.append(
            f"{'moto_server DescribeEndpointConfig':<42} {moto.summary()}  ({moto.problems()})"
        )
        describe = reads[0].figures
        times = describe.rps / moto.rps if moto.rps else float("nan")
        lines.append(
            f"Describe vs moto_server: {times:.1f} times the requests/s; "
            f"p99 {describe.p99_ms:.2f} ms vs {moto.p99_ms:.2f} ms"
        )
    if compared is not None:
        one, many = compared
        times = many.figures.rps / one.figures.rps if one.figures.rps else float("nan")
        lines.append(
            f"Describe with --workers {args.compare_workers} = {times:.2f} times one worker "
            f"({many.figures.rps:,.0f} vs {one.figures.rps:,.0f} req/s)"
        )
    lines.extend(skipped)
    print("\n".join(lines))
    return 0


if __name__ == "__main__":
    sys.exit(main())
