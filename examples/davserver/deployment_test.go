package main

import (
	"bufio"
	"bytes"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/tls"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/json"
	"encoding/pem"
	"io"
	"math/big"
	"net"
	"net/http"
	"net/http/cookiejar"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/appauth/appauth/internal/testenv"
	"github.com/appauth/appauth/internal/testkit"
)

// selfSignedCert writes a self-signed certificate for 127.0.0.1 and its key
// (mode 0600) into dir and returns their paths and a pool holding exactly
// that certificate.
func selfSignedCert(t *testing.T, dir string) (certFile, keyFile string, pool *x509.CertPool) {
	t.Helper()
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	serial, err := rand.Int(rand.Reader, new(big.Int).Lsh(big.NewInt(1), 64))
	if err != nil {
		t.Fatal(err)
	}
	now := time.Now()
	tmpl := &x509.Certificate{
		SerialNumber:          serial,
		Subject:               pkix.Name{CommonName: "davserver deployment test"},
		NotBefore:             now.Add(-time.Hour),
		NotAfter:              now.Add(time.Hour),
		IPAddresses:           []net.IP{net.IPv4(127, 0, 0, 1)},
		KeyUsage:              x509.KeyUsageDigitalSignature | x509.KeyUsageCertSign,
		ExtKeyUsage:           []x509.ExtKeyUsage{x509.ExtKeyUsageServerAuth},
		BasicConstraintsValid: true,
		IsCA:                  true,
	}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, tmpl, &key.PublicKey, key)
	if err != nil {
		t.Fatal(err)
	}
	cert, err := x509.ParseCertificate(der)
	if err != nil {
		t.Fatal(err)
	}
	keyDER, err := x509.MarshalPKCS8PrivateKey(key)
	if err != nil {
		t.Fatal(err)
	}
	certFile, keyFile = filepath.Join(dir, "cert.pem"), filepath.Join(dir, "key.pem")
	if err := os.WriteFile(certFile, pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: der}), 0o644); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(keyFile, pem.EncodeToMemory(&pem.Block{Type: "PRIVATE KEY", Bytes: keyDER}), 0o600); err != nil {
		t.Fatal(err)
	}
	pool = x509.NewCertPool()
	pool.AddCert(cert)
	return certFile, keyFile, pool
}

// startServerWith runs bin with args and the extra environment variables
// env, in a process environment without any other APPAUTH_* variable (so
// only what the test chooses configures the server). It returns once the
// banner has been printed.
func startServerWith(t *testing.T, bin, dir string, args, env []string) *serverProcess {
	t.Helper()
	cmd := exec.Command(bin, args...)
	cmd.Dir = dir
	for _, kv := range os.Environ() {
		if !strings.HasPrefix(kv, "APPAUTH_") {
			cmd.Env = append(cmd.Env, kv)
		}
	}
	cmd.Env = append(cmd.Env, env...)
	stdout, err := cmd.StdoutPipe()
	if err != nil {
		t.Fatal(err)
	}
	p := &serverProcess{cmd: cmd, stderr: &testkit.Buffer{}, done: make(chan error, 1)}
	cmd.Stderr = p.stderr
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		if cmd.ProcessState == nil {
			cmd.Process.Kill()
			<-p.done
		}
	})
	banner := make(chan string, 1)
	go func() {
		var b strings.Builder
		sc := bufio.NewScanner(stdout)
		sent := false
		for sc.Scan() {
			b.WriteString(sc.Text() + "\n")
			if !sent && strings.HasPrefix(sc.Text(), "Listening on ") {
				banner <- b.String()
				sent = true
			}
		}
		if !sent {
			banner <- b.String()
		}
		p.done <- cmd.Wait()
	}()
	select {
	case p.banner = <-banner:
	case <-time.After(30 * time.Second):
		t.Fatalf("no banner after 30s; stderr:\n%s", p.stderr)
	}
	for line := range strings.SplitSeq(p.banner, "\n") {
		if u, ok := strings.CutPrefix(line, "Listening on "); ok {
			p.base = strings.TrimSpace(u)
		}
	}
	if p.base == "" {
		t.Fatalf("the server printed no address:\n%s\nstderr:\n%s", p.banner, p.stderr)
	}
	return p
}

// deployedApp is one app password as the list of the JSON API shows it.
type deployedApp struct {
	ID             string     `json:"id"`
	Name           string     `json:"name"`
	Password       string     `json:"password"`
	LastUsedAt     *time.Time `json:"lastUsedAt"`
	LastUsedClient string     `json:"lastUsedClient"`
}

// TestDeploymentPostgresLDAPTLS starts the built server as a real
// deployment would: app passwords and sessions in PostgreSQL (the DSN in
// APPAUTH_POSTGRES), users from LDAP over ldaps:// with a CA file and a
// service account whose password is in a 0600 file, and HTTPS with a
// certificate the client trusts alone. An LDAP user signs in with the
// directory password, makes an app password and uses it on DAV; after a
// SIGTERM and a restart on the same data and database, the app password
// still works and its last-used time is still there.
func TestDeploymentPostgresLDAPTLS(t *testing.T) {
	dsn := testenv.Postgres(t)
	dirSrv := testenv.LDAP(t)

	bin := buildServer(t)
	tmp := t.TempDir()
	data := filepath.Join(tmp, "data")
	certFile, keyFile, pool := selfSignedCert(t, tmp)
	bindPassFile := filepath.Join(tmp, "ldap-bind-password")
	if err := os.WriteFile(bindPassFile, []byte(dirSrv.BindPassword+"\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	args := []string{
		"-addr", "127.0.0.1:0",
		"-data", data,
		"-ldap-url", dirSrv.TLSURL,
		"-ldap-ca-file", dirSrv.CAFile,
		"-ldap-base-dn", dirSrv.BaseDN,
		"-ldap-bind-dn", dirSrv.BindDN,
		"-ldap-bind-password-file", bindPassFile,
		"-tls-cert", certFile,
		"-tls-key", keyFile,
	}
	env := []string{"APPAUTH_POSTGRES=" + dsn}

	transport := &http.Transport{TLSClientConfig: &tls.Config{RootCAs: pool, MinVersion: tls.VersionTLS12}}
	t.Cleanup(transport.CloseIdleConnections)
	dav := &http.Client{Transport: transport} // no cookies: DAV clients send only Basic credentials
	const userAgent = "appauth-deployment-test/1"
	propfind := func(base, user, password string) int {
		t.Helper()
		req, err := http.NewRequest("PROPFIND", base+"dav/files/"+user+"/", nil)
		if err != nil {
			t.Fatal(err)
		}
		req.Header.Set("Depth", "0")
		req.Header.Set("User-Agent", userAgent)
		req.SetBasicAuth(user, password)
		resp, err := dav.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		io.Copy(io.Discard, resp.Body)
		resp.Body.Close()
		return resp.StatusCode
	}
	// signInStatus posts the JSON sign-in and returns the response (body read).
	signInStatus := func(c *http.Client, base, user, password string) (*http.Response, []byte) {
		t.Helper()
		b, _ := json.Marshal(map[string]string{"username": user, "password": password})
		resp, err := c.Post(base+"api/v1/session", "application/json", bytes.NewReader(b))
		if err != nil {
			t.Fatal(err)
		}
		defer resp.Body.Close()
		body, _ := io.ReadAll(resp.Body)
		return resp, body
	}

	srv := startServerWith(t, bin, tmp, args, env)
	if !strings.HasPrefix(srv.base, "https://127.0.0.1:") {
		t.Fatalf("listening on %q, want https://127.0.0.1:PORT/\n%s", srv.base, srv.banner)
	}
	if strings.Contains(srv.banner, "password:") || strings.Contains(srv.banner, "-add-user") {
		t.Errorf("with LDAP, the banner offers htpasswd users:\n%s", srv.banner)
	}
	// PostgreSQL and LDAP replace the SQLite database and the users file.
	for _, f := range []string{"appauth.db", "users.htpasswd"} {
		if _, err := os.Stat(filepath.Join(data, f)); !os.IsNotExist(err) {
			t.Errorf("%s in the data folder (err %v); with -postgres and -ldap-url it should not exist", f, err)
		}
	}
	if st, err := os.Stat(filepath.Join(data, "pepper")); err != nil || st.Mode().Perm() != 0o600 {
		t.Fatalf("pepper: %v, want a 0600 file", err)
	}

	// The certificate is the test's own: a client with the system roots refuses it.
	if _, err := http.Get(srv.base); err == nil {
		t.Error("a client with the system roots accepted the self-signed certificate")
	}

	// Sign-in through the JSON API with LDAP passwords.
	jar, _ := cookiejar.New(nil)
	webHC := &http.Client{Jar: jar, Transport: transport}
	if resp, body := signInStatus(webHC, srv.base, "alice", "alice-Secret-wrong"); resp.StatusCode != http.StatusUnauthorized {
		t.Fatalf("alice with a wrong password: %d %s, want 401", resp.StatusCode, body)
	}
	if resp, body := signInStatus(webHC, srv.base, "dave", "dave-Secret-4"); resp.StatusCode != http.StatusUnauthorized {
		t.Fatalf("disabled dave with his password: %d %s, want 401", resp.StatusCode, body)
	}
	resp, body := signInStatus(webHC, srv.base, "alice", "alice-Secret-1")
	if resp.StatusCode != http.StatusOK {
		t.Fatalf("alice with her LDAP password: %d %s, want 200\nstderr:\n%s", resp.StatusCode, body, srv.stderr)
	}
	var session struct {
		CSRFToken string `json:"csrfToken"`
	}
	if err := json.Unmarshal(body, &session); err != nil || session.CSRFToken == "" {
		t.Fatalf("sign-in answer without a CSRF token: %v %s", err, body)
	}
	var cookie *http.Cookie
	for _, c := range resp.Cookies() {
		if c.Value != "" {
			cookie = c
		}
	}
	if cookie == nil {
		t.Fatalf("sign-in set no session cookie: %q", resp.Header.Values("Set-Cookie"))
	}
	if !cookie.Secure || !cookie.HttpOnly {
		t.Errorf("session cookie over HTTPS: Secure=%v HttpOnly=%v, want both (Set-Cookie: %q)", cookie.Secure, cookie.HttpOnly, resp.Header.Values("Set-Cookie"))
	}
	web := &webClient{t: t, base: srv.base, hc: webHC, csrf: session.CSRFToken}
	ap := web.createAppPassword("Phone")
	if ap.LoginName != "" && ap.LoginName != "alice" {
		t.Errorf("app password login name %q, want alice", ap.LoginName)
	}

	// DAV: the app password works, the directory password does not.
	if got := propfind(srv.base, "alice", ap.Password); got != http.StatusMultiStatus {
		t.Fatalf("PROPFIND /dav/files/alice/ with the app password: %d, want 207\nstderr:\n%s", got, srv.stderr)
	}
	if got := propfind(srv.base, "alice", "alice-Secret-1"); got != http.StatusUnauthorized {
		t.Errorf("PROPFIND with alice's LDAP password: %d, want 401", got)
	}
	list := func(w *webClient) deployedApp {
		t.Helper()
		var out struct {
			AppPasswords []deployedApp `json:"appPasswords"`
		}
		w.call("GET", "api/v1/app-passwords", nil, http.StatusOK, &out)
		for _, a := range out.AppPasswords {
			if a.Password != "" {
				t.Errorf("the list shows the secret of %q", a.Name)
			}
			if a.ID == ap.ID {
				return a
			}
		}
		t.Fatalf("app password %s not in the list: %+v", ap.ID, out.AppPasswords)
		return deployedApp{}
	}
	before := list(web)
	if before.LastUsedAt == nil || before.LastUsedClient != userAgent {
		t.Fatalf("after the PROPFIND the list shows last use %v by %q, want a time and %q", before.LastUsedAt, before.LastUsedClient, userAgent)
	}

	// SIGTERM: graceful stop (pending last-used time written), then a
	// restart on the same data folder and database.
	srv.stop(t)
	logs := srv.stderr.String()
	if !strings.Contains(logs, "store=postgres directory=ldap") {
		t.Errorf("the start log does not name PostgreSQL and LDAP:\n%s", logs)
	}
	transport.CloseIdleConnections()

	srv2 := startServerWith(t, bin, tmp, args, env)
	if !strings.HasPrefix(srv2.base, "https://127.0.0.1:") {
		t.Fatalf("second start listening on %q", srv2.base)
	}
	// The browser session lives in PostgreSQL too: the same cookie still
	// signs alice in (cookies do not depend on the port).
	web2 := &webClient{t: t, base: srv2.base, hc: webHC, csrf: session.CSRFToken}
	after := list(web2)
	if after.LastUsedAt == nil || !after.LastUsedAt.Equal(before.LastUsedAt.Truncate(time.Microsecond)) {
		t.Errorf("after SIGTERM and a restart the last use is %v, want %v (the time shown before the stop)", after.LastUsedAt, before.LastUsedAt)
	}
	if after.LastUsedClient != userAgent {
		t.Errorf("after the restart the last client is %q, want %q", after.LastUsedClient, userAgent)
	}
	if got := propfind(srv2.base, "alice", ap.Password); got != http.StatusMultiStatus {
		t.Fatalf("PROPFIND with the app password after the restart: %d, want 207\nstderr:\n%s", got, srv2.stderr)
	}
	if got := propfind(srv2.base, "alice", "alice-Secret-1"); got != http.StatusUnauthorized {
		t.Errorf("PROPFIND with alice's LDAP password after the restart: %d, want 401", got)
	}
	srv2.stop(t)
	transport.CloseIdleConnections()

	logs += srv2.stderr.String()
	for _, s := range []string{dirSrv.BindPassword, "alice-Secret-1", "alice-Secret-wrong", "dave-Secret-4", ap.Password, session.CSRFToken, cookie.Value} {
		if strings.Contains(logs, s) {
			t.Errorf("a secret (%.6s...) appears in the server's log", s)
		}
	}
}
