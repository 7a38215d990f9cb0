-- The newest events first: sqlite3 botmaker.db 'select * from bot_recent_events'
CREATE INDEX bot_events_by_time ON bot_events(at);

CREATE VIEW bot_recent_events AS
SELECT id, at, bot_id, action, result, error_code, message
FROM bot_events
ORDER BY id DESC
LIMIT 200;
