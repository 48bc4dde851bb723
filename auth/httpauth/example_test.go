package httpauth_test

import (
	"context"
	"crypto/rand"
	"fmt"
	"net/http"
	"net/http/httptest"
	"strings"

	"github.com/appauth/appauth/auth"
	"github.com/appauth/appauth/auth/httpauth"
	"github.com/appauth/appauth/auth/throttle"
	"github.com/appauth/appauth/backends/memory"
)

func Example() {
	ctx := context.Background()
	dir := memory.NewDirectory()
	alice := auth.User{ID: "7f3c", Login: "alice"}
	dir.AddUser(alice, "correct horse battery staple")

	// One Throttle for the Manager (app passwords) and the middleware.
	limiter, err := throttle.New(nil)
	if err != nil {
		panic(err)
	}
	key := make([]byte, 32)
	rand.Read(key) // in production: load it from a secret file
	m, err := auth.NewManager(memory.NewStore(), dir, &auth.Options{
		Peppers: []auth.Pepper{{ID: "k1", Key: key}},
		Limiter: limiter,
	})
	if err != nil {
		panic(err)
	}
	defer m.Close()
	mw, err := httpauth.New(m, &httpauth.Options{Realm: "Calendars"})
	if err != nil {
		panic(err)
	}

	// The DAV handler learns who is calling from the request context.
	dav := mw.Wrap(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		path, _ := httpauth.UserPrincipalPath(r.Context(), "/dav/principals/")
		fmt.Fprint(w, path)
	}))

	_, secret, err := m.IssueAppPassword(ctx, &alice, auth.IssueRequest{Name: "My iPhone"})
	if err != nil {
		panic(err)
	}
	for _, password := range []string{secret, "correct horse battery staple"} {
		r := httptest.NewRequest("PROPFIND", "/dav/", nil)
		r.SetBasicAuth("alice", password)
		w := httptest.NewRecorder()
		dav.ServeHTTP(w, r)
		fmt.Println(w.Code, strings.TrimSpace(w.Body.String()))
		if c := w.Header().Get("WWW-Authenticate"); c != "" {
			fmt.Println("WWW-Authenticate:", c)
		}
	}
	// Output:
	// 200 /dav/principals/alice/
	// 401 Unauthorized
	// WWW-Authenticate: Basic realm="Calendars", charset="UTF-8"
}

func ExampleRequireScope() {
	calendars := http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) { fmt.Fprint(w, "calendar data") })
	h := httpauth.RequireScope(auth.ScopeCalendars)(calendars)

	for _, scopes := range [][]string{{auth.ScopeCalendars}, {auth.ScopeFiles}, nil} {
		// In a server, mw.Wrap puts the principal in the context.
		ctx := httpauth.ContextWithPrincipal(context.Background(), &auth.Principal{Scopes: scopes})
		w := httptest.NewRecorder()
		h.ServeHTTP(w, httptest.NewRequest("GET", "/dav/calendars/", nil).WithContext(ctx))
		fmt.Println(scopes, w.Code)
	}
	// Output:
	// [calendars] 200
	// [files] 403
	// [] 200
}
