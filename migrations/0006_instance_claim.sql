-- Containers taken over from another database with `--take-over` (their botmaker.owner label is the other
-- database's and labels cannot be changed): this database manages them as its own until they are recreated.
CREATE TABLE adopted_containers (
    container_id TEXT PRIMARY KEY NOT NULL,
    previous_owner TEXT NOT NULL,
    adopted_at TEXT NOT NULL DEFAULT (strftime('%Y-%m-%d %H:%M:%f', 'now'))
);

-- Containers of our instance without an owner label that are none of our bots' (reported, never touched),
-- as the last resync saw them: `botmaker status` shows them.
ALTER TABLE fleet_status ADD COLUMN unowned_containers TEXT;
