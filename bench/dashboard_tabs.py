"""The cost of watching: `taskwheel bench`'s drain with dashboard tabs open and without.

Each run: a fresh SQLite file, a ``taskwheel server`` on it (in both modes, so the only
difference is the tabs), and ``taskwheel bench --database-url`` on the same file. With
tabs, as soon as the benchmark's ``bench-*-run`` namespace exists, ``--tabs`` live
streams (each watching the overview, queues and workers topics, as open dashboard pages
do) are opened on the server and read until the benchmark ends. Runs alternate without
and with tabs; the drain rate, and the CPU time the server process used during the
whole benchmark (what the tabs cost, steadier than a rate on a shared machine), are
printed as median [min-max] per mode.

    .venv/bin/python bench/dashboard_tabs.py --runs 3 --tabs 5 --jobs 20000
"""

from __future__ import annotations

import argparse
import json
import os
import socket
import statistics
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path

import httpx

from taskwheel.stores import open_store

TASKWHEEL = str(Path(sys.executable).with_name("taskwheel"))


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port: int = probe.getsockname()[1]
        return port


def cpu_seconds(pid: int) -> float:
    """User and system CPU time of a live process (Linux)."""
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def one_run(jobs: int, tabs: int, workdir: Path) -> tuple[float, float]:
    url = f"sqlite:///{workdir / 'bench.db'}"
    env = {**os.environ, "TASKWHEEL_DATABASE_URL": url}
    subprocess.run([TASKWHEEL, "migrate"], env=env, check=True, capture_output=True)
    key = json.loads(subprocess.run(
        [TASKWHEEL, "keys", "create", "--all-namespaces", "--role", "read", "--format",
         "json"], env=env, check=True, capture_output=True, text=True).stdout)["key"]
    port = free_port()
    server = subprocess.Popen([TASKWHEEL, "server", "--app", "taskwheel.bench.app:app",
                               "--port", str(port), "--log-level", "warning"], env=env)
    stop = threading.Event()
    readers: list[threading.Thread] = []
    try:
        for _ in range(100):
            try:
                httpx.get(f"http://127.0.0.1:{port}/login", timeout=1)
                break
            except httpx.HTTPError:
                time.sleep(0.1)
        if tabs:
            opener = threading.Thread(target=open_tabs, args=(url, port, key, tabs),
                                      kwargs={"stop": stop, "readers": readers})
            opener.start()
            readers.append(opener)
        done = subprocess.run(
            [TASKWHEEL, "bench", "--database-url", url, "--jobs", str(jobs), "--workers", "2",
             "--format", "json", "--quiet"], env=env, check=True, capture_output=True,
            text=True)
        figures = json.loads(done.stdout)
        return float(figures["drain_per_s"]), cpu_seconds(server.pid)
    finally:
        stop.set()
        server.terminate()
        server.wait(30)
        for reader in readers:
            reader.join(10)


def open_tabs(url: str, port: int, key: str, tabs: int, *, stop: threading.Event,
              readers: list[threading.Thread]) -> None:
    store = open_store(url)
    try:
        while not stop.is_set():
            run = [ns for ns in store.namespaces() if ns.endswith("-run")]
            if run:
                break
            time.sleep(0.2)
        else:
            return
    finally:
        store.close()
    for _ in range(tabs):
        reader = threading.Thread(target=read_tab, args=(port, key, run[0], stop))
        reader.start()
        readers.append(reader)


def read_tab(port: int, key: str, namespace: str, stop: threading.Event) -> None:
    stream_url = f"http://127.0.0.1:{port}/api/v1/namespaces/{namespace}/stream"
    try:
        with httpx.stream("GET", stream_url, params={"topics": "overview,queues,workers"},
                          headers={"Authorization": f"Bearer {key}"}, timeout=None) as answer:
            for _line in answer.iter_lines():
                if stop.is_set():
                    return
    except httpx.HTTPError:
        return


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--runs", type=int, default=3)
    parser.add_argument("--tabs", type=int, default=5)
    parser.add_argument("--jobs", type=int, default=20_000)
    options = parser.parse_args()
    rates: dict[int, list[float]] = {0: [], options.tabs: []}
    cpu: dict[int, list[float]] = {0: [], options.tabs: []}
    for index in range(options.runs):
        for tabs in (0, options.tabs):
            with tempfile.TemporaryDirectory() as workdir:
                rate, used = one_run(options.jobs, tabs, Path(workdir))
            rates[tabs].append(rate)
            cpu[tabs].append(used)
            print(f"run {index + 1}, {tabs} tabs: drain {rate:,.0f} jobs/s, server CPU "
                  f"{used:.2f} s", flush=True)
    for tabs, found in rates.items():
        print(f"{tabs} tabs: drain {statistics.median(found):,.0f} jobs/s "
              f"[{min(found):,.0f}-{max(found):,.0f}], server CPU "
              f"{statistics.median(cpu[tabs]):.2f} s [{min(cpu[tabs]):.2f}-"
              f"{max(cpu[tabs]):.2f}] over {len(found)} runs")
    ratio = statistics.median(rates[options.tabs]) / statistics.median(rates[0])
    print(f"with {options.tabs} tabs: {ratio:.1%} of the drain without")


if __name__ == "__main__":
    main()
