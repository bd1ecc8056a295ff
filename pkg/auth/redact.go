package auth

import (
	"bytes"
	"context"
	"encoding/json"
	"net/http"
	"path/filepath"
	"strings"
)

// Redact returns text (an error, a runbook step's output, a stored reason)
// as the principal of ctx may read it: whole for an admin; with every
// absolute path of the server's file system cut to its base name
// (RedactPaths) for the other roles and for a request without a principal,
// as FilePath shows a file's path. It is applied where an answer is
// written, never to what is stored: an admin still reads everything.
func Redact(ctx context.Context, text string) string {
	if SeesPaths(ctx) {
		return text
	}
	return RedactPaths(text)
}

// SeesPaths reports whether the principal of ctx reads the server's file
// paths whole: an admin does; the other roles, and a request without a
// principal, read base names (FilePath, Redact).
func SeesPaths(ctx context.Context) bool {
	p, ok := FromContext(ctx)
	return ok && p.Role.Allows(RoleAdmin)
}

// RedactValue returns v (a decoded JSON value: a runbook step's input)
// with Redact applied to every string in it, in copies: v is not changed.
func RedactValue(ctx context.Context, v any) any {
	if SeesPaths(ctx) {
		return v
	}
	return RedactPathsIn(v)
}

// RedactPathsIn returns v (a decoded JSON value) with RedactPaths applied
// to every string in it, in copies: v is not changed.
func RedactPathsIn(v any) any {
	switch t := v.(type) {
	case string:
		return RedactPaths(t)
	case []string:
		out := make([]string, len(t))
		for i, s := range t {
			out[i] = RedactPaths(s)
		}
		return out
	case []any:
		out := make([]any, len(t))
		for i, e := range t {
			out[i] = RedactPathsIn(e)
		}
		return out
	case map[string]string:
		out := make(map[string]string, len(t))
		for k, s := range t {
			out[k] = RedactPaths(s)
		}
		return out
	case map[string]any:
		out := make(map[string]any, len(t))
		for k, e := range t {
			out[k] = RedactPathsIn(e)
		}
		return out
	}
	return v
}

// View returns v as the principal of ctx may read it: v itself for an
// admin, or when v is nil; for the other roles a copy of *v that cut
// rewrote, cutting the server's paths in the fields that can hold them
// (CutPaths, CutEach, CutStrings, CutMap, CutJSON). v is not changed. The
// API's *For functions (runbook.RunFor, chaos.RunFor, ...) are View with
// the cut of their type.
func View[T any](ctx context.Context, v *T, cut func(*T)) *T {
	if v == nil || SeesPaths(ctx) {
		return v
	}
	c := *v
	cut(&c)
	return &c
}

// ViewEach returns s as the principal of ctx may read it: s itself for an
// admin; for the other roles CutEach(s, cut). s is not changed.
func ViewEach[T any](ctx context.Context, s []T, cut func(*T)) []T {
	if SeesPaths(ctx) {
		return s
	}
	return CutEach(s, cut)
}

// CutPaths applies RedactPaths to each string that fields point at.
func CutPaths(fields ...*string) {
	for _, f := range fields {
		*f = RedactPaths(*f)
	}
}

// CutEach returns a new slice of s's elements, each a copy that cut
// rewrote; an empty slice (not nil) for an empty s. s is not changed.
func CutEach[T any](s []T, cut func(*T)) []T {
	out := make([]T, len(s))
	for i, e := range s {
		cut(&e)
		out[i] = e
	}
	return out
}

// CutStrings returns ss with RedactPaths applied to each, in a new slice;
// nil stays nil.
func CutStrings(ss []string) []string {
	if ss == nil {
		return nil
	}
	out := make([]string, len(ss))
	for i, s := range ss {
		out[i] = RedactPaths(s)
	}
	return out
}

// CutMap returns m (a decoded JSON object: a step's input, an event's
// detail) with RedactPaths applied to every string in it, in copies; nil
// stays nil. m is not changed.
func CutMap(m map[string]any) map[string]any {
	if m == nil {
		return nil
	}
	out, _ := RedactPathsIn(m).(map[string]any)
	return out
}

// CutJSON returns the JSON value raw with RedactPaths applied to its
// strings, encoded again; raw itself when it holds no "/" or does not
// decode.
func CutJSON(raw json.RawMessage) json.RawMessage {
	if bytes.IndexByte(raw, '/') < 0 {
		return raw
	}
	var v any
	if err := json.Unmarshal(raw, &v); err != nil {
		return raw
	}
	b, err := json.Marshal(RedactPathsIn(v))
	if err != nil {
		return raw
	}
	return b
}

// RedactPaths cuts every absolute path in text to its base name:
// "open /etc/sred/runbooks/x.yml: permission denied" becomes "open x.yml:
// permission denied", "fork/exec /usr/local/bin/foo: no such file or
// directory" becomes "fork/exec foo: no such file or directory". A path is
// a "/" at the start of text or after a space, a quote, a bracket, "=",
// "," or ":" ("process:/run/app.pid"), up to the next space, quote,
// bracket, ":", "," or ";", with at least one more "/" in it (a directory
// to hide); a "." that ends it (a sentence's) is kept out of it. Left
// alone: URLs ("http://host/a/b": "//" starts no path), the API's own
// routes ("/api/..."), the kernel's files (under /proc, /sys and /dev),
// and a path with a space in it past that space. Text without a "/" is
// returned as it is, without copying.
func RedactPaths(text string) string {
	if strings.IndexByte(text, '/') < 0 {
		return text
	}
	var b strings.Builder
	done := 0 // text[:done] is in b
	for i := 0; i < len(text); i++ {
		if text[i] != '/' || (i > 0 && !pathStart(text[i-1])) {
			continue
		}
		end := i + 1
		for end < len(text) && !pathEnd(text[end]) {
			end++
		}
		for end > i+1 && text[end-1] == '.' {
			end--
		}
		path := text[i:end]
		if strings.IndexByte(path[1:], '/') < 0 || strings.HasPrefix(path, "//") || kept(path) {
			i = end - 1
			continue
		}
		b.WriteString(text[done:i])
		b.WriteString(filepath.Base(path))
		done = end
		i = end - 1
	}
	if done == 0 {
		return text
	}
	b.WriteString(text[done:])
	return b.String()
}

// keptPrefixes are the paths RedactPaths leaves whole: the API's own
// routes, and the kernel's files (the same on every host: "MemTotal in
// /proc/meminfo"), which tell nothing of where sred keeps its files.
var keptPrefixes = []string{"/api/", "/proc/", "/sys/", "/dev/"}

func kept(path string) bool {
	for _, p := range keptPrefixes {
		if strings.HasPrefix(path, p) {
			return true
		}
	}
	return false
}

// pathStart tells whether c may come right before a path.
func pathStart(c byte) bool {
	switch c {
	case ' ', '\t', '\n', '\r', '"', '\'', '`', '(', '[', '{', '<', '=', ',', ':':
		return true
	}
	return false
}

// pathEnd tells whether c ends a path.
func pathEnd(c byte) bool {
	switch c {
	case ' ', '\t', '\n', '\r', '"', '\'', '`', ')', ']', '}', '>', ':', ',', ';':
		return true
	}
	return false
}

// redactWriter is the ResponseWriter of a request whose principal is not an
// admin: the error envelope (envelope.Error) asks it to rewrite its text.
type redactWriter struct {
	http.ResponseWriter
}

// RedactError implements envelope.Redactor.
func (w *redactWriter) RedactError(msg string) string { return RedactPaths(msg) }

func (w *redactWriter) Flush() {
	if f, ok := w.ResponseWriter.(http.Flusher); ok {
		f.Flush()
	}
}

// Unwrap lets http.ResponseController reach the connection.
func (w *redactWriter) Unwrap() http.ResponseWriter { return w.ResponseWriter }
