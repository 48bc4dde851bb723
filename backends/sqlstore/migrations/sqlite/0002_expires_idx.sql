-- For DeleteExpired, which runs hourly: only rows that can expire.
CREATE INDEX {{prefix}}credentials_expires_idx
    ON {{prefix}}credentials (expires_at) WHERE expires_at IS NOT NULL;
