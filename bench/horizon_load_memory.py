"""tracemalloc around one scheduler's load of N schedules (rows cloned by SQL, as in
horizon_load.py): what the load retains and its peak, per schedule, for whichever
taskwheel is imported (PYTHONPATH=<an older tree>/src to compare).

    python bench/horizon_load_memory.py 20000 /tmp/fresh.db
"""
import gc, sqlite3, sys, time, tracemalloc
from datetime import UTC, datetime
from pathlib import Path
import taskwheel
from taskwheel.bench.app import app, noop
from taskwheel.scheduler import Scheduler, SchedulerSettings

n = int(sys.argv[1]); db = Path(sys.argv[2])
app.configure(database_url=f"sqlite:///{db}", namespace="load")
app.store.migrate()
app.add_schedule("s0", noop, every="60s", start=datetime.fromtimestamp(time.time() + 9e4, UTC))
app.schedules.clear()
con = sqlite3.connect(db)
con.execute("""
    WITH RECURSIVE k(n) AS (SELECT 1 UNION ALL SELECT n + 1 FROM k WHERE n < ?)
    INSERT INTO taskwheel_schedules (namespace, name, spec, paused, next_fire_at,
        created_at, updated_at, changed_at)
    SELECT s.namespace, 's' || k.n, s.spec, 0, s.next_fire_at, s.created_at, s.updated_at,
           s.changed_at FROM taskwheel_schedules s, k WHERE s.name = 's0'""", (n - 1,))
con.execute("UPDATE taskwheel_schedules SET next_fire_at = ? + 50.0 * id / ?",
            (app.store.now() + 5, n))
con.commit(); con.close()
s = Scheduler(app, SchedulerSettings(), sync=False)
app.store.schedules_due(app.namespace, 0.0)
gc.collect()
tracemalloc.start()
base = tracemalloc.get_traced_memory()[0]
s._elect(app.store.now())
gc.collect()
cur, peak = tracemalloc.get_traced_memory()
print(f"{Path(taskwheel.__file__).parent.parent} timers {len(s._wheel)}: retained "
      f"{(cur - base) / n:.0f} B/schedule, peak during the load {(peak - base) / n:.0f} B/schedule")
