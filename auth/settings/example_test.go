package settings_test

import (
	"bytes"
	"context"
	"fmt"
	"log"
	"net/http"
	"net/http/httptest"
	"strings"

	"github.com/appauth/appauth/auth"
	"github.com/appauth/appauth/auth/httpauth"
	"github.com/appauth/appauth/auth/settings"
	"github.com/appauth/appauth/auth/throttle"
	"github.com/appauth/appauth/backends/memory"
)

// Mount the settings page at /account/ next to a DAV handler protected by
// the Basic-auth middleware; the Manager's throttle covers both.
func Example() {
	dir := memory.NewDirectory()
	dir.AddUser(auth.User{ID: "1", Login: "alice"}, "account password")
	limiter, _ := throttle.New(nil)
	m, err := auth.NewManager(memory.NewStore(), dir, &auth.Options{
		Peppers: []auth.Pepper{{ID: "2026-11", Key: bytes.Repeat([]byte("k"), 32)}}, // use 32 random bytes
		Limiter: limiter,
	})
	if err != nil {
		log.Fatal(err)
	}
	defer m.Close()

	web, err := settings.New(m, dir, &settings.Options{
		Prefix:    "/account/",
		Title:     "Example Cloud",
		ServerURL: "https://dav.example.com/dav/",
	})
	if err != nil {
		log.Fatal(err)
	}
	mw, err := httpauth.New(m, &httpauth.Options{Realm: "Example Cloud"})
	if err != nil {
		log.Fatal(err)
	}
	mux := http.NewServeMux()
	mux.Handle("/account/", web)
	mux.Handle("/dav/", mw.Wrap(http.NotFoundHandler())) // your DAV handler

	// A browser is sent to the sign-in page.
	w := httptest.NewRecorder()
	mux.ServeHTTP(w, httptest.NewRequestWithContext(context.Background(), "GET", "/account/", nil))
	fmt.Println(w.Code, w.Header().Get("Location"))

	// A script signs in through the JSON API.
	r := httptest.NewRequestWithContext(context.Background(), "POST", "/account/api/v1/session",
		strings.NewReader(`{"username":"alice","password":"account password"}`))
	r.Header.Set("Content-Type", "application/json")
	w = httptest.NewRecorder()
	mux.ServeHTTP(w, r)
	fmt.Println(w.Code, w.Result().Cookies()[0].Path)
	// Output:
	// 303 /account/signin
	// 200 /account/
}
