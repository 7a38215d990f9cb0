-- Workloads that can run OpenClaw for real: persistent state mounts, published ports, health, limits and
-- hardening, environment values from secret files. Every column has a CHECK so a hand edit that cannot be
-- right is refused at write time; what a CHECK cannot see (the inside of the JSON arrays) is validated by
-- botmaker and recorded as that bot's INVALID_SPEC.

-- JSON array of {"name": "state", "target": "/home/node/.openclaw"}: <data root>/<bot id>/<name> mounted at target.
ALTER TABLE bots ADD COLUMN mounts TEXT NOT NULL DEFAULT '[]'
    CONSTRAINT mounts_must_be_a_json_array CHECK (json_valid(mounts) AND json_type(mounts) = 'array');
-- JSON array of Docker short-syntax ports: "18789", "19001:18789", "0.0.0.0:19001:18789/tcp".
ALTER TABLE bots ADD COLUMN ports TEXT NOT NULL DEFAULT '[]'
    CONSTRAINT ports_must_be_a_json_array CHECK (json_valid(ports) AND json_type(ports) = 'array');
-- NULL: the image's HEALTHCHECK. A JSON array: the command run by the health check (exec form).
ALTER TABLE bots ADD COLUMN health_cmd TEXT
    CONSTRAINT health_cmd_must_be_null_or_a_json_array
    CHECK (health_cmd IS NULL OR (json_valid(health_cmd) AND json_type(health_cmd) = 'array' AND json_array_length(health_cmd) > 0));
ALTER TABLE bots ADD COLUMN health_interval_seconds INTEGER
    CONSTRAINT health_interval_must_be_1_to_3600_seconds
    CHECK (health_interval_seconds IS NULL OR (typeof(health_interval_seconds) = 'integer' AND health_interval_seconds BETWEEN 1 AND 3600));
-- NULL: the image's USER. Otherwise numeric 'UID' or 'UID:GID' (state directories are given to it).
ALTER TABLE bots ADD COLUMN user TEXT
    CONSTRAINT user_must_be_uid_or_uid_colon_gid
    CHECK (user IS NULL OR (typeof(user) = 'text' AND length(user) BETWEEN 1 AND 21 AND user GLOB '[0-9]*'
                            AND user NOT GLOB '*[^0-9:]*' AND user NOT GLOB '*:*:*' AND user NOT GLOB '*:'));
ALTER TABLE bots ADD COLUMN memory_bytes INTEGER
    CONSTRAINT memory_must_be_at_least_6_mib
    CHECK (memory_bytes IS NULL OR (typeof(memory_bytes) = 'integer' AND memory_bytes >= 6291456));
ALTER TABLE bots ADD COLUMN cpus REAL
    CONSTRAINT cpus_must_be_between_0_01_and_1024
    CHECK (cpus IS NULL OR (typeof(cpus) IN ('real', 'integer') AND cpus >= 0.01 AND cpus <= 1024));
ALTER TABLE bots ADD COLUMN pids_limit INTEGER NOT NULL DEFAULT 512
    CONSTRAINT pids_limit_must_be_16_to_4194304
    CHECK (typeof(pids_limit) = 'integer' AND pids_limit BETWEEN 16 AND 4194304);
ALTER TABLE bots ADD COLUMN security TEXT NOT NULL DEFAULT 'standard'
    CONSTRAINT security_must_be_standard_or_strict CHECK (security IN ('standard', 'strict'));
-- 'botmaker': botmaker's own bridge, where bots cannot reach each other. 'bridge': Docker's default bridge.
ALTER TABLE bots ADD COLUMN network TEXT NOT NULL DEFAULT 'botmaker'
    CONSTRAINT network_must_be_botmaker_or_bridge CHECK (network IN ('botmaker', 'bridge'));

-- A change of what the container should be bumps the generation (the new columns included).
DROP TRIGGER bots_bump_generation;
CREATE TRIGGER bots_bump_generation
AFTER UPDATE OF image, environment, command, desired_state, mounts, ports, health_cmd, health_interval_seconds, user,
                memory_bytes, cpus, pids_limit, security, network ON bots
FOR EACH ROW
WHEN OLD.image IS NOT NEW.image
  OR OLD.environment IS NOT NEW.environment
  OR OLD.command IS NOT NEW.command
  OR OLD.desired_state IS NOT NEW.desired_state
  OR OLD.mounts IS NOT NEW.mounts
  OR OLD.ports IS NOT NEW.ports
  OR OLD.health_cmd IS NOT NEW.health_cmd
  OR OLD.health_interval_seconds IS NOT NEW.health_interval_seconds
  OR OLD.user IS NOT NEW.user
  OR OLD.memory_bytes IS NOT NEW.memory_bytes
  OR OLD.cpus IS NOT NEW.cpus
  OR OLD.pids_limit IS NOT NEW.pids_limit
  OR OLD.security IS NOT NEW.security
  OR OLD.network IS NOT NEW.network
BEGIN
    UPDATE bots SET generation = OLD.generation + 1 WHERE id = NEW.id;
END;

-- Host ports botmaker chose for ports written without one ("18789"): stable across recreates and restarts,
-- never shared. Freed when the bot's row is deleted.
CREATE TABLE port_allocations (
    bot_id TEXT NOT NULL REFERENCES bots(id) ON DELETE CASCADE ON UPDATE CASCADE,
    -- The container side, e.g. '18789/tcp'.
    container_port TEXT NOT NULL,
    host_ip TEXT NOT NULL,
    host_port INTEGER NOT NULL CHECK (host_port BETWEEN 1 AND 65535),
    allocated_at TEXT NOT NULL DEFAULT (strftime('%Y-%m-%d %H:%M:%f', 'now')),
    PRIMARY KEY (bot_id, container_port, host_ip)
);
CREATE UNIQUE INDEX port_allocations_host_port ON port_allocations(host_port, substr(container_port, instr(container_port, '/') + 1));

-- The host directories this database's bots live in, recorded at first use: a later run with other roots
-- (another working directory with the relative defaults, a typo) is refused instead of starting bots on empty
-- state. `--move-roots` records new ones deliberately.
CREATE TABLE host_roots (
    kind TEXT PRIMARY KEY NOT NULL CHECK (kind IN ('data', 'secrets')),
    path TEXT NOT NULL CHECK (path GLOB '/*'),
    recorded_at TEXT NOT NULL DEFAULT (strftime('%Y-%m-%d %H:%M:%f', 'now'))
);

-- What the engine shows about the container's health (none|starting|healthy|unhealthy) and published ports.
ALTER TABLE bot_status ADD COLUMN health TEXT;
ALTER TABLE bot_status ADD COLUMN published_ports TEXT;

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
