package oidc_test

import (
	"context"
	"fmt"
	"net/http"
	"net/http/httptest"
	"testing"
	"time"

	gooidc "github.com/coreos/go-oidc/v3/oidc"
	"golang.org/x/oauth2"

	"github.com/appauth/appauth/auth/settings"
	"github.com/appauth/appauth/internal/benchpair"
)

// BenchmarkCallback: the settings page's whole sso/callback (pending
// record, token exchange, ID token checks, directory look-up, new
// session, cookies) against its baseline in the same run: a raw go-oidc
// relying party doing only the token exchange and the ID token
// verification against the same in-process provider. A ratio near 1
// means the callback adds no provider round trip beyond the exchange
// (the keys are cached by both).
func BenchmarkCallback(b *testing.B) {
	e := newEnv(b, nil)
	h, err := settings.New(e.m, nil, &settings.Options{SSO: e.c})
	if err != nil {
		b.Fatal(err)
	}
	ctx := context.Background()
	p, err := gooidc.NewProvider(ctx, e.op.srv.URL)
	if err != nil {
		b.Fatal(err)
	}
	raw := oauth2.Config{ClientID: fakeClientID, ClientSecret: fakeSecret, Endpoint: p.Endpoint(),
		RedirectURL: "http://127.0.0.1/sso/callback", Scopes: []string{gooidc.ScopeOpenID}}
	verifier := p.Verifier(&gooidc.Config{ClientID: fakeClientID})
	benchpair.Run(b, func() (benchpair.Pair, error) {
		return benchpair.Pair{
			Baseline: func() error {
				v := oauth2.GenerateVerifier()
				u := raw.AuthCodeURL("state", oauth2.S256ChallengeOption(v), oauth2.SetAuthURLParam("nonce", "n"))
				q := e.op.authorizeT(b, u, e.op.claims("alice", time.Now()))
				tok, err := raw.Exchange(ctx, q.Get("code"), oauth2.VerifierOption(v))
				if err != nil {
					return err
				}
				rawID, _ := tok.Extra("id_token").(string)
				_, err = verifier.Verify(ctx, rawID)
				return err
			},
			Subject: func() error {
				st, err := e.c.Begin(ctx, settings.SSORequest{ReturnPath: "security"})
				if err != nil {
					return err
				}
				q := e.op.authorizeT(b, st.URL, e.op.claims("alice", time.Now()))
				req := httptest.NewRequest("GET", "/sso/callback?"+q.Encode(), nil)
				req.AddCookie(&http.Cookie{Name: "appauth_sso", Value: st.Binding})
				w := httptest.NewRecorder()
				h.ServeHTTP(w, req)
				if w.Code != http.StatusSeeOther {
					return fmt.Errorf("callback: %d %s", w.Code, w.Body)
				}
				return nil
			},
		}, nil
	})
}
