package main

import (
	"crypto/rand"
	"encoding/hex"
	"io"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"testing"

	goldap "github.com/go-ldap/ldap/v3"

	"github.com/appauth/appauth/internal/testenv"
)

// TestLDAPLoginGivenToANewPerson: an LDAP account is deleted and its login
// given to a new person (a new entry, so a new entryUUID). The new person
// signs in with that login and sees none of the old person's files or
// calendars, which stay with the old ID. A login-named folder of an older
// version is migrated on start to its owner's ID folder (alice's), and one
// of a login LDAP does not know is left as is.
func TestLDAPLoginGivenToANewPerson(t *testing.T) {
	dirSrv := testenv.LDAP(t)
	bin := buildServer(t)
	tmp := t.TempDir()
	data := filepath.Join(tmp, "data")
	bindPassFile := filepath.Join(tmp, "ldap-bind-password")
	if err := os.WriteFile(bindPassFile, []byte(dirSrv.BindPassword+"\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	// An older version's folders, named after logins.
	for login, file := range map[string]string{"alice": "legacy.txt", "ghost-no-such-login": "ghost.txt"} {
		dir := filepath.Join(data, "dav", login, "files")
		if err := os.MkdirAll(dir, 0o700); err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(filepath.Join(dir, file), []byte("LEGACY "+login), 0o600); err != nil {
			t.Fatal(err)
		}
	}

	admin, err := goldap.DialURL(dirSrv.URL)
	if err != nil {
		t.Fatal(err)
	}
	defer admin.Close()
	if err := admin.Bind(dirSrv.AdminDN, dirSrv.AdminPassword); err != nil {
		t.Fatal(err)
	}
	b := make([]byte, 16) // no other test shares this login
	rand.Read(b)
	login := "reused-" + hex.EncodeToString(b)
	dn := "uid=" + goldap.EscapeDN(login) + ",ou=people," + dirSrv.BaseDN
	addPerson := func(cn, password string) {
		t.Helper()
		req := goldap.NewAddRequest(dn, nil)
		req.Attribute("objectClass", []string{"inetOrgPerson"})
		req.Attribute("uid", []string{login})
		req.Attribute("cn", []string{cn})
		req.Attribute("sn", []string{cn})
		req.Attribute("userPassword", []string{password})
		if err := admin.Add(req); err != nil {
			t.Fatal(err)
		}
	}
	t.Cleanup(func() { admin.Del(goldap.NewDelRequest(dn, nil)) })
	addPerson("First Person", "first-Secret-1")

	args := []string{
		"-addr", "127.0.0.1:0", "-data", data,
		"-ldap-url", dirSrv.URL, "-ldap-base-dn", dirSrv.BaseDN,
		"-ldap-bind-dn", dirSrv.BindDN, "-ldap-bind-password-file", bindPassFile,
	}
	srv := startServerWith(t, bin, tmp, args, nil)
	do := func(user, password, method, path, body string, hdr ...string) (int, string) {
		t.Helper()
		req, _ := http.NewRequest(method, srv.base+strings.TrimPrefix(path, "/"), strings.NewReader(body))
		req.SetBasicAuth(user, password)
		for i := 0; i+1 < len(hdr); i += 2 {
			req.Header.Set(hdr[i], hdr[i+1])
		}
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		defer resp.Body.Close()
		out, _ := io.ReadAll(resp.Body)
		return resp.StatusCode, string(out)
	}

	// alice's older folder is hers, under her ID; the unknown one stays.
	alice := signIn(t, srv.base, "alice", "alice-Secret-1").createAppPassword("laptop")
	if code, body := do("alice", alice.Password, "GET", "dav/files/alice/legacy.txt", ""); code != http.StatusOK || body != "LEGACY alice" {
		t.Errorf("alice's migrated file: %d %q", code, body)
	}
	if _, err := os.Stat(filepath.Join(data, "dav", "ghost-no-such-login", "files", "ghost.txt")); err != nil {
		t.Errorf("the unknown login's folder was not left as is: %v", err)
	}
	if !logged(srv.stderr.String(), "data folder migrated", "login=alice") || !logged(srv.stderr.String(), "unknown login", "ghost-no-such-login") {
		t.Errorf("the migration is not in the log:\n%s", srv.stderr)
	}

	// The first person keeps a file and an event.
	first := signIn(t, srv.base, login, "first-Secret-1").createAppPassword("phone")
	if code, _ := do(login, first.Password, "PUT", "dav/files/"+login+"/diary.txt", "OLDSECRET file"); code != http.StatusCreated {
		t.Fatalf("PUT file: %d", code)
	}
	if code, _ := do(login, first.Password, "MKCALENDAR", "dav/calendars/"+login+"/private/", ""); code != http.StatusCreated {
		t.Fatalf("MKCALENDAR: %d", code)
	}
	ics := "BEGIN:VCALENDAR\r\nVERSION:2.0\r\nPRODID:x\r\nBEGIN:VEVENT\r\nUID:e1\r\nDTSTAMP:20260101T000000Z\r\nDTSTART:20260101T000000Z\r\nSUMMARY:OLDSECRET event\r\nEND:VEVENT\r\nEND:VCALENDAR\r\n"
	if code, body := do(login, first.Password, "PUT", "dav/calendars/"+login+"/private/e1.ics", ics, "Content-Type", "text/calendar"); code != http.StatusCreated {
		t.Fatalf("PUT event: %d %s", code, body)
	}

	// The account is deleted and its login given to someone else. (The
	// restart spares the test the owner re-check interval, during which the
	// server still knows the login's old ID; the next start's migration
	// must not move anything either.)
	if err := admin.Del(goldap.NewDelRequest(dn, nil)); err != nil {
		t.Fatal(err)
	}
	addPerson("Second Person", "second-Secret-2")
	srv.stop(t)
	srv = startServerWith(t, bin, tmp, args, nil)
	defer srv.stop(t)
	second := signIn(t, srv.base, login, "second-Secret-2").createAppPassword("phone")
	for _, c := range []struct{ method, path string }{
		{"GET", "dav/files/" + login + "/diary.txt"},
		{"GET", "dav/calendars/" + login + "/private/e1.ics"},
		{"PROPFIND", "dav/files/" + login + "/"},
		{"PROPFIND", "dav/calendars/" + login + "/"},
	} {
		code, body := do(login, second.Password, c.method, c.path, "", "Depth", "1")
		if strings.Contains(body, "OLDSECRET") || strings.Contains(body, "diary") || strings.Contains(body, "private") || code == http.StatusOK {
			t.Errorf("the second person, %s %s: %d, shows the first person's data:\n%s", c.method, c.path, code, body)
		}
	}
	if code, _ := do(login, second.Password, "PROPFIND", "dav/calendars/"+login+"/", "", "Depth", "1"); code != http.StatusMultiStatus {
		t.Errorf("the second person's calendar home: %d, want 207", code)
	}
}
