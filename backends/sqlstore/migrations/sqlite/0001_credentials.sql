-- App passwords and browser sessions, told apart by kind. {{prefix}} is
-- replaced by the validated table prefix before this runs. Times are
-- INTEGER microseconds since the Unix epoch, UTC (they sort and round-trip
-- exactly); NULL means never.
CREATE TABLE {{prefix}}credentials (
    id               TEXT    NOT NULL PRIMARY KEY,
    kind             TEXT    NOT NULL,
    user_id          TEXT    NOT NULL,
    login            TEXT    NOT NULL,
    name             TEXT    NOT NULL,
    scopes           TEXT    NOT NULL DEFAULT '', -- space-separated
    hash             BLOB    NOT NULL,            -- HMAC-SHA256 of the secret
    key_id           TEXT    NOT NULL,
    hint             TEXT    NOT NULL,
    created_at       INTEGER NOT NULL,
    expires_at       INTEGER,
    authenticated_at INTEGER,
    last_used_at     INTEGER,
    last_used_addr   TEXT    NOT NULL DEFAULT '',
    last_used_client TEXT    NOT NULL DEFAULT ''
) STRICT;

CREATE UNIQUE INDEX {{prefix}}credentials_hash_key
    ON {{prefix}}credentials (hash);

CREATE INDEX {{prefix}}credentials_user_kind_created_idx
    ON {{prefix}}credentials (user_id, kind, created_at);
