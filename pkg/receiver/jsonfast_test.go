package receiver

import (
	"bytes"
	"encoding/json"
	"fmt"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"testing"
	"unsafe"

	"github.com/stretchr/testify/require"

	"github.com/rootuip/sre/pkg/secretfile"
)

// FuzzDecodeFast holds the fast decoder to encoding/json: whatever it
// decodes, encoding/json decodes without error to the same Message. Seeds:
// the recorded Alertmanager payloads, the benchmark's delivery, and the
// shapes the fast decoder must leave to encoding/json.
func FuzzDecodeFast(f *testing.F) {
	files, _ := filepath.Glob(filepath.Join("testdata", "*.json"))
	for _, name := range files {
		b, err := os.ReadFile(name)
		if err != nil {
			f.Fatal(err)
		}
		f.Add(b)
	}
	f.Add(benchPayload(7))
	for _, s := range fastDecodeCases {
		f.Add([]byte(s.body))
	}
	f.Fuzz(func(t *testing.T, body []byte) {
		var fast, ref Message
		if !decodeFast(body, &fast) {
			require.Equal(t, Message{}, fast, "a refused body leaves the message zero")
			return
		}
		require.NoError(t, json.Unmarshal(body, &ref), "the fast decoder took a body encoding/json refuses")
		require.Equal(t, ref, fast)
	})
}

// fastDecodeCases are bodies with whether the fast decoder takes them (the
// others go to encoding/json).
var fastDecodeCases = []struct {
	body string
	fast bool
}{
	{`{"version":"4","groupKey":"{}:{alertname=\"A\"}","status":"firing","receiver":"r","truncatedAlerts":3,"alerts":[{"status":"firing","labels":{"alertname":"A","x":"\u003c\u00e9\n\t\/"},"annotations":{},"startsAt":"2026-11-27T03:34:23.5+01:00","endsAt":"0001-01-01T00:00:00Z","fingerprint":"f"}]}`, true},
	{" \n{ \"version\" : \"4\" , \"alerts\" : [ ] }\r\n", true},
	{`{"labels":{"a":"é€😀"}}`, false}, // unknown key at the top
	{`{"alerts":[{"labels":{"a":"é€😀","b":""}}]}`, true},
	{`{}`, true},
	{`{"Version":"4"}`, false},               // case-insensitive match
	{`{"version":"4","version":"5"}`, false}, // duplicate key
	{`{"alerts":[{"labels":{"a":"1","b":"2","a":"3"}}]}`, false}, // duplicate label name
	{`{"commonAnnotations":{"s":"x","s":"x"}}`, false},           // duplicate annotation name
	{`{"alerts":[{"labels":{"a":"1","A":"2"}}]}`, true},          // label names differ in case
	{`{"version":null}`, false},                                  // null
	{`{"truncatedAlerts":-1}`, false},                            // type error
	{`{"truncatedAlerts":01}`, false},                            // invalid JSON
	{`{"truncatedAlerts":1.5}`, false},                           // type error
	{`{"truncatedAlerts":18446744073709551616}`, false},          // overflow
	{`{"groupKey":"\ud83d\ude00"}`, false},                       // surrogate pair
	{"{\"groupKey\":\"\xff\"}", false},                           // invalid UTF-8
	{"{\"groupKey\":\"a\x01\"}", false},                          // control byte
	{`{"version":"4"} x`, false},                                 // trailing data
	{`{"version":"4",}`, false},                                  // trailing comma
	{`{"alerts":[{"startsAt":"2026-13-01T00:00:00Z"}]}`, false},
	{`{"alerts":[{"startsAt":"2026-11-01T00:00:00Z","extra":1}]}`, false},
	{`{"groupLabels":{"a":1}}`, false},
	{`[]`, false},
	{``, false},
}

func TestDecodeFast(t *testing.T) {
	for _, c := range fastDecodeCases {
		t.Run(c.body, func(t *testing.T) {
			var fast Message
			require.Equal(t, c.fast, decodeFast([]byte(c.body), &fast))
			if !c.fast {
				return
			}
			var ref Message
			require.NoError(t, json.Unmarshal([]byte(c.body), &ref))
			require.Equal(t, ref, fast)
		})
	}
	for _, name := range []string{"am-firing.json", "am-resolved.json", "am-truncated-firing.json", "am-truncated-resolved.json"} {
		b, err := os.ReadFile(filepath.Join("testdata", name))
		require.NoError(t, err)
		var fast Message
		require.True(t, decodeFast(b, &fast), "%s: Alertmanager's own payload takes the fast path", name)
	}
}

// TestDecodeRequestAllocs bounds the allocations of decoding a 10-alert
// delivery (the request included): with encoding/json it took about 330,
// with the fast decoder, its interned strings and the pooled body buffer 87,
// and 65 (two per label map, the request's own 11) since strings meeting in
// the cache no longer replace each other (TestInternKeepsCollidingPairs).
func TestDecodeRequestAllocs(t *testing.T) {
	body := benchPayload(3)
	w := httptest.NewRecorder()
	allocs := testing.AllocsPerRun(200, func() {
		r := httptest.NewRequest(http.MethodPost, Path, bytes.NewReader(body))
		if _, rerr := DecodeRequest(w, r, secretfile.Source{}, 0); rerr != nil {
			t.Fatal(rerr)
		}
	})
	t.Logf("%.0f allocations per delivery", allocs)
	require.LessOrEqual(t, allocs, 70.0)
}

// TestInternKeepsCollidingPairs: two strings of one set of the cache, met
// one after the other (as "alertname" and "instance" are in every alert of
// benchPayload), are both kept: neither is made again. With one entry a
// set, each replaced the other, two new strings an alert.
func TestInternKeepsCollidingPairs(t *testing.T) {
	set := func(s string) uint32 {
		h := uint32(2166136261)
		for _, c := range []byte(s) {
			h = (h ^ uint32(c)) * 16777619
		}
		return h & (internSize - 1) // the same entry with one a set, the same set with two
	}
	var a, b string
	seen := map[uint32]string{}
	for i := 0; b == ""; i++ {
		s := fmt.Sprintf("10.0.0.%d:8080", i)
		if o, ok := seen[set(s)]; ok {
			a, b = o, s
		}
		seen[set(s)] = s
	}
	d := fastDecoder{cache: new(internCache)}
	first := []string{d.intern([]byte(a)), d.intern([]byte(b))}
	for range 3 {
		for i, s := range []string{a, b} {
			got := d.intern([]byte(s))
			require.Equal(t, s, got)
			require.True(t, unsafe.StringData(got) == unsafe.StringData(first[i]), "%q was made again", s)
		}
	}
}

// TestDecodeFastNewStrings: the strings a delivery brings for the first
// time (its fingerprints, group key and service) are cut from one block,
// not allocated one by one, and later deliveries leave them intact.
func TestDecodeFastNewStrings(t *testing.T) {
	const runs = 100
	bodies := make([][]byte, runs+2)
	for i := range bodies {
		bodies[i] = benchPayload(1_000_000 + i)
	}
	var first Message
	require.True(t, decodeFast(bodies[0], &first))
	n := 1
	allocs := testing.AllocsPerRun(runs, func() {
		var m Message
		if !decodeFast(bodies[n], &m) {
			t.Fatal("the fast path refused a benchmark delivery")
		}
		n++
	})
	t.Logf("%.0f allocations per new delivery", allocs)
	// 23 label maps of two allocations each, the alerts' slice, the block
	// of new strings and the decoder's own; each of the 12 new strings took
	// an allocation of its own before.
	require.LessOrEqual(t, allocs, 55.0)
	var want Message
	require.NoError(t, json.Unmarshal(bodies[0], &want))
	require.Equal(t, want, first)
}

// TestDecodeRequestAmbiguousKeys: a delivery giving a key twice (at the
// top, in an alert, in a label set) or a field name in another case
// ("Alerts"), which encoding/json reads (the last key winning, "Alerts" as
// "alerts"), is refused with 400 naming the object and the key, as
// web.UnmarshalLenient refuses them on the other endpoints; also when the
// body left the fast decoder before (an unknown key first). Label names
// differing in case and unknown keys are accepted.
func TestDecodeRequestAmbiguousKeys(t *testing.T) {
	const alert = `{"status":"firing","labels":{"alertname":"A","service":"api"},"startsAt":"2026-11-27T03:34:23Z","fingerprint":"f"}`
	const head = `{"version":"4","groupKey":"g","status":"firing","receiver":"r",`
	for _, tc := range []struct{ name, body, err string }{
		{"duplicate alerts", head + `"alerts":[],"alerts":[` + alert + `]}`, `invalid JSON body: the JSON body: key "alerts" given twice`},
		{"duplicate after an unknown key", `{"future":{"a":[1,null]},` + head[1:] + `"alerts":[` + alert + `],"status":"resolved"}`,
			`invalid JSON body: the JSON body: key "status" given twice`},
		{"alerts in another case", head + `"Alerts":[` + alert + `]}`,
			`invalid JSON body: the JSON body: unknown field "Alerts": the field is "alerts" (field names are case-sensitive)`},
		{"alert field in another case", head + `"alerts":[` + alert + `,{"status":"firing","Labels":{"alertname":"B"}}]}`,
			`invalid JSON body: alerts[1]: unknown field "Labels": the field is "labels" (field names are case-sensitive)`},
		{"duplicate in an alert", head + `"alerts":[{"status":"firing","status":"resolved","labels":{"alertname":"A"}}]}`,
			`invalid JSON body: alerts[0]: key "status" given twice`},
		{"duplicate label", head + `"alerts":[{"status":"firing","labels":{"alertname":"A","service":"api","service":"db"}}]}`,
			`invalid JSON body: alerts[0].labels: key "service" given twice`},
		{"duplicate common label", head + `"commonLabels":{"service":"api","service":"db"},"alerts":[` + alert + `]}`,
			`invalid JSON body: commonLabels: key "service" given twice`},
		{"label names in two cases", head + `"alerts":[{"status":"firing","labels":{"alertname":"A","service":"api","Service":"db"},"startsAt":"2026-11-27T03:34:23Z","fingerprint":"f"}]}`, ``},
		{"unknown key", head + `"future":1,"alerts":[` + alert + `]}`, ``},
	} {
		t.Run(tc.name, func(t *testing.T) {
			var ref Message
			require.NoError(t, json.Unmarshal([]byte(tc.body), &ref), "encoding/json reads it")
			r := httptest.NewRequest(http.MethodPost, Path, bytes.NewReader([]byte(tc.body)))
			msg, rerr := DecodeRequest(httptest.NewRecorder(), r, secretfile.Source{}, 1<<20)
			if tc.err == "" {
				require.Nil(t, rerr)
				require.Equal(t, ref, *msg)
				return
			}
			require.NotNil(t, rerr)
			require.Equal(t, http.StatusBadRequest, rerr.Code)
			require.Equal(t, "bad_data", rerr.Type)
			require.Equal(t, tc.err, rerr.Error())
		})
	}
}
