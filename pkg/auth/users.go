package auth

import (
	"bytes"
	"crypto/sha256"
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"sort"
	"strings"
	"sync"

	yaml "go.yaml.in/yaml/v3"
	"golang.org/x/crypto/bcrypt"
)

// Config is the `auth` section of sred.yml.
//
//	auth:
//	  users_file: users.yml   # users and API tokens (relative to sred.yml)
type Config struct {
	// UsersFile lists the users and API tokens. Empty means no users are
	// configured: sred then needs the explicit no-auth mode to start.
	UsersFile string `yaml:"users_file,omitempty"`
}

// UnmarshalYAML implements yaml.Unmarshaler (strict, see pkg/config).
func (c *Config) UnmarshalYAML(unmarshal func(any) error) error {
	*c = Config{}
	type plain Config
	return unmarshal((*plain)(c))
}

// SetDirectory resolves a relative users_file against dir.
func (c *Config) SetDirectory(dir string) {
	if c.UsersFile != "" && !filepath.IsAbs(c.UsersFile) && dir != "" {
		c.UsersFile = filepath.Join(dir, c.UsersFile)
	}
}

// UsersFile is the file of users and API tokens:
//
//	users:
//	  alice:
//	    password: $2y$10$...   # bcrypt hash (htpasswd -nBC 10 "" | tr -d ':\n')
//	    role: responder        # viewer, responder or admin
//	    oncall: alice          # on-call identity (oncall users), optional
//	tokens:
//	  - name: srectl-ci        # recorded as the actor
//	    hash: $2y$10$...       # bcrypt hash of the token
//	    role: viewer
//
// Passwords and tokens are stored as bcrypt hashes only, as exporter-toolkit
// stores basic_auth_users.
type UsersFile struct {
	Users  map[string]User `yaml:"users"`
	Tokens []Token         `yaml:"tokens"`
}

// User is one entry of `users`.
type User struct {
	// PasswordHash is the bcrypt hash of the password.
	PasswordHash string `yaml:"password"`
	Role         Role   `yaml:"role"`
	// OnCall is the on-call identity of the user ("" when none).
	OnCall string `yaml:"oncall,omitempty"`
}

// Token is one API token.
type Token struct {
	Name string `yaml:"name"`
	// Hash is the bcrypt hash of the token.
	Hash   string `yaml:"hash"`
	Role   Role   `yaml:"role"`
	OnCall string `yaml:"oncall,omitempty"`
}

// UnmarshalYAML reads a role by name.
func (r *Role) UnmarshalYAML(unmarshal func(any) error) error {
	var s string
	if err := unmarshal(&s); err != nil {
		return err
	}
	role, ok := ParseRole(s)
	if !ok {
		return fmt.Errorf("unknown role %q (want viewer, responder or admin)", s)
	}
	*r = role
	return nil
}

// MarshalYAML writes a role by name.
func (r Role) MarshalYAML() (any, error) { return r.String(), nil }

// MarshalText writes a role by name (JSON).
func (r Role) MarshalText() ([]byte, error) { return []byte(r.String()), nil }

func checkHash(what, h string) error {
	if h == "" {
		return fmt.Errorf("%s: missing bcrypt hash", what)
	}
	if _, err := bcrypt.Cost([]byte(h)); err != nil {
		return fmt.Errorf("%s: not a bcrypt hash (store hashes, never clear-text secrets: htpasswd -nBC 10 \"\" | tr -d ':\\n'): %w", what, err)
	}
	return nil
}

// Validate checks every entry.
func (f *UsersFile) Validate() error {
	names := map[string]bool{}
	for name, u := range f.Users {
		if name == "" || strings.ContainsAny(name, ":\x00") {
			return fmt.Errorf("users: invalid user name %q", name)
		}
		if err := checkHash("users: "+name+": password", u.PasswordHash); err != nil {
			return err
		}
		if u.Role == RoleNone {
			return fmt.Errorf("users: %s: role is required (viewer, responder or admin)", name)
		}
		names[name] = true
	}
	for i, t := range f.Tokens {
		if t.Name == "" {
			return fmt.Errorf("tokens[%d]: name is required (it is recorded as the actor)", i)
		}
		if names[t.Name] {
			return fmt.Errorf("tokens[%d]: name %q is already used by a user or another token", i, t.Name)
		}
		names[t.Name] = true
		if err := checkHash(fmt.Sprintf("tokens[%d] (%s): hash", i, t.Name), t.Hash); err != nil {
			return err
		}
		if t.Role == RoleNone {
			return fmt.Errorf("tokens[%d] (%s): role is required (viewer, responder or admin)", i, t.Name)
		}
	}
	return nil
}

// ParseUsers decodes and validates a users file strictly.
func ParseUsers(b []byte) (*UsersFile, error) {
	var f UsersFile
	dec := yaml.NewDecoder(bytes.NewReader(b))
	dec.KnownFields(true)
	if err := dec.Decode(&f); err != nil && !errors.Is(err, io.EOF) {
		return nil, err
	}
	if err := f.Validate(); err != nil {
		return nil, err
	}
	return &f, nil
}

// LoadUsersFile reads and validates a users file.
func LoadUsersFile(path string) (*UsersFile, error) {
	b, err := os.ReadFile(path)
	if err != nil {
		return nil, fmt.Errorf("read users file: %w", err)
	}
	f, err := ParseUsers(b)
	if err != nil {
		return nil, fmt.Errorf("users file %s: %w", path, err)
	}
	return f, nil
}

// Authenticator checks credentials against a users file. Successful and
// failed bcrypt comparisons are cached (keyed by a SHA-256 of the
// credentials, as exporter-toolkit does) so that a client sending its
// credentials with every request costs one bcrypt comparison, not one per
// request; comparisons run one at a time.
type Authenticator struct {
	mu    sync.RWMutex
	users *UsersFile

	bcryptMu sync.Mutex
	cacheMu  sync.Mutex
	cache    map[[32]byte]cached
}

type cached struct {
	p  Principal
	ok bool
}

// maxCache bounds the credential cache; it is emptied when full.
const maxCache = 4096

// fakeHash is compared when the user does not exist, so that response times
// do not tell which users exist.
var fakeHash = []byte("$2a$10$xigoqRvU4BahZJSXUNJZS.tyMBem4B3t/FeNUHi81.dtUoRxzOmE6")

// NewAuthenticator returns an authenticator for f (nil: nobody).
func NewAuthenticator(f *UsersFile) *Authenticator {
	a := &Authenticator{}
	a.SetUsers(f)
	return a
}

// SetUsers replaces the users and tokens (on reload) and empties the cache.
func (a *Authenticator) SetUsers(f *UsersFile) {
	if f == nil {
		f = &UsersFile{}
	}
	a.mu.Lock()
	a.users = f
	a.mu.Unlock()
	a.cacheMu.Lock()
	a.cache = map[[32]byte]cached{}
	a.cacheMu.Unlock()
}

// Empty reports whether no user and no token is configured.
func (a *Authenticator) Empty() bool {
	a.mu.RLock()
	defer a.mu.RUnlock()
	return len(a.users.Users) == 0 && len(a.users.Tokens) == 0
}

// AddUsers adds basic-auth users given as name -> bcrypt hash with one role
// (the basic_auth_users of --web.config.file). A name already in the users
// file is an error.
func (a *Authenticator) AddUsers(hashes map[string]string, role Role) error {
	a.mu.Lock()
	defer a.mu.Unlock()
	next := &UsersFile{Users: map[string]User{}, Tokens: a.users.Tokens}
	for n, u := range a.users.Users {
		next.Users[n] = u
	}
	names := make([]string, 0, len(hashes))
	for n := range hashes {
		names = append(names, n)
	}
	sort.Strings(names)
	for _, n := range names {
		if _, dup := next.Users[n]; dup {
			return fmt.Errorf("user %q is defined both in the users file and in basic_auth_users of the web config file", n)
		}
		next.Users[n] = User{PasswordHash: hashes[n], Role: role}
	}
	if err := next.Validate(); err != nil {
		return err
	}
	a.users = next
	return nil
}

func (a *Authenticator) lookup(key [32]byte, check func() (Principal, bool)) (Principal, bool) {
	a.cacheMu.Lock()
	c, hit := a.cache[key]
	a.cacheMu.Unlock()
	if hit {
		return c.p, c.ok
	}
	a.bcryptMu.Lock()
	p, ok := check()
	a.bcryptMu.Unlock()
	a.cacheMu.Lock()
	if len(a.cache) >= maxCache {
		a.cache = map[[32]byte]cached{}
	}
	a.cache[key] = cached{p, ok}
	a.cacheMu.Unlock()
	return p, ok
}

func credKey(kind, a, b string) [32]byte {
	h := sha256.New()
	for _, s := range []string{kind, a, b} {
		fmt.Fprintf(h, "%d:%s", len(s), s)
	}
	var k [32]byte
	copy(k[:], h.Sum(nil))
	return k
}

// Password checks a user's password.
func (a *Authenticator) Password(user, password string) (Principal, bool) {
	a.mu.RLock()
	u, found := a.users.Users[user]
	a.mu.RUnlock()
	key := credKey("user", user+"\x00"+u.PasswordHash, password)
	return a.lookup(key, func() (Principal, bool) {
		hash := []byte(u.PasswordHash)
		if !found {
			hash = fakeHash
		}
		err := bcrypt.CompareHashAndPassword(hash, []byte(password))
		if !found || err != nil {
			return Principal{}, false
		}
		return Principal{Name: user, Role: u.Role, OnCallID: u.OnCall}, true
	})
}

// Token checks an API token.
func (a *Authenticator) Token(token string) (Principal, bool) {
	a.mu.RLock()
	tokens := a.users.Tokens
	a.mu.RUnlock()
	if token == "" || len(tokens) == 0 {
		return Principal{}, false
	}
	return a.lookup(credKey("token", "", token), func() (Principal, bool) {
		for _, t := range tokens {
			if bcrypt.CompareHashAndPassword([]byte(t.Hash), []byte(token)) == nil {
				return Principal{Name: t.Name, Role: t.Role, OnCallID: t.OnCall}, true
			}
		}
		return Principal{}, false
	})
}

// Users returns the users and tokens in force.
func (a *Authenticator) Users() *UsersFile {
	a.mu.RLock()
	defer a.mu.RUnlock()
	return a.users
}
