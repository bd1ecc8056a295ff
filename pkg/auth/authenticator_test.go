package auth_test

import (
	"bytes"
	"fmt"
	"net/http"
	"net/http/httptest"
	"runtime"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/stretchr/testify/require"
	"golang.org/x/crypto/bcrypt"

	"github.com/rootuip/sre/pkg/auth"
	"github.com/rootuip/sre/pkg/clock"
)

// login authenticates user with basic auth from the remote address.
func login(a *auth.Authenticator, remote, user, pw string) (auth.Principal, error) {
	r := httptest.NewRequest(http.MethodGet, "/", nil)
	r.RemoteAddr = remote
	r.SetBasicAuth(user, pw)
	return a.Authenticate(r)
}

// bearer authenticates a bearer token from the remote address.
func bearer(a *auth.Authenticator, remote, token string) (auth.Principal, error) {
	r := httptest.NewRequest(http.MethodGet, "/", nil)
	r.RemoteAddr = remote
	r.Header.Set("Authorization", "Bearer "+token)
	return a.Authenticate(r)
}

// comparer is a Limits.Compare counting its calls: bcrypt, except that a
// password starting with "wrong-" fails at once and one starting with
// "guess-" fails when the test releases it.
type comparer struct {
	calls   atomic.Int64
	entered chan struct{} // a "guess-" comparison started
	release chan struct{} // one receive per "guess-" comparison
	mu      sync.Mutex
	hashes  [][]byte // the hashes compared
	running int      // "guess-" comparisons running
	most    int      // the most that ran at once
}

func newComparer() *comparer {
	return &comparer{entered: make(chan struct{}, 100), release: make(chan struct{})}
}

func (c *comparer) compare(hash, pw []byte) error {
	c.calls.Add(1)
	c.mu.Lock()
	c.hashes = append(c.hashes, hash)
	c.mu.Unlock()
	switch {
	case bytes.HasPrefix(pw, []byte("wrong-")):
		return bcrypt.ErrMismatchedHashAndPassword
	case bytes.HasPrefix(pw, []byte("guess-")):
		c.mu.Lock()
		c.running++
		c.most = max(c.most, c.running)
		c.mu.Unlock()
		c.entered <- struct{}{}
		<-c.release
		c.mu.Lock()
		c.running--
		c.mu.Unlock()
		return bcrypt.ErrMismatchedHashAndPassword
	}
	return bcrypt.CompareHashAndPassword(hash, pw)
}

// await receives from ch; the deadline only turns a hang into a failure.
func await[T any](t *testing.T, ch <-chan T, what string) T {
	t.Helper()
	select {
	case v := <-ch:
		return v
	case <-time.After(time.Minute):
		t.Fatalf("still waiting for %s", what)
	}
	var zero T
	return zero
}

// TestFloodCannotStarveValidUsers: one client sending wrong passwords as
// fast as it can (the probe's 100 connections) gets FailureBurst
// comparisons, run one at a time, so it holds at most one of the
// comparison slots: a valid user who is not cached yet is checked while
// the flood's comparison is still running. Then it is answered 429 for
// everything, its valid guesses included, without any comparison. Failed
// attempts from thousands of clients (more than the cache of failures
// holds) never evict a cached valid credential.
func TestFloodCannotStarveValidUsers(t *testing.T) {
	clk := clock.NewManual(time.Date(2026, 11, 27, 14, 0, 0, 0, time.UTC))
	cmp := newComparer()
	a := auth.NewAuthenticator(testUsers(t), auth.Limits{
		Comparisons: 2, FailureBurst: 5, FailureEvery: time.Minute, Clock: clk, Compare: cmp.compare,
	})
	require.Equal(t, 2, a.ComparisonSlots())
	const attacker = "198.51.100.7:40000"

	// vera logs in: one comparison, then none.
	_, err := login(a, "192.0.2.1:5000", "vera", "vera-pw")
	require.NoError(t, err)
	_, err = login(a, "192.0.2.1:5001", "vera", "vera-pw")
	require.NoError(t, err)
	require.EqualValues(t, 1, cmp.calls.Load())
	require.True(t, a.Remembered("vera", "vera-pw"))

	// 50 concurrent wrong passwords from one client.
	results := make(chan error, 50)
	for i := range 50 {
		go func() {
			_, err := login(a, attacker, "vera", fmt.Sprintf("guess-%d", i))
			results <- err
		}()
	}
	// 45 are refused at once, without waiting for any comparison.
	for range 45 {
		err := await(t, results, "the flood's refusals")
		var limited *auth.LimitedError
		require.ErrorAs(t, err, &limited)
	}
	await(t, cmp.entered, "the flood's first comparison")
	// The flood's comparison runs; rita, not cached yet, gets the other
	// slot at once: the flood's 5 admitted attempts wait for their
	// client's turn, not for a slot.
	rita := make(chan error, 1)
	go func() {
		_, err := login(a, "192.0.2.2:5000", "rita", "rita-pw")
		rita <- err
	}()
	require.NoError(t, await(t, rita, "rita's login while the flood's comparison runs"))
	for range 5 {
		cmp.release <- struct{}{}
		require.ErrorIs(t, await(t, results, "the flood's comparisons"), auth.ErrUnauthenticated)
	}
	require.Equal(t, 1, cmp.most, "the client's comparisons run one at a time")
	require.EqualValues(t, 1+1+5, cmp.calls.Load())

	// The flooding client is refused whatever it sends, vera's valid
	// (cached) password included: no free guesses, no comparison.
	calls := cmp.calls.Load()
	for _, pw := range []string{"guess-more", "vera-pw"} {
		_, err = login(a, attacker, "vera", pw)
		var limited *auth.LimitedError
		require.ErrorAs(t, err, &limited, pw)
		require.Equal(t, time.Minute, limited.RetryAfter)
		require.EqualValues(t, 60, limited.RetryAfterSeconds())
	}
	require.Equal(t, calls, cmp.calls.Load())
	// Its other users, and a token, are not locked out from that address
	// (many users behind one reverse proxy): the limit is per user.
	_, err = login(a, attacker, "rita", "rita-pw")
	require.NoError(t, err)
	_, err = bearer(a, attacker, "tok-admin")
	require.NoError(t, err, "a SHA-256 token is never limited")
	calls = cmp.calls.Load()

	// Wrong passwords from 5,000 clients, more than the cache of failures
	// holds: vera is still cached, and still costs no comparison.
	for i := range 5000 {
		_, err := login(a, fmt.Sprintf("10.%d.%d.1:1", i/250, i%250), "vera", fmt.Sprintf("wrong-%d", i))
		require.ErrorIs(t, err, auth.ErrUnauthenticated)
	}
	require.True(t, a.Remembered("vera", "vera-pw"), "failed attempts evicted a verified credential")
	calls = cmp.calls.Load()
	_, err = login(a, "192.0.2.1:5002", "vera", "vera-pw")
	require.NoError(t, err)
	require.Equal(t, calls, cmp.calls.Load())

	// A minute later the flooding client may fail once more.
	clk.Advance(time.Minute)
	_, err = login(a, attacker, "vera", "wrong-again")
	require.ErrorIs(t, err, auth.ErrUnauthenticated)
	_, err = login(a, attacker, "vera", "wrong-again-2")
	require.ErrorAs(t, err, new(*auth.LimitedError))
}

// TestComparisonSlots: by default GOMAXPROCS comparisons run at once, at
// least 2, so that a client, which runs one at a time, never holds them
// all.
func TestComparisonSlots(t *testing.T) {
	require.Equal(t, max(2, runtime.GOMAXPROCS(0)), auth.NewAuthenticator(nil, auth.Limits{}).ComparisonSlots())
	require.Equal(t, 7, auth.NewAuthenticator(nil, auth.Limits{Comparisons: 7}).ComparisonSlots())
}

// TestFailureLimit: a client (an IPv4 address, an IPv6 /64) may fail
// FailureBurst times in a row for one user name (or with tokens), then once
// per FailureEvery; a success does not count; once over the limit
// everything it sends for that user is refused with the time to wait,
// without a comparison, and its other users are not.
func TestFailureLimit(t *testing.T) {
	clk := clock.NewManual(time.Date(2026, 11, 27, 14, 0, 0, 0, time.UTC))
	cmp := newComparer()
	a := auth.NewAuthenticator(testUsers(t), auth.Limits{FailureBurst: 3, FailureEvery: 10 * time.Second, Clock: clk, Compare: cmp.compare})
	const ok, fail = 0, -1 // want: ok, 401, or the Retry-After of a 429
	for i, s := range []struct {
		advance  time.Duration
		remote   string
		user, pw string // user "" sends pw as a bearer token
		want     time.Duration
		compares int64
		explain  string
	}{
		{0, "192.0.2.1:1", "vera", "wrong-1", fail, 1, ""},
		{0, "192.0.2.1:2", "nobody", "wrong-2", fail, 1, "an unknown user costs a comparison too"},
		{0, "192.0.2.1:3", "vera", "vera-pw", ok, 1, "a success does not count"},
		{0, "192.0.2.1:3", "vera", "vera-pw", ok, 0, "cached"},
		{0, "192.0.2.1:4", "", "tok-unknown", fail, 1, "a failed token (one bcrypt hashed token) counts for tokens"},
		{0, "192.0.2.1:4", "vera", "wrong-1b", fail, 1, ""},
		{0, "192.0.2.1:4", "vera", "wrong-2", fail, 1, "vera's third failure"},
		{0, "192.0.2.1:5", "vera", "wrong-3", 10 * time.Second, 0, "over the limit"},
		{0, "192.0.2.1:6", "vera", "vera-pw", 10 * time.Second, 0, "over the limit, even valid and cached"},
		{0, "[::ffff:192.0.2.1]:7", "vera", "vera-pw", 10 * time.Second, 0, "the same address mapped in IPv6"},
		{0, "192.0.2.1:7", "rita", "rita-pw", ok, 1, "another user from the same address"},
		{0, "192.0.2.2:1", "vera", "wrong-4", fail, 1, "another client"},
		{4 * time.Second, "192.0.2.1:8", "vera", "wrong-5", 6 * time.Second, 0, ""},
		{6 * time.Second, "192.0.2.1:9", "vera", "wrong-6", fail, 1, "one more failure after FailureEvery"},
		{0, "192.0.2.1:10", "vera", "wrong-7", 10 * time.Second, 0, ""},
		{0, "[2001:db8::1]:1", "vera", "wrong-8", fail, 1, ""},
		{0, "[2001:db8::1]:1", "vera", "wrong-9", fail, 1, ""},
		{0, "[2001:db8::2]:1", "vera", "wrong-10", fail, 1, "the same /64"},
		{0, "[2001:db8::3]:1", "vera", "vera-pw", 10 * time.Second, 0, "the same /64, over the limit"},
		{0, "[2001:db8:0:1::1]:1", "vera", "vera-pw", ok, 0, "another /64"},
		{30 * time.Second, "192.0.2.1:11", "vera", "wrong-11", fail, 1, "three failures again after 3 × FailureEvery"},
		{0, "192.0.2.1:12", "vera", "wrong-12", fail, 1, ""},
		{0, "192.0.2.1:13", "vera", "wrong-13", fail, 1, ""},
		{0, "192.0.2.1:14", "vera", "wrong-14", 10 * time.Second, 0, ""},
	} {
		clk.Advance(s.advance)
		before := cmp.calls.Load()
		var err error
		if s.user == "" {
			_, err = bearer(a, s.remote, s.pw)
		} else {
			_, err = login(a, s.remote, s.user, s.pw)
		}
		what := fmt.Sprintf("step %d (%s %s from %s) %s", i, s.user, s.pw, s.remote, s.explain)
		var limited *auth.LimitedError
		switch s.want {
		case ok:
			require.NoError(t, err, what)
		case fail:
			require.ErrorIs(t, err, auth.ErrUnauthenticated, what)
		default:
			require.ErrorAs(t, err, &limited, what)
			require.Equal(t, s.want, limited.RetryAfter, what)
		}
		require.Equal(t, s.compares, cmp.calls.Load()-before, what)
	}
}

// TestLongUserNamesCostLittleMemory: the failed attempts of each user
// name a client sends are remembered by the name's keyed hash, so that a
// client without credentials sending a new user name of 40 KiB with each
// request (a header fits 64 KiB) makes sred keep a few dozen bytes per
// name, and the limit still holds for each name. Before, every name was
// kept whole: 16,384 of them held 650 MB.
func TestLongUserNamesCostLittleMemory(t *testing.T) {
	clk := clock.NewManual(time.Date(2026, 11, 27, 14, 0, 0, 0, time.UTC))
	cmp := newComparer()
	const names = 50
	a := auth.NewAuthenticator(testUsers(t), auth.Limits{FailureBurst: 2, FailureEvery: 10 * time.Second, Clients: 4 * names, Clock: clk, Compare: cmp.compare})
	long := func(i int) string { return fmt.Sprintf("%040960d", i) }
	for i := range names {
		_, err := login(a, "192.0.2.1:1", long(i), "wrong-1")
		require.ErrorIs(t, err, auth.ErrUnauthenticated, "name %d", i)
	}
	require.LessOrEqual(t, a.FailureKeyBytes(), (names+1)*64, "the names are not kept whole")
	for _, pw := range []string{"wrong-2", "wrong-3"} {
		_, err := login(a, "192.0.2.1:1", long(7), pw)
		if pw == "wrong-2" {
			require.ErrorIs(t, err, auth.ErrUnauthenticated)
			continue
		}
		require.ErrorAs(t, err, new(*auth.LimitedError), "a long name is limited as any other")
	}
	_, err := login(a, "192.0.2.1:1", long(8), "wrong-2")
	require.ErrorIs(t, err, auth.ErrUnauthenticated, "another long name is not")
}

// TestTokensWithoutBcrypt: a token given as a SHA-256 is found without any
// bcrypt comparison, and so is rejected an unknown one; only tokens given
// as bcrypt hashes cost comparisons, one per such token, once (a valid one
// is remembered, and so is a rejected one).
func TestTokensWithoutBcrypt(t *testing.T) {
	shaOnly := fmt.Sprintf("tokens:\n  - {name: one, sha256: %s, role: viewer}\n  - {name: two, sha256: %s, role: responder, oncall: two-oc}\n  - {name: three, sha256: %s, role: admin}\n",
		sha("tok-1"), sha("tok-2"), sha("tok-3"))
	mixed := shaOnly + fmt.Sprintf("  - {name: old-1, hash: '%s', role: viewer}\n  - {name: old-2, hash: '%s', role: admin}\n", hash(t, "tok-old-1"), hash(t, "tok-old-2"))
	for _, c := range []struct {
		name, file, token string
		want              auth.Principal // zero: 401
		compares          int64
	}{
		{"sha256 token", shaOnly, "tok-2", auth.Principal{Name: "two", Role: auth.RoleResponder, OnCallID: "two-oc"}, 0},
		{"unknown token", shaOnly, "tok-4", auth.Principal{}, 0},
		{"a token's SHA-256 is not the token", shaOnly, sha("tok-1"), auth.Principal{}, 0},
		{"empty token", mixed, "", auth.Principal{}, 0},
		{"sha256 token among bcrypt ones", mixed, "tok-3", auth.Principal{Name: "three", Role: auth.RoleAdmin}, 0},
		{"unknown token among bcrypt ones", mixed, "tok-4", auth.Principal{}, 2},
		{"bcrypt token", mixed, "tok-old-2", auth.Principal{Name: "old-2", Role: auth.RoleAdmin}, 2},
	} {
		t.Run(c.name, func(t *testing.T) {
			f, err := auth.ParseUsers([]byte(c.file))
			require.NoError(t, err)
			cmp := newComparer()
			a := auth.NewAuthenticator(f, auth.Limits{Compare: cmp.compare})
			for i, want := range []int64{c.compares, 0} { // the second time from memory
				p, err := bearer(a, "192.0.2.1:1", c.token)
				if c.want == (auth.Principal{}) {
					require.ErrorIs(t, err, auth.ErrUnauthenticated)
				} else {
					require.NoError(t, err)
				}
				require.Equal(t, c.want, p)
				require.Equal(t, want, cmp.calls.Swap(0), "bcrypt comparisons, attempt %d", i+1)
			}
		})
	}
}

// TestUnknownUserCostsAComparison: an unknown user costs the comparison a
// wrong password costs, with a hash of the cost the users' hashes have.
func TestUnknownUserCostsAComparison(t *testing.T) {
	cmp := newComparer()
	users := testUsers(t) // bcrypt.MinCost
	a := auth.NewAuthenticator(users, auth.Limits{Compare: cmp.compare})
	for _, user := range []string{"vera", "nobody"} {
		_, err := login(a, "192.0.2.1:1", user, "wrong-pw")
		require.ErrorIs(t, err, auth.ErrUnauthenticated)
	}
	require.EqualValues(t, 2, cmp.calls.Load())
	require.Equal(t, users.Users["vera"].PasswordHash, string(cmp.hashes[0]))
	require.NotEqual(t, cmp.hashes[0], cmp.hashes[1])
	for _, h := range cmp.hashes {
		cost, err := bcrypt.Cost(h)
		require.NoError(t, err)
		require.Equal(t, bcrypt.MinCost, cost, "%s", h)
	}
}
