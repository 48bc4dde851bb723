"""Real-client check of the example server with Debian's python3-caldav.

Usage: caldav_client.py BASE_URL USERNAME APP_PASSWORD

CalDAV through the caldav library: discover the principal from
/.well-known/caldav, create a calendar, put an event, read it back.
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
client = caldav.DAVClient(url=base + ".well-known/caldav", username=user, password=password)
principal = client.principal()
principal_path = urllib.parse.urlparse(str(principal.url)).path
check(principal_path == "/dav/principals/%s/" % user, "principal is %s" % principal.url)

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

print("OK")
