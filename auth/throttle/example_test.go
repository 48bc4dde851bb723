package throttle_test

import (
	"context"
	"errors"
	"fmt"
	"time"

	"github.com/appauth/appauth/auth"
	"github.com/appauth/appauth/auth/throttle"
)

func Example() {
	now := time.Date(2026, 1, 1, 12, 0, 0, 0, time.UTC)
	t, err := throttle.New(&throttle.Options{
		Now:          func() time.Time { return now },
		AddressLimit: 3, // default 10
	})
	if err != nil {
		panic(err)
	}
	ctx := context.Background()

	// Three wrong guesses from one address are allowed; the fourth attempt
	// must wait.
	for i := range 4 {
		guess := auth.Attempt{Username: "alice", Password: fmt.Sprint("guess-", i), RemoteAddr: "198.51.100.7"}
		err := t.Allow(ctx, guess)
		var te *auth.ThrottleError
		if errors.As(err, &te) {
			fmt.Println("attempt", i+1, "throttled: retry after", te.RetryAfter, errors.Is(err, auth.ErrThrottled))
			break
		}
		fmt.Println("attempt", i+1, "allowed")
		t.Done(guess, false) // the password was wrong
	}

	// Another address is not affected.
	fmt.Println("other address:", t.Allow(ctx, auth.Attempt{Username: "alice", RemoteAddr: "203.0.113.9"}))
	// Output:
	// attempt 1 allowed
	// attempt 2 allowed
	// attempt 3 allowed
	// attempt 4 throttled: retry after 1s true
	// other address: <nil>
}
