"""The benchmarks behind ``taskwheel bench``: they measure and return figures; only the
CLI prints them (see ``bench/README.md`` for how each figure is measured).

- `app`: the app and no-op tasks the benchmark's worker and scheduler processes load.
- `settings`: what each benchmark measures and how, validated.
- `databases`: where a run measures (a temporary SQLite file or a PostgreSQL schema of
  its own, removed afterwards) and the app pointed at it.
- `processes`: ``taskwheel worker`` and ``taskwheel scheduler`` subprocesses, the lease
  they hold, their CPU time and memory.
- `report`: percentiles and other figures read off job rows, and what a run was
  measured on.
- `core`: enqueue rate, drain rate and enqueue→start latency.
- `schedules`: fire lateness, scheduler CPU and memory at N schedules, and a burst.
- `failover`: the time a standby scheduler takes to fire after SIGKILL of the active one.
- `workflows`: the overhead per step of a chain and a fan-out/fan-in.

Nothing is imported here: worker processes load `taskwheel.bench.app` alone.
"""
