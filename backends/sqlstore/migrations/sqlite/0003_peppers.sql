-- A check value per pepper key ID (auth.PepperRegistry): an HMAC of a fixed
-- label under the key, so a different key under the same ID is noticed.
CREATE TABLE {{prefix}}peppers (
    key_id      TEXT    NOT NULL PRIMARY KEY,
    check_value BLOB    NOT NULL,
    created_at  INTEGER NOT NULL
) STRICT;
