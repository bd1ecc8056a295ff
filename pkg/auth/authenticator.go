package auth

import (
	"context"
	"crypto/hmac"
	"crypto/rand"
	"crypto/sha256"
	"encoding/binary"
	"encoding/hex"
	"errors"
	"fmt"
	"net"
	"net/http"
	"net/netip"
	"runtime"
	"strings"
	"sync"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/promauto"
	"golang.org/x/crypto/bcrypt"

	"github.com/rootuip/sre/pkg/clock"
)

// Defaults of Limits.
const (
	DefaultFailureBurst = 10
	DefaultFailureEvery = 6 * time.Second
	DefaultClients      = 16384
	// maxGood bounds the verified credentials remembered. Only credentials
	// that authenticate enter it (failed attempts never evict them): about
	// one per user and token.
	maxGood = 4096
	// maxBad bounds the failed credentials remembered; it is emptied when
	// full.
	maxBad = 4096
)

// ErrUnauthenticated is the error of missing or wrong credentials.
var ErrUnauthenticated = errors.New("missing or wrong credentials (basic auth or Authorization: Bearer <token>)")

// LimitedError is the error of a client over its limit of failed attempts
// for a user name (or with tokens): it is answered 429 with Retry-After,
// whatever the password, until RetryAfter has passed.
type LimitedError struct {
	RetryAfter time.Duration
}

func (e *LimitedError) Error() string {
	return fmt.Sprintf("too many failed authentication attempts for this user from this address: retry in %s", retrySeconds(e.RetryAfter))
}

// RetryAfterSeconds is RetryAfter in whole seconds, rounded up (at least
// 1), for the Retry-After header.
func (e *LimitedError) RetryAfterSeconds() int64 {
	return int64(retrySeconds(e.RetryAfter) / time.Second)
}

func retrySeconds(d time.Duration) time.Duration {
	return max(time.Second, (d+time.Second-1)/time.Second*time.Second)
}

// Limits bound what authenticating costs and what a client that fails may
// make sred spend. The zero value takes the defaults.
type Limits struct {
	// Comparisons is how many bcrypt comparisons run at once (default
	// GOMAXPROCS, at least 2). A client runs one at a time, so it never
	// holds all of them.
	Comparisons int
	// FailureBurst is how many failed attempts a client may make in a row
	// for one user name, or with tokens (default 10); beyond it every
	// request of the client for that user (or with a token that is not a
	// SHA-256 one) is answered 429 until FailureEvery has passed.
	FailureBurst int
	// FailureEvery gives a client one more failed attempt per interval
	// (default 6s: 10 a minute).
	FailureEvery time.Duration
	// Clients bounds the clients whose failed attempts are remembered
	// (default 16384).
	Clients int
	// Clock times the limit (the wall clock when nil).
	Clock clock.Clock
	// Compare compares a bcrypt hash with a secret
	// (bcrypt.CompareHashAndPassword when nil).
	Compare func(hash, secret []byte) error
	// Registerer receives sre_auth_* metrics (nil: not registered).
	Registerer prometheus.Registerer
}

// Authenticator checks credentials against a users file.
//
// An API token is found by its SHA-256 (keyed, in an index built at load):
// one hash, no bcrypt comparison, whatever the number of tokens. A password
// is checked with bcrypt, at most Limits.Comparisons at once and one at a
// time per client; an unknown user costs the same comparison (with a fake
// hash) as a wrong password. Credentials that authenticated are remembered
// until the users change, in a cache that failed attempts never enter, so
// a client sending its credentials with every request costs one
// comparison; failed credentials are remembered apart, in a bounded cache
// emptied when full. Concurrent requests with the same credentials share
// one comparison.
//
// A client (an IPv4 address, or an IPv6 /64) may fail Limits.FailureBurst
// times in a row for one user name (or with tokens), then once per
// Limits.FailureEvery: beyond that, every one of its requests for that user
// is refused with a LimitedError (429), without any comparison and whatever
// the password, so that a client guessing a password neither holds the
// comparisons valid users wait for nor learns anything; the other users
// behind the same address (a reverse proxy) are not locked out, and a
// SHA-256 token, which cannot be guessed, is never limited.
type Authenticator struct {
	l        Limits
	key      [32]byte // of the keyed hashes of the index and the caches
	sem      chan struct{}
	failures *failures

	mu  sync.Mutex
	gen *generation

	sessMu   sync.Mutex
	sessions map[*session]struct{}

	fakeMu     sync.Mutex
	fakeHashes map[int][]byte // by cost

	attempts    *prometheus.CounterVec
	comparisons prometheus.Counter
	revoked     prometheus.Counter
}

// generation is the users in force and what was learnt about them; a
// reload starts a new one, so that nothing learnt of the old users
// survives it. Its maps are guarded by Authenticator.mu.
type generation struct {
	users *UsersFile
	// tokens finds a SHA-256 token by the keyed hash of its SHA-256.
	tokens map[[32]byte]Token
	// bcryptTokens are the tokens given as bcrypt hashes.
	bcryptTokens []Token
	// fakeHash is compared for unknown users.
	fakeHash []byte
	good     map[[32]byte]verdict
	bad      map[[32]byte]struct{}
	flights  map[[32]byte]*flight
}

// verdict is a successful authentication: who, and by which entry of the
// users file.
type verdict struct {
	p Principal
	g grant
}

// grant names the entry of the users file a credential matched (its name
// and its secret as written in the file): a reload that removes or changes
// that entry ends the streams it opened.
type grant struct {
	name, secret string
}

// flight is one comparison that concurrent requests with the same
// credentials wait for.
type flight struct {
	done chan struct{}
	v    verdict
	ok   bool
	err  error
}

// credentials are what a request presents.
type credentials struct {
	token          bool
	user, password string // or the token in password
}

// fakeHash is compared when the user does not exist, so that response times
// do not tell which users exist: a hash of cost 10 (htpasswd -nBC 10), or
// one of the cost most users' hashes have (fakeHashOf).
var fakeHash = []byte("$2a$10$xigoqRvU4BahZJSXUNJZS.tyMBem4B3t/FeNUHi81.dtUoRxzOmE6")

// fakeHashOf returns a hash of the cost most hashes of f have, made once
// per cost.
func (a *Authenticator) fakeHashOf(f *UsersFile) []byte {
	costs := map[int]int{}
	most := bcrypt.DefaultCost
	for _, u := range f.Users {
		c, err := bcrypt.Cost([]byte(u.PasswordHash))
		if err != nil {
			continue
		}
		costs[c]++
		if costs[c] > costs[most] || (costs[c] == costs[most] && c > most) {
			most = c
		}
	}
	if most == bcrypt.DefaultCost {
		return fakeHash
	}
	a.fakeMu.Lock()
	defer a.fakeMu.Unlock()
	if h, ok := a.fakeHashes[most]; ok {
		return h
	}
	var secret [16]byte
	_, _ = rand.Read(secret[:])
	h, err := bcrypt.GenerateFromPassword([]byte(hex.EncodeToString(secret[:])), most)
	if err != nil {
		return fakeHash
	}
	a.fakeHashes[most] = h
	return h
}

// NewAuthenticator returns an authenticator for f (nil: nobody) within l.
func NewAuthenticator(f *UsersFile, l Limits) *Authenticator {
	if l.Comparisons <= 0 {
		l.Comparisons = max(2, runtime.GOMAXPROCS(0))
	}
	l = l.withFailureDefaults()
	l.Clock = clock.OrReal(l.Clock)
	if l.Compare == nil {
		l.Compare = bcrypt.CompareHashAndPassword
	}
	a := &Authenticator{
		l:          l,
		sem:        make(chan struct{}, l.Comparisons),
		failures:   newFailures(l),
		sessions:   map[*session]struct{}{},
		fakeHashes: map[int][]byte{},
	}
	if _, err := rand.Read(a.key[:]); err != nil {
		panic(fmt.Sprintf("auth: read random key: %v", err))
	}
	reg := promauto.With(l.Registerer)
	a.attempts = reg.NewCounterVec(prometheus.CounterOpts{
		Name: "sre_auth_attempts_total",
		Help: "Requests that presented credentials (or none, on a route that needs them), by result: success, failure (answered 401) or limited (answered 429 because the client is over its limit of failed attempts).",
	}, []string{"result"})
	for _, r := range []string{"success", "failure", "limited"} {
		a.attempts.WithLabelValues(r)
	}
	a.comparisons = reg.NewCounter(prometheus.CounterOpts{
		Name: "sre_auth_bcrypt_comparisons_total",
		Help: "bcrypt comparisons of passwords (and of tokens still given as bcrypt hashes); credentials already verified and SHA-256 tokens cost none.",
	})
	a.revoked = reg.NewCounter(prometheus.CounterOpts{
		Name: "sre_auth_streams_revoked_total",
		Help: "Live streams (/api/v1/events, /api/v1/stream) and running profiles (/debug/pprof/profile, /debug/pprof/trace) ended because a reload removed their user or token, changed its password or token, or changed its role (lowered or raised).",
	})
	a.SetUsers(f)
	return a
}

// SetUsers replaces the users and tokens (on reload): what was learnt about
// the old ones is forgotten, and the live streams of users and tokens that
// no longer authenticate, or whose role changed, are ended (see hold).
func (a *Authenticator) SetUsers(f *UsersFile) {
	if f == nil {
		f = &UsersFile{}
	}
	g := &generation{
		users:    f,
		fakeHash: a.fakeHashOf(f),
		tokens:   map[[32]byte]Token{},
		good:     map[[32]byte]verdict{},
		bad:      map[[32]byte]struct{}{},
		flights:  map[[32]byte]*flight{},
	}
	for _, t := range f.Tokens {
		if d, ok := t.digest(); ok {
			g.tokens[a.tokenKey(d)] = t
		} else {
			g.bcryptTokens = append(g.bcryptTokens, t)
		}
	}
	// Streams register under sessMu (hold), checked against the users in
	// force then: a stream is either checked there against f or here.
	a.sessMu.Lock()
	defer a.sessMu.Unlock()
	a.mu.Lock()
	a.gen = g
	a.mu.Unlock()
	for s := range a.sessions {
		if err := f.allows(s.g, s.role); err != nil {
			delete(a.sessions, s)
			a.revoked.Inc()
			s.cancel(err)
		}
	}
}

// AddUsers adds basic-auth users given as name -> bcrypt hash with one role
// (the basic_auth_users of --web.config.file). A name already in the users
// file is an error.
func (a *Authenticator) AddUsers(hashes map[string]string, role Role) error {
	next, err := a.Users().WithUsers(hashes, role)
	if err != nil {
		return err
	}
	a.SetUsers(next)
	return nil
}

// Empty reports whether no user and no token is configured.
func (a *Authenticator) Empty() bool {
	u := a.Users()
	return len(u.Users) == 0 && len(u.Tokens) == 0
}

// Users returns the users and tokens in force.
func (a *Authenticator) Users() *UsersFile {
	a.mu.Lock()
	defer a.mu.Unlock()
	return a.gen.users
}

// Authenticate checks the credentials of r: basic auth, or an
// "Authorization: Bearer <token>" header. The error is ErrUnauthenticated,
// a *LimitedError when the client (r.RemoteAddr) is over its limit of
// failed attempts, or the request context's error when the client left
// while waiting for a comparison.
func (a *Authenticator) Authenticate(r *http.Request) (Principal, error) {
	v, err := a.authenticate(r)
	return v.p, err
}

func (a *Authenticator) authenticate(r *http.Request) (verdict, error) {
	if n := len(r.Header.Values("Authorization")); n > 1 {
		// Which one counts would be a guess: a proxy in front may read
		// the last, net/http reads the first.
		a.attempts.WithLabelValues("failure").Inc()
		return verdict{}, fmt.Errorf("%w: %d Authorization headers, send one", ErrUnauthenticated, n)
	}
	var c credentials
	if tok, ok := BearerToken(r.Header); ok {
		c = credentials{token: true, password: strings.TrimSpace(tok)}
	} else if u, pw, ok := r.BasicAuth(); ok {
		c = credentials{user: u, password: pw}
	} else {
		a.attempts.WithLabelValues("failure").Inc()
		return verdict{}, ErrUnauthenticated
	}
	v, err := a.check(r.Context(), ClientOf(r.RemoteAddr), c)
	var limited *LimitedError
	switch {
	case err == nil:
		a.attempts.WithLabelValues("success").Inc()
	case errors.As(err, &limited):
		a.attempts.WithLabelValues("limited").Inc()
	case errors.Is(err, ErrUnauthenticated):
		a.attempts.WithLabelValues("failure").Inc()
	}
	return v, err
}

// check authenticates c for client.
func (a *Authenticator) check(ctx context.Context, client string, c credentials) (verdict, error) {
	a.mu.Lock()
	g := a.gen
	a.mu.Unlock()
	key := a.credKey(c)
	if c.token {
		// A SHA-256 token is found without a comparison, and cannot be
		// guessed: it is never limited, so that others' failures behind
		// the same address (a reverse proxy) do not lock its holder out.
		a.mu.Lock()
		t, ok := g.tokens[key]
		a.mu.Unlock()
		if ok {
			return tokenVerdict(t), nil
		}
	}
	// Failures are limited per client and user name (per client for
	// tokens), as Grafana limits logins per user: a client guessing one
	// user's password, or many users behind the same reverse proxy, does
	// not lock the other users out. Comparisons run one at a time per
	// client whatever the user, so that guessing many users' passwords at
	// once does not hold every comparison.
	// A user name is remembered by its keyed hash: a client sending
	// user names of tens of KiB, one new name a request, makes sred keep
	// 32 bytes for each, not the names.
	limitKey := "t\x00" + client
	if !c.token {
		u := a.mac("limit", c.user)
		limitKey = "p\x00" + client + "\x00" + string(u[:])
	}
	cl, err := a.failures.acquire(limitKey, a.l.Clock.Now())
	if err != nil {
		return verdict{}, err
	}
	defer a.failures.release(cl)
	turn, err := a.failures.acquire("c\x00"+client, a.l.Clock.Now())
	if err != nil {
		return verdict{}, err
	}
	defer a.failures.release(turn)

	if v, ok := a.known(g, key, c); ok {
		return v, nil
	}
	// Count the attempt as failed before anything is spent on it; a
	// success gives it back.
	if err := a.failures.reserve(cl, a.l.Clock.Now()); err != nil {
		return verdict{}, err
	}
	if c.token && (c.password == "" || len(g.bcryptTokens) == 0) {
		// No token to compare with: no bcrypt for unknown tokens.
		return verdict{}, ErrUnauthenticated
	}
	v, ok, err := a.verify(ctx, g, turn, key, c)
	if err != nil {
		return verdict{}, err
	}
	if !ok {
		return verdict{}, ErrUnauthenticated
	}
	a.failures.refund(cl)
	return v, nil
}

// known answers what needs no comparison: a SHA-256 token, credentials
// that authenticated before.
func (a *Authenticator) known(g *generation, key [32]byte, c credentials) (verdict, bool) {
	a.mu.Lock()
	defer a.mu.Unlock()
	if c.token {
		if t, ok := g.tokens[key]; ok {
			return tokenVerdict(t), true
		}
	}
	v, ok := g.good[key]
	return v, ok
}

// verify compares c with the bcrypt hashes it may match, once for all the
// concurrent requests presenting c, and remembers the result.
func (a *Authenticator) verify(ctx context.Context, g *generation, cl *client, key [32]byte, c credentials) (verdict, bool, error) {
	for {
		a.mu.Lock()
		if _, bad := g.bad[key]; bad {
			a.mu.Unlock()
			return verdict{}, false, nil
		}
		if f, running := g.flights[key]; running {
			a.mu.Unlock()
			select {
			case <-f.done:
			case <-ctx.Done():
				return verdict{}, false, ctx.Err()
			}
			if f.err == nil {
				return f.v, f.ok, nil
			}
			// Its client left: compare for this one.
			continue
		}
		f := &flight{done: make(chan struct{})}
		g.flights[key] = f
		a.mu.Unlock()

		f.v, f.ok, f.err = a.compare(ctx, g, cl, c)
		a.mu.Lock()
		delete(g.flights, key)
		switch {
		case f.err != nil:
		case f.ok:
			if len(g.good) >= maxGood {
				// Only credentials that authenticated get here.
				for k := range g.good {
					delete(g.good, k)
					break
				}
			}
			g.good[key] = f.v
		default:
			if len(g.bad) >= maxBad {
				clear(g.bad)
			}
			g.bad[key] = struct{}{}
		}
		a.mu.Unlock()
		close(f.done)
		return f.v, f.ok, f.err
	}
}

// compare runs the bcrypt comparisons of c: one for a password (with
// fakeHash for an unknown user), one per bcrypt hashed token for a token.
// It waits for the client's turn, then for one of the Limits.Comparisons.
func (a *Authenticator) compare(ctx context.Context, g *generation, cl *client, c credentials) (verdict, bool, error) {
	select {
	case cl.turn <- struct{}{}:
	case <-ctx.Done():
		return verdict{}, false, ctx.Err()
	}
	defer func() { <-cl.turn }()
	select {
	case a.sem <- struct{}{}:
	case <-ctx.Done():
		return verdict{}, false, ctx.Err()
	}
	defer func() { <-a.sem }()

	if c.token {
		for _, t := range g.bcryptTokens {
			a.comparisons.Inc()
			if a.l.Compare([]byte(t.Hash), []byte(c.password)) == nil {
				return tokenVerdict(t), true, nil
			}
		}
		return verdict{}, false, nil
	}
	u, found := g.users.Users[c.user]
	hash := []byte(u.PasswordHash)
	if !found {
		hash = g.fakeHash
	}
	a.comparisons.Inc()
	err := a.l.Compare(hash, []byte(c.password))
	if !found || err != nil {
		return verdict{}, false, nil
	}
	return verdict{
		p: Principal{Name: c.user, Role: u.Role, OnCallID: u.OnCall},
		g: grant{name: c.user, secret: u.PasswordHash},
	}, true, nil
}

func tokenVerdict(t Token) verdict {
	return verdict{
		p: Principal{Name: t.Name, Role: t.Role, OnCallID: t.OnCall},
		g: grant{name: t.Name, secret: t.secret()},
	}
}

// BearerToken returns the token of an "Authorization: Bearer <token>"
// header. The scheme is matched without regard to case (RFC 9110 11.1):
// Prometheus and Alertmanager send the authorization type as configured,
// "bearer" included. A request with more than one Authorization header has
// no token: which one a proxy in front read is unknown.
func BearerToken(h http.Header) (string, bool) {
	if len(h.Values("Authorization")) != 1 {
		return "", false
	}
	v := h.Get("Authorization")
	const scheme = "Bearer "
	if len(v) < len(scheme) || !strings.EqualFold(v[:len(scheme)], scheme) {
		return "", false
	}
	// RFC 9110 11.4: one or more spaces after the scheme.
	return strings.TrimLeft(v[len(scheme):], " "), true
}

// credKey is the key of c in the index and the caches: a keyed hash (with
// a random key of this process), so that the time a map lookup takes says
// nothing an attacker could use. A token's key is that of its SHA-256, as
// the index's.
func (a *Authenticator) credKey(c credentials) [32]byte {
	if c.token {
		return a.tokenKey(sha256.Sum256([]byte(c.password)))
	}
	return a.mac("user", c.user, c.password)
}

func (a *Authenticator) tokenKey(d [sha256.Size]byte) [32]byte {
	return a.mac("token", string(d[:]))
}

func (a *Authenticator) mac(parts ...string) [32]byte {
	h := hmac.New(sha256.New, a.key[:])
	var n [8]byte
	for _, s := range parts {
		binary.BigEndian.PutUint64(n[:], uint64(len(s)))
		h.Write(n[:])
		h.Write([]byte(s))
	}
	var k [32]byte
	h.Sum(k[:0])
	return k
}

// ClientOf returns the client a remote address counts as for the limit of
// failed attempts: its IP address, an IPv6 address's /64 (what one host is
// usually given), or the address itself when it is not an IP address.
func ClientOf(remoteAddr string) string {
	host, _, err := net.SplitHostPort(remoteAddr)
	if err != nil {
		host = remoteAddr
	}
	ip, err := netip.ParseAddr(host)
	if err != nil {
		return remoteAddr
	}
	ip = ip.Unmap().WithZone("")
	if ip.Is6() {
		p, _ := ip.Prefix(64)
		return p.String()
	}
	return ip.String()
}

// failures limits the failed attempts of each client, as a generic cell
// rate algorithm: a client's failures are due at tat (its theoretical
// arrival time), each failure moves it FailureEvery further, and a client
// whose tat is more than burst-every ahead may not fail again until it is
// not.
type failures struct {
	burst, every time.Duration
	max          int

	mu      sync.Mutex
	clients map[string]*client
}

type client struct {
	key string
	tat time.Time
	// refs counts the requests of the client being authenticated: it is
	// not forgotten meanwhile.
	refs int
	// turn holds the client's one comparison at a time.
	turn chan struct{}
}

// acquire returns the state of a client that may still fail, or a
// *LimitedError.
func (f *failures) acquire(key string, now time.Time) (*client, error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	c, ok := f.clients[key]
	if !ok {
		if len(f.clients) >= f.max && !f.evict(now) {
			// Every remembered client is being authenticated.
			return nil, &LimitedError{RetryAfter: time.Second}
		}
		c = &client{key: key, tat: now, turn: make(chan struct{}, 1)}
		f.clients[key] = c
	}
	if wait := f.wait(c, now); wait > 0 {
		return nil, &LimitedError{RetryAfter: wait}
	}
	c.refs++
	return c, nil
}

// wait is how long c must wait before it may fail again.
func (f *failures) wait(c *client, now time.Time) time.Duration {
	return c.tat.Add(f.every).Sub(now) - f.burst
}

// reserve counts a failure of c, unless c may not fail any more.
func (f *failures) reserve(c *client, now time.Time) error {
	f.mu.Lock()
	defer f.mu.Unlock()
	if wait := f.wait(c, now); wait > 0 {
		return &LimitedError{RetryAfter: wait}
	}
	if c.tat.Before(now) {
		c.tat = now
	}
	c.tat = c.tat.Add(f.every)
	return nil
}

// refund takes back the failure reserve counted.
func (f *failures) refund(c *client) {
	f.mu.Lock()
	defer f.mu.Unlock()
	c.tat = c.tat.Add(-f.every)
}

func (f *failures) release(c *client) {
	f.mu.Lock()
	defer f.mu.Unlock()
	c.refs--
}

// evict forgets the clients that may fail a whole burst again, or else the
// one closest to it; false when every client is in use.
func (f *failures) evict(now time.Time) bool {
	var oldest *client
	for k, c := range f.clients {
		if c.refs > 0 {
			continue
		}
		if !c.tat.After(now) {
			delete(f.clients, k)
			continue
		}
		if oldest == nil || c.tat.Before(oldest.tat) {
			oldest = c
		}
	}
	if len(f.clients) < f.max {
		return true
	}
	if oldest == nil {
		return false
	}
	delete(f.clients, oldest.key)
	return true
}

// FailureLimiter limits the failed attempts of each key at a secret other
// than the credentials (the deploy gate's override token) as the
// Authenticator limits failed credentials: Limits.FailureBurst failures in
// a row, then one per Limits.FailureEvery, every attempt beyond that
// refused with a *LimitedError (429) before the secret is compared,
// whatever it is (no free guesses). A failure counts before its check
// runs, a success gives it back, so a key that does not fail is never
// limited. Callers key it by client (ClientOf) and principal, so that one
// principal guessing behind a reverse proxy does not lock out the others.
type FailureLimiter struct {
	f     *failures
	clock clock.Clock
}

// NewFailureLimiter returns a FailureLimiter within l's FailureBurst,
// FailureEvery, Clients and Clock (defaults as NewAuthenticator's).
func NewFailureLimiter(l Limits) *FailureLimiter {
	l = l.withFailureDefaults()
	return &FailureLimiter{f: newFailures(l), clock: clock.OrReal(l.Clock)}
}

// withFailureDefaults returns l with the failure limits' defaults set.
func (l Limits) withFailureDefaults() Limits {
	if l.FailureBurst <= 0 {
		l.FailureBurst = DefaultFailureBurst
	}
	if l.FailureEvery <= 0 {
		l.FailureEvery = DefaultFailureEvery
	}
	if l.Clients <= 0 {
		l.Clients = DefaultClients
	}
	return l
}

// newFailures returns the failure counts of l (defaults set).
func newFailures(l Limits) *failures {
	return &failures{burst: time.Duration(l.FailureBurst) * l.FailureEvery, every: l.FailureEvery, max: l.Clients, clients: map[string]*client{}}
}

// Check runs check for key unless key is over its limit of failures (a
// *LimitedError, check not run). check's false or error counts as a
// failure; its error is returned.
func (l *FailureLimiter) Check(key string, check func() (bool, error)) (bool, error) {
	now := l.clock.Now()
	c, err := l.f.acquire(key, now)
	if err != nil {
		return false, err
	}
	defer l.f.release(c)
	if err := l.f.reserve(c, now); err != nil {
		return false, err
	}
	ok, err := check()
	if ok && err == nil {
		l.f.refund(c)
	}
	return ok, err
}

// Take counts one attempt of key that is never given back, and returns a
// *LimitedError (nothing counted) when key is over its limit: a rate limit
// of FailureBurst attempts in a row, then one per FailureEvery. It bounds
// requests that cost the server whether they succeed or not (an analysis
// run queries Prometheus either way).
func (l *FailureLimiter) Take(key string) error {
	_, err := l.Check(key, func() (bool, error) { return false, nil })
	return err
}
