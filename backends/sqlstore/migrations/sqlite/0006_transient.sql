-- Short-lived single-use records (auth.TransientStore): pending Login Flow
-- v2 flows. Keys are keyed hashes; values hold no secret in clear.
CREATE TABLE {{prefix}}transient (
    kind       TEXT    NOT NULL,
    key        BLOB    NOT NULL,
    value      BLOB    NOT NULL,
    expires_at INTEGER NOT NULL,
    PRIMARY KEY (kind, key)
) STRICT;
CREATE INDEX {{prefix}}transient_expires_idx ON {{prefix}}transient (kind, expires_at);
