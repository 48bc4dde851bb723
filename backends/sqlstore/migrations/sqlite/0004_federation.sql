-- The identity provider account behind a browser session signed in through
-- single sign-on (auth.Federation): issuer, subject and the provider's
-- session ID. Empty for app passwords and password sign-ins. Back-channel
-- logout finds sessions by (issuer, subject) or (issuer, sid).
ALTER TABLE {{prefix}}credentials ADD COLUMN fed_issuer  TEXT NOT NULL DEFAULT '';
ALTER TABLE {{prefix}}credentials ADD COLUMN fed_subject TEXT NOT NULL DEFAULT '';
ALTER TABLE {{prefix}}credentials ADD COLUMN fed_sid     TEXT NOT NULL DEFAULT '';

CREATE INDEX {{prefix}}credentials_fed_subject_idx
    ON {{prefix}}credentials (fed_issuer, fed_subject) WHERE fed_issuer <> '';
CREATE INDEX {{prefix}}credentials_fed_sid_idx
    ON {{prefix}}credentials (fed_issuer, fed_sid) WHERE fed_sid <> '';
