package settings_test

import (
	"encoding/json"
	"net/http"
	"slices"
	"strings"
	"testing"
)

// FuzzAPIRequestBodies sends arbitrary bodies to every API route that reads
// one, through the whole Handler. Whatever the body: no 500, a JSON answer
// ({"error":"..."} on refusal), and a refused request changes nothing.
func FuzzAPIRequestBodies(f *testing.F) {
	for _, seed := range []string{
		`{"name":"My iPhone"}`, `{"name":"x","scopes":["calendars"],"expiresAt":"2030-01-01T00:00:00Z"}`,
		`{"username":"alice","password":"` + alicePassword + `"}`, `{"username":"alice","password":"x"}`,
		`{}`, `null`, `[]`, `{"name":""}`, `{"name":"` + strings.Repeat("é", 101) + `"}`, `{"name":"a"} x`,
		`{"scopes":[""]}`, `{"expiresAt":"2000-01-01T00:00:00Z","name":"x"}`, "{\"name\":\"\\u0000\"}", `{"password":{}}`,
	} {
		f.Add(seed)
	}
	f.Fuzz(func(t *testing.T, body string) {
		e := newEnv(t, nil, nil)
		c := e.client()
		c.signIn("alice", alicePassword)
		id, _ := c.createAppPassword("Laptop")
		for _, route := range []struct {
			method, path string
			ok           []int
		}{
			{"POST", "app-passwords", []int{201, 400}},
			{"PATCH", "app-passwords/" + id, []int{200, 400}},
			{"POST", "session", []int{200, 400, 401}},
		} {
			before, _ := e.m.ListAppPasswords(t.Context(), "u-alice")
			r := c.req(route.method, "api/v1/"+route.path, "application/json", body)
			r.Header.Set("X-CSRF-Token", c.csrf)
			w := c.send(r)
			if !slices.Contains(route.ok, w.Code) {
				t.Fatalf("%s %s %q: status %d %s", route.method, route.path, body, w.Code, w.Body)
			}
			var resp map[string]any
			if err := json.Unmarshal(w.Body.Bytes(), &resp); err != nil {
				t.Fatalf("%s %s %q: answer is not JSON: %s", route.method, route.path, body, w.Body)
			}
			if w.Code >= 400 {
				if msg, _ := resp["error"].(string); msg == "" || len(resp) != 1 {
					t.Fatalf("%s %s %q: error body %s", route.method, route.path, body, w.Body)
				}
				after, _ := e.m.ListAppPasswords(t.Context(), "u-alice")
				if len(after) != len(before) || after[0].Name != before[0].Name {
					t.Fatalf("%s %s %q: refused, but the app passwords changed", route.method, route.path, body)
				}
			}
			if w.Code == http.StatusCreated {
				secret, _ := resp["password"].(string)
				if !e.appPasswordWorks("alice", secret) {
					t.Fatalf("created from %q, but the password does not work", body)
				}
			}
			if c.cookie == nil {
				t.Fatalf("%s %s %q: signed out", route.method, route.path, body)
			}
		}
	})
}
