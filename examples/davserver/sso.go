package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"log/slog"
	"time"

	"github.com/appauth/appauth/auth"
	"github.com/appauth/appauth/auth/oidc"
)

// oidcConfig is the single sign-on part of the command line.
type oidcConfig struct {
	issuer, clientID, secretFile, loginClaim, name string
	only                                           bool // no password form on the page
}

func (o *oidcConfig) flags(fs *flag.FlagSet) {
	fs.StringVar(&o.issuer, "oidc-issuer", "", "OpenID Connect issuer URL: offer \"Sign in with -oidc-name\" on the web page (the provider's login is looked up in the directory)")
	fs.StringVar(&o.clientID, "oidc-client-id", "", "client ID of this server at the OpenID provider")
	fs.StringVar(&o.secretFile, "oidc-client-secret-file", "", "file holding the client secret")
	fs.StringVar(&o.loginClaim, "oidc-login-claim", "preferred_username", "ID token claim looked up as the login in the directory (email, upn, ...)")
	fs.StringVar(&o.name, "oidc-name", "single sign-on", "provider name on the sign-in button")
	fs.BoolVar(&o.only, "oidc-only", false, "the web page signs people in through the provider only, with no password form (DAV clients are unaffected: they use app passwords)")
}

func (o *oidcConfig) check(set map[string]bool) error {
	if o.issuer == "" {
		for _, name := range []string{"oidc-client-id", "oidc-client-secret-file", "oidc-login-claim", "oidc-name", "oidc-only"} {
			if set[name] {
				return fmt.Errorf("-%s needs -oidc-issuer", name)
			}
		}
		return nil
	}
	if o.clientID == "" || o.secretFile == "" {
		return errors.New("-oidc-issuer needs -oidc-client-id and -oidc-client-secret-file")
	}
	return nil
}

// ssoPaths are the settings page's single sign-on endpoints, under its
// prefix, to register at the provider.
const (
	ssoCallbackPath    = "sso/callback"
	ssoBackchannelPath = "sso/backchannel-logout"
	ssoSignedOutPath   = "signin?done=signed-out" // where the provider sends people back after logout
)

// newSSO discovers the provider; base is the page's absolute URL (with
// its trailing slash). A provider that cannot be reached at start is an
// error; one that goes away later is a 503 on the callback.
//
// pending, if not nil, keeps the pending sign-ins (shared by every server
// on PostgreSQL); nil keeps them in this server's memory.
func newSSO(ctx context.Context, o *oidcConfig, base string, m *auth.Manager, dir auth.Directory, pending oidc.PendingStore, shared auth.TransientStore, logger *slog.Logger) (*oidc.Client, error) {
	if o.issuer == "" {
		return nil, nil
	}
	secret, err := readSecretFile(o.secretFile, "-oidc-client-secret-file")
	if err != nil {
		return nil, err
	}
	ctx, cancel := context.WithTimeout(ctx, 15*time.Second)
	defer cancel()
	c, err := oidc.New(ctx, m, dir, &oidc.Config{
		Issuer: o.issuer, ClientID: o.clientID, ClientSecret: secret,
		RedirectURL:           base + ssoCallbackPath,
		PostLogoutRedirectURL: base + ssoSignedOutPath,
		LoginClaim:            o.loginClaim, Name: o.name,
		Pending: pending,
		// On PostgreSQL, a logout token is used once across servers.
		LogoutReplays: shared,
		Logger:        logger.With("component", "oidc"),
	})
	if err != nil {
		return nil, fmt.Errorf("-oidc-issuer %s: %w", o.issuer, err)
	}
	return c, nil
}

// printSSO tells the admin what to register at the provider.
func printSSO(w io.Writer, o *oidcConfig, base string) {
	if o.issuer == "" {
		return
	}
	fmt.Fprintf(w, "Single sign-on through %s (%s). Register at the provider:\n", o.name, o.issuer)
	fmt.Fprintf(w, "  redirect URI:               %s%s\n", base, ssoCallbackPath)
	fmt.Fprintf(w, "  back-channel logout URI:    %s%s\n", base, ssoBackchannelPath)
	fmt.Fprintf(w, "  post-logout redirect URI:   %s%s\n\n", base, ssoSignedOutPath)
}
