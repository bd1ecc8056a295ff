package auth

import (
	"bytes"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"sort"
	"strings"

	yaml "go.yaml.in/yaml/v3"
	"golang.org/x/crypto/bcrypt"

	"github.com/rootuip/sre/pkg/yamlerr"
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
//	    sha256: 9f86d08...     # SHA-256 of the token, 64 hexadecimal digits
//	    role: viewer
//
// Passwords are stored as bcrypt hashes only, as exporter-toolkit stores
// basic_auth_users. Tokens are random secrets (at least 128 bits) stored as
// their SHA-256, which finds the token of a request with one hash, whatever
// the number of tokens; a token may still be given as a bcrypt hash (hash:),
// which costs a bcrypt comparison per such token for every unknown token a
// client sends.
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

// Token is one API token: exactly one of SHA256 and Hash is set.
type Token struct {
	Name string `yaml:"name"`
	// SHA256 is the SHA-256 of the token in hexadecimal (printf %s
	// "$TOKEN" | sha256sum). A token is a random secret of at least 128
	// bits (openssl rand -hex 32), so its SHA-256 needs no salt nor work
	// factor, and a request's token is found with one hash.
	SHA256 string `yaml:"sha256,omitempty"`
	// Hash is the bcrypt hash of the token. Deprecated: with bcrypt hashed
	// tokens, every token a client sends that is not known yet is compared
	// with each of them.
	Hash   string `yaml:"hash,omitempty"`
	Role   Role   `yaml:"role"`
	OnCall string `yaml:"oncall,omitempty"`
}

// secret is what authenticates the token, as written in the file.
func (t Token) secret() string {
	if t.SHA256 != "" {
		return "sha256:" + strings.ToLower(t.SHA256)
	}
	return "bcrypt:" + t.Hash
}

// digest returns the token's SHA-256 (ok false for a bcrypt hashed token).
func (t Token) digest() (d [sha256.Size]byte, ok bool) {
	if len(t.SHA256) != hex.EncodedLen(sha256.Size) {
		return d, false
	}
	_, err := hex.Decode(d[:], []byte(t.SHA256))
	return d, err == nil
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
	digests := map[[sha256.Size]byte]int{}
	for i, t := range f.Tokens {
		if t.Name == "" {
			return fmt.Errorf("tokens[%d]: name is required (it is recorded as the actor)", i)
		}
		if names[t.Name] {
			return fmt.Errorf("tokens[%d]: name %q is already used by a user or another token", i, t.Name)
		}
		names[t.Name] = true
		what := fmt.Sprintf("tokens[%d] (%s)", i, t.Name)
		switch {
		case t.SHA256 == "" && t.Hash == "":
			return fmt.Errorf("%s: sha256 (the token's SHA-256) is required", what)
		case t.SHA256 != "" && t.Hash != "":
			return fmt.Errorf("%s: give sha256 or hash, not both", what)
		case t.SHA256 != "":
			d, ok := t.digest()
			if !ok {
				return fmt.Errorf("%s: sha256: want the 64 hexadecimal digits of the token's SHA-256 (printf %%s \"$TOKEN\" | sha256sum), never the token itself", what)
			}
			if j, dup := digests[d]; dup {
				return fmt.Errorf("%s: the same token as tokens[%d] (%s)", what, j, f.Tokens[j].Name)
			}
			digests[d] = i
		default:
			if err := checkHash(what+": hash", t.Hash); err != nil {
				return fmt.Errorf("%w (or give the token's SHA-256 as sha256)", err)
			}
		}
		if t.Role == RoleNone {
			return fmt.Errorf("tokens[%d] (%s): role is required (viewer, responder or admin)", i, t.Name)
		}
	}
	return nil
}

// ParseUsers decodes and validates a users file strictly. A syntax error
// is a *yamlerr.SyntaxError (its line and column), which LoadUsersFile
// names in the file as sred.yml's errors are.
func ParseUsers(b []byte) (*UsersFile, error) {
	var f UsersFile
	dec := yaml.NewDecoder(bytes.NewReader(b))
	dec.KnownFields(true)
	if err := dec.Decode(&f); err != nil && !errors.Is(err, io.EOF) {
		return nil, yamlerr.Rewrite(yamlerr.Located(b, err))
	}
	if err := f.Validate(); err != nil {
		return nil, err
	}
	return &f, nil
}

// LoadUsersFile reads and validates a users file. Its errors name it at
// the line and column of the problem, one a line: "users file
// users.yml:3:7: unknown field \"rol\"", as those of sred.yml, the SLO
// specs and the web config file do (yamlerr.FileSection).
func LoadUsersFile(path string) (*UsersFile, error) {
	b, err := os.ReadFile(path)
	if err != nil {
		return nil, fmt.Errorf("read users file: %w", err)
	}
	f, err := ParseUsers(b)
	if err != nil {
		return nil, fmt.Errorf("users file %w", yamlerr.FileSection(path, b, "", err))
	}
	return f, nil
}

// WithUsers returns f (nil: nobody) with the basic-auth users given as name
// -> bcrypt hash added with one role (the basic_auth_users of
// --web.config.file). A name already in f is an error; f is not changed.
func (f *UsersFile) WithUsers(hashes map[string]string, role Role) (*UsersFile, error) {
	if f == nil {
		f = &UsersFile{}
	}
	next := &UsersFile{Users: make(map[string]User, len(f.Users)+len(hashes)), Tokens: f.Tokens}
	for n, u := range f.Users {
		next.Users[n] = u
	}
	names := make([]string, 0, len(hashes))
	for n := range hashes {
		names = append(names, n)
	}
	sort.Strings(names)
	for _, n := range names {
		if _, dup := next.Users[n]; dup {
			return nil, fmt.Errorf("user %q is defined both in the users file and in basic_auth_users of the web config file", n)
		}
		next.Users[n] = User{PasswordHash: hashes[n], Role: role}
	}
	if err := next.Validate(); err != nil {
		return nil, err
	}
	return next, nil
}

// BcryptTokens returns the names of the tokens given as bcrypt hashes
// (deprecated: see Token.Hash).
func (f *UsersFile) BcryptTokens() []string {
	var names []string
	for _, t := range f.Tokens {
		if t.SHA256 == "" {
			names = append(names, t.Name)
		}
	}
	return names
}
