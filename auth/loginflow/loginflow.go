package loginflow

import (
	"context"
	"crypto/ecdh"
	"crypto/hkdf"
	"crypto/hmac"
	"crypto/hpke"
	"crypto/rand"
	"crypto/sha256"
	"encoding/base64"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"net/http"
	"strings"
	"sync"
	"time"
	"unicode"
	"unicode/utf8"

	"github.com/appauth/appauth/auth"
	"github.com/appauth/appauth/auth/clientaddr"
)

// Options configure [New]. Every zero field takes the default given on it.
type Options struct {
	// Key is the secret key of the tokens' keyed hashes, at least
	// [auth.MinPepperLen] bytes; servers sharing a Store share it. Required.
	Key []byte
	// Store keeps the pending flows. Default: a [MemoryStore] of MaxPending.
	Store Store
	// MaxPending bounds the default MemoryStore. Default 10,000.
	MaxPending int
	// Lifetime is how long a flow may wait for its grant and poll.
	// Default 20 minutes.
	Lifetime time.Duration
	// PublicURL is the server's base URL as clients reach it
	// ("https://dav.example.org/"), used in the login URL, the poll
	// endpoint and the poll's "server". Default: the request's scheme (see
	// ClientAddr) and Host, and Prefix.
	PublicURL string
	// Prefix is where [Flows] is mounted, with leading and trailing slash;
	// the grant page is expected at {Prefix}login/v2/flow/{token}. Default "/".
	Prefix string
	// ClientAddr finds the client's address and scheme behind trusted
	// proxies. Default nil: the connection's peer, TLS if the connection is.
	ClientAddr *clientaddr.Resolver
	// RequestsPerMinute bounds the flow starts and polls of one client
	// address (IPv4 address, IPv6 /64). Default 60. With a [SharedStore]
	// it holds for all the servers sharing it together.
	RequestsPerMinute int
	// StartsPerLifetime bounds the flow starts of one client address per
	// Lifetime (in fixed windows), so that a few addresses cannot fill
	// MaxPending (or, with a SharedStore, grow the database): an address
	// holds at most twice this many pending flows, and filling the default
	// 10,000 takes 500 addresses, where RequestsPerMinute alone (1,200 per
	// Lifetime) let 9 do it. Past it a start is refused with 429 and
	// Retry-After; polls do not count. Default 10, more than a person
	// retrying onboarding needs. With a SharedStore it holds for all the
	// servers sharing it together.
	StartsPerLifetime int
	// MaxAddresses bounds the addresses each limit remembers at once;
	// beyond it, new addresses are refused until the limit's window (a
	// minute, or Lifetime for starts) has passed. Default 10,000.
	MaxAddresses int
	// StoreTimeout bounds each Store call. Default 5 seconds.
	StoreTimeout time.Duration
	// PurgeInterval is how often expired flows are removed in the
	// background (until Close); negative: never (call Purge). Default 1 minute.
	PurgeInterval time.Duration
	// Now is the clock. Default time.Now.
	Now func() time.Time
	// Logger receives errors and grants (never a token or secret).
	// Default: discard.
	Logger *slog.Logger
}

// Flows serves Login Flow v2: the client endpoints ([Flows.ServeHTTP])
// and the grant side for the settings page. Create it with [New] and stop
// it with [Flows.Close]. It is safe for concurrent use.
type Flows struct {
	m        *auth.Manager
	opts     Options
	store    Store
	log      *slog.Logger
	requests *limiter // starts and polls, per minute
	starts   *limiter // starts, per Lifetime
	mux      *http.ServeMux

	stop chan struct{}
	done chan struct{}
	once sync.Once
}

const (
	tokenBytes    = 32 // random bytes per token
	maxBodyBytes  = 4 << 10
	maxClientName = 64 // runes of the app password's name
)

// New returns Flows that issue app passwords through m. opts is required
// for its Key.
func New(m *auth.Manager, opts *Options) (*Flows, error) {
	if m == nil {
		return nil, errors.New("loginflow: New: nil Manager")
	}
	if opts == nil || len(opts.Key) < auth.MinPepperLen {
		return nil, fmt.Errorf("loginflow: missing required field \"Key\" (at least %d bytes)", auth.MinPepperLen)
	}
	o := *opts
	o.Key = append([]byte(nil), o.Key...)
	if o.Prefix == "" {
		o.Prefix = "/"
	}
	if !strings.HasPrefix(o.Prefix, "/") || !strings.HasSuffix(o.Prefix, "/") || strings.ContainsAny(o.Prefix, "{} \t\r\n") {
		return nil, fmt.Errorf("loginflow: Prefix %q must start and end with \"/\"", o.Prefix)
	}
	if o.PublicURL != "" {
		if !strings.HasPrefix(o.PublicURL, "https://") && !strings.HasPrefix(o.PublicURL, "http://") {
			return nil, fmt.Errorf("loginflow: PublicURL %q must start with https:// or http://", o.PublicURL)
		}
		o.PublicURL = strings.TrimRight(o.PublicURL, "/") + "/"
	}
	if o.MaxPending <= 0 {
		o.MaxPending = 10_000
	}
	if o.Store == nil {
		o.Store = NewMemoryStore(o.MaxPending)
	}
	if o.Lifetime <= 0 {
		o.Lifetime = 20 * time.Minute
	}
	if o.RequestsPerMinute <= 0 {
		o.RequestsPerMinute = 60
	}
	if o.StartsPerLifetime <= 0 {
		o.StartsPerLifetime = 10
	}
	if o.MaxAddresses <= 0 {
		o.MaxAddresses = 10_000
	}
	if o.StoreTimeout <= 0 {
		o.StoreTimeout = 5 * time.Second
	}
	if o.PurgeInterval == 0 {
		o.PurgeInterval = time.Minute
	}
	if o.Now == nil {
		o.Now = time.Now
	}
	if o.Logger == nil {
		o.Logger = slog.New(slog.DiscardHandler)
	}
	f := &Flows{
		m: m, opts: o, store: o.Store, log: o.Logger.With("component", "loginflow"),
		requests: newLimiter("rate", o.RequestsPerMinute, time.Minute, o.MaxAddresses),
		starts:   newLimiter("starts", o.StartsPerLifetime, o.Lifetime, o.MaxAddresses),
		stop:     make(chan struct{}), done: make(chan struct{}),
	}
	mux := http.NewServeMux()
	mux.HandleFunc("POST "+o.Prefix+"index.php/login/v2", f.start)
	mux.HandleFunc("POST "+o.Prefix+"login/v2/poll", f.poll)
	mux.HandleFunc("POST "+o.Prefix+"index.php/login/v2/poll", f.poll)
	f.mux = mux
	if o.PurgeInterval > 0 {
		go f.purgeLoop()
	} else {
		close(f.done)
	}
	return f, nil
}

// Close stops the background purge. It does not touch pending flows.
func (f *Flows) Close() error {
	f.once.Do(func() { close(f.stop) })
	<-f.done
	return nil
}

func (f *Flows) purgeLoop() {
	defer close(f.done)
	t := time.NewTicker(f.opts.PurgeInterval)
	defer t.Stop()
	for {
		select {
		case <-f.stop:
			return
		case <-t.C:
			if _, err := f.Purge(context.Background()); err != nil {
				f.log.Warn("purge expired login flows", "error", err)
			}
		}
	}
}

// Purge removes the expired flows and revokes the app passwords of those
// that were granted but never collected. It returns how many it revoked.
func (f *Flows) Purge(ctx context.Context) (int, error) {
	sctx, cancel := context.WithTimeout(ctx, f.opts.StoreTimeout)
	defer cancel()
	granted, err := f.store.DeleteExpired(sctx, f.opts.Now())
	n := 0
	for _, g := range granted { // also on an error: these are gone from the store
		if f.revoke(ctx, g.UserID, g.AppPasswordID) {
			n++
		}
	}
	if err != nil {
		return n, fmt.Errorf("loginflow: purge: %w", unavailable(err))
	}
	f.requests.sweep(f.opts.Now())
	f.starts.sweep(f.opts.Now())
	return n, nil
}

// revoke revokes an app password issued for a flow that did not deliver it.
func (f *Flows) revoke(ctx context.Context, userID, id string) bool {
	ctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), f.opts.StoreTimeout)
	defer cancel()
	err := f.m.RevokeAppPassword(ctx, userID, id)
	if err != nil && !errors.Is(err, auth.ErrNotFound) {
		f.log.Error("revoke the app password of an undelivered login flow", "user_id", userID, "credential_id", id, "error", err)
		return false
	}
	return err == nil
}

// ServeHTTP serves POST {Prefix}index.php/login/v2 (start a flow) and
// POST {Prefix}login/v2/poll (also under index.php/). Mount it at those
// paths; anything else is 404.
func (f *Flows) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	w.Header().Set("Cache-Control", "no-store")
	w.Header().Set("X-Content-Type-Options", "nosniff")
	f.mux.ServeHTTP(w, r)
}

// hash is the keyed hash of a token, per kind ("login" or "poll").
func (f *Flows) hash(kind, token string) []byte {
	m := hmac.New(sha256.New, f.opts.Key)
	m.Write([]byte("appauth/loginflow " + kind + "\x00"))
	m.Write([]byte(token))
	return m.Sum(nil)
}

// validToken reports whether s looks like a token this package makes,
// before any hashing or store call (the length first: a long s costs nothing).
func validToken(s string) bool {
	if len(s) != base64.RawURLEncoding.EncodedLen(tokenBytes) {
		return false
	}
	_, err := base64.RawURLEncoding.Strict().DecodeString(s)
	return err == nil
}

func newToken() string {
	b := make([]byte, tokenBytes)
	rand.Read(b) // never fails (crypto/rand)
	return base64.RawURLEncoding.EncodeToString(b)
}

// sealKey derives the X25519 key of a flow from its poll token: only the
// client that holds the token can open the sealed app password.
func sealKey(pollToken string) (*ecdh.PrivateKey, error) {
	seed, err := hkdf.Key(sha256.New, []byte(pollToken), nil, "appauth/loginflow seal v1", 32)
	if err != nil {
		return nil, err
	}
	return ecdh.X25519().NewPrivateKey(seed)
}

var (
	sealKDF  = hpke.HKDFSHA256()
	sealAEAD = hpke.AES128GCM()
)

func seal(publicKey, loginHash []byte, secret string) ([]byte, error) {
	pub, err := ecdh.X25519().NewPublicKey(publicKey)
	if err != nil {
		return nil, err
	}
	pk, err := hpke.NewDHKEMPublicKey(pub)
	if err != nil {
		return nil, err
	}
	return hpke.Seal(pk, sealKDF, sealAEAD, loginHash, []byte(secret))
}

func open(pollToken string, loginHash, sealed []byte) (string, error) {
	k, err := sealKey(pollToken)
	if err != nil {
		return "", err
	}
	sk, err := hpke.NewDHKEMPrivateKey(k)
	if err != nil {
		return "", err
	}
	b, err := hpke.Open(sk, sealKDF, sealAEAD, loginHash, sealed)
	return string(b), err
}

// base returns the server's base URL for r, with a trailing slash.
func (f *Flows) base(r *http.Request) (string, bool) {
	if f.opts.PublicURL != "" {
		return f.opts.PublicURL, true
	}
	host := r.Host
	if host == "" || len(host) > 255 || strings.ContainsAny(host, "/\\@?#% \t\r\n\"'<>") {
		return "", false
	}
	scheme := "http"
	if f.opts.ClientAddr.Secure(r) {
		scheme = "https"
	}
	return scheme + "://" + host + f.opts.Prefix, true
}

// startResponse is what POST index.php/login/v2 answers.
type startResponse struct {
	Poll struct {
		Token    string `json:"token"`
		Endpoint string `json:"endpoint"`
	} `json:"poll"`
	Login string `json:"login"`
}

func (f *Flows) start(w http.ResponseWriter, r *http.Request) {
	now := f.opts.Now()
	if !f.allow(w, r, now, f.requests, f.starts) {
		return
	}
	base, ok := f.base(r)
	if !ok {
		writeJSONError(w, http.StatusBadRequest, "bad Host header")
		return
	}
	login, poll := newToken(), newToken()
	k, err := sealKey(poll)
	if err != nil {
		f.log.Error("derive a login flow key", "error", err)
		writeJSONError(w, http.StatusInternalServerError, "internal error")
		return
	}
	fl := &Flow{
		LoginHash: f.hash("login", login), PollHash: f.hash("poll", poll),
		Client: clientName(r.UserAgent()), Server: strings.TrimSuffix(base, "/"),
		PublicKey: k.PublicKey().Bytes(), ExpiresAt: now.Add(f.opts.Lifetime),
	}
	ctx, cancel := context.WithTimeout(r.Context(), f.opts.StoreTimeout)
	defer cancel()
	if err := f.store.Add(ctx, fl, now); err != nil {
		if errors.Is(err, ErrFull) {
			f.log.Warn("login flow refused: too many pending flows")
		} else {
			f.log.Error("store a login flow", "error", err)
		}
		w.Header().Set("Retry-After", "60")
		writeJSONError(w, http.StatusServiceUnavailable, "try again later")
		return
	}
	var resp startResponse
	resp.Poll.Token = poll
	resp.Poll.Endpoint = base + "login/v2/poll"
	resp.Login = base + "login/v2/flow/" + login
	writeJSON(w, http.StatusOK, resp)
}

// pollResponse is what a poll of a granted flow answers, once.
type pollResponse struct {
	Server      string `json:"server"`
	LoginName   string `json:"loginName"`
	AppPassword string `json:"appPassword"`
}

func (f *Flows) poll(w http.ResponseWriter, r *http.Request) {
	now := f.opts.Now()
	if !f.allow(w, r, now, f.requests) {
		return
	}
	r.Body = http.MaxBytesReader(w, r.Body, maxBodyBytes)
	if err := r.ParseForm(); err != nil {
		writeJSONError(w, http.StatusBadRequest, "bad form")
		return
	}
	token := r.PostForm.Get("token")
	if !validToken(token) {
		writeJSON(w, http.StatusNotFound, []any{})
		return
	}
	ctx, cancel := context.WithTimeout(r.Context(), f.opts.StoreTimeout)
	defer cancel()
	fl, err := f.store.Take(ctx, f.hash("poll", token), now)
	switch {
	case errors.Is(err, ErrPending), errors.Is(err, auth.ErrNotFound):
		// Nextcloud answers 404 with an empty JSON array; clients only
		// look at the status.
		writeJSON(w, http.StatusNotFound, []any{})
		return
	case err != nil:
		f.log.Error("take a login flow", "error", err)
		w.Header().Set("Retry-After", "10")
		writeJSONError(w, http.StatusServiceUnavailable, "try again later")
		return
	}
	secret, err := open(token, fl.LoginHash, fl.Sealed)
	if err != nil {
		// The flow is gone: its app password can never be delivered.
		f.log.Error("open a granted login flow", "error", err)
		f.revoke(r.Context(), fl.UserID, fl.AppPasswordID)
		writeJSONError(w, http.StatusInternalServerError, "internal error")
		return
	}
	f.log.Info("login flow collected", "user_id", fl.UserID, "credential_id", fl.AppPasswordID, "remote_addr", f.opts.ClientAddr.Addr(r))
	writeJSON(w, http.StatusOK, pollResponse{Server: fl.Server, LoginName: fl.LoginName, AppPassword: secret})
}

// allow applies the per-address limits in order, answering 429 when one
// refuses: for each, this server's count first, then, with a
// [SharedStore], the count of all servers sharing it (a store that cannot
// answer is 503).
func (f *Flows) allow(w http.ResponseWriter, r *http.Request, now time.Time, limits ...*limiter) bool {
	addr := f.opts.ClientAddr.Addr(r)
	for _, l := range limits {
		wait, ok := l.allow(addr, now)
		if s, shared := f.store.(*SharedStore); ok && shared {
			window := now.Truncate(l.every)
			end := window.Add(l.every)
			ctx, cancel := context.WithTimeout(r.Context(), f.opts.StoreTimeout)
			var err error
			ok, err = s.count(ctx, f.hash(l.name, key(addr).String()+" "+window.UTC().Format(time.RFC3339)), end, now, l.n)
			cancel()
			if err != nil {
				f.log.Error("login flow: count requests", "limit", l.name, "error", err.Error())
				w.Header().Set("Retry-After", "10")
				writeJSONError(w, http.StatusServiceUnavailable, "try again later")
				return false
			}
			wait = end.Sub(now)
		}
		if !ok {
			w.Header().Set("Retry-After", fmt.Sprint(int(wait.Round(time.Second)/time.Second)+1))
			writeJSONError(w, http.StatusTooManyRequests, "too many requests")
			return false
		}
	}
	return true
}

// Pending returns the client name of the pending flow of loginToken, for
// the grant page. An unknown, expired, granted or malformed token is
// auth.ErrNotFound; a store that cannot answer, auth.ErrUnavailable.
func (f *Flows) Pending(ctx context.Context, loginToken string) (string, error) {
	fl, err := f.pending(ctx, loginToken)
	if err != nil {
		return "", err
	}
	return fl.Client, nil
}

func (f *Flows) pending(ctx context.Context, loginToken string) (*Flow, error) {
	if !validToken(loginToken) {
		return nil, errNotFound
	}
	ctx, cancel := context.WithTimeout(ctx, f.opts.StoreTimeout)
	defer cancel()
	fl, err := f.store.Get(ctx, f.hash("login", loginToken), f.opts.Now())
	if err != nil {
		return nil, storeError("get", err)
	}
	if fl.Granted {
		return nil, errNotFound
	}
	return fl, nil
}

// Grant issues an app password for u, named after the flow's client
// (req.Name is ignored; req's scopes, expiry, address and user agent are
// used), and hands it to the flow's next poll, with loginName as the
// username. It returns the app password. Errors: auth.ErrNotFound (the
// flow is unknown, expired, already granted or denied), the Manager's
// errors, auth.ErrUnavailable. An app password whose grant could not be
// recorded is revoked again.
func (f *Flows) Grant(ctx context.Context, loginToken string, u *auth.User, loginName string, req auth.IssueRequest) (*auth.AppPassword, error) {
	fl, err := f.pending(ctx, loginToken)
	if err != nil {
		return nil, err
	}
	req.Name = appName(fl.Client)
	ap, secret, err := f.m.IssueAppPassword(ctx, u, req)
	if err != nil {
		return nil, err
	}
	sealed, err := seal(fl.PublicKey, fl.LoginHash, secret)
	if err == nil {
		sctx, cancel := context.WithTimeout(ctx, f.opts.StoreTimeout)
		err = f.store.Grant(sctx, &Flow{LoginHash: fl.LoginHash, Granted: true, UserID: u.ID,
			AppPasswordID: ap.ID, LoginName: loginName, Sealed: sealed}, f.opts.Now())
		cancel()
		err = storeError("grant", err)
	}
	if err != nil {
		f.revoke(ctx, u.ID, ap.ID)
		return nil, err
	}
	f.log.InfoContext(ctx, "login flow granted", "user_id", u.ID, "credential_id", ap.ID)
	return ap, nil
}

// Deny ends the pending flow of loginToken; nothing is issued, and its
// polls get 404 from now on. Errors as for [Flows.Pending].
func (f *Flows) Deny(ctx context.Context, loginToken string) error {
	fl, err := f.pending(ctx, loginToken)
	if err != nil {
		return err
	}
	ctx, cancel := context.WithTimeout(ctx, f.opts.StoreTimeout)
	defer cancel()
	return storeError("delete", f.store.Delete(ctx, fl.LoginHash))
}

var errNotFound = fmt.Errorf("loginflow: %w", auth.ErrNotFound)

// storeError keeps ErrNotFound and makes every other failure ErrUnavailable.
func storeError(op string, err error) error {
	if err == nil || errors.Is(err, auth.ErrNotFound) {
		return err
	}
	return fmt.Errorf("loginflow: %s: %w", op, unavailable(err))
}

func unavailable(err error) error {
	if errors.Is(err, auth.ErrUnavailable) {
		return err
	}
	return fmt.Errorf("%w: %w", auth.ErrUnavailable, err)
}

// clientName is the User-Agent as a name to show: printable, one line
// (runs of spaces and control characters become one space), at most
// maxClientName runes and an ellipsis.
func clientName(ua string) string {
	out := make([]rune, 0, maxClientName+1)
	space := false
	for _, r := range strings.ToValidUTF8(ua, "") {
		if !unicode.IsPrint(r) || unicode.IsSpace(r) {
			space = len(out) > 0
			continue
		}
		if space {
			out = append(out, ' ')
			space = false
		}
		out = append(out, r)
		if len(out) > maxClientName {
			return string(out[:maxClientName]) + "…"
		}
	}
	return string(out)
}

// appName names the app password after the client.
func appName(client string) string {
	if client == "" || !utf8.ValidString(client) {
		return "Login Flow client"
	}
	return client
}

func writeJSON(w http.ResponseWriter, status int, v any) {
	w.Header().Set("Content-Type", "application/json; charset=utf-8")
	w.WriteHeader(status)
	json.NewEncoder(w).Encode(v)
}

func writeJSONError(w http.ResponseWriter, status int, msg string) {
	writeJSON(w, status, map[string]string{"error": msg})
}
