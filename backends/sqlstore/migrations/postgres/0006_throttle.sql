-- Failure counts shared by every server (Limiter): one row per address
-- prefix ('a:'), login ('l:'), login from a prefix ('p:') and trusted
-- prefix of a login ('t:'). Logins are stored as keyed hashes, never in
-- clear; no password or anything derived from one is stored.
CREATE TABLE {{prefix}}throttle (
    key       TEXT        NOT NULL PRIMARY KEY,
    failures  INTEGER     NOT NULL,
    clearable INTEGER     NOT NULL,
    last_at   TIMESTAMPTZ NOT NULL
);
CREATE INDEX {{prefix}}throttle_last_idx ON {{prefix}}throttle (last_at);
