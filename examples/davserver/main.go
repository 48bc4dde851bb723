// Command davserver is a WebDAV, CalDAV and CardDAV server whose devices sign
// in with app passwords: the appauth library in a runnable server.
//
//	go run ./examples/davserver
//
// With no flags it listens on 127.0.0.1:8080 and keeps everything under
// ./data: an SQLite database of app passwords and sessions, a generated pepper,
// an htpasswd users file with a demo user (its password is printed once),
// and the users' calendars, address books and files. See README.md.
package main

import (
	"cmp"
	"context"
	"crypto/hmac"
	"crypto/rand"
	"crypto/sha256"
	"crypto/tls"
	"errors"
	"flag"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/http"
	"net/url"
	"os"
	"os/signal"
	"path/filepath"
	"strings"
	"syscall"
	"time"

	"github.com/appauth/appauth/auth"
	"github.com/appauth/appauth/auth/clientaddr"
	"github.com/appauth/appauth/auth/httpauth"
	"github.com/appauth/appauth/auth/loginflow"
	"github.com/appauth/appauth/auth/oidc"
	"github.com/appauth/appauth/auth/settings"
	"github.com/appauth/appauth/auth/throttle"
	"github.com/appauth/appauth/backends/htpasswd"
	"github.com/appauth/appauth/backends/sqlstore"
	"github.com/appauth/appauth/examples/davserver/internal/davstore"
)

func main() {
	if err := checkEnvNames(os.Environ()); err != nil {
		fmt.Fprintf(os.Stderr, "davserver: %v\n", err)
		os.Exit(2)
	}
	os.Exit(run(os.Args[1:], os.Stdin, os.Stdout, os.Stderr, os.Getenv))
}

// run is main without the process: it returns the exit code.
func run(args []string, stdin *os.File, stdout, stderr io.Writer, getenv func(string) string) int {
	if len(args) > 0 && isAdminCommand(args[0]) {
		ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
		defer stop()
		return runAdmin(ctx, args, &adminEnv{stdout: stdout, stderr: stderr, getenv: getenv, now: time.Now})
	}
	cfg, err := parseConfig(args, getenv, stderr)
	if errors.Is(err, flag.ErrHelp) {
		return 0
	}
	if err != nil {
		fmt.Fprintf(stderr, "davserver: %v\n", err)
		return 2
	}
	if cfg.addUser != "" {
		if err := addUser(cfg, stdin, stdout); err != nil {
			fmt.Fprintf(stderr, "davserver: %v\n", err)
			return 1
		}
		return 0
	}
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	if cfg.removeUser != "" {
		if err := removeUser(ctx, cfg, stdout, stderr); err != nil {
			fmt.Fprintf(stderr, "davserver: %v\n", oneLine(err))
			return 1
		}
		return 0
	}
	if err := serve(ctx, cfg, stdout, stderr); err != nil {
		fmt.Fprintf(stderr, "davserver: %v\n", oneLine(err))
		return 1
	}
	return 0
}

// oneLine keeps an error message on one line.
func oneLine(err error) string {
	return strings.Join(strings.Fields(err.Error()), " ")
}

func newLogger(cfg *config, w io.Writer) *slog.Logger {
	var level slog.Level
	level.UnmarshalText([]byte(cfg.logLevel)) // validated
	o := &slog.HandlerOptions{Level: level}
	if cfg.logFormat == "json" {
		return slog.New(slog.NewJSONHandler(w, o))
	}
	return slog.New(slog.NewTextHandler(w, o))
}

// directory is where users come from: the htpasswd file or LDAP.
type directory interface {
	auth.Directory
	auth.PasswordVerifier
}

// serve runs the server until ctx ends, then shuts down gracefully: open
// requests finish, pending last-used times are written, the store closes.
func serve(ctx context.Context, cfg *config, stdout, stderr io.Writer) (err error) {
	logger := newLogger(cfg, stderr)
	var closers []func() error
	defer func() {
		for i := len(closers) - 1; i >= 0; i-- {
			if cerr := closers[i](); cerr != nil && err == nil {
				err = cerr
			}
		}
	}()

	// Listen first, so a busy port fails before anything is created.
	ln, err := net.Listen("tcp", cfg.addr)
	if err != nil {
		return fmt.Errorf("-addr %s: %w", cfg.addr, err)
	}
	closers = append(closers, func() error { ln.Close(); return nil })
	stopProfile, err := startCPUProfile(cfg)
	if err != nil {
		return err
	}
	closers = append(closers, stopProfile)
	opsSrv, err := listenOps(cfg)
	if err != nil {
		return err
	}
	closers = append(closers, opsSrv.close)
	radiusSrv, err := listenRADIUS(&cfg.radius)
	if err != nil {
		return err
	}
	closers = append(closers, radiusSrv.close)
	// Files made by this first run are removed again if the start fails, so
	// the next run makes them anew and prints the demo password then.
	var created []string
	started := false
	defer func() {
		if !started {
			for _, f := range created {
				os.Remove(f)
			}
		}
	}()

	if err := makePrivateDir(cfg.data); err != nil {
		return fmt.Errorf("data folder: %w", err)
	}
	// A missing pepper file is made once the database is open and known
	// to hold no credential (see createPepperFile).
	peppers, newPepper, err := loadPeppers(cfg.pepperFile)
	if err != nil {
		return err
	}

	var dir directory
	var demoPassword string
	if cfg.ldapURL != "" {
		d, closeDir, err := openLDAP(ctx, cfg, logger)
		if err != nil {
			return err
		}
		closers = append(closers, closeDir)
		dir = d
	} else {
		if demoPassword, err = ensureUsersFile(cfg); err != nil {
			return err
		}
		if demoPassword != "" {
			created = append(created, cfg.users)
		}
		d, err := htpasswd.Open(cfg.users, &htpasswd.Options{Logger: logger.With("component", "htpasswd")})
		if err != nil {
			return err
		}
		dir = d
	}
	// RADIUS checks the password, the directory says who it is.
	if v, err := radiusVerifier(&cfg.radius, dir, logger); err != nil {
		return err
	} else if v != nil {
		dir = radiusDirectory{Directory: dir, PasswordVerifier: v}
	}

	store, err := openStore(ctx, cfg, logger)
	if err != nil {
		return err
	}
	closers = append(closers, store.Close)
	// The start-up work on the store (pepper, cache size, pepper check)
	// shares one deadline.
	openCtx, cancel := context.WithTimeout(ctx, 30*time.Second)
	defer cancel()
	if newPepper {
		if peppers, err = createPepperFile(openCtx, cfg.pepperFile, store); err != nil {
			return err
		}
		created = append(created, cfg.pepperFile)
	}
	size := cfg.cacheSize
	if size == 0 {
		// A count that fails leaves the default: the cache's size is no
		// reason to refuse the start.
		n, err := store.CountCredentials(openCtx)
		if err != nil {
			logger.Warn("cannot count credentials to size the cache; using the default", "error", err)
		}
		size = cacheSize(0, n)
	}

	clients, err := clientaddr.New(&clientaddr.Options{TrustedProxies: cfg.proxies, Header: cfg.forwardedHeader})
	if err != nil {
		return err
	}
	limiter, err := newLimiter(cfg, store, peppers)
	if err != nil {
		return err
	}
	if l, ok := limiter.(*sqlstore.Limiter); ok {
		closers = append(closers, purgeHourly(store, l, logger))
	}
	hook := &eventHook{metrics: opsSrv.onEvent()}
	manager, err := auth.NewManager(store, dir, &auth.Options{
		Peppers: peppers,
		// On PostgreSQL other servers may share the database: a pepper
		// that differs from the one they registered stops this one.
		SharedPeppers: cfg.postgres != "",
		Logger:        logger.With("component", "auth"),
		Limiter:       limiter,
		CacheSize:     size,
		OnEvent:       hook.listener(cfg.notify.enabled()),
		// The metrics count cached successes from Manager.Stats and the
		// notifier reads only issued events: no hook call per cached verify.
		QuietHits: true,

		ExpireUnusedAfter: time.Duration(cfg.expireUnusedDays) * 24 * time.Hour,
	})
	if err != nil {
		return err
	}
	closers = append(closers, manager.Close)
	notifier, err := newNotifier(&cfg.notify, dir, manager, logger)
	if err != nil {
		return err
	}
	if notifier != nil {
		hook.n.Store(notifier)
		closers = append(closers, notifier.Close) // closed before the Manager
	}
	// A pepper that is not the key of the stored credentials stops the
	// start here, naming the key ID and how many devices it would lock out.
	if err := manager.Check(openCtx); err != nil {
		return fmt.Errorf("pepper file %s: %w", cfg.pepperFile, err)
	}

	dav, err := openDAV(ctx, cfg, dir, logger)
	if err != nil {
		return err
	}
	mwOpts := &httpauth.Options{
		Realm:      cfg.title,
		ClientAddr: clients,
		Logger:     logger,
	}
	if cfg.allowAccountPassword {
		mwOpts.AccountPasswords = dir
	}
	mw, err := httpauth.New(manager, mwOpts)
	if err != nil {
		return err
	}

	var tlsConfig *tls.Config
	if cfg.tlsCert != "" {
		cert, err := tls.LoadX509KeyPair(cfg.tlsCert, cfg.tlsKey)
		if err != nil {
			return fmt.Errorf("-tls-cert/-tls-key: %w", err)
		}
		tlsConfig = &tls.Config{Certificates: []tls.Certificate{cert}, MinVersion: tls.VersionTLS12}
	}

	base := baseURL(ln.Addr(), tlsConfig != nil)
	cookieName := "" // the default, appauth_session
	if tlsConfig != nil {
		// Served over TLS at "/": the __Host- prefix makes browsers refuse
		// the cookie from a sibling subdomain or over plain HTTP.
		cookieName = "__Host-appauth_session"
	}
	// On SQLite Login Flow v2 keeps its pending flows in memory, so a key
	// of this process's own is enough (a restart ends pending flows). On
	// PostgreSQL they are in the database, shared by every server, under a
	// key every server derives from the shared pepper.
	flowKey := make([]byte, 32)
	rand.Read(flowKey)
	var flowStore loginflow.Store
	if cfg.postgres != "" {
		mac := hmac.New(sha256.New, peppers[0].Key)
		mac.Write([]byte("appauth login flow key"))
		flowKey = mac.Sum(nil)
		flowStore = loginflow.NewSharedStore(store)
	}
	flows, err := loginflow.New(manager, &loginflow.Options{
		Key:        flowKey,
		Store:      flowStore,
		PublicURL:  cfg.notify.publicURL,
		ClientAddr: clients,
		Logger:     logger,
	})
	if err != nil {
		return err
	}
	closers = append(closers, flows.Close)
	ssoBase := base // the page's address as the browser (and the provider) reach it
	if cfg.notify.publicURL != "" {
		ssoBase = strings.TrimRight(cfg.notify.publicURL, "/") + "/"
	}
	var pending oidc.PendingStore
	var shared auth.TransientStore // on PostgreSQL, every server's
	if cfg.postgres != "" {
		pending = oidc.NewSharedPending(store, nil)
		shared = store
	}
	sso, err := newSSO(ctx, &cfg.oidc, ssoBase, manager, dir, pending, shared, logger)
	if err != nil {
		return err
	}
	var ssoOpt settings.SSO
	if sso != nil {
		ssoOpt = sso
	}
	var pagePasswords auth.PasswordVerifier = dir
	if cfg.oidc.only {
		pagePasswords = nil // single sign-on only: the page has no password form
	}
	web, err := settings.New(manager, pagePasswords, &settings.Options{
		SSO:        ssoOpt,
		CookieName: cookieName,
		Prefix:     "/",
		Title:      cfg.title,
		ServerURL:  base,
		// The principal, for the Apple configuration profile offered with
		// a new app password: at the address devices reach.
		PrincipalURL: func(u *auth.User) string {
			return strings.TrimRight(cmp.Or(cfg.notify.publicURL, base), "/") + dav.PrincipalPath(url.PathEscape(u.Login))
		},
		ClientAddr: clients,
		LoginFlows: flows,
		// A new secret shown once on whichever server the redirect reaches.
		SharedSecrets: shared,
		Logger:        logger.With("component", "settings"),
	})
	if err != nil {
		return err
	}
	limits := defaultBodyLimits
	limits.File = int64(cfg.maxFileSize)
	authenticate := func(h http.Handler) http.Handler { return mw.Wrap(recordUser(h)) }
	if cfg.insecureNoAuth != "" {
		lookupCtx, cancel := context.WithTimeout(ctx, 10*time.Second)
		u, err := dir.LookupUser(lookupCtx, cfg.insecureNoAuth)
		cancel()
		if err != nil {
			return fmt.Errorf("-insecure-no-auth-as %s: %w", cfg.insecureNoAuth, err)
		}
		authenticate = asUser(u)
		logger.Warn("AUTHENTICATION IS OFF (-insecure-no-auth-as, a benchmark build): every DAV request is served as this user", "user", u.Login, "addr", cfg.addr)
	}
	mux := routes(dav, &limits, authenticate, web)
	mountNextcloud(mux, nextcloud{dav: dav, limits: &limits, authenticate: authenticate, flows: flows, manager: manager, title: cfg.title})
	requests := newRequestLog(logger)
	defer requests.Close() // after Shutdown: writes the pending coalesced lines
	handler := requests.Wrap(mux)
	if tlsConfig != nil {
		handler = hsts(handler)
	}
	to := timeouts{Header: 10 * time.Second, Read: cfg.readTimeout, Write: cfg.writeTimeout, Idle: 2 * time.Minute}
	handler = withDeadlines(to, handler)

	// No ReadTimeout or WriteTimeout: they would cut large uploads and
	// downloads; withDeadlines bounds each step instead.
	srv := &http.Server{
		Handler:           handler,
		TLSConfig:         tlsConfig,
		ReadHeaderTimeout: to.Header,
		IdleTimeout:       to.Idle,
		ErrorLog:          slog.NewLogLogger(logger.Handler(), slog.LevelWarn),
	}
	if tlsConfig != nil {
		ln = tls.NewListener(ln, tlsConfig)
	}
	started = true
	opsSrv.start(manager, []readyCheck{{"store", store.Ping}, {"directory", directoryCheck(dir)}}, logger, stdout)
	if err := radiusSrv.start(manager, logger, stdout); err != nil {
		return err
	}
	printBanner(stdout, cfg, base, ssoBase, newPepper, demoPassword)
	logger.Info("listening", "url", base, "data", cfg.data, "store", storeKind(cfg), "directory", dirKind(cfg), "cache_size", size)

	served := make(chan error, 1)
	go func() { served <- srv.Serve(ln) }()
	select {
	case err := <-served:
		return fmt.Errorf("serve: %w", err)
	case <-ctx.Done():
	}
	logger.Info("shutting down: finishing open requests, then saving last-used times")
	shutdownCtx, cancelShutdown := context.WithTimeout(context.Background(), 15*time.Second)
	defer cancelShutdown()
	if err := srv.Shutdown(shutdownCtx); err != nil {
		logger.Warn("shutdown: some requests did not finish", "error", err)
		srv.Close()
	}
	<-served
	requests.Close()
	// The deferred closers run now: manager.Close flushes the pending
	// last-used times, then the store and directory close.
	logger.Info("stopped")
	return nil
}

// newLimiter returns the guess limiter: on PostgreSQL, counts shared by
// every server on the database (with the in-memory throttle in front), so
// that N servers behind one address allow what one does; on SQLite (one
// server) the in-memory throttle alone.
func newLimiter(cfg *config, store *sqlstore.Store, peppers []auth.Pepper) (auth.Limiter, error) {
	front, err := throttle.New(nil)
	if err != nil || cfg.postgres == "" {
		return front, err
	}
	// The first key names login rows: it is the same on every server and
	// stays in the file through rotations.
	return sqlstore.NewLimiter(store, &sqlstore.LimiterOptions{Front: front, Key: peppers[0].Key})
}

// purgeHourly deletes the shared limiter's forgotten counts once an hour,
// on the one server that claims the run, until the returned func is called.
func purgeHourly(store *sqlstore.Store, l *sqlstore.Limiter, logger *slog.Logger) func() error {
	stop, done := make(chan struct{}), make(chan struct{})
	go func() {
		defer close(done)
		tick := time.NewTicker(time.Hour)
		defer tick.Stop()
		for {
			select {
			case <-stop:
				return
			case <-tick.C:
			}
			ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
			if run, err := store.ClaimJob(ctx, "throttle-purge", time.Now(), 55*time.Minute); err != nil {
				logger.Warn("claim the throttle purge", "error", err)
			} else if run {
				if _, err := l.Purge(ctx); err != nil {
					logger.Warn("purge the throttle's counts", "error", err)
				}
			}
			cancel()
		}
	}()
	return func() error { close(stop); <-done; return nil }
}

// openStore opens the store of app passwords and sessions: PostgreSQL with
// -postgres, else the SQLite file in the data folder.
func openStore(ctx context.Context, cfg *config, logger *slog.Logger) (*sqlstore.Store, error) {
	storeOpts := &sqlstore.Options{Logger: logger.With("component", "sqlstore")}
	openCtx, cancel := context.WithTimeout(ctx, 30*time.Second)
	defer cancel()
	if cfg.postgres != "" {
		return sqlstore.OpenPostgres(openCtx, cfg.postgres, storeOpts)
	}
	db := filepath.Join(cfg.data, "appauth.db")
	if err := makePrivateFile(db); err != nil {
		return nil, fmt.Errorf("database: %w", err)
	}
	return sqlstore.OpenSQLite(openCtx, db, storeOpts)
}

// openDAV opens the users' DAV data and moves the login-named folders of
// older versions to their owners' ID folders, asking dir who owns a login
// now (each lookup under a deadline; a login it cannot answer for keeps its
// folder until the next start).
func openDAV(ctx context.Context, cfg *config, dir auth.Directory, logger *slog.Logger) (*davstore.Store, error) {
	if err := makePrivateDir(filepath.Join(cfg.data, "dav")); err != nil {
		return nil, fmt.Errorf("data folder: %w", err)
	}
	dav, err := davstore.New(filepath.Join(cfg.data, "dav"), davPrefix, userFromContext)
	if err != nil {
		return nil, err
	}
	// Once the directory is unavailable, the other folders wait for the
	// next start rather than a lookup deadline each.
	var down error
	lookup := func(ctx context.Context, login string) (string, error) {
		if down != nil {
			return "", down
		}
		ctx, cancel := context.WithTimeout(ctx, 10*time.Second)
		defer cancel()
		u, err := dir.LookupUser(ctx, login)
		if errors.Is(err, auth.ErrNotFound) {
			return "", davstore.ErrNoSuchUser
		}
		if errors.Is(err, auth.ErrUnavailable) {
			down = err
		}
		if err != nil {
			return "", err
		}
		return u.ID, nil
	}
	if err := dav.MigrateLogins(ctx, lookup, logger.With("component", "davstore")); err != nil {
		return nil, err
	}
	return dav, nil
}

// makePrivateDir creates dir, or makes an existing one, readable by its
// owner only: it holds the pepper, the database and every user's data.
func makePrivateDir(dir string) error {
	if err := os.MkdirAll(dir, 0o700); err != nil {
		return err
	}
	return os.Chmod(dir, 0o700)
}

// makePrivateFile creates name empty, or makes an existing one, readable
// by its owner only. SQLite gives its -wal and -shm files the database
// file's mode.
func makePrivateFile(name string) error {
	f, err := os.OpenFile(name, os.O_RDWR|os.O_CREATE, 0o600)
	if err != nil {
		return err
	}
	f.Close()
	for _, n := range []string{name, name + "-wal", name + "-shm"} {
		if err := os.Chmod(n, 0o600); err != nil && !errors.Is(err, os.ErrNotExist) {
			return err
		}
	}
	return nil
}

func storeKind(cfg *config) string {
	if cfg.postgres != "" {
		return "postgres"
	}
	return "sqlite"
}

func dirKind(cfg *config) string {
	if cfg.ldapURL != "" {
		return "ldap"
	}
	return "htpasswd"
}

// baseURL is the server's address as a URL with a trailing slash; a listener
// on every interface is shown as localhost.
func baseURL(a net.Addr, tls bool) string {
	scheme := "http"
	if tls {
		scheme = "https"
	}
	host, port, _ := net.SplitHostPort(a.String())
	if ip := net.ParseIP(host); ip != nil && ip.IsUnspecified() {
		host = "localhost"
	}
	return scheme + "://" + net.JoinHostPort(host, port) + "/"
}

// printBanner tells a person what is running and what to do next. It prints
// the demo password the one time it exists.
func printBanner(w io.Writer, cfg *config, base, ssoBase string, newPepper bool, demoPassword string) {
	fmt.Fprintf(w, "appauth DAV server\n\n")
	if newPepper {
		fmt.Fprintf(w, "Created %s (the secret key of app passwords; keep it, back it up, never share it).\n", cfg.pepperFile)
	}
	if demoPassword != "" {
		fmt.Fprintf(w, "Created %s with a demo user. Its password is shown only this once:\n\n", cfg.users)
		fmt.Fprintf(w, "  username: %s\n  password: %s\n\n", demoUser, demoPassword)
	}
	printSSO(w, &cfg.oidc, ssoBase)
	fmt.Fprintf(w, "Listening on %s\n\n", base)
	fmt.Fprintf(w, "  Sign-in and app passwords:  %s\n", base)
	fmt.Fprintf(w, "  CalDAV and CardDAV:         %s  (or %sdav/)\n", base, base)
	fmt.Fprintf(w, "  WebDAV files:               %sdav/files/USERNAME/\n", base)
	fmt.Fprintf(w, "  Nextcloud apps and DAVx5:   %s  (\"Login with Nextcloud\": nothing to copy)\n\n", base)
	fmt.Fprintf(w, "Next: open %s in a browser, sign in, and under Devices & sessions create an\n", base)
	fmt.Fprintf(w, "app password for each device. Devices sign in with the username and that app\n")
	fmt.Fprintf(w, "password, never the account password.\n")
	if cfg.ldapURL == "" {
		fmt.Fprintf(w, "Add users with: go run ./examples/davserver -add-user NAME\n")
	}
	fmt.Fprintln(w)
}
