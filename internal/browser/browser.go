// Package browser starts headless Chromium for tests that drive a page
// with chromedp (the grant page of Login Flow v2, for one).
package browser

import (
	"context"
	"os"
	"strings"
	"testing"
	"time"

	"github.com/chromedp/chromedp"

	"github.com/appauth/appauth/internal/testenv"
)

// New starts headless Chromium with a temporary profile and returns a
// chromedp context for one tab, stopped when the test ends; extra options
// are added to the defaults (window 1280x900, [testenv.ChromiumFlags]).
// Without Chromium the test skips, or fails under testenv.Strict.
func New(t *testing.T, extra ...chromedp.ExecAllocatorOption) context.Context {
	t.Helper()
	exe := testenv.Chromium(t)
	// Not t.TempDir: Chromium's helpers may still write to the profile for
	// a moment after the browser stops, so removal is retried below.
	profile, err := os.MkdirTemp("", "appauth-chromium-")
	if err != nil {
		t.Fatal(err)
	}
	opts := []chromedp.ExecAllocatorOption{
		chromedp.ExecPath(exe),
		chromedp.UserDataDir(profile),
		chromedp.WindowSize(1280, 900),
	}
	for _, f := range testenv.ChromiumFlags {
		name, value, ok := strings.Cut(strings.TrimPrefix(f, "--"), "=")
		if ok {
			opts = append(opts, chromedp.Flag(name, value))
		} else {
			opts = append(opts, chromedp.Flag(name, true))
		}
	}
	opts = append(opts, extra...)
	// A bound on the whole browser session, so that a hung browser fails
	// the test instead of the run; the steps themselves are not timed.
	ctx, cancelTimeout := context.WithTimeout(context.Background(), 3*time.Minute)
	allocCtx, cancelAlloc := chromedp.NewExecAllocator(ctx, opts...)
	quiet := func(string, ...any) {}
	tab, cancelTab := chromedp.NewContext(allocCtx, chromedp.WithLogf(quiet), chromedp.WithErrorf(quiet))
	t.Cleanup(func() {
		cancelTab()
		cancelAlloc()
		cancelTimeout()
		var err error
		for range 50 {
			if err = os.RemoveAll(profile); err == nil {
				return
			}
			time.Sleep(100 * time.Millisecond)
		}
		t.Errorf("remove the Chromium profile %s: %v", profile, err)
	})
	if err := chromedp.Do(tab); err != nil {
		t.Fatalf("start Chromium %s: %v", exe, err)
	}
	return tab
}

// Do runs browser steps, failing the test with the step's name and where
// the browser is. Each call has a bound of its own, so that a failed step
// leaves time to say so; it is not a timing assertion.
func Do(t *testing.T, ctx context.Context, step string, actions ...chromedp.Action[chromedp.Void]) {
	t.Helper()
	stepCtx, cancel := context.WithTimeout(ctx, 30*time.Second)
	defer cancel()
	if err := chromedp.Do(stepCtx, actions...); err != nil {
		loc, _ := chromedp.Run(ctx, chromedp.Location())
		body, _ := chromedp.Run(ctx, chromedp.Text(`body`))
		t.Fatalf("browser: %s: %v; at %s: %.500s", step, err, loc, body)
	}
}

// Get runs one browser action and returns its value, failing the test
// with the step's name.
func Get[T any](t *testing.T, ctx context.Context, step string, a chromedp.Action[T]) T {
	t.Helper()
	v, err := chromedp.Run(ctx, a)
	if err != nil {
		t.Fatalf("browser: %s: %v", step, err)
	}
	return v
}
