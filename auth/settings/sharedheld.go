package settings

import (
	"context"
	"crypto/aes"
	"crypto/cipher"
	"crypto/hkdf"
	"crypto/rand"
	"crypto/sha256"
	"encoding/json"
	"errors"
	"fmt"
	"time"

	"github.com/appauth/appauth/auth"
)

// Behind a round-robin balancer the page view the create form redirects
// to may land on another server, so with Options.SharedSecrets the new
// secret is held in the shared TransientStore instead of this process's
// memory. It is sealed there with a key derived from the session's cookie
// secret, which the database never holds (it keeps a keyed hash of it):
// someone who reads the database, or holds another session, cannot open
// it. The record is named by a hash of the session ID (one per session, as
// in memory) and the credential ID is bound as additional data, so that the
// next page view and the sign-out can forget it without knowing the ID.

const (
	kindHeld = "settings/shown-once"
	// sharedTimeout bounds each call to the shared store: a hung database
	// makes the page answer 503, not hang.
	sharedTimeout = 5 * time.Second
)

// holder keeps the new secrets between the create form and the page view
// that shows them: in memory ([memHeld]) or in a TransientStore
// ([sharedHeld]). Their semantics are those of [heldSecrets].
type holder interface {
	put(ctx context.Context, s *session, secret heldSecret, now time.Time) error
	show(ctx context.Context, s *session, id string, now time.Time) (*heldSecret, error)
	unshow(ctx context.Context, s *session, id string, now time.Time)
	forget(ctx context.Context, s *session, now time.Time)
	shownNow(ctx context.Context, s *session, id string, now time.Time) (*heldSecret, error)
}

// memHeld is the default holder: this process's memory.
type memHeld struct{ h heldSecrets }

func (m *memHeld) put(_ context.Context, s *session, secret heldSecret, now time.Time) error {
	m.h.put(s.id(), secret, now)
	return nil
}

func (m *memHeld) show(_ context.Context, s *session, id string, now time.Time) (*heldSecret, error) {
	return m.h.show(s.id(), id, now), nil
}

func (m *memHeld) unshow(_ context.Context, s *session, id string, _ time.Time) {
	m.h.unshow(s.id(), id)
}

func (m *memHeld) forget(_ context.Context, s *session, _ time.Time) { m.h.forget(s.id()) }

func (m *memHeld) shownNow(_ context.Context, s *session, id string, now time.Time) (*heldSecret, error) {
	return m.h.shownNow(s.id(), id, now), nil
}

// sharedHeld holds the new secrets in a TransientStore, sealed.
type sharedHeld struct {
	ts auth.TransientStore
}

// heldRecord is a stored record: whether a page view has shown it, and the
// sealed secret (nonce then AES-GCM ciphertext of a heldWire).
type heldRecord struct {
	Shown bool   `json:"shown"`
	Box   []byte `json:"box"`
}

// heldWire is a heldSecret as sealed.
type heldWire struct {
	View   createdView `json:"view"`
	Scopes []string    `json:"scopes"`
	User   string      `json:"user"`
}

func heldKey(sessionID string) []byte {
	h := sha256.Sum256([]byte("appauth/settings shown-once key v1\x00" + sessionID))
	return h[:]
}

// sealKey derives the sealing key from the session's cookie secret.
func sealKey(cookieSecret string) (cipher.AEAD, error) {
	k, err := hkdf.Key(sha256.New, []byte(cookieSecret), nil, "appauth/settings shown-once v1", 32)
	if err != nil {
		return nil, err
	}
	b, err := aes.NewCipher(k)
	if err != nil {
		return nil, err
	}
	return cipher.NewGCM(b)
}

// sealAD binds a box to its session and credential.
func sealAD(sessionID, credentialID string) []byte {
	return []byte(sessionID + "\x00" + credentialID)
}

func sealHeld(cookieSecret, sessionID string, secret heldSecret) ([]byte, error) {
	aead, err := sealKey(cookieSecret)
	if err != nil {
		return nil, err
	}
	plain, err := json.Marshal(heldWire{View: secret.view, Scopes: secret.scopes, User: secret.user})
	if err != nil {
		return nil, err
	}
	nonce := make([]byte, aead.NonceSize())
	rand.Read(nonce)
	return aead.Seal(nonce, nonce, plain, sealAD(sessionID, secret.view.ID)), nil
}

// openHeld opens box for the session and credential id; an error if it was
// sealed for another session secret, session or credential.
func openHeld(cookieSecret, sessionID, id string, box []byte) (*heldSecret, error) {
	aead, err := sealKey(cookieSecret)
	if err != nil {
		return nil, err
	}
	if len(box) < aead.NonceSize() {
		return nil, errors.New("settings: sealed secret too short")
	}
	plain, err := aead.Open(nil, box[:aead.NonceSize()], box[aead.NonceSize():], sealAD(sessionID, id))
	if err != nil {
		return nil, err
	}
	var w heldWire
	if err := json.Unmarshal(plain, &w); err != nil {
		return nil, err
	}
	if w.View.ID != id {
		return nil, errors.New("settings: sealed secret is for another credential")
	}
	return &heldSecret{view: w.View, scopes: w.Scopes, user: w.User}, nil
}

// unavailable marks a shared store failure as an outage (503).
func unavailable(err error) error {
	if errors.Is(err, auth.ErrUnavailable) {
		return err
	}
	return fmt.Errorf("settings: shown-once secret: %w: %w", auth.ErrUnavailable, err)
}

func (sh *sharedHeld) put(ctx context.Context, s *session, secret heldSecret, now time.Time) error {
	ctx, cancel := context.WithTimeout(ctx, sharedTimeout)
	defer cancel()
	box, err := sealHeld(s.secret, s.id(), secret)
	if err != nil {
		return err
	}
	v, err := json.Marshal(heldRecord{Box: box})
	if err != nil {
		return err
	}
	key := heldKey(s.id())
	// One per session: creating another replaces it.
	for range 2 {
		if _, err := sh.ts.TakeTransient(ctx, kindHeld, key, now); err != nil && !errors.Is(err, auth.ErrNotFound) {
			return unavailable(err)
		}
		err = sh.ts.PutTransient(ctx, kindHeld, key, v, now.Add(heldFor), now)
		if !errors.Is(err, auth.ErrAlreadyExists) {
			break
		}
	}
	if err != nil {
		return unavailable(err)
	}
	return nil
}

// record returns the session's record and its encoding, nil if none.
func (sh *sharedHeld) record(ctx context.Context, s *session, now time.Time) (*heldRecord, []byte, error) {
	v, err := sh.ts.Transient(ctx, kindHeld, heldKey(s.id()), now)
	if errors.Is(err, auth.ErrNotFound) {
		return nil, nil, nil
	}
	if err != nil {
		return nil, nil, unavailable(err)
	}
	var rec heldRecord
	if err := json.Unmarshal(v, &rec); err != nil {
		return nil, nil, fmt.Errorf("settings: a held secret does not decode: %w", err)
	}
	return &rec, v, nil
}

func (sh *sharedHeld) show(ctx context.Context, s *session, id string, now time.Time) (*heldSecret, error) {
	ctx, cancel := context.WithTimeout(ctx, sharedTimeout)
	defer cancel()
	rec, old, err := sh.record(ctx, s, now)
	if err != nil || rec == nil {
		return nil, err
	}
	secret, openErr := openHeld(s.secret, s.id(), id, rec.Box)
	if rec.Shown || openErr != nil {
		// The next page view, or another credential's: its box is gone.
		if _, err := sh.ts.TakeTransient(ctx, kindHeld, heldKey(s.id()), now); err != nil && !errors.Is(err, auth.ErrNotFound) {
			return nil, unavailable(err)
		}
		return nil, nil
	}
	v, err := json.Marshal(heldRecord{Shown: true, Box: rec.Box})
	if err != nil {
		return nil, err
	}
	// Of two page views at once (two servers), one shows it.
	if err := sh.ts.SwapTransient(ctx, kindHeld, heldKey(s.id()), old, v, now); err != nil {
		if errors.Is(err, auth.ErrNotFound) {
			return nil, nil
		}
		return nil, unavailable(err)
	}
	return secret, nil
}

func (sh *sharedHeld) unshow(ctx context.Context, s *session, id string, now time.Time) {
	ctx, cancel := context.WithTimeout(ctx, sharedTimeout)
	defer cancel()
	rec, old, err := sh.record(ctx, s, now)
	if err != nil || rec == nil || !rec.Shown {
		return
	}
	if _, err := openHeld(s.secret, s.id(), id, rec.Box); err != nil {
		return
	}
	if v, err := json.Marshal(heldRecord{Box: rec.Box}); err == nil {
		sh.ts.SwapTransient(ctx, kindHeld, heldKey(s.id()), old, v, now)
	}
}

func (sh *sharedHeld) forget(ctx context.Context, s *session, now time.Time) {
	ctx, cancel := context.WithTimeout(ctx, sharedTimeout)
	defer cancel()
	// A failure leaves it sealed until it expires; nothing to tell the person.
	sh.ts.TakeTransient(ctx, kindHeld, heldKey(s.id()), now)
}

func (sh *sharedHeld) shownNow(ctx context.Context, s *session, id string, now time.Time) (*heldSecret, error) {
	ctx, cancel := context.WithTimeout(ctx, sharedTimeout)
	defer cancel()
	rec, _, err := sh.record(ctx, s, now)
	if err != nil || rec == nil || !rec.Shown {
		return nil, err
	}
	secret, err := openHeld(s.secret, s.id(), id, rec.Box)
	if err != nil {
		return nil, nil
	}
	return secret, nil
}
