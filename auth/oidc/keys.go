package oidc

import (
	"bytes"
	"context"
	"fmt"
	"io"
	"net/http"
	"sync"
	"time"
)

const (
	// keyRefetchInterval is how long the provider's keys, once fetched,
	// are not fetched again, whatever the tokens presented.
	keyRefetchInterval = time.Minute
	// keyRetryAfterFailure is the same after a fetch that failed: short,
	// so that sign-ins work again soon after the provider does.
	keyRetryAfterFailure = 5 * time.Second
	maxKeySetBytes       = 1 << 20
)

// keyFetchLimit is the transport of the provider's key set (jwks_uri).
// go-oidc's RemoteKeySet fetches the keys again for every token that the
// keys it holds do not verify (an unknown kid, or a bad signature), and
// anyone may post a logout token: without a limit, each forged token would
// be a request to the provider. keyFetchLimit sends at most one request
// per keyRefetchInterval (keyRetryAfterFailure after a failed one);
// within it, it repeats the provider's last answer, so go-oidc finds the
// same keys and refuses the token. A key the provider rotates in is learnt
// by the first token that needs it once the interval is over.
type keyFetchLimit struct {
	client  *http.Client // Config.HTTPClient: redirects are followed there
	timeout time.Duration
	now     func() time.Time

	mu     sync.Mutex // held during a fetch: go-oidc waits for it anyway
	at     time.Time  // of the last request to the provider
	answer *http.Response
	body   []byte
	err    error
}

// RoundTrip answers go-oidc's request for the keys.
func (k *keyFetchLimit) RoundTrip(req *http.Request) (*http.Response, error) {
	k.mu.Lock()
	defer k.mu.Unlock()
	every := keyRefetchInterval
	if k.err != nil || (k.answer != nil && k.answer.StatusCode != http.StatusOK) {
		every = keyRetryAfterFailure
	}
	if now := k.now(); k.at.IsZero() || now.Sub(k.at) >= every || now.Before(k.at) {
		k.at = now
		k.answer, k.body, k.err = k.fetch(req)
	}
	if k.err != nil {
		return nil, k.err
	}
	resp := *k.answer
	resp.Header = k.answer.Header.Clone()
	resp.Body = io.NopCloser(bytes.NewReader(k.body))
	resp.Request = req
	return &resp, nil
}

// fetch asks the provider, bounded by the timeout: go-oidc's request has
// no deadline.
func (k *keyFetchLimit) fetch(req *http.Request) (*http.Response, []byte, error) {
	ctx, cancel := context.WithTimeout(req.Context(), k.timeout)
	defer cancel()
	resp, err := k.client.Do(req.WithContext(ctx))
	if err != nil {
		return nil, nil, err
	}
	defer resp.Body.Close()
	body, err := io.ReadAll(io.LimitReader(resp.Body, maxKeySetBytes+1))
	if err == nil && len(body) > maxKeySetBytes {
		err = fmt.Errorf("oidc: the provider's key set is larger than %d bytes", maxKeySetBytes)
	}
	if err != nil {
		return nil, nil, err
	}
	resp.Body = nil
	return resp, body, nil
}
