-- Images: a pull policy per bot, and what image each bot's container was made from.

-- missing: pull when the image is not on the engine; always: pull before every create or recreate; never: a missing
-- image is IMAGE_NOT_FOUND, and no registry is contacted.
ALTER TABLE bots ADD COLUMN pull_policy TEXT NOT NULL DEFAULT 'missing'
    CONSTRAINT pull_policy_must_be_missing_always_or_never CHECK (pull_policy IN ('missing', 'always', 'never'));

-- The image ID (sha256:…) and the registry digest (repo@sha256:…, when the image came from a registry) the bot's
-- container was created from.
ALTER TABLE bot_status ADD COLUMN image_id TEXT;
ALTER TABLE bot_status ADD COLUMN image_digest TEXT;

-- Images botmaker pulled: `botmaker images prune` removes only these (and only when nothing uses them).
CREATE TABLE pulled_images (
    reference TEXT NOT NULL,
    image_id TEXT NOT NULL,
    pulled_at TEXT NOT NULL DEFAULT (strftime('%Y-%m-%d %H:%M:%f', 'now')),
    PRIMARY KEY (reference, image_id)
);

DROP VIEW bot_overview;
CREATE VIEW bot_overview AS
SELECT
    b.id,
    b.desired_state,
    s.actual_state,
    s.health,
    CASE
        WHEN s.in_flight_action IS NOT NULL THEN
            s.in_flight_action || ' since '
            || CAST(max(0, round((julianday('now') - julianday(s.in_flight_since)) * 86400)) AS INTEGER) || ' s'
        WHEN s.waiting_for IS NOT NULL THEN
            'waiting: ' || s.waiting_for || coalesce(' until ' || s.wait_until, '')
    END AS activity,
    s.published_ports AS ports,
    b.image,
    b.pull_policy,
    substr(s.image_id, 1, 19) AS image_id,
    s.image_digest,
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
