-- Schedules (version 5): which app declared each one. Mirrors the SQLite store's
-- 0005_schedule_owner. A scheduler writes its app's name on the schedules it upserts
-- from the app's declarations, so that it can tell the ones the app no longer declares
-- (removed from the code) from the schedules of other apps in the same namespace and
-- from those added by hand (NULL). A nullable column without a default rewrites nothing.

ALTER TABLE schedules ADD COLUMN declared_by text;
