package main

import (
	"io"
	"net/http"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/appauth/appauth/internal/testenv"
	"github.com/prometheus/common/expfmt"
	"github.com/prometheus/common/model"
)

// get fetches url and returns its status and body.
func get(t *testing.T, url string) (int, string) {
	t.Helper()
	resp, err := http.Get(url)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	b, err := io.ReadAll(resp.Body)
	if err != nil {
		t.Fatal(err)
	}
	return resp.StatusCode, string(b)
}

// scrapeMetric returns the value of the series of name whose labels
// include want, from the text exposition at url.
func scrapeMetric(t *testing.T, url, name string, want map[string]string) float64 {
	t.Helper()
	resp, err := http.Get(url)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	p := expfmt.NewTextParser(model.UTF8Validation)
	mfs, err := p.TextToMetricFamilies(resp.Body)
	if err != nil {
		t.Fatal(err)
	}
	mf := mfs[name]
	if mf == nil {
		t.Fatalf("%s not in the scrape", name)
	}
next:
	for _, m := range mf.GetMetric() {
		labels := map[string]string{}
		for _, l := range m.GetLabel() {
			labels[l.GetName()] = l.GetValue()
		}
		for k, v := range want {
			if labels[k] != v {
				continue next
			}
		}
		if c := m.GetCounter(); c != nil {
			return c.GetValue()
		}
		return m.GetGauge().GetValue()
	}
	t.Fatalf("%s%v not in the scrape", name, want)
	return 0
}

// waitReady polls /readyz until it answers want, for at most 20 seconds:
// a restarted database takes a moment to accept connections again.
func waitReady(t *testing.T, url string, want int) string {
	t.Helper()
	deadline := time.Now().Add(20 * time.Second)
	for {
		status, body := get(t, url)
		if status == want {
			return body
		}
		if time.Now().After(deadline) {
			t.Fatalf("/readyz: %d %q, want %d", status, body, want)
		}
		time.Sleep(100 * time.Millisecond)
	}
}

// TestOpsEndpoints runs the built server with -metrics-addr on PostgreSQL:
// /metrics counts a real DAV client's uses, /healthz answers, and /readyz
// answers 503 naming the store while PostgreSQL is stopped (and no DSN),
// then 200 again once it is back.
func TestOpsEndpoints(t *testing.T) {
	pg := testenv.NewPostgres(t)
	dsn := pg.Database(t)
	bin := buildServer(t)
	data := filepath.Join(t.TempDir(), "data")
	p := startServerWith(t, bin, t.TempDir(), []string{"-data", data},
		[]string{"APPAUTH_ADDR=127.0.0.1:0", "APPAUTH_METRICS_ADDR=127.0.0.1:0", "APPAUTH_POSTGRES=" + dsn})
	var ops string
	for line := range strings.SplitSeq(p.banner, "\n") {
		if rest, ok := strings.CutPrefix(line, "Metrics and probes on "); ok {
			ops, _, _ = strings.Cut(rest, " ")
		}
	}
	if ops == "" {
		t.Fatalf("no ops address in the banner:\n%s", p.banner)
	}
	if status, body := get(t, ops+"healthz"); status != http.StatusOK {
		t.Fatalf("/healthz: %d %q", status, body)
	}
	if status, body := get(t, ops+"readyz"); status != http.StatusOK || body != "ready\n" {
		t.Fatalf("/readyz: %d %q, want 200", status, body)
	}

	web := signIn(t, p.base, demoUser, bannerValue(p.banner, "password"))
	ap := web.createAppPassword("phone")
	for range 2 {
		req, _ := http.NewRequest("PROPFIND", p.base+"dav/files/"+demoUser+"/", nil)
		req.Header.Set("Depth", "0")
		req.SetBasicAuth(ap.LoginName, ap.Password)
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		io.Copy(io.Discard, resp.Body)
		resp.Body.Close()
		if resp.StatusCode != http.StatusMultiStatus {
			t.Fatalf("PROPFIND: %d", resp.StatusCode)
		}
	}
	success := map[string]string{"kind": "app_password", "result": "success"}
	if n := scrapeMetric(t, ops+"metrics", "appauth_authentications_total", success); n != 2 {
		t.Errorf("app-password successes = %v, want 2", n)
	}
	if n := scrapeMetric(t, ops+"metrics", "appauth_credentials_issued_total", map[string]string{"kind": "app_password"}); n != 1 {
		t.Errorf("issued app passwords = %v, want 1", n)
	}
	if n := scrapeMetric(t, ops+"metrics", "appauth_backend_up", map[string]string{"backend": "store"}); n != 1 {
		t.Errorf("store up = %v after a good /readyz, want 1", n)
	}

	pg.Stop(t)
	status, body := get(t, ops+"readyz")
	if status != http.StatusServiceUnavailable || body != "store: not answering\n" {
		t.Errorf("/readyz with PostgreSQL stopped: %d %q, want 503 \"store: not answering\"", status, body)
	}
	if strings.Contains(body, dsn) || strings.Contains(body, "postgres") || strings.Contains(body, "127.0.0.1") {
		t.Errorf("/readyz leaks connection details: %q", body)
	}
	if status, _ := get(t, ops+"healthz"); status != http.StatusOK {
		t.Errorf("/healthz during the outage: %d, want 200 (the process is up)", status)
	}
	if n := scrapeMetric(t, ops+"metrics", "appauth_backend_up", map[string]string{"backend": "store"}); n != 0 {
		t.Errorf("store up = %v during the outage, want 0", n)
	}

	pg.Start(t)
	waitReady(t, ops+"readyz", http.StatusOK)
	if n := scrapeMetric(t, ops+"metrics", "appauth_backend_up", map[string]string{"backend": "store"}); n != 1 {
		t.Errorf("store up = %v after recovery, want 1", n)
	}
	p.stop(t)
}
