// Package limits says which values sred accepts from the outside and refuses
// the rest before they reach the store: times outside the years 1 to 9999
// UTC (what RFC 3339, JSON and both backends represent), NaN and infinite
// numbers (which JSON cannot encode), and text with NUL bytes or invalid
// UTF-8 (which PostgreSQL cannot store). Each check returns an error naming
// the field, for a 400 answer.
//
// It also holds the configurable size limits of webhook deliveries
// (Webhook, the `webhook.limits` section of sred.yml) and the rate limit of
// requests per client (Rate: `slos.gate.request_limit`,
// `analysis.run_limit`).
package limits

import (
	"errors"
	"fmt"
	"math"
	"mime"
	"net/http"
	"reflect"
	"strconv"
	"strings"
	"sync"
	"time"
	"unicode/utf8"
)

// MinYear and MaxYear bound the accepted years, in UTC.
const (
	MinYear = 1
	MaxYear = 9999
)

// FieldError is a refused value: Field names it (a JSON path such as
// alerts[0].startsAt, or a query parameter).
type FieldError struct {
	Field string
	Err   error
}

func (e *FieldError) Error() string { return e.Field + ": " + e.Err.Error() }

// Unwrap returns the cause.
func (e *FieldError) Unwrap() error { return e.Err }

func fieldErr(field string, format string, args ...any) error {
	return &FieldError{Field: field, Err: fmt.Errorf(format, args...)}
}

// Time refuses a time outside the years MinYear to MaxYear in UTC. The zero
// time (year 1) is accepted: it means "unset" everywhere in sred.
func Time(field string, t time.Time) error {
	if y := t.UTC().Year(); y < MinYear || y > MaxYear {
		return fieldErr(field, "time %s is outside the years %d to %d UTC", t.Format(time.RFC3339Nano), MinYear, MaxYear)
	}
	return nil
}

// Float refuses NaN and infinities.
func Float(field string, f float64) error {
	if math.IsNaN(f) || math.IsInf(f, 0) {
		return fieldErr(field, "%v is not a finite number", f)
	}
	return nil
}

// Text refuses NUL bytes and invalid UTF-8.
func Text(field, s string) error {
	if i := strings.IndexByte(s, 0); i >= 0 {
		return fieldErr(field, "NUL byte at offset %d", i)
	}
	if !utf8.ValidString(s) {
		return fieldErr(field, "invalid UTF-8")
	}
	return nil
}

// UTF8 refuses bytes that are not valid UTF-8, naming the offset of the
// first bad one. A JSON decoder would read them as U+FFFD and store that
// instead: bodies are checked before they are decoded.
func UTF8(field string, b []byte) error {
	if utf8.Valid(b) {
		return nil
	}
	for i := 0; i < len(b); {
		r, n := utf8.DecodeRune(b[i:])
		if r == utf8.RuneError && n <= 1 {
			return fieldErr(field, "invalid UTF-8 at byte offset %d", i)
		}
		i += n
	}
	return fieldErr(field, "invalid UTF-8")
}

// ParseFloat parses a finite number.
func ParseFloat(field, s string) (float64, error) {
	f, err := strconv.ParseFloat(strings.TrimSpace(s), 64)
	if err != nil {
		return 0, fieldErr(field, "cannot parse %s as a number", Quote(s))
	}
	if err := Float(field, f); err != nil {
		return 0, err
	}
	return f, nil
}

// MinParamTime and MaxParamTime bound the times ParseTime accepts. A time
// parameter before MinParamTime (time=0 and time=-1 parse as Unix seconds)
// would be answered about 1970, where no series and no record exists: it is
// a client error, as is one past the years the store represents.
var (
	MinParamTime = time.Date(1970, 1, 2, 0, 0, 0, 0, time.UTC)
	MaxParamTime = time.Date(MaxYear, 12, 31, 23, 59, 59, 0, time.UTC)
)

// ParseTime reads a time parameter as RFC 3339 or Unix seconds (as the
// Prometheus API does) and refuses NaN, infinities and a time outside
// MinParamTime to MaxParamTime, naming the field and the value. The result
// is in UTC.
func ParseTime(field, s string) (time.Time, error) {
	s = strings.TrimSpace(s)
	if t, err := time.Parse(time.RFC3339Nano, s); err == nil {
		return paramTime(field, s, t.UTC(), false)
	}
	f, err := strconv.ParseFloat(s, 64)
	var numErr *strconv.NumError
	if errors.As(err, &numErr) && errors.Is(numErr.Err, strconv.ErrRange) && math.IsInf(f, 0) {
		// 1e400: a number, too large for any time.
		return time.Time{}, outOfRange(field, s, f > 0)
	}
	if err != nil {
		return time.Time{}, fieldErr(field, "cannot parse %s as an RFC 3339 time or a Unix timestamp", Quote(s))
	}
	if err := Float(field, f); err != nil {
		return time.Time{}, err
	}
	// Unix seconds of 0001-01-01 and 9999-12-31T23:59:59Z: within them
	// the refusal names the time the number is.
	const minUnix, maxUnix = -62135596800, 253402300799
	if f < minUnix || f >= maxUnix+1 {
		return time.Time{}, outOfRange(field, s, f > 0)
	}
	sec, frac := math.Modf(f)
	return paramTime(field, s, time.Unix(int64(sec), int64(frac*1e9)).UTC(), true)
}

func paramTime(field, s string, t time.Time, unix bool) (time.Time, error) {
	if t.Before(MinParamTime) || t.After(MaxParamTime) {
		v := Quote(s)
		if unix {
			v += " (" + t.Format(time.RFC3339Nano) + ")"
		}
		return time.Time{}, outOfRangeAs(field, v, t.After(MaxParamTime))
	}
	return t, nil
}

func outOfRange(field, s string, after bool) error { return outOfRangeAs(field, Quote(s), after) }

func outOfRangeAs(field, v string, after bool) error {
	rel, bound := "before", MinParamTime
	if after {
		rel, bound = "after", MaxParamTime
	}
	return fieldErr(field, "%s is %s %s: want an RFC 3339 time or Unix seconds from %s to %s",
		v, rel, bound.Format(time.RFC3339), MinParamTime.Format(time.RFC3339), MaxParamTime.Format(time.RFC3339))
}

var timeType = reflect.TypeOf(time.Time{})

// Check walks a decoded value (structs, pointers, slices, arrays, maps) and
// refuses the first time, number or text that Time, Float or Text refuse;
// the error names the field by its JSON name (json tags), e.g.
// alerts[3].labels["service"]. Map keys are checked as text.
//
// Every webhook delivery goes through it, so the walk allocates nothing
// while the values are good: the field's path is kept as a stack of steps
// and written out only for the error.
func Check(v any) error {
	var buf [8]step
	c := checker{path: buf[:0]}
	return c.check(reflect.ValueOf(v))
}

// step is one step of a path: a field, a slice index or a map key.
type step struct {
	kind  uint8  // stepField, stepIndex, stepKey or stepTextKey
	name  string // field name; key of stepTextKey
	index int
	key   reflect.Value // key of stepKey
}

const (
	stepField = iota
	stepIndex
	stepKey     // a map key of any kind
	stepTextKey // a map key of kind string
)

type checker struct {
	path []step
}

// at writes out the path, as the field names of errors.
func (c *checker) at() string {
	path := ""
	for _, s := range c.path {
		switch s.kind {
		case stepField:
			path = join(path, s.name)
		case stepIndex:
			path = fmt.Sprintf("%s[%d]", orValue(path), s.index)
		case stepTextKey:
			path = fmt.Sprintf("%s[%s]", orValue(path), Quote(s.name))
		case stepKey:
			path = fmt.Sprintf("%s[%v]", orValue(path), s.key)
		}
	}
	return path
}

func (c *checker) text(s string) error {
	if strings.IndexByte(s, 0) < 0 && utf8.ValidString(s) {
		return nil
	}
	return Text(orValue(c.at()), s)
}

func (c *checker) key(s string) error {
	if strings.IndexByte(s, 0) < 0 && utf8.ValidString(s) {
		return nil
	}
	return Text(orValue(c.at())+" key", s)
}

// field is what check needs of a struct field.
type field struct {
	index int
	name  string // its JSON name
	embed bool   // anonymous without a json tag: its fields are the parent's
}

var fieldsOf sync.Map // reflect.Type -> []field

func fields(t reflect.Type) []field {
	if v, ok := fieldsOf.Load(t); ok {
		return v.([]field)
	}
	var fs []field
	for i := range t.NumField() {
		f := t.Field(i)
		if !f.IsExported() {
			continue
		}
		name := f.Name
		if tag, _, _ := strings.Cut(f.Tag.Get("json"), ","); tag == "-" {
			continue
		} else if tag != "" {
			name = tag
		}
		fs = append(fs, field{index: i, name: name, embed: f.Anonymous && f.Tag.Get("json") == ""})
	}
	fieldsOf.Store(t, fs)
	return fs
}

func (c *checker) check(v reflect.Value) error {
	if !v.IsValid() {
		return nil
	}
	if v.Type() == timeType {
		var t time.Time
		if v.CanAddr() {
			t = *v.Addr().Interface().(*time.Time) // no copy to the heap
		} else {
			t = v.Interface().(time.Time)
		}
		if err := Time("", t); err != nil {
			return Time(orValue(c.at()), t)
		}
		return nil
	}
	switch v.Kind() {
	case reflect.Pointer, reflect.Interface:
		if v.IsNil() {
			return nil
		}
		return c.check(v.Elem())
	case reflect.String:
		return c.text(v.String())
	case reflect.Float32, reflect.Float64:
		if f := v.Float(); math.IsNaN(f) || math.IsInf(f, 0) {
			return Float(orValue(c.at()), f)
		}
	case reflect.Struct:
		for _, f := range fields(v.Type()) {
			if !f.embed {
				c.path = append(c.path, step{kind: stepField, name: f.name})
			}
			err := c.check(v.Field(f.index))
			if !f.embed {
				c.path = c.path[:len(c.path)-1]
			}
			if err != nil {
				return err
			}
		}
	case reflect.Slice, reflect.Array:
		if v.Kind() == reflect.Slice && v.Type().Elem().Kind() == reflect.Uint8 {
			return nil // []byte: raw JSON or binary, not text
		}
		for i := range v.Len() {
			c.path = append(c.path, step{kind: stepIndex, index: i})
			err := c.check(v.Index(i))
			c.path = c.path[:len(c.path)-1]
			if err != nil {
				return err
			}
		}
	case reflect.Map:
		if m, ok := mapOfText(v); ok {
			// Labels and annotations, the bulk of a delivery.
			for k, val := range m {
				if err := c.key(k); err != nil {
					return err
				}
				c.path = append(c.path, step{kind: stepTextKey, name: k})
				err := c.text(val)
				c.path = c.path[:len(c.path)-1]
				if err != nil {
					return err
				}
			}
			return nil
		}
		it := v.MapRange()
		for it.Next() {
			k := it.Key()
			st := step{kind: stepKey, key: k}
			if k.Kind() == reflect.String {
				if err := c.key(k.String()); err != nil {
					return err
				}
				st = step{kind: stepTextKey, name: k.String()}
			}
			c.path = append(c.path, st)
			err := c.check(it.Value())
			c.path = c.path[:len(c.path)-1]
			if err != nil {
				return err
			}
		}
	}
	return nil
}

func join(path, name string) string {
	if path == "" {
		return name
	}
	return path + "." + name
}

// mapOfText returns v as a map[string]string when it is one.
func mapOfText(v reflect.Value) (map[string]string, bool) {
	if !v.CanInterface() {
		return nil, false
	}
	m, ok := v.Interface().(map[string]string)
	return m, ok
}

func orValue(path string) string {
	if path == "" {
		return "value"
	}
	return path
}

// ErrRequest is wrapped by the errors of Request.
var ErrRequest = errors.New("refused request")

// Request refuses a request whose path, query parameters or URL-encoded
// form body hold text that Text refuses (a NUL byte, invalid UTF-8). It
// parses the form of URL-encoded bodies (r.ParseForm), as handlers do.
func Request(r *http.Request) error {
	if err := Target(r); err != nil {
		return err
	}
	if IsForm(r) && r.Body != nil && r.Method != http.MethodGet {
		if err := r.ParseForm(); err != nil {
			return fmt.Errorf("form: %w", err)
		}
		for name, vs := range r.PostForm {
			for _, v := range append([]string{name}, vs...) {
				if err := Text("form field "+strconv.Quote(name), v); err != nil {
					return err
				}
			}
		}
	}
	return nil
}

// Target refuses a request whose path or query parameters hold text that
// Text refuses. Unlike Request it leaves the body unread, whatever its
// Content-Type: for handlers that decode JSON and never a form (a client
// such as `curl -d` labels a JSON body as a URL-encoded form).
func Target(r *http.Request) error {
	if err := Text("path", r.URL.Path); err != nil {
		return err
	}
	for name, vs := range r.URL.Query() {
		if err := Text("query parameter "+strconv.Quote(name), name); err != nil {
			return err
		}
		for _, v := range vs {
			if err := Text("query parameter "+strconv.Quote(name), v); err != nil {
				return err
			}
		}
	}
	return nil
}

// IsForm reports whether r's body is a URL-encoded form, as net/http's
// ParseForm reads it: the media type without regard to case or parameters
// ("Application/X-WWW-Form-Urlencoded; charset=UTF-8" is one).
func IsForm(r *http.Request) bool {
	mt, _, err := mime.ParseMediaType(r.Header.Get("Content-Type"))
	return err == nil && mt == "application/x-www-form-urlencoded"
}
