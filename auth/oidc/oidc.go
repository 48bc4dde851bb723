// Package oidc signs people in to the settings page through an OpenID
// Connect provider (Keycloak, authentik, Entra ID, Google Workspace, Dex):
// a [Client] is the page's [settings.SSO].
//
// The provider proves who signed in; the [auth.Directory] (LDAP) says
// whether they may and who they are: a configurable claim
// ([Config].LoginClaim, default preferred_username) is looked up with
// LookupUser, and a login the directory does not know, or a disabled one,
// is refused, never provisioned. The flow is the authorization code flow
// with PKCE (S256), a one-time state bound to the browser, a nonce
// checked here, and the ID token verified with pinned algorithms (its
// signature, iss, aud, exp, and at_hash when present). The session's
// authentication time is the ID token's auth_time, so a silent single
// sign-on with an old auth_time is not a recent sign-in;
// re-authentication asks the provider for prompt=login&max_age=0 and
// accepts only the same person. Logout ends the provider's session too
// (RP-initiated logout), and back-channel logout tokens (verified, never
// accepted twice) end the browser sessions of that provider session or
// account; app passwords survive, as a device's offline credentials.
//
// The back-channel logout endpoint is open to anyone, so the provider's
// keys are fetched at most once a minute: they are cached, and a token
// they do not verify (an unknown kid, or a bad signature) fetches them
// again only when the last fetch is a minute old; otherwise it is refused
// as not valid. A forged token costs the provider nothing; a key the
// provider rotates in is learnt within that minute (a token signed with it
// that arrives within a minute of the last fetch is refused: a logout
// token with 400, a sign-in with "start again"). A fetch that failed is
// tried again after 5 seconds.
//
// See README.md for worked provider configurations.
package oidc

import (
	"context"
	"crypto/rand"
	"crypto/sha256"
	"crypto/subtle"
	"encoding/base64"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"net/http"
	"net/url"
	"strings"
	"time"

	gooidc "github.com/coreos/go-oidc/v3/oidc"
	"golang.org/x/oauth2"

	"github.com/appauth/appauth/auth"
	"github.com/appauth/appauth/auth/settings"
)

// Config configures a [Client]. Issuer, ClientID, ClientSecret and
// RedirectURL are required; every other zero field takes the default
// given on it.
type Config struct {
	// Issuer is the provider's issuer URL, as in its discovery document
	// ("https://sso.example.com/realms/staff").
	Issuer string
	// ClientID and ClientSecret are this server's registration at the
	// provider (a confidential client).
	ClientID     string
	ClientSecret string
	// RedirectURL is the absolute URL of the settings page's sso/callback
	// ("https://dav.example.com/account/sso/callback"), registered at the
	// provider.
	RedirectURL string
	// PostLogoutRedirectURL, if set, is where the provider sends the
	// browser after logout (registered at the provider), usually the
	// sign-in page with "?done=signed-out".
	PostLogoutRedirectURL string
	// Name names the provider on the sign-in button. Default "single sign-on".
	Name string
	// LoginClaim is the ID token claim looked up in the directory.
	// Default "preferred_username"; "email" and "upn" are common. With
	// "email", an email_verified of false is refused.
	LoginClaim string
	// IDClaim, if set, is a claim that must equal the directory's User.ID
	// (Keycloak LDAP federation's LDAP_ID mapper, Entra "oid", Dex
	// "federated_claims.user_id": a dotted name reads a nested object).
	IDClaim string
	// RequiredClaims, if set, must all be in the ID token with these
	// string or boolean values, e.g. {"tid": "<tenant>"} for Entra ID or
	// {"hd": "example.com"} for Google Workspace.
	RequiredClaims map[string]string
	// Scopes are requested besides "openid". Default "profile", "email".
	Scopes []string
	// Algorithms are the accepted ID token signature algorithms.
	// Default RS256 and ES256; "none" and HMAC are never accepted.
	Algorithms []string
	// MaxAge is sent as max_age with every sign-in, so that the provider
	// always returns auth_time and asks for the password again when its
	// own sign-in is older. Default 12 hours.
	MaxAge time.Duration
	// AuthTimeFromIssuedAt, for providers that send no auth_time (some
	// Dex versions), takes the ID token's iat instead. Weaker: a silent
	// single sign-on then counts as a fresh sign-in, and re-authentication
	// cannot tell that the provider really asked again. Default off: an
	// ID token without auth_time is refused.
	AuthTimeFromIssuedAt bool
	// PendingTTL is how long a started sign-in may take. Default 10 minutes.
	PendingTTL time.Duration
	// Pending keeps sign-ins in progress. Default: [NewMemoryPending]
	// (one server; several servers behind a load balancer need a shared
	// store such as [SharedPending]).
	Pending PendingStore
	// LogoutReplays, if set, records the IDs (jti) of back-channel logout
	// tokens in this shared store, until the token's allowed age has
	// passed, so that a token replayed to another server behind the same
	// load balancer is refused too. Give every server the same store
	// (backends/sqlstore on PostgreSQL). Default: nil, this process's
	// memory (one server).
	LogoutReplays auth.TransientStore
	// Timeout bounds each call to the provider, the directory and the
	// Pending store. Default 10 s.
	Timeout time.Duration
	// HTTPClient makes the calls to the provider. Default: a client
	// with Timeout.
	HTTPClient *http.Client
	// Now is the clock. Default time.Now.
	Now func() time.Time
	// Logger receives errors (never a token). Default: discard.
	Logger *slog.Logger
}

// Client is a relying party of one OpenID Connect provider: the
// settings page's [settings.SSO]. Create it with [New]; it is safe for
// concurrent use.
type Client struct {
	cfg        Config
	m          *auth.Manager
	dir        auth.Directory
	oauth      oauth2.Config
	verifier   *gooidc.IDTokenVerifier
	endSession string
	log        *slog.Logger
	replays    jtiCache
}

var _ settings.SSO = (*Client)(nil)

// Limits on what the callback and the logout endpoint accept.
const (
	maxStateLen  = 128
	maxCodeLen   = 4096
	maxTokenLen  = 16 << 10
	maxClaimLen  = 1024
	reauthSkew   = 5 * time.Second // clocks of provider and server may differ this much
	logoutWindow = 10 * time.Minute
)

// New discovers the provider at cfg.Issuer and returns a Client that
// signs people in as the users of dir, with sessions of m. A provider
// that cannot be reached, or whose discovery document names another
// issuer, is an error; ctx bounds the discovery.
func New(ctx context.Context, m *auth.Manager, dir auth.Directory, cfg *Config) (*Client, error) {
	if m == nil || dir == nil || cfg == nil {
		return nil, errors.New("oidc: New: nil Manager, Directory or Config")
	}
	c := cfg.defaults()
	for name, v := range map[string]string{"Issuer": c.Issuer, "ClientID": c.ClientID, "ClientSecret": c.ClientSecret, "RedirectURL": c.RedirectURL} {
		if v == "" {
			return nil, fmt.Errorf("oidc: missing required field %q", name)
		}
	}
	if u, err := url.Parse(c.RedirectURL); err != nil || !u.IsAbs() {
		return nil, fmt.Errorf("oidc: RedirectURL %q must be an absolute URL", c.RedirectURL)
	}
	for _, a := range c.Algorithms {
		if a == "none" || strings.HasPrefix(a, "HS") {
			return nil, fmt.Errorf("oidc: Algorithms: %q is not accepted (unsigned or shared-key)", a)
		}
	}
	pctx := gooidc.ClientContext(ctx, c.HTTPClient)
	dctx, cancel := context.WithTimeout(pctx, c.Timeout)
	defer cancel()
	p, err := gooidc.NewProvider(dctx, c.Issuer)
	if err != nil {
		return nil, fmt.Errorf("oidc: discover the provider %s: %w", c.Issuer, err)
	}
	var meta struct {
		EndSession string `json:"end_session_endpoint"`
		JWKS       string `json:"jwks_uri"`
	}
	if err := p.Claims(&meta); err != nil {
		return nil, fmt.Errorf("oidc: discovery document of %s: %w", c.Issuer, err)
	}
	if meta.JWKS == "" {
		return nil, fmt.Errorf("oidc: discovery document of %s: no jwks_uri", c.Issuer)
	}
	// Keys are fetched with the configured client, not the caller's
	// context, and cached; a token they do not verify may fetch them again
	// once per keyRefetchInterval.
	keys := gooidc.NewRemoteKeySet(gooidc.ClientContext(context.Background(), &http.Client{
		Transport: &keyFetchLimit{client: c.HTTPClient, timeout: c.Timeout, now: c.Now},
		// HTTPClient follows redirects; a repeated 3xx must not be followed here.
		CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse },
	}), meta.JWKS)
	cl := &Client{
		cfg: c, m: m, dir: dir, endSession: meta.EndSession,
		log:     c.Logger.With("component", "oidc"),
		replays: newReplayCache(100000),
		oauth: oauth2.Config{
			ClientID: c.ClientID, ClientSecret: c.ClientSecret, Endpoint: p.Endpoint(),
			RedirectURL: c.RedirectURL, Scopes: append([]string{gooidc.ScopeOpenID}, c.Scopes...),
		},
		// NewProvider made sure that the provider's issuer is c.Issuer.
		verifier: gooidc.NewVerifier(c.Issuer, keys, &gooidc.Config{
			ClientID: c.ClientID, SupportedSigningAlgs: c.Algorithms, Now: c.Now,
		}),
	}
	if c.LogoutReplays != nil {
		cl.replays = &sharedReplays{ts: c.LogoutReplays}
	}
	return cl, nil
}

func (cfg *Config) defaults() Config {
	c := *cfg
	if c.Name == "" {
		c.Name = "single sign-on"
	}
	if c.LoginClaim == "" {
		c.LoginClaim = "preferred_username"
	}
	if c.Scopes == nil {
		c.Scopes = []string{gooidc.ScopeProfile, gooidc.ScopeEmail}
	}
	if len(c.Algorithms) == 0 {
		c.Algorithms = []string{gooidc.RS256, gooidc.ES256}
	}
	if c.MaxAge <= 0 {
		c.MaxAge = 12 * time.Hour
	}
	if c.PendingTTL <= 0 {
		c.PendingTTL = 10 * time.Minute
	}
	if c.Timeout <= 0 {
		c.Timeout = 10 * time.Second
	}
	if c.HTTPClient == nil {
		c.HTTPClient = &http.Client{Timeout: c.Timeout}
	}
	if c.Now == nil {
		c.Now = time.Now
	}
	if c.Pending == nil {
		c.Pending = NewMemoryPending(0, c.Now)
	}
	if c.Logger == nil {
		c.Logger = slog.New(slog.DiscardHandler)
	}
	return c
}

// Name implements [settings.SSO].
func (c *Client) Name() string { return c.cfg.Name }

// Begin implements [settings.SSO]: a new state, nonce, PKCE verifier and
// browser binding, the record kept under a hash of the state.
func (c *Client) Begin(ctx context.Context, req settings.SSORequest) (*settings.SSOStart, error) {
	state, binding, nonce := randomString(), randomString(), randomString()
	now := c.cfg.Now()
	bh := sha256.Sum256([]byte(binding))
	p := &Pending{
		BindingHash: bh[:], Nonce: nonce, Verifier: oauth2.GenerateVerifier(), ReturnPath: req.ReturnPath,
		Created: now, Expires: now.Add(c.cfg.PendingTTL),
	}
	opts := []oauth2.AuthCodeOption{
		oauth2.S256ChallengeOption(p.Verifier),
		oauth2.SetAuthURLParam("nonce", nonce),
	}
	if req.Reauth != nil {
		p.ReauthSessionID, p.ReauthUserID, p.ReauthAccount = req.Reauth.CredentialID, req.Reauth.User.ID, req.Reauth.Federation
		opts = append(opts, oauth2.SetAuthURLParam("prompt", "login"), oauth2.SetAuthURLParam("max_age", "0"))
		if hint := req.Reauth.User.Login; hint != "" {
			opts = append(opts, oauth2.SetAuthURLParam("login_hint", hint))
		}
	} else {
		opts = append(opts, oauth2.SetAuthURLParam("max_age", fmt.Sprint(int64(c.cfg.MaxAge/time.Second))))
	}
	// A request's context has no deadline: a hung shared store would hang it.
	ctx, cancel := context.WithTimeout(ctx, c.cfg.Timeout)
	defer cancel()
	if err := c.cfg.Pending.Put(ctx, stateKey(state), p); err != nil {
		return nil, fmt.Errorf("oidc: begin sign-in: %w", unavailable(err))
	}
	return &settings.SSOStart{URL: c.oauth.AuthCodeURL(state, opts...), Binding: binding}, nil
}

// Refusals, for errors.Is and the log.
var (
	ErrState          = errors.New("oidc: unknown, expired or already used state, or another browser's")
	ErrProvider       = errors.New("oidc: the provider refused or cancelled the sign-in")
	ErrCode           = errors.New("oidc: the code was refused (already used or expired)")
	ErrIDToken        = errors.New("oidc: ID token not valid")
	ErrNonce          = errors.New("oidc: ID token nonce does not match")
	ErrNoAuthTime     = errors.New("oidc: ID token has no auth_time")
	ErrNotReauthed    = errors.New("oidc: the provider did not authenticate the person again")
	ErrOtherSubject   = errors.New("oidc: re-authentication returned another person")
	ErrClaim          = errors.New("oidc: ID token claim missing or not accepted")
	ErrUnknownUser    = errors.New("oidc: the directory does not know the login")
	ErrDisabledUser   = errors.New("oidc: the directory account is disabled")
	ErrIDMismatch     = errors.New("oidc: the ID claim does not match the directory's user ID")
	ErrLogoutToken    = errors.New("oidc: logout token not valid")
	ErrLogoutReplayed = errors.New("oidc: logout token already used")
)

const msgStartAgain = "This sign-in has expired, was already used, or was started in another browser. Go back to the sign-in page and start again."

func refuse(status int, err error, msg string) error {
	return &settings.SSOError{Status: status, Err: err, Message: msg}
}

// Complete implements [settings.SSO].
func (c *Client) Complete(ctx context.Context, q url.Values, binding string) (*settings.SSOIdentity, error) {
	state, code := q.Get("state"), q.Get("code")
	if state == "" || len(state) > maxStateLen || len(q["state"]) != 1 {
		return nil, refuse(http.StatusBadRequest, ErrState, msgStartAgain)
	}
	tctx, cancel := context.WithTimeout(ctx, c.cfg.Timeout)
	p, err := c.cfg.Pending.Take(tctx, stateKey(state)) // single use, whatever follows
	cancel()
	if errors.Is(err, auth.ErrNotFound) {
		return nil, refuse(http.StatusBadRequest, ErrState, msgStartAgain)
	}
	if err != nil {
		return nil, fmt.Errorf("oidc: callback: %w", unavailable(err))
	}
	bh := sha256.Sum256([]byte(binding))
	if binding == "" || subtle.ConstantTimeCompare(bh[:], p.BindingHash) != 1 {
		return nil, refuse(http.StatusBadRequest, ErrState, msgStartAgain)
	}
	if e := q.Get("error"); e != "" {
		return nil, refuse(http.StatusUnauthorized, fmt.Errorf("%w: %q", ErrProvider, truncate(e, 64)),
			c.cfg.Name+" did not sign you in (the sign-in was cancelled or refused). Go back to the sign-in page to try again.")
	}
	if code == "" || len(code) > maxCodeLen || len(q["code"]) != 1 {
		return nil, refuse(http.StatusBadRequest, ErrCode, msgStartAgain)
	}
	ctx, cancel = context.WithTimeout(ctx, c.cfg.Timeout)
	defer cancel()
	tok, err := c.oauth.Exchange(context.WithValue(ctx, oauth2.HTTPClient, c.cfg.HTTPClient), code, oauth2.VerifierOption(p.Verifier))
	if err != nil {
		var re *oauth2.RetrieveError
		if errors.As(err, &re) && re.Response != nil && re.Response.StatusCode < 500 && !providerBusy(re.Response.StatusCode) {
			return nil, refuse(http.StatusUnauthorized, fmt.Errorf("%w: %s", ErrCode, truncate(re.ErrorCode, 64)), msgStartAgain)
		}
		return nil, fmt.Errorf("oidc: token exchange: %w: %w", auth.ErrUnavailable, err)
	}
	raw, _ := tok.Extra("id_token").(string)
	if raw == "" || len(raw) > maxTokenLen {
		return nil, refuse(http.StatusUnauthorized, fmt.Errorf("%w: no id_token in the token response", ErrIDToken), msgStartAgain)
	}
	idt, err := c.verifier.Verify(ctx, raw)
	if err != nil {
		if keysUnavailable(ctx, err) {
			return nil, fmt.Errorf("oidc: verify ID token: %w: %w", auth.ErrUnavailable, err)
		}
		return nil, refuse(http.StatusUnauthorized, fmt.Errorf("%w: %w", ErrIDToken, err), msgStartAgain)
	}
	if subtle.ConstantTimeCompare([]byte(idt.Nonce), []byte(p.Nonce)) != 1 {
		return nil, refuse(http.StatusUnauthorized, ErrNonce, msgStartAgain)
	}
	if idt.AccessTokenHash != "" {
		if err := idt.VerifyAccessToken(tok.AccessToken); err != nil {
			return nil, refuse(http.StatusUnauthorized, fmt.Errorf("%w: at_hash: %w", ErrIDToken, err), msgStartAgain)
		}
	}
	var claims map[string]json.RawMessage
	if err := idt.Claims(&claims); err != nil {
		return nil, refuse(http.StatusUnauthorized, fmt.Errorf("%w: %w", ErrIDToken, err), msgStartAgain)
	}
	var std struct {
		AuthTime *float64 `json:"auth_time"`
		SID      string   `json:"sid"`
		AZP      string   `json:"azp"`
	}
	if err := idt.Claims(&std); err != nil {
		return nil, refuse(http.StatusUnauthorized, fmt.Errorf("%w: %w", ErrIDToken, err), msgStartAgain)
	}
	if len(idt.Audience) > 1 && std.AZP != c.cfg.ClientID {
		return nil, refuse(http.StatusUnauthorized, fmt.Errorf("%w: several audiences and azp %q", ErrIDToken, std.AZP), msgStartAgain)
	}
	if (std.AuthTime == nil || *std.AuthTime <= 0) && c.cfg.AuthTimeFromIssuedAt && !idt.IssuedAt.IsZero() {
		at := float64(idt.IssuedAt.Unix())
		std.AuthTime = &at
	}
	if std.AuthTime == nil || *std.AuthTime <= 0 {
		return nil, refuse(http.StatusUnauthorized, ErrNoAuthTime, c.cfg.Name+" did not say when you signed in, so the sign-in cannot be accepted.")
	}
	authTime := time.Unix(int64(*std.AuthTime), 0).UTC()
	fed := auth.Federation{Issuer: idt.Issuer, Subject: idt.Subject, SID: std.SID}
	if len(fed.Subject) > maxClaimLen || len(fed.SID) > maxClaimLen {
		return nil, refuse(http.StatusUnauthorized, fmt.Errorf("%w: sub or sid too long", ErrIDToken), msgStartAgain)
	}
	if p.ReauthSessionID != "" {
		if authTime.Before(p.Created.Add(-reauthSkew)) {
			return nil, refuse(http.StatusUnauthorized, ErrNotReauthed,
				c.cfg.Name+" did not ask for your password again, so it could not confirm it's you. Please try again.")
		}
		if !p.ReauthAccount.IsZero() && (fed.Issuer != p.ReauthAccount.Issuer || fed.Subject != p.ReauthAccount.Subject) {
			return nil, refuse(http.StatusForbidden, ErrOtherSubject,
				"You confirmed as another person than the one signed in here. Sign out first to switch accounts.")
		}
	}
	for name, want := range c.cfg.RequiredClaims {
		if got, ok := claimString(claims, name); !ok || got != want {
			return nil, refuse(http.StatusForbidden, fmt.Errorf("%w: %s", ErrClaim, name),
				"Your "+c.cfg.Name+" account may not sign in to this service.")
		}
	}
	login, ok := claimString(claims, c.cfg.LoginClaim)
	if !ok || login == "" || len(login) > maxClaimLen {
		return nil, refuse(http.StatusForbidden, fmt.Errorf("%w: %s", ErrClaim, c.cfg.LoginClaim),
			c.cfg.Name+" did not send the account name this service needs ("+c.cfg.LoginClaim+").")
	}
	if c.cfg.LoginClaim == "email" {
		if v, ok := claimString(claims, "email_verified"); ok && v != "true" {
			return nil, refuse(http.StatusForbidden, fmt.Errorf("%w: email_verified is %s", ErrClaim, v),
				"Your e-mail address at "+c.cfg.Name+" is not verified.")
		}
	}
	u, err := c.dir.LookupUser(ctx, login)
	switch {
	case errors.Is(err, auth.ErrNotFound):
		return nil, refuse(http.StatusForbidden, fmt.Errorf("%w: %q", ErrUnknownUser, truncate(login, 64)),
			"You signed in as “"+truncate(login, 64)+"”, but this service has no account of that name. Ask your administrator.")
	case err != nil:
		return nil, fmt.Errorf("oidc: look up the user: %w", unavailable(err))
	case u.Disabled:
		return nil, refuse(http.StatusForbidden, fmt.Errorf("%w: %q", ErrDisabledUser, truncate(login, 64)),
			"Your account “"+truncate(login, 64)+"” is disabled on this service. Ask your administrator.")
	}
	if c.cfg.IDClaim != "" {
		if id, ok := claimString(claims, c.cfg.IDClaim); !ok || id != u.ID {
			return nil, refuse(http.StatusForbidden, fmt.Errorf("%w: %s", ErrIDMismatch, c.cfg.IDClaim),
				"Your "+c.cfg.Name+" account does not match this service's account of that name. Ask your administrator.")
		}
	}
	if p.ReauthSessionID != "" && u.ID != p.ReauthUserID {
		return nil, refuse(http.StatusForbidden, ErrOtherSubject,
			"You confirmed as another person than the one signed in here. Sign out first to switch accounts.")
	}
	return &settings.SSOIdentity{
		User: u, Federation: fed, AuthTime: authTime, IDToken: raw,
		ReturnPath: p.ReturnPath, ReauthSessionID: p.ReauthSessionID,
	}, nil
}

// LogoutURL implements [settings.SSO].
func (c *Client) LogoutURL(idTokenHint string) string {
	if c.endSession == "" {
		return ""
	}
	u, err := url.Parse(c.endSession)
	if err != nil {
		return ""
	}
	q := u.Query()
	q.Set("client_id", c.cfg.ClientID)
	if idTokenHint != "" {
		q.Set("id_token_hint", idTokenHint)
	}
	if c.cfg.PostLogoutRedirectURL != "" {
		q.Set("post_logout_redirect_uri", c.cfg.PostLogoutRedirectURL)
	}
	u.RawQuery = q.Encode()
	return u.String()
}

// BackChannelLogout implements [settings.SSO]: OpenID Connect
// Back-Channel Logout 1.0. The token's signature, iss, aud, exp, event and
// absence of a nonce are checked by go-oidc; here, that it is recent and
// that its jti was not seen before.
func (c *Client) BackChannelLogout(ctx context.Context, raw string) error {
	if len(raw) > maxTokenLen {
		return fmt.Errorf("%w: %w: too large", auth.ErrInvalidCredentials, ErrLogoutToken)
	}
	ctx, cancel := context.WithTimeout(ctx, c.cfg.Timeout)
	defer cancel()
	lt, err := c.verifier.VerifyLogout(ctx, raw)
	if err != nil {
		if keysUnavailable(ctx, err) {
			return fmt.Errorf("oidc: verify logout token: %w: %w", auth.ErrUnavailable, err)
		}
		return fmt.Errorf("%w: %w: %w", auth.ErrInvalidCredentials, ErrLogoutToken, err)
	}
	now := c.cfg.Now()
	switch {
	case lt.TokenID == "" || len(lt.TokenID) > maxClaimLen:
		return fmt.Errorf("%w: %w: no jti", auth.ErrInvalidCredentials, ErrLogoutToken)
	case lt.Subject == "" && lt.SessionID == "":
		return fmt.Errorf("%w: %w: neither sub nor sid", auth.ErrInvalidCredentials, ErrLogoutToken)
	case lt.IssuedAt.IsZero() || lt.IssuedAt.Before(now.Add(-logoutWindow)) || lt.IssuedAt.After(now.Add(time.Minute)):
		// Older tokens would have to be remembered longer to refuse replays.
		return fmt.Errorf("%w: %w: iat %v is not within %v of now", auth.ErrInvalidCredentials, ErrLogoutToken, lt.IssuedAt, logoutWindow)
	}
	fresh, err := c.replays.first(ctx, lt.Issuer+" "+lt.TokenID, lt.IssuedAt.Add(logoutWindow+time.Minute), now)
	if err != nil {
		return err
	}
	if !fresh {
		return fmt.Errorf("%w: %w", auth.ErrInvalidCredentials, ErrLogoutReplayed)
	}
	n, err := c.m.RevokeFederatedSessions(ctx, auth.Federation{Issuer: lt.Issuer, Subject: lt.Subject, SID: lt.SessionID})
	if err != nil {
		return fmt.Errorf("oidc: back-channel logout: %w", unavailable(err))
	}
	c.log.InfoContext(ctx, "back-channel logout", "sessions", n, "has_sid", lt.SessionID != "")
	return nil
}

// stateKey is what the pending record is stored under: a hash, so that a
// store's contents do not reveal live states.
func stateKey(state string) string {
	h := sha256.Sum256([]byte("appauth/oidc state v1\x00" + state))
	return hex.EncodeToString(h[:])
}

func randomString() string {
	b := make([]byte, 32)
	rand.Read(b) // never fails (crypto/rand)
	return base64.RawURLEncoding.EncodeToString(b)
}

// unavailable makes err match auth.ErrUnavailable unless it already does
// or is a refusal.
func unavailable(err error) error {
	if errors.Is(err, auth.ErrUnavailable) {
		return err
	}
	return fmt.Errorf("%w: %w", auth.ErrUnavailable, err)
}

// providerBusy reports whether a 4xx status from the provider says that
// it could not handle the request now (throttled, or too slow), not that
// the request was bad: the code may well be good.
func providerBusy(status int) bool {
	return status == http.StatusTooManyRequests || status == http.StatusRequestTimeout
}

// keysUnavailable reports whether a verification failed because the
// provider's keys could not be fetched (an outage), not because the
// token is bad.
func keysUnavailable(ctx context.Context, err error) bool {
	return ctx.Err() != nil || strings.Contains(err.Error(), "fetching keys")
}

// claimString returns a claim as a string (booleans and numbers in JSON
// form), following dots into nested objects ("federated_claims.user_id").
func claimString(claims map[string]json.RawMessage, name string) (string, bool) {
	raw, ok := claims[name]
	if !ok {
		first, rest, nested := strings.Cut(name, ".")
		if !nested {
			return "", false
		}
		var inner map[string]json.RawMessage
		if json.Unmarshal(claims[first], &inner) != nil {
			return "", false
		}
		return claimString(inner, rest)
	}
	var s string
	if json.Unmarshal(raw, &s) == nil {
		return s, true
	}
	var v any
	if json.Unmarshal(raw, &v) != nil {
		return "", false
	}
	switch v.(type) {
	case bool, float64:
		return strings.TrimSpace(string(raw)), true
	}
	return "", false
}

func truncate(s string, n int) string {
	s = strings.ToValidUTF8(s, "")
	s = strings.Map(func(r rune) rune {
		if r < ' ' || r == 0x7f {
			return -1
		}
		return r
	}, s)
	if len(s) > n {
		s = strings.ToValidUTF8(s[:n], "") + "…"
	}
	return s
}
