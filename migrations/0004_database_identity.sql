-- The database's identity: a random id made once, at this migration, and kept when the file is copied.
-- Every container botmaker creates carries it as the label botmaker.owner; a container of our instance
-- with another owner belongs to another database and is never stopped, removed or modified.
CREATE TABLE store_identity (
    id INTEGER PRIMARY KEY NOT NULL CHECK (id = 1),
    owner_id TEXT NOT NULL
        CONSTRAINT owner_id_is_32_hex_digits
        CHECK (length(owner_id) = 32 AND owner_id NOT GLOB '*[^0-9a-f]*'),
    created_at TEXT NOT NULL DEFAULT (strftime('%Y-%m-%d %H:%M:%f', 'now'))
);
INSERT INTO store_identity (id, owner_id) VALUES (1, lower(hex(randomblob(16))));
