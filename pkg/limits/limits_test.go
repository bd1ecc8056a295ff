package limits

import (
	"errors"
	"io"
	"math"
	"net/http/httptest"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/require"
)

type inner struct {
	At    time.Time         `json:"at"`
	Score float64           `json:"score"`
	Tags  map[string]string `json:"tags"`
}

type outer struct {
	Name  string     `json:"name"`
	Items []inner    `json:"items"`
	Due   *time.Time `json:"due,omitempty"`
	Skip  string     `json:"-"`
	Raw   []byte     `json:"raw"`
	plain string
}

type Base struct {
	Score float64 `json:"score"`
}

type embedding struct {
	Base
	Note string `json:"note"`
}

func TestCheck(t *testing.T) {
	ok := time.Date(2026, 3, 14, 9, 30, 0, 0, time.UTC)
	late := time.Date(9999, 12, 31, 23, 0, 0, 0, time.FixedZone("west", -2*3600))
	early := time.Date(1, 1, 1, 0, 30, 0, 0, time.FixedZone("east", 3600))
	cases := []struct {
		name string
		v    any
		err  string
	}{
		{"valid", outer{Name: "x", Items: []inner{{At: ok, Score: 1, Tags: map[string]string{"a": "b"}}}, Due: &ok, Raw: []byte{0}}, ""},
		{"zero time is unset", outer{Items: []inner{{}}}, ""},
		{"unexported and skipped fields", outer{Skip: "\x00", plain: "\x00"}, ""},
		{"after 9999 UTC", outer{Items: []inner{{At: ok}, {At: late}}}, "items[1].at: time 9999-12-31T23:00:00-02:00 is outside the years 1 to 9999 UTC"},
		{"before year 1 UTC", outer{Due: &early}, "due: time 0001-01-01T00:30:00+01:00 is outside the years 1 to 9999 UTC"},
		{"NaN", outer{Items: []inner{{Score: math.NaN()}}}, "items[0].score: NaN is not a finite number"},
		{"Inf", outer{Items: []inner{{Score: math.Inf(-1)}}}, "items[0].score: -Inf is not a finite number"},
		{"NUL in text", outer{Name: "a\x00b"}, "name: NUL byte at offset 1"},
		{"NUL in map value", outer{Items: []inner{{Tags: map[string]string{"k": "\x00"}}}}, `items[0].tags["k"]: NUL byte at offset 0`},
		{"NUL in map key", outer{Items: []inner{{Tags: map[string]string{"k\x00": ""}}}}, `items[0].tags key: NUL byte at offset 1`},
		{"invalid UTF-8", outer{Name: "\xff"}, "name: invalid UTF-8"},
		{"bare value", math.NaN(), "value: NaN is not a finite number"},
		{"map of numbers", map[int]float64{3: math.Inf(1)}, "value[3]: +Inf is not a finite number"},
		{"map of structs", map[string]inner{"x\"y": {At: late}}, `value["x\"y"].at: time 9999-12-31T23:00:00-02:00 is outside the years 1 to 9999 UTC`},
		{"embedded fields", embedding{Base: Base{Score: math.NaN()}}, "score: NaN is not a finite number"},
		{"array of pointers", [2]*inner{nil, {Tags: map[string]string{"\xff": ""}}}, "value[1].tags key: invalid UTF-8"},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			err := Check(c.v)
			if c.err == "" {
				require.NoError(t, err)
				return
			}
			require.EqualError(t, err, c.err)
		})
	}
}

// TestCheckAllocatesNothing: a good value is checked without allocating but
// the buffer of its path
// (every webhook delivery is checked).
func TestCheckAllocatesNothing(t *testing.T) {
	at := time.Date(2026, 3, 14, 9, 30, 0, 0, time.UTC)
	v := &outer{Name: "x", Due: &at}
	for i := range 10 {
		v.Items = append(v.Items, inner{At: at, Score: float64(i), Tags: map[string]string{"service": "api", "instance": "10.0.0.1:8080"}})
	}
	require.NoError(t, Check(v))
	// One allocation: the path's buffer, which the error would render.
	require.LessOrEqual(t, testing.AllocsPerRun(100, func() { _ = Check(v) }), 1.0)
}

func TestParseTime(t *testing.T) {
	const W = ": want an RFC 3339 time or Unix seconds from 1970-01-02T00:00:00Z to 9999-12-31T23:59:59Z"
	cases := []struct {
		in   string
		want time.Time
		err  string
	}{
		{"2026-03-14T09:30:00Z", time.Date(2026, 3, 14, 9, 30, 0, 0, time.UTC), ""},
		{"2026-03-14T10:30:00+01:00", time.Date(2026, 3, 14, 9, 30, 0, 0, time.UTC), ""},
		{"1773480600.5", time.Date(2026, 3, 14, 9, 30, 0, 5e8, time.UTC), ""},
		{"86400", time.Date(1970, 1, 2, 0, 0, 0, 0, time.UTC), ""},
		{"1970-01-02T00:00:00Z", time.Date(1970, 1, 2, 0, 0, 0, 0, time.UTC), ""},
		{"253402300799", time.Date(9999, 12, 31, 23, 59, 59, 0, time.UTC), ""},
		{" 1773480600 ", time.Date(2026, 3, 14, 9, 30, 0, 0, time.UTC), ""},
		{"0", time.Time{}, `at: "0" (1970-01-01T00:00:00Z) is before 1970-01-02T00:00:00Z` + W},
		{"-1", time.Time{}, `at: "-1" (1969-12-31T23:59:59Z) is before 1970-01-02T00:00:00Z` + W},
		{"86399.5", time.Time{}, `at: "86399.5" (1970-01-01T23:59:59.5Z) is before 1970-01-02T00:00:00Z` + W},
		{"-62135596800", time.Time{}, `at: "-62135596800" (0001-01-01T00:00:00Z) is before 1970-01-02T00:00:00Z` + W},
		{"-62135596801", time.Time{}, `at: "-62135596801" is before 1970-01-02T00:00:00Z` + W},
		{"1970-01-01T23:59:59Z", time.Time{}, `at: "1970-01-01T23:59:59Z" is before 1970-01-02T00:00:00Z` + W},
		{"0001-01-01T00:00:00Z", time.Time{}, `at: "0001-01-01T00:00:00Z" is before 1970-01-02T00:00:00Z` + W},
		{"253402300799.5", time.Time{}, `at: "253402300799.5" (9999-12-31T23:59:59.5Z) is after 9999-12-31T23:59:59Z` + W},
		{"253402300800", time.Time{}, `at: "253402300800" is after 9999-12-31T23:59:59Z` + W},
		{"1e400", time.Time{}, `at: "1e400" is after 9999-12-31T23:59:59Z` + W},
		{"-1e400", time.Time{}, `at: "-1e400" is before 1970-01-02T00:00:00Z` + W},
		{"NaN", time.Time{}, "at: NaN is not a finite number"},
		{"nan", time.Time{}, "at: NaN is not a finite number"},
		{"+Inf", time.Time{}, "at: +Inf is not a finite number"},
		{"-Inf", time.Time{}, "at: -Inf is not a finite number"},
		{"infinity", time.Time{}, "at: +Inf is not a finite number"},
		{"0000-06-01T00:00:00Z", time.Time{}, `at: "0000-06-01T00:00:00Z" is before 1970-01-02T00:00:00Z` + W},
		{"", time.Time{}, `at: cannot parse "" as an RFC 3339 time or a Unix timestamp`},
		{"tomorrow", time.Time{}, `at: cannot parse "tomorrow" as an RFC 3339 time or a Unix timestamp`},
	}
	for _, c := range cases {
		t.Run(c.in, func(t *testing.T) {
			got, err := ParseTime("at", c.in)
			if c.err != "" {
				require.EqualError(t, err, c.err)
				return
			}
			require.NoError(t, err)
			require.True(t, c.want.Equal(got), "got %s", got)
			require.Equal(t, time.UTC, got.Location())
		})
	}
}

// TestEchoCut: an error naming a value or a map key it was given quotes
// at most MaxEchoBytes of it (Quote), never thousands of characters whole.
func TestEchoCut(t *testing.T) {
	long := strings.Repeat("n", 5000)
	cut := `"` + strings.Repeat("n", MaxEchoBytes-len(TruncationMark)) + TruncationMark + `"`
	for _, tc := range []struct {
		name string
		err  func() error
		want string
	}{
		{"time", func() error { _, err := ParseTime("at", long); return err }, "at: cannot parse " + cut + " as an RFC 3339 time or a Unix timestamp"},
		{"number", func() error { _, err := ParseFloat("score", long); return err }, "score: cannot parse " + cut + " as a number"},
		{"map key", func() error { return Check(map[string]string{long: "\x00"}) }, "value[" + cut + "]: NUL byte at offset 0"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			require.EqualError(t, tc.err(), tc.want)
		})
	}
}

func TestRequest(t *testing.T) {
	cases := []struct {
		method, target, ctype, body, err string
	}{
		{"GET", "/api/v1/incidents?service=checkout", "", "", ""},
		{"GET", "/api/v1/incidents?service=check%00out", "", "", `query parameter "service": NUL byte at offset 5`},
		{"GET", "/api/v1/incidents?service=%ff", "", "", `query parameter "service": invalid UTF-8`},
		{"GET", "/api/v1/incidents/INC%00", "", "", `path: NUL byte at offset 21`},
		{"POST", "/incidents/INC-1/note", "application/x-www-form-urlencoded", "text=a%00b", `form field "text": NUL byte at offset 1`},
		{"POST", "/incidents/INC-1/note", "application/x-www-form-urlencoded", "text=ab", ""},
		// Media types are case-insensitive and take parameters: net/http
		// reads these bodies as forms, so they are checked as forms.
		{"POST", "/incidents/INC-1/note", "Application/X-WWW-Form-Urlencoded", "text=a%00b", `form field "text": NUL byte at offset 1`},
		{"POST", "/incidents/INC-1/note", "application/x-www-form-urlencoded ; charset=UTF-8", "comment=%ff", `form field "comment": invalid UTF-8`},
		{"POST", "/api/v1/incidents/INC-1/notes", "application/json", `{"text":"a"}`, ""},
	}
	for _, c := range cases {
		t.Run(c.target+c.body, func(t *testing.T) {
			r := httptest.NewRequest(c.method, c.target, strings.NewReader(c.body))
			if c.ctype != "" {
				r.Header.Set("Content-Type", c.ctype)
			}
			err := Request(r)
			if c.err == "" {
				require.NoError(t, err)
				return
			}
			require.EqualError(t, err, c.err)
		})
	}
}

// TestTarget: the path and query are checked as Request checks them, and
// the body is left unread whatever its Content-Type, for a JSON handler.
func TestTarget(t *testing.T) {
	r := httptest.NewRequest("POST", "/api/v1/webhook/alertmanager?x=a%00b", strings.NewReader(`{}`))
	require.EqualError(t, Target(r), `query parameter "x": NUL byte at offset 1`)
	body := `{"summary":"100% of requests fail"}`
	r = httptest.NewRequest("POST", "/api/v1/webhook/alertmanager", strings.NewReader(body))
	r.Header.Set("Content-Type", "application/x-www-form-urlencoded")
	require.NoError(t, Target(r))
	b, err := io.ReadAll(r.Body)
	require.NoError(t, err)
	require.Equal(t, body, string(b))
	require.Nil(t, r.PostForm)
}

func TestTruncate(t *testing.T) {
	s, cut := Truncate("short", 16)
	require.False(t, cut)
	require.Equal(t, "short", s)
	s, cut = Truncate(strings.Repeat("x", 100), 16)
	require.True(t, cut)
	require.Equal(t, strings.Repeat("x", 16-len(TruncationMark))+TruncationMark, s)
	require.Len(t, s, 16)
	// Never cuts inside a UTF-8 sequence.
	s, cut = Truncate(strings.Repeat("é", 50), 16)
	require.True(t, cut)
	require.LessOrEqual(t, len(s), 16)
	require.NoError(t, Text("s", s))
}

// Cut keeps a short value whole and cuts a long one to MaxEchoBytes on a
// UTF-8 boundary, ending with TruncationMark; Quote quotes what Cut keeps.
func TestCut(t *testing.T) {
	long := strings.Repeat("x", MaxEchoBytes-len(TruncationMark)) + TruncationMark
	for _, tc := range []struct{ name, in, want string }{
		{"empty", "", ""},
		{"short", "api-7", "api-7"},
		{"exactly the limit", strings.Repeat("y", MaxEchoBytes), strings.Repeat("y", MaxEchoBytes)},
		{"one byte over", strings.Repeat("x", MaxEchoBytes+1), long},
		{"long", strings.Repeat("x", 5000), long},
		{"multi-byte", strings.Repeat("é", 100), strings.Repeat("é", (MaxEchoBytes-len(TruncationMark))/2) + TruncationMark},
	} {
		t.Run(tc.name, func(t *testing.T) {
			got := Cut(tc.in)
			require.Equal(t, tc.want, got)
			require.LessOrEqual(t, len(got), MaxEchoBytes)
			require.NoError(t, Text("s", got))
			require.Equal(t, strconv.Quote(got), Quote(tc.in))
		})
	}
}

func TestWebhookValidate(t *testing.T) {
	require.NoError(t, DefaultWebhook.Validate())
	w := DefaultWebhook
	w.MaxLabelValueBytes = 4
	require.EqualError(t, w.Validate(), "webhook.limits: max_label_value_bytes must be at least 16, got 4")
	w = DefaultWebhook
	w.MaxAlertsPerGroup = 0
	require.EqualError(t, w.Validate(), "webhook.limits: max_alerts_per_group must be at least 1, got 0")
}

// A body's first bad byte is named by its offset; valid text passes.
func TestUTF8(t *testing.T) {
	for _, tc := range []struct{ in, err string }{
		{`{"title":"ok"}`, ""},
		{"{\"title\":\"café ✓\"}", ""},
		{"{\"title\":\"bad\xff\"}", "body: invalid UTF-8 at byte offset 13"},
		{"ab\xc3", "body: invalid UTF-8 at byte offset 2"},       // cut multi-byte rune
		{"\xed\xa0\x80", "body: invalid UTF-8 at byte offset 0"}, // surrogate half
	} {
		err := UTF8("body", []byte(tc.in))
		if tc.err == "" {
			require.NoError(t, err, "%q", tc.in)
			continue
		}
		require.EqualError(t, err, tc.err, "%q", tc.in)
	}
}

// A parser's error quoting a long token whole is cut: the position and
// message stay, the token keeps its quotes, the text stays bounded, and
// errors.Is still sees the parser's error.
func TestParseError(t *testing.T) {
	long := strings.Repeat("x", 100000)
	kept := strings.Repeat("x", MaxEchoBytes-2-len(TruncationMark)) + TruncationMark
	for _, tc := range []struct{ name, in, want string }{
		{"short", `1:5: parse error: unexpected <by>`, `1:5: parse error: unexpected <by>`},
		{"quoted token", `1:302: parse error: unexpected identifier "` + long + `"`, `1:302: parse error: unexpected identifier "` + kept + `"`},
		{"backquoted token", "1:4: parse error: error parsing regexp: missing closing ): `((" + long + "`", "1:4: parse error: error parsing regexp: missing closing ): `((" + kept[:len(kept)-2-len(TruncationMark)] + TruncationMark + "`"},
		{"bare token", `1:1: parse error: bad ` + long + ` here`, `1:1: parse error: bad ` + strings.Repeat("x", MaxEchoBytes-len(TruncationMark)) + TruncationMark + ` here`},
	} {
		t.Run(tc.name, func(t *testing.T) {
			cause := errors.New(tc.in)
			err := ParseError(cause)
			require.EqualError(t, err, tc.want)
			require.ErrorIs(t, err, cause)
		})
	}
	many := errors.New("1:1: parse error: " + strings.Repeat("yy ", 50000))
	err := ParseError(many)
	require.LessOrEqual(t, len(err.Error()), MaxParseErrorBytes)
	require.True(t, strings.HasPrefix(err.Error(), "1:1: parse error: yy yy"))
	require.True(t, strings.HasSuffix(err.Error(), TruncationMark))
	require.NoError(t, ParseError(nil))
}
