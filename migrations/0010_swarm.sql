-- Docker Swarm as an engine (--engine swarm): where each bot runs, and where a bot with state is pinned.

-- The node (hostname) the bot's task runs on, or was placed on; NULL on one host.
ALTER TABLE bot_status ADD COLUMN node TEXT;

-- A bot with state mounts is pinned to the node it first ran on: its named volumes live there. Kept when the bot's row
-- is deleted (its state is not), so a bot declared again comes back to its data; `botmaker bot purge` forgets it.
CREATE TABLE swarm_placements (
    bot_id    TEXT PRIMARY KEY NOT NULL,
    node_id   TEXT NOT NULL CONSTRAINT node_id_must_not_be_empty CHECK (length(node_id) > 0),
    pinned_at TEXT NOT NULL
);

DROP VIEW bot_overview;
CREATE VIEW bot_overview AS
SELECT
    b.id,
    b.desired_state,
    s.actual_state
        || CASE WHEN s.rolled_back_from_generation IS NOT NULL
                THEN ' (rolled back from generation ' || s.rolled_back_from_generation || ')' ELSE '' END AS actual_state,
    s.health,
    s.node,
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
    b.update_strategy,
    s.update_phase,
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
