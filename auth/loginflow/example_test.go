package loginflow_test

import (
	"context"
	"crypto/rand"
	"fmt"
	"net/http/httptest"
	"strings"

	"github.com/appauth/appauth/auth"
	"github.com/appauth/appauth/auth/loginflow"
	"github.com/appauth/appauth/backends/memory"
	"github.com/appauth/appauth/internal/testkit"
)

// A client starts a flow, the person grants it (here directly; normally on
// the settings page's grant page), and the client's poll collects the app
// password, once.
func Example() {
	ctx := context.Background()
	users := memory.NewDirectory()
	alice := auth.User{ID: "u1", Login: "alice"}
	users.AddUser(alice, "alice's account password")
	pepper := make([]byte, 32)
	rand.Read(pepper)
	m, _ := auth.NewManager(memory.NewStore(), users, &auth.Options{Peppers: []auth.Pepper{{ID: "1", Key: pepper}}})
	defer m.Close()

	key := make([]byte, 32) // in a shared deployment: the same secret on every server
	rand.Read(key)
	flows, err := loginflow.New(m, &loginflow.Options{Key: key})
	if err != nil {
		panic(err)
	}
	defer flows.Close()
	srv := httptest.NewServer(flows) // mounted at /index.php/login/v2 and /login/v2/poll
	defer srv.Close()

	// A client that does what DAVx⁵ does (a test helper of this module).
	client := &testkit.LoginFlowClient{UserAgent: "DAVx5/4.4.2-ose"}
	client.Initiate(srv.URL)
	status, _, _ := client.Poll()
	fmt.Println("before the grant:", status)

	token := client.Login[strings.LastIndex(client.Login, "/")+1:] // what the grant page gets
	ap, _ := flows.Grant(ctx, token, &alice, "alice", auth.IssueRequest{Scopes: []string{auth.ScopeCalendars}})
	fmt.Println("issued:", ap.Name, ap.Scopes)

	status, res, _ := client.Poll()
	fmt.Println("after the grant:", status, res.LoginName, strings.HasPrefix(res.AppPassword, "aap-"))
	status, _, _ = client.Poll()
	fmt.Println("again:", status)
	// Output:
	// before the grant: 404
	// issued: DAVx5/4.4.2-ose [calendars]
	// after the grant: 200 alice true
	// again: 404
}
