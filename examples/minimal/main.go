// Command minimal is the smallest useful embedding of appauth: a WebDAV
// folder that devices reach with app passwords, everything kept in memory.
package main

import (
	"context"
	"crypto/rand"
	"fmt"
	"log"
	"net/http"

	"github.com/appauth/appauth/auth"
	"github.com/appauth/appauth/auth/httpauth"
	"github.com/appauth/appauth/backends/memory"
	"golang.org/x/net/webdav"
)

func main() {
	users := memory.NewDirectory()
	alice := auth.User{ID: "u1", Login: "alice"}
	if err := users.AddUser(alice, "alice's account password"); err != nil {
		log.Fatal(err)
	}
	pepper := make([]byte, 32) // in a real server: read from a secret file
	rand.Read(pepper)
	m, err := auth.NewManager(memory.NewStore(), users, &auth.Options{Peppers: []auth.Pepper{{ID: "1", Key: pepper}}})
	if err != nil {
		log.Fatal(err)
	}
	defer m.Close()

	// Normally the person creates this on the settings page (auth/settings).
	_, secret, err := m.IssueAppPassword(context.Background(), &alice, auth.IssueRequest{Name: "laptop"})
	if err != nil {
		log.Fatal(err)
	}
	fmt.Printf("try: curl -u alice:%s -X PROPFIND -H 'Depth: 1' http://127.0.0.1:8081/\n", secret)

	mw, err := httpauth.New(m, nil)
	if err != nil {
		log.Fatal(err)
	}
	files := &webdav.Handler{FileSystem: webdav.NewMemFS(), LockSystem: webdav.NewMemLS()}
	log.Fatal(http.ListenAndServe("127.0.0.1:8081", mw.Wrap(files)))
}
