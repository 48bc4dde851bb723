-- Short-lived single-use records shared by every server (auth.TransientStore):
-- pending Login Flow v2 flows. Keys are keyed hashes; values hold no secret
-- in clear.
CREATE TABLE {{prefix}}transient (
    kind       TEXT        NOT NULL,
    key        BYTEA       NOT NULL,
    value      BYTEA       NOT NULL,
    expires_at TIMESTAMPTZ NOT NULL,
    PRIMARY KEY (kind, key)
);
CREATE INDEX {{prefix}}transient_expires_idx ON {{prefix}}transient (kind, expires_at);
