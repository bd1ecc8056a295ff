// Package secretfile reads the secrets that sred.yml names by file
// (webhook.bearer_token_file, slos.gate.override_token_files, the
// notification channels' *_file fields) at each use, as Prometheus' HTTP
// client config reads its credentials_file and password_file on each
// request: a rotated secret is picked up without a reload. A use costs one
// stat while the file is unchanged (Read).
package secretfile

import (
	"crypto/sha256"
	"crypto/subtle"
	"errors"
	"fmt"
	"os"
	"strings"
	"sync"
	"time"
)

// Settle is how long a file must have been left unchanged before its
// content is kept between reads.
const Settle = 2 * time.Second

// cache holds the content of the files read, by path (entry).
var cache sync.Map

type entry struct {
	info  os.FileInfo
	value string
}

// Read returns the content of file without surrounding white space. It is
// read when used, so a rotated secret is picked up without a reload; what
// is kept between reads is only a content whose file is the same one
// (os.SameFile: not a new file renamed into place, nor a Kubernetes
// secret's symlink swapped to a new one), of the same size and
// modification time, and was last modified at least Settle before: a
// file written again within the file system's timestamp granularity of the
// read that kept it would otherwise look unchanged, as git's racily clean
// index entries do. A use of an unchanged file is one stat instead of an
// open, a read and a close.
func Read(file string) (string, error) { return read(file, time.Now()) }

// read is Read at the time now.
func read(file string, now time.Time) (string, error) {
	fi, err := os.Stat(file)
	if err != nil {
		return "", fmt.Errorf("read secret file: %w", err)
	}
	if v, ok := cache.Load(file); ok {
		c := v.(entry)
		if os.SameFile(fi, c.info) && fi.Size() == c.info.Size() && fi.ModTime().Equal(c.info.ModTime()) {
			return c.value, nil
		}
	}
	b, err := os.ReadFile(file)
	if err != nil {
		return "", fmt.Errorf("read secret file: %w", err)
	}
	value := strings.TrimSpace(string(b))
	if now.Sub(fi.ModTime()) >= Settle {
		// fi is from before the read: a change during it shows at the
		// next stat.
		cache.Store(file, entry{info: fi, value: value})
	} else {
		cache.Delete(file)
	}
	return value, nil
}

// Source is a secret given inline or by a file that is read at each use.
// The zero Source is no secret.
type Source struct {
	// Value is the inline secret (when File is empty).
	Value string
	// File is the path of the file that holds the secret, as it is opened
	// (resolved against the config file's directory by the caller).
	File string
}

// Inline returns the Source of an inline secret ("" is none).
func Inline(v string) Source { return Source{Value: v} }

// FromFile returns the Source of the secret in file ("" is none).
func FromFile(file string) Source { return Source{File: file} }

// IsZero reports whether s names no secret.
func (s Source) IsZero() bool { return s.Value == "" && s.File == "" }

// ErrEmpty is returned by Source.Get for a file that holds only white space.
var ErrEmpty = errors.New("secret file is empty")

// Get returns the secret: the inline value, or the file's content read now
// (Read). A file that cannot be read or is empty is an error, so that a
// check against the secret fails closed rather than comparing with "".
func (s Source) Get() (string, error) {
	if s.File == "" {
		return s.Value, nil
	}
	v, err := Read(s.File)
	if err != nil {
		return "", err
	}
	if v == "" {
		return "", fmt.Errorf("%w: %s", ErrEmpty, s.File)
	}
	return v, nil
}

// Equal reports whether presented, a secret a client sent, is want, a
// configured one. It compares their SHA-256 digests in constant time:
// subtle.ConstantTimeCompare on the secrets themselves returns at once when
// their lengths differ, which tells a client trying secrets of every length
// how long the configured one is. Every comparison of a presented secret
// with a configured one goes through Equal (TestSecretsComparedByDigest).
func Equal(presented, want string) bool {
	p, w := sha256.Sum256([]byte(presented)), sha256.Sum256([]byte(want))
	return subtle.ConstantTimeCompare(p[:], w[:]) == 1
}
