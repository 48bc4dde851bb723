package testenv

import (
	"context"
	"crypto/sha256"
	"embed"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"io/fs"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/appauth/appauth/internal/atomicfile"
)

//go:embed oidcprovider/package.json oidcprovider/package-lock.json oidcprovider/provider.mjs
var oidcFiles embed.FS

// OIDCClient is a relying party registered at an [OIDCProvider]: the
// metadata of oidc-provider's client configuration that the tests need.
type OIDCClient struct {
	ID           string   `json:"client_id"`
	Secret       string   `json:"client_secret"`
	RedirectURIs []string `json:"redirect_uris"`
	// PostLogoutRedirectURIs are where RP-initiated logout may return.
	PostLogoutRedirectURIs []string `json:"post_logout_redirect_uris,omitempty"`
	// BackchannelLogoutURI receives logout tokens (the provider posts to
	// loopback addresses, which only this test provider allows).
	BackchannelLogoutURI string `json:"backchannel_logout_uri,omitempty"`
	// BackchannelLogoutSessionRequired makes logout tokens carry "sid".
	BackchannelLogoutSessionRequired bool `json:"backchannel_logout_session_required,omitempty"`
}

// OIDCProvider is an OpenID Connect provider (the npm package
// oidc-provider, OpenID Certified, on Node.js) on a loopback port for one
// test. Its login form (development interactions) accepts any password;
// the login typed is the account's subject, preferred_username and name,
// and login@example.test its verified e-mail address, all in the ID token.
// No consent screen is shown.
type OIDCProvider struct {
	Issuer string // http://127.0.0.1:port

	dir  string
	conf map[string]any // written to config.json at each start
	proc *proc
	keys int // rotations so far
}

// OIDC starts an OpenID provider with these clients for this test alone;
// it is stopped when the test ends. The first call per machine installs
// oidc-provider with `npm ci` from the committed package-lock.json into a
// cache directory. Without node and npm (Debian packages nodejs, npm) the
// test is skipped with a message naming `make test`, or fails when
// [Strict].
func OIDC(t testing.TB, clients ...OIDCClient) *OIDCProvider {
	t.Helper()
	p, err := startOIDC(clients)
	if err != nil {
		need(t, err)
	}
	t.Cleanup(p.close)
	return p
}

// oidcModules installs the provider's npm packages once per test binary
// and returns the directory holding provider.mjs and node_modules.
var oidcModules = sync.OnceValues(func() (string, error) {
	_, okNode := findProgram([]string{"node", "nodejs"}, "/usr/bin")
	npm, okNPM := findProgram([]string{"npm"}, "/usr/bin")
	if !okNode || !okNPM {
		return "", &missingError{"testenv: node and npm are not installed (Debian packages nodejs, npm)"}
	}
	lock, err := oidcFiles.ReadFile("oidcprovider/package-lock.json")
	if err != nil {
		return "", err
	}
	sum := sha256.Sum256(lock)
	cache, err := os.UserCacheDir()
	if err != nil {
		cache = os.TempDir()
	}
	// One folder per lock file: a changed lock installs anew.
	dir := filepath.Join(cache, "appauth-testenv", "oidc-provider-"+hex.EncodeToString(sum[:8]))
	if _, err := os.Stat(filepath.Join(dir, "node_modules", "oidc-provider", "package.json")); err == nil {
		return dir, writeOIDCFiles(dir) // provider.mjs may have changed
	}
	if err := os.MkdirAll(filepath.Dir(dir), 0o755); err != nil {
		return "", fmt.Errorf("testenv: %w", err)
	}
	// Install into a fresh folder, then rename: test binaries running at
	// once never see a half-installed one.
	tmp, err := os.MkdirTemp(filepath.Dir(dir), "install-")
	if err != nil {
		return "", fmt.Errorf("testenv: %w", err)
	}
	defer os.RemoveAll(tmp)
	if err := writeOIDCFiles(tmp); err != nil {
		return "", err
	}
	if err := npmCI(npm, tmp, npmTimeout); err != nil {
		return "", err
	}
	if err := os.Rename(tmp, dir); err != nil {
		if _, serr := os.Stat(filepath.Join(dir, "node_modules", "oidc-provider", "package.json")); serr != nil {
			return "", fmt.Errorf("testenv: %w", err)
		}
	}
	return dir, writeOIDCFiles(dir)
})

// npmTimeout bounds `npm ci`, generously: a hung registry fails the tests
// instead of hanging them until CI's own limit.
const npmTimeout = 10 * time.Minute

// npmCI installs the packages of the package-lock.json in dir, within
// timeout.
func npmCI(npm, dir string, timeout time.Duration) error {
	ctx, cancel := context.WithTimeout(context.Background(), timeout)
	defer cancel()
	cmd := exec.CommandContext(ctx, npm, "ci", "--omit=dev", "--no-audit", "--no-fund", "--ignore-scripts", "--loglevel=error")
	cmd.Dir = dir
	// npm's children too (runChild gives it a process group): one of them
	// holding the output open would keep Wait waiting.
	cmd.Cancel = func() error { return killGroup(cmd, syscall.SIGKILL) }
	cmd.WaitDelay = 5 * time.Second
	err := runChild(cmd, nil)
	if err != nil && ctx.Err() != nil {
		return fmt.Errorf("testenv: npm ci (oidc-provider) in %s timed out after %v: is the npm registry (npm config get registry) reachable? %w", dir, timeout, err)
	}
	if err != nil {
		return fmt.Errorf("testenv: npm ci (oidc-provider): %w", err)
	}
	return nil
}

func writeOIDCFiles(dir string) error {
	return fs.WalkDir(oidcFiles, "oidcprovider", func(path string, d fs.DirEntry, err error) error {
		if err != nil || d.IsDir() {
			return err
		}
		b, err := oidcFiles.ReadFile(path)
		if err != nil {
			return err
		}
		dst := filepath.Join(dir, filepath.Base(path))
		if old, err := os.ReadFile(dst); err == nil && string(old) == string(b) {
			return nil
		}
		// Replace, not overwrite: another binary may be starting from it.
		if err := atomicfile.Write(dst, b); err != nil {
			return fmt.Errorf("testenv: %w", err)
		}
		return nil
	})
}

func startOIDC(clients []OIDCClient) (*OIDCProvider, error) {
	mods, err := oidcModules()
	if err != nil {
		return nil, err
	}
	node, _ := findProgram([]string{"node", "nodejs"}, "/usr/bin")
	dir, err := serverDir("oidc", nil)
	if err != nil {
		return nil, err
	}
	if clients == nil {
		clients = []OIDCClient{}
	}
	p := &OIDCProvider{dir: dir, conf: map[string]any{"clients": clients}}
	p.proc = &proc{
		name: "oidc-provider", path: node, dir: dir, logPath: filepath.Join(dir, "provider.log"),
		stopSig: syscall.SIGTERM,
		ready:   func(ctx context.Context) error { return discoveryAnswers(ctx, p.Issuer) },
	}
	_, err = startOnFreePort(p.proc, 1, func(ports []int) []string {
		p.Issuer = "http://127.0.0.1:" + strconv.Itoa(ports[0])
		p.conf["port"] = ports[0]
		if err := p.writeConfig(); err != nil {
			panic(err) // a fresh folder of ours
		}
		return []string{filepath.Join(mods, "provider.mjs"), p.configPath()}
	})
	if err != nil {
		p.close()
		return nil, fmt.Errorf("testenv: start oidc-provider: %w: %s", err, tail(p.proc.logPath))
	}
	return p, nil
}

// discoveryAnswers is nil once the provider serves its discovery document.
func discoveryAnswers(ctx context.Context, issuer string) error {
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, issuer+"/.well-known/openid-configuration", nil)
	if err != nil {
		return err
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		return err
	}
	resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		return fmt.Errorf("discovery: %s", resp.Status)
	}
	return nil
}

// Log returns what the provider has logged so far (back-channel logout
// deliveries: "backchannel.success CLIENT" or "backchannel.error ...").
func (p *OIDCProvider) Log() string {
	b, _ := os.ReadFile(p.proc.logPath)
	return string(b)
}

// Stop stops the provider and returns once it is down, for outage tests:
// connections are refused until [OIDCProvider.Start].
func (p *OIDCProvider) Stop(t testing.TB) {
	t.Helper()
	if err := p.proc.stop(); err != nil {
		t.Fatal(err)
	}
}

// Start starts the provider again after [OIDCProvider.Stop], on the same
// port. Its signing keys are the same (oidc-provider's development keys);
// its sessions are gone.
func (p *OIDCProvider) Start(t testing.TB) {
	t.Helper()
	if err := p.proc.restart(); err != nil {
		t.Fatal(err)
	}
}

// RotateKeys restarts the provider (like [OIDCProvider.Stop] and
// [OIDCProvider.Start]) signing with a new key, under a key ID it has not
// used before; the old key is gone from its key set.
func (p *OIDCProvider) RotateKeys(t testing.TB) {
	t.Helper()
	p.Stop(t)
	p.keys++
	p.conf["keyID"] = "rotated-" + strconv.Itoa(p.keys)
	if err := p.writeConfig(); err != nil {
		t.Fatal(err)
	}
	p.Start(t)
}

func (p *OIDCProvider) configPath() string { return filepath.Join(p.dir, "config.json") }

func (p *OIDCProvider) writeConfig() error {
	b, err := json.Marshal(p.conf)
	if err != nil {
		return err
	}
	return os.WriteFile(p.configPath(), b, 0o600)
}

func (p *OIDCProvider) close() {
	if err := p.proc.stop(); err != nil {
		fmt.Fprintln(os.Stderr, err)
	}
	os.RemoveAll(p.dir)
}
