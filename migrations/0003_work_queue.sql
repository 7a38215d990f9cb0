-- The work queue's change tracking and in-flight visibility (second-generation reconcile core).
--
-- Every change to `bots` stamps the row with a new store-wide revision, and every deletion (or id
-- change) leaves a tombstone with one. A running `botmaker run` reads only the rows and tombstones
-- newer than the last revision it saw, so an edit costs work proportional to what changed.

CREATE TABLE store_revision (
    id INTEGER PRIMARY KEY NOT NULL CHECK (id = 1),
    revision INTEGER NOT NULL
);
INSERT INTO store_revision (id, revision) VALUES (1, 0);

ALTER TABLE bots ADD COLUMN revision INTEGER NOT NULL DEFAULT 0;
CREATE INDEX bots_by_revision ON bots(revision);

-- Bots deleted (or renamed away) and the revision at which it happened; a re-insert clears it.
CREATE TABLE bot_tombstones (
    bot_id TEXT PRIMARY KEY NOT NULL,
    revision INTEGER NOT NULL,
    deleted_at TEXT NOT NULL DEFAULT (strftime('%Y-%m-%d %H:%M:%f', 'now'))
);
CREATE INDEX bot_tombstones_by_revision ON bot_tombstones(revision);

CREATE TRIGGER bots_revision_after_insert
AFTER INSERT ON bots
FOR EACH ROW
BEGIN
    UPDATE store_revision SET revision = revision + 1 WHERE id = 1;
    UPDATE bots SET revision = (SELECT revision FROM store_revision WHERE id = 1) WHERE rowid = NEW.rowid;
    DELETE FROM bot_tombstones WHERE bot_id = NEW.id;
END;

-- Fires for every edit: one that leaves `revision` alone, or one that sets it by hand to anything but the
-- current revision. The stamp itself (which moves `revision` to the current one) does not fire it again.
CREATE TRIGGER bots_revision_after_update
AFTER UPDATE ON bots
FOR EACH ROW
WHEN NEW.revision IS OLD.revision OR NEW.revision IS NOT (SELECT revision FROM store_revision WHERE id = 1)
BEGIN
    UPDATE store_revision SET revision = revision + 1 WHERE id = 1;
    UPDATE bots SET revision = (SELECT revision FROM store_revision WHERE id = 1) WHERE rowid = NEW.rowid;
    INSERT INTO bot_tombstones (bot_id, revision)
        SELECT OLD.id, (SELECT revision FROM store_revision WHERE id = 1) WHERE OLD.id IS NOT NEW.id
        ON CONFLICT(bot_id) DO UPDATE SET revision = excluded.revision, deleted_at = excluded.deleted_at;
    DELETE FROM bot_tombstones WHERE bot_id = NEW.id AND OLD.id IS NOT NEW.id;
END;

CREATE TRIGGER bots_revision_after_delete
AFTER DELETE ON bots
FOR EACH ROW
BEGIN
    UPDATE store_revision SET revision = revision + 1 WHERE id = 1;
    INSERT INTO bot_tombstones (bot_id, revision) VALUES (OLD.id, (SELECT revision FROM store_revision WHERE id = 1))
        ON CONFLICT(bot_id) DO UPDATE SET revision = excluded.revision, deleted_at = excluded.deleted_at;
END;

-- The stamp is not an edit: it must not refresh updated_at (nor recurse with PRAGMA recursive_triggers on).
DROP TRIGGER bots_touch_updated_at;
CREATE TRIGGER bots_touch_updated_at
AFTER UPDATE ON bots
FOR EACH ROW
WHEN NEW.updated_at IS OLD.updated_at AND NEW.revision IS OLD.revision
BEGIN
    UPDATE bots SET updated_at = strftime('%Y-%m-%d %H:%M:%f', 'now') WHERE id = NEW.id;
END;

-- What a worker is doing right now ('stopping', 'creating', …) and since when; cleared with the outcome.
ALTER TABLE bot_status ADD COLUMN in_flight_action TEXT;
ALTER TABLE bot_status ADD COLUMN in_flight_since TEXT;
-- What a bot waits for (a backoff, Docker removing its container, …) and until when: no worker is held.
ALTER TABLE bot_status ADD COLUMN waiting_for TEXT;
ALTER TABLE bot_status ADD COLUMN wait_until TEXT;

DROP VIEW bot_overview;
CREATE VIEW bot_overview AS
SELECT
    b.id,
    b.desired_state,
    s.actual_state,
    CASE
        WHEN s.in_flight_action IS NOT NULL THEN
            s.in_flight_action || ' since '
            || CAST(max(0, round((julianday('now') - julianday(s.in_flight_since)) * 86400)) AS INTEGER) || ' s'
        WHEN s.waiting_for IS NOT NULL THEN
            'waiting: ' || s.waiting_for || coalesce(' until ' || s.wait_until, '')
    END AS activity,
    b.image,
    b.generation,
    s.observed_generation,
    substr(s.container_id, 1, 12) AS container,
    s.exit_code,
    s.last_action,
    s.last_action_at,
    s.last_error_code,
    s.last_error_message,
    s.failure_count,
    s.next_attempt_at,
    s.last_reconciled_at
FROM bots b
LEFT JOIN bot_status s ON s.bot_id = b.id
ORDER BY b.id;
