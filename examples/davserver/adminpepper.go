package main

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"fmt"
	"os"
	"slices"
	"strconv"
	"strings"
	"text/tabwriter"
	"time"

	"github.com/appauth/appauth/auth"
	"github.com/appauth/appauth/internal/atomicfile"
	"github.com/appauth/appauth/internal/safetext"
)

// pepperKeyJSON is a row of the pepper commands' report: never the key.
type pepperKeyJSON struct {
	ID          string `json:"id"`
	Issues      bool   `json:"issues"` // the key new credentials are made with
	Credentials int    `json:"credentials"`
}

// pepperReport is what the pepper commands print with -json.
type pepperReport struct {
	Added   string          `json:"added,omitempty"`
	Retired string          `json:"retired,omitempty"`
	Revoked int             `json:"revoked,omitempty"`
	Keys    []pepperKeyJSON `json:"keys"`
	// Unknown counts credentials made with a key ID the file does not
	// hold: they can no longer be verified.
	Unknown int `json:"unknown,omitempty"`
}

// loadPepperFile reads the pepper file, which must exist.
func (a *adminRun) loadPepperFile() ([]auth.Pepper, error) {
	peppers, missing, err := loadPeppers(a.cfg.pepperFile)
	if err != nil {
		return nil, err
	}
	if missing {
		return nil, fmt.Errorf("pepper file %s does not exist (is -data the server's data folder?)", a.cfg.pepperFile)
	}
	return peppers, nil
}

// countByKey asks the store how many credentials each key ID verifies.
func (a *adminRun) countByKey(ctx context.Context) (map[string]int, error) {
	store, err := a.openStore(ctx)
	if err != nil {
		return nil, err
	}
	ctx, cancel := context.WithTimeout(ctx, 30*time.Second)
	defer cancel()
	counts, err := store.CredentialsByKey(ctx)
	if err != nil {
		return nil, fmt.Errorf("count credentials by key: %w", err)
	}
	return counts, nil
}

// pepperList reports the file's keys, which one issues, and how many
// stored credentials each verifies.
func (a *adminRun) pepperList(ctx context.Context, added string) error {
	peppers, err := a.loadPepperFile()
	if err != nil {
		return err
	}
	counts, err := a.countByKey(ctx)
	if err != nil {
		return err
	}
	return a.printPeppers(pepperReport{Added: added}, peppers, counts)
}

func (a *adminRun) printPeppers(r pepperReport, peppers []auth.Pepper, counts map[string]int) error {
	r.Keys = []pepperKeyJSON{}
	r.Unknown = 0
	for id, n := range counts {
		if !slices.ContainsFunc(peppers, func(p auth.Pepper) bool { return p.ID == id }) {
			r.Unknown += n
		}
	}
	for i, p := range peppers {
		r.Keys = append(r.Keys, pepperKeyJSON{ID: p.ID, Issues: i == len(peppers)-1, Credentials: counts[p.ID]})
	}
	if a.f.json {
		return a.printJSON(r)
	}
	out := a.env.stdout
	switch {
	case r.Added != "":
		fmt.Fprintf(out, "Added key %s to %s: new credentials use it once the servers restart with this file\n(copy it to every server that shares the store, and back it up). The other keys keep verifying.\n\n", r.Added, a.cfg.pepperFile)
	case r.Retired != "":
		fmt.Fprintf(out, "Retired key %s from %s (revoked %d credentials that used it). Restart the servers with this file.\n\n", r.Retired, a.cfg.pepperFile, r.Revoked)
	}
	w := tabwriter.NewWriter(out, 0, 0, 2, ' ', 0)
	fmt.Fprintln(w, "KEY ID\tCREDENTIALS\tROLE")
	for _, k := range r.Keys {
		role := "verifies"
		if k.Issues {
			role = "issues new credentials, verifies"
		}
		fmt.Fprintf(w, "%s\t%d\t%s\n", cell(k.ID), k.Credentials, role)
	}
	w.Flush()
	if r.Unknown > 0 {
		fmt.Fprintf(out, "\n%d stored credentials use a key that is not in the file: they no longer verify.\n", r.Unknown)
	}
	return nil
}

// nextPepperID is one more than the largest numeric key ID (IDs made by
// this server are 1, 2, ...), or "1".
func nextPepperID(peppers []auth.Pepper) string {
	n := 0
	for _, p := range peppers {
		if v, err := strconv.Atoi(p.ID); err == nil && v > n {
			n = v
		}
	}
	for {
		n++
		id := strconv.Itoa(n)
		if !slices.ContainsFunc(peppers, func(p auth.Pepper) bool { return p.ID == id }) {
			return id
		}
	}
}

// pepperRotate adds a new key to the end of the pepper file, where it
// issues new credentials; the others keep verifying. The new key is
// registered in the store (its check value, see auth.Manager.Check) before
// the file is written, so a store that cannot answer leaves the file as it
// was.
func (a *adminRun) pepperRotate(ctx context.Context) error {
	peppers, err := a.loadPepperFile()
	if err != nil {
		return err
	}
	key := make([]byte, auth.MinPepperLen)
	rand.Read(key) // never fails (crypto/rand)
	id := nextPepperID(peppers)
	next := append(slices.Clone(peppers), auth.Pepper{ID: id, Key: key})
	m, err := a.newManager(ctx, next)
	if err != nil {
		return err
	}
	checkCtx, cancel := context.WithTimeout(ctx, 30*time.Second)
	defer cancel()
	if err := m.Check(checkCtx); err != nil {
		return fmt.Errorf("pepper file %s: %w; the file is unchanged", a.cfg.pepperFile, err)
	}
	old, err := os.ReadFile(a.cfg.pepperFile)
	if err != nil {
		return fmt.Errorf("pepper file: %w", err)
	}
	text := string(old)
	if text != "" && !strings.HasSuffix(text, "\n") {
		text += "\n"
	}
	text += id + ":" + hex.EncodeToString(key) + "\n"
	if err := atomicfile.Write(a.cfg.pepperFile, []byte(text)); err != nil {
		return fmt.Errorf("pepper file: %w", err)
	}
	counts, err := a.countByKey(ctx)
	if err != nil {
		return err
	}
	return a.printPeppers(pepperReport{Added: id}, next, counts)
}

// pepperRetire removes key id from the pepper file. While stored
// credentials still use it, it refuses (saying how many it would orphan)
// unless forced; forced, it revokes them through the Manager first, so
// that they are cleanly gone and audited rather than left unverifiable.
func (a *adminRun) pepperRetire(ctx context.Context, id string) error {
	peppers, err := a.loadPepperFile()
	if err != nil {
		return err
	}
	i := slices.IndexFunc(peppers, func(p auth.Pepper) bool { return p.ID == id })
	switch {
	case i < 0:
		return fmt.Errorf("pepper retire: the pepper file %s has no key %s", a.cfg.pepperFile, safetext.Escape(id))
	case i == len(peppers)-1:
		return fmt.Errorf("pepper retire: key %s issues new credentials; run davserver pepper rotate first (and restart the servers)", id)
	}
	counts, err := a.countByKey(ctx)
	if err != nil {
		return err
	}
	revoked := 0
	if n := counts[id]; n > 0 {
		if !a.f.force {
			return fmt.Errorf("pepper retire: key %s still verifies %d stored credentials; retiring it would orphan them "+
				"(their devices would be refused). Wait until they are replaced or unused (see davserver app-passwords purge), "+
				"or give -force to revoke them; the file is unchanged", id, n)
		}
		if revoked, err = a.revokeByKey(ctx, peppers, id); err != nil {
			return err
		}
		// A server still running with a file from before the rotation
		// issues with this key: refuse rather than orphan its new ones.
		if counts, err = a.countByKey(ctx); err != nil {
			return err
		}
		if n := counts[id]; n > 0 {
			return fmt.Errorf("pepper retire: after revoking %d, key %s verifies %d new credentials: a server still issues with it "+
				"(restart every server with the rotated pepper file); the file is unchanged", revoked, id, n)
		}
	}
	b, err := os.ReadFile(a.cfg.pepperFile)
	if err != nil {
		return fmt.Errorf("pepper file: %w", err)
	}
	var kept []string
	for line := range strings.SplitAfterSeq(string(b), "\n") {
		if lineID, _, ok := strings.Cut(strings.TrimSpace(line), ":"); ok && lineID == id {
			continue
		}
		kept = append(kept, line)
	}
	if err := atomicfile.Write(a.cfg.pepperFile, []byte(strings.Join(kept, ""))); err != nil {
		return fmt.Errorf("pepper file: %w", err)
	}
	rest := slices.Delete(slices.Clone(peppers), i, i+1)
	return a.printPeppers(pepperReport{Retired: id, Revoked: revoked}, rest, counts)
}

// revokeByKey revokes, through a Manager with every key, each credential
// made with key id.
func (a *adminRun) revokeByKey(ctx context.Context, peppers []auth.Pepper, id string) (int, error) {
	m, err := a.newManager(ctx, peppers)
	if err != nil {
		return 0, err
	}
	var doomed []*auth.StoredCredential
	for _, kind := range []auth.Kind{auth.KindAppPassword, auth.KindSession} {
		creds, err := a.all(ctx, kind)
		if err != nil {
			return 0, err
		}
		for _, c := range creds {
			if c.KeyID == id {
				doomed = append(doomed, c)
			}
		}
	}
	ctx, cancel := context.WithTimeout(ctx, time.Minute+time.Duration(len(doomed))*100*time.Millisecond)
	defer cancel()
	return a.revokeEach(ctx, m, doomed)
}
