package receiver

import (
	"strconv"
	"sync"
	"time"
	"unicode/utf16"
	"unicode/utf8"
	"unsafe"
)

// decodeFast decodes body into m as json.Unmarshal would, without
// reflection, and reports whether it could. It takes only what Alertmanager
// sends: the fields of Message and Alert spelled exactly, each at most once,
// label and annotation names each at most once, strings (with escapes), a non-negative integer truncatedAlerts, RFC 3339
// times. Anything else (null, a differently cased or unknown key, a lone
// surrogate, invalid UTF-8, malformed JSON) reports false, and the caller
// decodes the body with encoding/json, whose result and error messages are
// the reference (FuzzDecodeFast holds the two equal).
//
// Strings of up to internMaxLen bytes go through a small cache shared by
// deliveries: the label names and many values repeat within a delivery and
// across deliveries, and the cache makes them one string each; the new ones
// are cut from blocks of the delivery (newString).
func decodeFast(body []byte, m *Message) bool {
	c := internPool.Get().(*internCache)
	d := fastDecoder{b: body, cache: c}
	ok := d.message(m)
	internPool.Put(c)
	if !ok {
		*m = Message{}
	}
	return ok
}

const (
	internSize   = 512 // entries of a cache (a power of two), 256 sets of two
	internMaxLen = 64  // longer strings are not interned
	arenaBlock   = 256 // bytes of a block of new interned strings (≥ internMaxLen)
)

// internCache holds recently decoded strings by hash, in sets of two
// entries: a string is looked for in both entries of its set, a new one
// replaces the older. Two strings of one set that every alert brings (a
// label name and a value) are both kept; with one entry a set, they
// replaced each other twice an alert. Its strings are immutable, so
// sharing them between deliveries is safe; it bounds what it keeps to
// internSize strings.
type internCache [internSize]string

var internPool = sync.Pool{New: func() any { return new(internCache) }}

type fastDecoder struct {
	b     []byte
	i     int
	cache *internCache
	buf   []byte // unescaped string
	arena []byte // the current block of new strings (newString)
}

func (d *fastDecoder) ws() {
	for d.i < len(d.b) {
		switch d.b[d.i] {
		case ' ', '\t', '\n', '\r':
			d.i++
		default:
			return
		}
	}
}

// next skips white space and consumes c if it comes next.
func (d *fastDecoder) next(c byte) bool {
	d.ws()
	if d.i < len(d.b) && d.b[d.i] == c {
		d.i++
		return true
	}
	return false
}

// more is called after a member or element: it consumes the comma and
// reports true when another follows, consumes the closing byte and reports
// false at the end; ok is false on anything else.
func (d *fastDecoder) more(closing byte) (more, ok bool) {
	d.ws()
	if d.i < len(d.b) {
		switch d.b[d.i] {
		case ',':
			d.i++
			return true, true
		case closing:
			d.i++
			return false, true
		}
	}
	return false, false
}

// key reads an object key and the colon after it. Keys of Message and
// Alert are plain ASCII; one with an escape is left to encoding/json.
func (d *fastDecoder) key() ([]byte, bool) {
	d.ws()
	if d.i >= len(d.b) || d.b[d.i] != '"' {
		return nil, false
	}
	start := d.i + 1
	for j := start; j < len(d.b); j++ {
		switch c := d.b[j]; {
		case c == '"':
			d.i = j + 1
			if !d.next(':') {
				return nil, false
			}
			d.ws()
			return d.b[start:j], true
		case c == '\\' || c < 0x20 || c >= utf8.RuneSelf:
			return nil, false
		}
	}
	return nil, false
}

func (d *fastDecoder) message(m *Message) bool {
	return d.object(func(k []byte) (bit uint16, ok bool) {
		switch string(k) {
		case "version":
			m.Version, ok = d.str()
			return 1 << 0, ok
		case "groupKey":
			m.GroupKey, ok = d.str()
			return 1 << 1, ok
		case "truncatedAlerts":
			m.TruncatedAlerts, ok = d.uint()
			return 1 << 2, ok
		case "status":
			m.Status, ok = d.str()
			return 1 << 3, ok
		case "receiver":
			m.Receiver, ok = d.str()
			return 1 << 4, ok
		case "groupLabels":
			m.GroupLabels, ok = d.labels()
			return 1 << 5, ok
		case "commonLabels":
			m.CommonLabels, ok = d.labels()
			return 1 << 6, ok
		case "commonAnnotations":
			m.CommonAnnotations, ok = d.labels()
			return 1 << 7, ok
		case "externalURL":
			m.ExternalURL, ok = d.str()
			return 1 << 8, ok
		case "alerts":
			m.Alerts, ok = d.alerts()
			return 1 << 9, ok
		}
		return 0, false
	}) && d.end()
}

// object reads an object whose fields field decodes: field returns the
// field's bit (each field may appear once) and false for an unknown field
// or a value it cannot take, as the fast path leaves those to
// encoding/json.
func (d *fastDecoder) object(field func(k []byte) (bit uint16, ok bool)) bool {
	if !d.next('{') {
		return false
	}
	if d.next('}') {
		return true
	}
	var seen uint16
	for {
		k, ok := d.key()
		if !ok {
			return false
		}
		bit, ok := field(k)
		if !ok || seen&bit != 0 {
			return false
		}
		seen |= bit
		more, ok := d.more('}')
		if !ok {
			return false
		}
		if !more {
			return true
		}
	}
}

// end reports whether only white space follows.
func (d *fastDecoder) end() bool {
	d.ws()
	return d.i == len(d.b)
}

func (d *fastDecoder) alerts() ([]Alert, bool) {
	if !d.next('[') {
		return nil, false
	}
	if d.next(']') {
		return []Alert{}, true
	}
	as := make([]Alert, 0, 16)
	for {
		as = append(as, Alert{})
		if !d.alert(&as[len(as)-1]) {
			return nil, false
		}
		more, ok := d.more(']')
		if !ok {
			return nil, false
		}
		if !more {
			return as, true
		}
	}
}

func (d *fastDecoder) alert(a *Alert) bool {
	return d.object(func(k []byte) (bit uint16, ok bool) {
		switch string(k) {
		case "status":
			a.Status, ok = d.str()
			return 1 << 0, ok
		case "labels":
			a.Labels, ok = d.labels()
			return 1 << 1, ok
		case "annotations":
			a.Annotations, ok = d.labels()
			return 1 << 2, ok
		case "startsAt":
			return 1 << 3, d.time(&a.StartsAt)
		case "endsAt":
			return 1 << 4, d.time(&a.EndsAt)
		case "generatorURL":
			a.GeneratorURL, ok = d.str()
			return 1 << 5, ok
		case "fingerprint":
			a.Fingerprint, ok = d.str()
			return 1 << 6, ok
		}
		return 0, false
	})
}

// labels reads an object of strings into a new map (encoding/json makes an
// empty, not nil, map of {}).
func (d *fastDecoder) labels() (map[string]string, bool) {
	if !d.next('{') {
		return nil, false
	}
	if d.next('}') {
		return map[string]string{}, true
	}
	ls := make(map[string]string, 8)
	for {
		d.ws()
		k, ok := d.str()
		if !ok || !d.next(':') {
			return nil, false
		}
		d.ws()
		v, ok := d.str()
		if !ok {
			return nil, false
		}
		// A key given twice (the map does not grow) is left to
		// encoding/json and refused there (web.CheckKeys): no second
		// lookup of the key.
		n := len(ls)
		ls[k] = v
		if len(ls) == n {
			return nil, false
		}
		more, ok := d.more('}')
		if !ok {
			return nil, false
		}
		if !more {
			return ls, true
		}
	}
}

// time reads an RFC 3339 time as time.Time's UnmarshalJSON does, which is
// what encoding/json calls with the quoted text.
func (d *fastDecoder) time(t *time.Time) bool {
	if d.i >= len(d.b) || d.b[d.i] != '"' {
		return false
	}
	for j := d.i + 1; j < len(d.b); j++ {
		switch c := d.b[j]; {
		case c == '"':
			if t.UnmarshalJSON(d.b[d.i:j+1]) != nil {
				return false
			}
			d.i = j + 1
			return true
		case c == '\\' || c < 0x20 || c >= utf8.RuneSelf:
			return false
		}
	}
	return false
}

// uint reads a JSON integer without sign, fraction or exponent.
func (d *fastDecoder) uint() (uint64, bool) {
	start := d.i
	for d.i < len(d.b) && d.b[d.i] >= '0' && d.b[d.i] <= '9' {
		d.i++
	}
	lit := d.b[start:d.i]
	if len(lit) == 0 || (lit[0] == '0' && len(lit) > 1) {
		return 0, false
	}
	n, err := strconv.ParseUint(string(lit), 10, 64)
	return n, err == nil
}

// str reads a JSON string. Invalid UTF-8 (which encoding/json replaces)
// and surrogate escapes are left to encoding/json.
func (d *fastDecoder) str() (string, bool) {
	if d.i >= len(d.b) || d.b[d.i] != '"' {
		return "", false
	}
	start := d.i + 1
	ascii := true
	for j := start; j < len(d.b); j++ {
		switch c := d.b[j]; {
		case c == '"':
			s := d.b[start:j]
			if !ascii && !utf8.Valid(s) {
				return "", false
			}
			d.i = j + 1
			return d.intern(s), true
		case c == '\\':
			return d.unescape(start)
		case c < 0x20:
			return "", false
		case c >= utf8.RuneSelf:
			ascii = false
		}
	}
	return "", false
}

// unescape reads the rest of a string that has escapes, from start (just
// after its opening quote).
func (d *fastDecoder) unescape(start int) (string, bool) {
	buf := d.buf[:0]
	j := start
	for j < len(d.b) {
		c := d.b[j]
		switch {
		case c == '"':
			if !utf8.Valid(buf) {
				return "", false
			}
			d.i = j + 1
			d.buf = buf
			return d.intern(buf), true
		case c < 0x20:
			return "", false
		case c != '\\':
			buf = append(buf, c)
			j++
			continue
		}
		if j+1 >= len(d.b) {
			return "", false
		}
		switch e := d.b[j+1]; e {
		case '"', '\\', '/':
			buf = append(buf, e)
		case 'b':
			buf = append(buf, '\b')
		case 'f':
			buf = append(buf, '\f')
		case 'n':
			buf = append(buf, '\n')
		case 'r':
			buf = append(buf, '\r')
		case 't':
			buf = append(buf, '\t')
		case 'u':
			if j+6 > len(d.b) {
				return "", false
			}
			r, ok := hex4(d.b[j+2 : j+6])
			if !ok || utf16.IsSurrogate(r) {
				return "", false
			}
			buf = utf8.AppendRune(buf, r)
			j += 6
			continue
		default:
			return "", false
		}
		j += 2
	}
	return "", false
}

func hex4(b []byte) (rune, bool) {
	var r rune
	for _, c := range b {
		switch {
		case c >= '0' && c <= '9':
			c -= '0'
		case c >= 'a' && c <= 'f':
			c = c - 'a' + 10
		case c >= 'A' && c <= 'F':
			c = c - 'A' + 10
		default:
			return 0, false
		}
		r = r<<4 | rune(c)
	}
	return r, true
}

// intern returns b as a string, from the cache when it holds it.
func (d *fastDecoder) intern(b []byte) string {
	if len(b) == 0 {
		return ""
	}
	if len(b) > internMaxLen {
		return string(b)
	}
	h := uint32(2166136261) // FNV-1a
	for _, c := range b {
		h = (h ^ uint32(c)) * 16777619
	}
	set := (*[2]string)(d.cache[h&(internSize-2):])
	if set[0] == string(b) { // compared without a copy (not in a switch)
		return set[0]
	}
	if set[1] == string(b) {
		return set[1]
	}
	set[1] = set[0]
	set[0] = d.newString(b)
	return set[0]
}

// newString returns b as a string whose bytes are in a block of the delivery:
// the strings a delivery brings that the cache does not hold (fingerprints,
// the group key, new label values) share arenaBlock-byte blocks, not an
// allocation each. The bytes of a block are never written again once a
// string is cut from them; a block lives as long as one of its strings
// does, in what the delivery stored or in the cache (internSize strings,
// so at most internSize blocks a cache).
func (d *fastDecoder) newString(b []byte) string {
	if cap(d.arena)-len(d.arena) < len(b) {
		d.arena = make([]byte, 0, arenaBlock)
	}
	start := len(d.arena)
	d.arena = append(d.arena, b...)
	return unsafe.String(&d.arena[start], len(b))
}
