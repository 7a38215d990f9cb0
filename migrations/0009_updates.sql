-- Health-gated updates: a running bot whose spec changed is switched over to a new container, which is kept only once it
-- is confirmed (healthy, or up for --update-min-uptime); otherwise the previous container comes back.

-- rollback: the switch-over with its safety net (default); recreate: stop, remove, create, start, as before.
ALTER TABLE bots ADD COLUMN update_strategy TEXT NOT NULL DEFAULT 'rollback'
    CONSTRAINT update_strategy_must_be_rollback_or_recreate CHECK (update_strategy IN ('rollback', 'recreate'));

-- What the bot's container was made from (JSON of the config, secret digests but never values): a rolled-back bot
-- whose container is removed is made again from it, never from the failed target.
ALTER TABLE bot_status ADD COLUMN applied_config TEXT;
-- The switch-over in progress: what it is doing ('switching', 'confirming', 'rolling back') and since when, and what
-- the previous container (botmaker-<id>.previous) was made from, so a rollback restores what status shows.
ALTER TABLE bot_status ADD COLUMN update_phase TEXT;
ALTER TABLE bot_status ADD COLUMN update_started_at TEXT;
ALTER TABLE bot_status ADD COLUMN previous_container_id TEXT;
ALTER TABLE bot_status ADD COLUMN previous_config TEXT;
ALTER TABLE bot_status ADD COLUMN previous_image_id TEXT;
-- The target of the last update that was rolled back (desired spec hash and image ID): not tried again until the
-- target changes or `botmaker bot retry`.
ALTER TABLE bot_status ADD COLUMN failed_update_hash TEXT;
ALTER TABLE bot_status ADD COLUMN failed_update_image_id TEXT;
ALTER TABLE bot_status ADD COLUMN rolled_back_from_generation INTEGER;
-- 1 while this rollback counts toward pausing the rollout of its image (--max-failed-updates); `rollout resume` sets 0.
ALTER TABLE bot_status ADD COLUMN rollout_failure INTEGER NOT NULL DEFAULT 0;

DROP VIEW bot_overview;
CREATE VIEW bot_overview AS
SELECT
    b.id,
    b.desired_state,
    s.actual_state
        || CASE WHEN s.rolled_back_from_generation IS NOT NULL
                THEN ' (rolled back from generation ' || s.rolled_back_from_generation || ')' ELSE '' END AS actual_state,
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
