package settings

import (
	"bytes"
	"context"
	"errors"
	"sync"
	"testing"
	"time"

	"github.com/appauth/appauth/auth"
	"github.com/appauth/appauth/backends/memory"
)

func heldSession(id, secret string) *session {
	return &session{p: &auth.Principal{CredentialID: id, User: auth.User{ID: "u1"}}, secret: secret}
}

// A held secret is sealed: the store holds no part of it in clear, and only
// the session's own cookie secret opens it.
func TestSharedHeldSealed(t *testing.T) {
	ctx, now := context.Background(), time.Unix(1_800_000_000, 0)
	ts := memory.NewStore()
	sh := &sharedHeld{ts: ts}
	owner := heldSession("sess-1", "cookie-secret-of-session-1")
	const password = "the-new-app-password-secret"
	if err := sh.put(ctx, owner, heldSecret{view: createdView{ID: "ap-1", Password: password}, user: "u1"}, now); err != nil {
		t.Fatal(err)
	}
	raw, err := ts.Transient(ctx, kindHeld, heldKey("sess-1"), now)
	if err != nil {
		t.Fatal(err)
	}
	if bytes.Contains(raw, []byte(password)) || bytes.Contains(raw, []byte("ap-1")) {
		t.Fatalf("stored record holds the secret or credential ID in clear: %s", raw)
	}
	// The same session ID presented with another cookie secret (a forged
	// cookie, or someone who read the database's session row) opens nothing.
	if got, err := sh.show(ctx, heldSession("sess-1", "another-cookie-secret"), "ap-1", now); err != nil || got != nil {
		t.Fatalf("show with the wrong session secret = %v, %v; want nil", got, err)
	}
	// ... and that attempt forgot it: the box is gone for the owner too.
	if got, _ := sh.show(ctx, owner, "ap-1", now); got != nil {
		t.Fatal("secret shown after a wrong-secret attempt; want forgotten")
	}

	if err := sh.put(ctx, owner, heldSecret{view: createdView{ID: "ap-2", Password: password}, user: "u1"}, now); err != nil {
		t.Fatal(err)
	}
	if got, err := sh.show(ctx, owner, "ap-2", now); err != nil || got == nil || got.view.Password != password {
		t.Fatalf("show with the right session secret = %v, %v; want the secret", got, err)
	}
	if got, _ := sh.shownNow(ctx, owner, "ap-2", now); got == nil {
		t.Fatal("shownNow (profile download) = nil while shown")
	}
	if got, _ := sh.shownNow(ctx, heldSession("sess-1", "another-cookie-secret"), "ap-2", now); got != nil {
		t.Fatal("shownNow opened with the wrong session secret")
	}
}

// A held secret is shown by one page view only: the next, and a racing
// second server, get nothing; it expires after heldFor.
func TestSharedHeldReadOnce(t *testing.T) {
	ctx, now := context.Background(), time.Unix(1_800_000_000, 0)
	ts := memory.NewStore()
	a, b := &sharedHeld{ts: ts}, &sharedHeld{ts: ts} // two servers
	s := heldSession("sess-1", "cookie-secret")
	if err := a.put(ctx, s, heldSecret{view: createdView{ID: "ap-1", Password: "pw"}}, now); err != nil {
		t.Fatal(err)
	}
	var wg sync.WaitGroup
	var mu sync.Mutex
	shown := 0
	for _, h := range []*sharedHeld{a, b, a, b} {
		wg.Go(func() {
			if got, err := h.show(ctx, s, "ap-1", now); err == nil && got != nil {
				mu.Lock()
				shown++
				mu.Unlock()
			}
		})
	}
	wg.Wait()
	if shown != 1 {
		t.Fatalf("%d concurrent page views showed the secret; want 1", shown)
	}
	if got, _ := b.show(ctx, s, "ap-1", now); got != nil {
		t.Fatal("a reload showed the secret again")
	}
	if got, _ := a.shownNow(ctx, s, "ap-1", now); got != nil {
		t.Fatal("profile available after the box was gone")
	}

	if err := a.put(ctx, s, heldSecret{view: createdView{ID: "ap-2", Password: "pw"}}, now); err != nil {
		t.Fatal(err)
	}
	if got, _ := b.show(ctx, s, "ap-2", now.Add(heldFor)); got != nil {
		t.Fatal("secret shown after heldFor")
	}
}

// downTransients is a TransientStore that cannot be reached.
type downTransients struct{ *memory.Store }

var errDown = errors.New("connection refused")

func (downTransients) PutTransient(context.Context, string, []byte, []byte, time.Time, time.Time) error {
	return errDown
}
func (downTransients) Transient(context.Context, string, []byte, time.Time) ([]byte, error) {
	return nil, errDown
}
func (downTransients) TakeTransient(context.Context, string, []byte, time.Time) ([]byte, error) {
	return nil, errDown
}

// A shared store that is down is an outage (503), never "the moment has
// passed" nor a secret shown twice.
func TestSharedHeldOutage(t *testing.T) {
	ctx, now := context.Background(), time.Unix(1_800_000_000, 0)
	sh := &sharedHeld{ts: downTransients{memory.NewStore()}}
	s := heldSession("sess-1", "cookie-secret")
	if err := sh.put(ctx, s, heldSecret{view: createdView{ID: "ap-1"}}, now); !errors.Is(err, auth.ErrUnavailable) {
		t.Fatalf("put with the store down: %v, want ErrUnavailable", err)
	}
	if got, err := sh.show(ctx, s, "ap-1", now); got != nil || !errors.Is(err, auth.ErrUnavailable) {
		t.Fatalf("show with the store down: %v, %v; want ErrUnavailable", got, err)
	}
	if got, err := sh.shownNow(ctx, s, "ap-1", now); got != nil || !errors.Is(err, auth.ErrUnavailable) {
		t.Fatalf("shownNow with the store down: %v, %v; want ErrUnavailable", got, err)
	}
}
