"""Real-client check of the example server with Debian's python3-caldav.

Usage: caldav_client.py BASE_URL USERNAME APP_PASSWORD

CalDAV through the caldav library, given the bare server URL (as the
settings page tells people): discover the principal with a PROPFIND on /,
create a calendar, put an event, read it back; then sync it with
objects_by_sync_token (RFC 6578 sync-collection): an add, an edit and a
delete, and a raw sync-collection REPORT from the first token, which must
name the deleted event as 404. Also the same principal from
/.well-known/caldav.
CardDAV at the protocol level, with the standard library (python3-caldav has
no CardDAV; the real CardDAV client of the test is vdirsyncer): the
/.well-known/carddav redirect status, the same principal as CalDAV, the
address-book home, an extended MKCOL with a display name, a PUT with
If-None-Match: *, the vCard read back and found in a PROPFIND listing.
Prints OK and exits 0 when everything worked.
"""
import base64
import http.client
import sys
import urllib.parse
import uuid
import xml.etree.ElementTree as ET

import caldav

base, user, password = sys.argv[1], sys.argv[2], sys.argv[3]
if not base.endswith("/"):
    base += "/"


def check(cond, msg):
    if not cond:
        print("FAIL: " + msg)
        sys.exit(1)


# --- CalDAV -----------------------------------------------------------------
client = caldav.DAVClient(url=base, username=user, password=password)
principal = client.principal()
principal_path = urllib.parse.urlparse(str(principal.url)).path
check(principal_path == "/dav/principals/%s/" % user, "principal is %s" % principal.url)
wk = caldav.DAVClient(url=base + ".well-known/caldav", username=user, password=password).principal()
check(urllib.parse.urlparse(str(wk.url)).path == principal_path, "principal from .well-known is %s" % wk.url)

cal_id = "work-" + uuid.uuid4().hex[:8]
calendar = principal.make_calendar(name="Work", cal_id=cal_id)
check(any(str(c.url).rstrip("/").endswith(cal_id) for c in principal.calendars()),
      "new calendar not listed in the calendar home")

uid = str(uuid.uuid4())
ics = "\r\n".join([
    "BEGIN:VCALENDAR",
    "VERSION:2.0",
    "PRODID:-//appauth//real-client test//EN",
    "BEGIN:VEVENT",
    "UID:" + uid,
    "DTSTAMP:20260101T090000Z",
    "DTSTART:20260301T100000Z",
    "DTEND:20260301T110000Z",
    "SUMMARY:Planning with python3-caldav",
    "END:VEVENT",
    "END:VCALENDAR",
    "",
])
calendar.save_event(ics)
event = calendar.event_by_uid(uid)
check("Planning with python3-caldav" in event.data, "event read back without its summary")
events = calendar.events()
check(len(events) == 1 and uid in events[0].data, "calendar lists %d events" % len(events))


# --- Sync (RFC 6578) ----------------------------------------------------------
def vevent(uid, summary):
    return "\r\n".join([
        "BEGIN:VCALENDAR", "VERSION:2.0", "PRODID:-//appauth//real-client test//EN",
        "BEGIN:VEVENT", "UID:" + uid, "DTSTAMP:20260101T090000Z",
        "DTSTART:20260302T100000Z", "DTEND:20260302T110000Z", "SUMMARY:" + summary,
        "END:VEVENT", "END:VCALENDAR", "",
    ])


synced = calendar.objects_by_sync_token(load_objects=True)
first_token = synced.sync_token
check(first_token and len(list(synced)) == 1, "initial sync: token %r, %d objects" % (first_token, len(list(synced))))
updated, deleted = synced.sync()
check(not updated and not deleted, "sync without changes: %d updated, %d deleted" % (len(updated), len(deleted)))

uid2 = str(uuid.uuid4())
added = calendar.save_event(vevent(uid2, "Added for sync"))
updated, deleted = synced.sync()
check(len(updated) == 1 and "Added for sync" in updated[0].data and not deleted,
      "sync after an add: %s updated, %d deleted" % ([o.url for o in updated], len(deleted)))
after_add = synced.sync_token

event.data = event.data.replace("Planning with python3-caldav", "Planning edited")
event.save()
updated, deleted = synced.sync()
check(len(updated) == 1 and "Planning edited" in updated[0].data and not deleted,
      "sync after an edit: %s updated, %d deleted: %s" % ([o.url for o in updated], len(deleted), [o.data for o in updated]))

added.delete()
updated, deleted = synced.sync()
check(not updated and len(deleted) == 1 and str(deleted[0].url) == str(added.url),
      "sync after a delete: %d updated, %s deleted" % (len(updated), [str(o.url) for o in deleted]))
check(synced.sync_token not in (first_token, after_add), "sync token did not change")


# --- CardDAV ----------------------------------------------------------------
u = urllib.parse.urlparse(base)
auth = "Basic " + base64.b64encode(("%s:%s" % (user, password)).encode()).decode()
NS = {"d": "DAV:", "card": "urn:ietf:params:xml:ns:carddav"}


def request(method, path, body=None, headers=None):
    conn = http.client.HTTPConnection(u.hostname, u.port, timeout=30)
    h = {"Authorization": auth}
    if body is not None:
        h["Content-Type"] = "application/xml; charset=utf-8"
    h.update(headers or {})
    conn.request(method, path, body=body.encode() if isinstance(body, str) else body, headers=h)
    resp = conn.getresponse()
    data = resp.read()
    conn.close()
    return resp, data


def propfind(path, prop, depth="0"):
    body = ('<?xml version="1.0" encoding="utf-8"?><d:propfind xmlns:d="DAV:" '
            'xmlns:card="urn:ietf:params:xml:ns:carddav"><d:prop>%s</d:prop></d:propfind>' % prop)
    resp, data = request("PROPFIND", path, body, {"Depth": depth})
    check(resp.status == 207, "PROPFIND %s: %d" % (path, resp.status))
    return ET.fromstring(data)


resp, _ = request("PROPFIND", "/.well-known/carddav", "", {"Depth": "0"})
check(resp.status in (301, 302, 307, 308), "/.well-known/carddav: %d, want a redirect" % resp.status)
context_path = urllib.parse.urlparse(resp.getheader("Location")).path
tree = propfind(context_path, "<d:current-user-principal/>")
card_principal = tree.find(".//d:current-user-principal/d:href", NS).text
check(card_principal == principal_path, "CardDAV principal %s" % card_principal)
tree = propfind(card_principal, "<card:addressbook-home-set/>")
home = tree.find(".//card:addressbook-home-set/d:href", NS).text

book = home + "friends-" + uuid.uuid4().hex[:8] + "/"
mkcol = ('<?xml version="1.0" encoding="utf-8"?><d:mkcol xmlns:d="DAV:" '
         'xmlns:card="urn:ietf:params:xml:ns:carddav"><d:set><d:prop><d:resourcetype>'
         '<d:collection/><card:addressbook/></d:resourcetype><d:displayname>Friends</d:displayname>'
         '</d:prop></d:set></d:mkcol>')
resp, data = request("MKCOL", book, mkcol)
check(resp.status == 201, "MKCOL address book: %d %s" % (resp.status, data[:200]))

card_uid = str(uuid.uuid4())
vcard = "\r\n".join([
    "BEGIN:VCARD", "VERSION:3.0", "UID:" + card_uid, "FN:Ada Lovelace",
    "N:Lovelace;Ada;;;", "EMAIL:ada@example.org", "END:VCARD", "",
])
resp, data = request("PUT", book + card_uid + ".vcf", vcard,
                     {"Content-Type": "text/vcard; charset=utf-8", "If-None-Match": "*"})
check(resp.status in (201, 204), "PUT vCard: %d %s" % (resp.status, data[:200]))
resp, data = request("GET", book + card_uid + ".vcf")
check(resp.status == 200 and b"Ada Lovelace" in data, "GET vCard: %d" % resp.status)
tree = propfind(book, "<d:getetag/>", depth="1")
hrefs = [e.text for e in tree.findall(".//d:response/d:href", NS)]
check(book + card_uid + ".vcf" in hrefs, "vCard not listed: %s" % hrefs)

# A raw sync-collection from the first token: the added-then-deleted event is
# a 404, the edited one has its new ETag; a made-up token is 403.
cal_path = urllib.parse.urlparse(str(calendar.url)).path
sync_body = ('<?xml version="1.0" encoding="utf-8"?><d:sync-collection xmlns:d="DAV:">'
             '<d:sync-token>%s</d:sync-token><d:sync-level>1</d:sync-level>'
             '<d:prop><d:getetag/></d:prop></d:sync-collection>')
resp, data = request("REPORT", cal_path, sync_body % first_token)
check(resp.status == 207, "REPORT sync-collection: %d %s" % (resp.status, data[:200]))
tree = ET.fromstring(data)
status = {}
for r in tree.findall("d:response", NS):
    href = r.find("d:href", NS).text
    st = r.find("d:status", NS)
    status[href] = "404" if st is not None and " 404 " in st.text else "changed"
added_path = urllib.parse.urlparse(str(added.url)).path
event_path = urllib.parse.urlparse(str(event.url)).path
check(status == {added_path: "404", event_path: "changed"}, "sync from the first token: %s" % status)
resp, data = request("REPORT", cal_path, sync_body % "data:,made-up")
check(resp.status == 403 and b"valid-sync-token" in data, "made-up token: %d %s" % (resp.status, data[:200]))
resp, data = request("PROPFIND", cal_path, '<?xml version="1.0"?><d:propfind xmlns:d="DAV:" '
                     'xmlns:cs="http://calendarserver.org/ns/"><d:prop><cs:getctag/><d:sync-token/>'
                     '</d:prop></d:propfind>', {"Depth": "0"})
check(resp.status == 207 and synced.sync_token.encode() in data and b"getctag" in data,
      "PROPFIND getctag and sync-token: %d %s" % (resp.status, data[:300]))

print("OK")
