-- botmaker schema, version 1. Never edit a shipped migration: add 0002_… instead.
-- Times are UTC text 'YYYY-MM-DD HH:MM:SS.SSS' (GRDB's format; datetime('now') works too).

-- Desired state: the only table people edit.
CREATE TABLE bots (
    id TEXT PRIMARY KEY NOT NULL
        CONSTRAINT bot_id_must_be_a_dns_label
        CHECK (typeof(id) = 'text'
               AND length(id) BETWEEN 1 AND 63
               AND id NOT GLOB '*[^a-z0-9-]*'
               AND id NOT GLOB '-*'
               AND id NOT GLOB '*-'),
    image TEXT NOT NULL
        CONSTRAINT image_must_not_be_empty
        CHECK (typeof(image) = 'text' AND length(trim(image)) > 0),
    -- JSON array of "KEY=VALUE" strings.
    environment TEXT NOT NULL DEFAULT '[]'
        CONSTRAINT environment_must_be_a_json_array
        CHECK (json_valid(environment) AND json_type(environment) = 'array'),
    -- JSON array of strings overriding the image's CMD, or NULL for the image's own.
    command TEXT
        CONSTRAINT command_must_be_null_or_a_json_array
        CHECK (command IS NULL OR (json_valid(command) AND json_type(command) = 'array')),
    desired_state TEXT NOT NULL DEFAULT 'running'
        CONSTRAINT desired_state_must_be_running_stopped_or_absent
        CHECK (desired_state IN ('running', 'stopped', 'absent')),
    -- Set (e.g. to datetime('now')) to ask for one restart; each new value asks again.
    restart_requested_at TEXT,
    generation INTEGER NOT NULL DEFAULT 1,
    created_at TEXT NOT NULL DEFAULT (strftime('%Y-%m-%d %H:%M:%f', 'now')),
    updated_at TEXT NOT NULL DEFAULT (strftime('%Y-%m-%d %H:%M:%f', 'now'))
);

-- A change of what the container should be bumps the generation.
CREATE TRIGGER bots_bump_generation
AFTER UPDATE OF image, environment, command, desired_state ON bots
FOR EACH ROW
WHEN OLD.image IS NOT NEW.image
  OR OLD.environment IS NOT NEW.environment
  OR OLD.command IS NOT NEW.command
  OR OLD.desired_state IS NOT NEW.desired_state
BEGIN
    UPDATE bots SET generation = OLD.generation + 1 WHERE id = NEW.id;
END;

-- Any update that did not set updated_at itself gets it set.
CREATE TRIGGER bots_touch_updated_at
AFTER UPDATE ON bots
FOR EACH ROW
WHEN NEW.updated_at IS OLD.updated_at
BEGIN
    UPDATE bots SET updated_at = strftime('%Y-%m-%d %H:%M:%f', 'now') WHERE id = NEW.id;
END;

-- Observed state and errors: written only by the reconciler.
CREATE TABLE bot_status (
    bot_id TEXT PRIMARY KEY NOT NULL REFERENCES bots(id) ON DELETE CASCADE ON UPDATE CASCADE,
    observed_generation INTEGER,
    container_id TEXT,
    actual_state TEXT,
    exit_code INTEGER,
    started_at TEXT,
    finished_at TEXT,
    spec_hash TEXT,
    -- Canonical JSON of the spec the container was made from: names what changed on drift.
    applied_spec TEXT,
    last_action TEXT,
    last_action_at TEXT,
    -- The restart_requested_at value last acted on.
    restart_observed_at TEXT,
    last_error_code TEXT,
    last_error_message TEXT,
    last_error_at TEXT,
    -- The bot generation the last error happened at: a newer spec is retried at once.
    failed_generation INTEGER,
    failure_count INTEGER NOT NULL DEFAULT 0,
    next_attempt_at TEXT,
    last_reconciled_at TEXT
);

-- Append-only audit trail of actions taken and errors seen.
CREATE TABLE bot_events (
    id INTEGER PRIMARY KEY AUTOINCREMENT,
    at TEXT NOT NULL DEFAULT (strftime('%Y-%m-%d %H:%M:%f', 'now')),
    bot_id TEXT NOT NULL,
    action TEXT NOT NULL,
    result TEXT NOT NULL CHECK (result IN ('ok', 'error')),
    error_code TEXT,
    message TEXT
);
CREATE INDEX bot_events_by_bot ON bot_events(bot_id, id);

-- Retention: keep the newest 10000 events.
CREATE TRIGGER bot_events_retention
AFTER INSERT ON bot_events
FOR EACH ROW
WHEN NEW.id % 100 = 0
BEGIN
    DELETE FROM bot_events WHERE id <= NEW.id - 10000;
END;

-- "What is going on": sqlite3 botmaker.db 'select * from bot_overview'
CREATE VIEW bot_overview AS
SELECT
    b.id,
    b.desired_state,
    s.actual_state,
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
