package httpauth_test

import (
	"context"
	"errors"
	"net/http"
	"testing"

	"github.com/appauth/appauth/auth"
	"github.com/appauth/appauth/auth/httpauth"
)

func TestRequireScope(t *testing.T) {
	e := newEnv(t, nil)
	calendars := e.issue(t, e.alice, auth.ScopeCalendars)
	unrestricted := e.issue(t, e.alice)
	files := e.mw.Wrap(httpauth.RequireScope(auth.ScopeFiles)(http.HandlerFunc(whoami)))
	cal := e.mw.Wrap(httpauth.RequireScope(auth.ScopeCalendars)(http.HandlerFunc(whoami)))

	for name, authz := range map[string]string{"Basic": basic("alice", calendars), "Bearer": "Bearer " + calendars} {
		check(t, name+" calendars-only on files", serve(files, request{authz: authz}), http.StatusForbidden, "Forbidden\n")
		check(t, name+" calendars-only on calendars", serve(cal, request{authz: authz}), 200, "alice app_password calendars")
	}
	check(t, "unrestricted on files", serve(files, request{authz: basic("alice", unrestricted)}), 200, "alice app_password ")
	check(t, "no principal", serve(httpauth.RequireScope(auth.ScopeFiles)(http.HandlerFunc(whoami)), request{}), http.StatusForbidden, "")
	check(t, "unauthenticated OPTIONS", serve(files, request{method: http.MethodOptions}), http.StatusForbidden, "")
}

func TestReadOnlyScope(t *testing.T) {
	e := newEnv(t, nil)
	readOnly := e.issue(t, e.alice, auth.ScopeCalendars, auth.ScopeReadOnly)
	full := e.issue(t, e.alice, auth.ScopeCalendars)
	for _, method := range []string{"GET", "HEAD", "OPTIONS", "PROPFIND", "REPORT"} {
		check(t, "read-only "+method, e.do(request{method: method, authz: "Bearer " + readOnly}), 200, "")
	}
	for _, method := range []string{"PUT", "DELETE", "PROPPATCH", "MKCOL", "MKCALENDAR", "MOVE", "COPY", "LOCK", "POST", "get"} {
		for name, authz := range map[string]string{"Basic": basic("alice", readOnly), "Bearer": "Bearer " + readOnly} {
			check(t, name+" read-only "+method, e.do(request{method: method, authz: authz}), http.StatusForbidden, "Forbidden\n")
		}
		check(t, "writable "+method, e.do(request{method: method, authz: basic("alice", full)}), 200, "")
	}
}

func TestPrincipalPath(t *testing.T) {
	ctx := httpauth.ContextWithPrincipal(context.Background(), &auth.Principal{User: auth.User{Login: "jo smith/x"}})
	for prefix, want := range map[string]string{
		"/dav/principals/": "/dav/principals/jo%20smith%2Fx/",
		"/dav/principals":  "/dav/principals/jo%20smith%2Fx/",
		"":                 "/jo%20smith%2Fx/",
	} {
		if got, err := httpauth.UserPrincipalPath(ctx, prefix); err != nil || got != want {
			t.Errorf("UserPrincipalPath(%q) = %q, %v; want %q", prefix, got, err, want)
		}
	}
	if _, err := httpauth.UserPrincipalPath(context.Background(), "/p/"); !errors.Is(err, auth.ErrInvalidCredentials) {
		t.Errorf("without a principal: %v, want ErrInvalidCredentials", err)
	}
	if _, ok := httpauth.PrincipalFromContext(httpauth.ContextWithPrincipal(context.Background(), nil)); ok {
		t.Error("a nil principal reported as present")
	}
}
