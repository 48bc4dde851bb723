-- Periodic jobs claimed by one server per interval (auth.JobClaimer).
CREATE TABLE {{prefix}}jobs (
    name     TEXT    NOT NULL PRIMARY KEY,
    last_run INTEGER NOT NULL
) STRICT;
