"""Start-up of one in-process scheduler over N schedules in a SQLite file: the time its
first term's load of the horizon takes and the RSS it adds, per schedule it holds.

The rows are cloned by SQL from one schedule written through the API (writing a million
through `add_schedule` takes longer than the measurement), their fire times spread over
the next 50 s, so the whole horizon is loaded; nothing is fired. With MEMBERS > 1, as
many - 1 other living members are faked (membership leases) and the scheduler takes its
share of the partitions, as one of MEMBERS sharing schedulers would.

    python bench/horizon_load.py 1000000 1 /tmp/load.db   # one scheduler
    python bench/horizon_load.py 1000000 4 /tmp/load.db   # one of four (the file kept)
"""
import os, sqlite3, sys, time
from datetime import UTC, datetime
from pathlib import Path
from taskwheel.bench.app import app, noop
from taskwheel.scheduler import Scheduler, SchedulerSettings
from taskwheel.scheduler.partitions import MEMBER_PREFIX

n = int(sys.argv[1]); members = int(sys.argv[2]); db = Path(sys.argv[3])
url = f"sqlite:///{db}"
app.configure(database_url=url, namespace="big")
if not db.exists():
    app.store.migrate()
    app.add_schedule("s0", noop, every="60s",
                     start=datetime.fromtimestamp(time.time() + 100_000, UTC))
    app.schedules.clear()
    con = sqlite3.connect(db)
    con.execute("""
        WITH RECURSIVE k(n) AS (SELECT 1 UNION ALL SELECT n + 1 FROM k WHERE n < ?)
        INSERT INTO taskwheel_schedules (namespace, name, spec, paused, next_fire_at,
            created_at, updated_at, changed_at)
        SELECT s.namespace, 's' || k.n, s.spec, 0, s.next_fire_at, s.created_at,
               s.updated_at, s.changed_at
        FROM taskwheel_schedules s, k WHERE s.name = 's0'""", (n - 1,))
    con.commit(); con.close()
    print("created", n, flush=True)

def rss() -> int:
    for line in Path(f"/proc/{os.getpid()}/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1]) * 1024
    raise RuntimeError

# Every fire time inside the horizon from now: spread over the next 55 s (store clock).
con = sqlite3.connect(db)
now = app.store.now()
con.execute("UPDATE taskwheel_schedules SET next_fire_at = ? + 50.0 * (id % 100000) / 100000",
            (now + 8,))
con.execute("DELETE FROM taskwheel_leases"); con.commit(); con.close()
for m in range(members - 1):
    assert app.store.elect(app.namespace, f"{MEMBER_PREFIX}zz-fake-{m}", f"zz-fake-{m}", 3600)
s = Scheduler(app, SchedulerSettings(), sync=False)
app.store.now(); app.store.schedules_due(app.namespace, now - 1)  # connection opened
before = rss()
t = time.perf_counter()
s._elect(app.store.now())  # the load alone: nothing fired
load = time.perf_counter() - t
after = rss()
share = len(s._wheel)
print(f"schedules {n} members {members} partitions {len(s.partitions)} timers {share} "
      f"load {load:.2f}s rss {(after - before) / max(share, 1):.0f} B/schedule "
      f"(rss growth {(after - before) / 2**20:.1f} MiB)", flush=True)
