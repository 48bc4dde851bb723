package metrics_test

import (
	"context"
	"fmt"
	"log"

	"github.com/appauth/appauth/auth"
	"github.com/appauth/appauth/auth/metrics"
	"github.com/appauth/appauth/backends/memory"
	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/testutil"
)

// Example wires the metrics into a Manager: Observe is its event hook, and
// the Manager is the source of the cache statistics.
func Example() {
	m := metrics.New()
	dir := memory.NewDirectory()
	alice := auth.User{ID: "u-alice", Login: "alice"}
	if err := dir.AddUser(alice, "account-password"); err != nil {
		log.Fatal(err)
	}
	mgr, err := auth.NewManager(memory.NewStore(), dir, &auth.Options{
		Peppers: []auth.Pepper{{ID: "k1", Key: []byte("a pepper of at least 32 bytes...")}},
		OnEvent: m.Observe,
	})
	if err != nil {
		log.Fatal(err)
	}
	defer mgr.Close()
	m.SetStats(mgr)
	reg := prometheus.NewRegistry()
	reg.MustRegister(m)
	// Serve it with promhttp.HandlerFor(reg, promhttp.HandlerOpts{}).

	ctx := context.Background()
	_, secret, _ := mgr.IssueAppPassword(ctx, &alice, auth.IssueRequest{Name: "phone"})
	mgr.Authenticate(ctx, auth.Attempt{Username: "alice", Password: secret})
	mgr.Authenticate(ctx, auth.Attempt{Username: "mallory", Password: secret})

	// Every series exists from the start, and no more appear whoever signs
	// in: 4 kinds x (success, throttled, 11 failure reasons, 4 backends).
	n, _ := testutil.GatherAndCount(reg, "appauth_authentications_total")
	fmt.Println("authentication series:", n)
	// Output:
	// authentication series: 72
}
