-- The mass-removal guard. When more than half of the instance's containers (and more than 3) would be
-- removed without their bots having been deleted or set absent, botmaker removes none of them and says so
-- here; a row in removal_approvals made after that (botmaker approve-removals) lets the held batch through once.
CREATE TABLE fleet_status (
    id INTEGER PRIMARY KEY NOT NULL CHECK (id = 1),
    -- NULL, or what the guard holds back, e.g. '7 of 8 containers would be removed without their bots …'.
    removal_guard TEXT,
    removal_guard_since TEXT,
    -- The newest approval when the guard engaged: only a newer one lets the held batch through.
    removal_guard_approval INTEGER NOT NULL DEFAULT 0
);
INSERT INTO fleet_status (id) VALUES (1);

CREATE TABLE removal_approvals (
    id INTEGER PRIMARY KEY AUTOINCREMENT,
    approved_at TEXT NOT NULL DEFAULT (strftime('%Y-%m-%d %H:%M:%f', 'now'))
);
