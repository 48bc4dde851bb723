-- Tell every server sharing this database when a credential is revoked or
-- changed, so its cache drops it at once (Store.WatchChanges LISTENs). A
-- trigger also catches changes made by hand or by other tools. Last-used
-- updates are not announced: they change nothing a cache relies on.
CREATE FUNCTION {{prefix}}credentials_notify() RETURNS trigger AS $$
BEGIN
    PERFORM pg_notify('{{prefix}}credentials', OLD.id || ' ' || OLD.user_id);
    RETURN NULL;
END
$$ LANGUAGE plpgsql;

CREATE TRIGGER {{prefix}}credentials_changed
    AFTER DELETE OR UPDATE OF name, scopes, expires_at, authenticated_at, hash, user_id, login, kind
    ON {{prefix}}credentials
    FOR EACH ROW EXECUTE FUNCTION {{prefix}}credentials_notify();
