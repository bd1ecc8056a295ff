package cli

import (
	"bytes"
	"encoding/json"
	"testing"
)

func TestTermSafe(t *testing.T) {
	for _, tc := range []struct {
		name   string
		writes []string
		want   string
	}{
		{"plain text", []string{"INC-2026-0001 [HIGH] api down\n\tdetail\n"}, "INC-2026-0001 [HIGH] api down\n\tdetail\n"},
		{"UTF-8", []string{"café — ünïcode ✓\n"}, "café — ünïcode ✓\n"},
		{"ESC sequences", []string{"\x1b]0;pwned\x07title \x1b[2J\x1b[1A\n"}, `\u001b]0;pwned\u0007title \u001b[2J\u001b[1A` + "\n"},
		{"carriage return and backspace", []string{"ok\rFAKE\b\x7f\n"}, `ok\u000dFAKE\u0008\u007f` + "\n"},
		{"C1 controls", []string{"a\u009b2Jb\u0085c\n"}, `a\u009b2Jb\u0085c` + "\n"},
		{"a C1 character split between writes", []string{"a\xc2", "\x9b2J\n"}, `a\u009b2J` + "\n"},
		{"a Latin-1 letter split between writes", []string{"caf\xc3", "\xa9 \xc2", "\xa9\n"}, "café ©\n"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			var b bytes.Buffer
			w := &termSafe{w: &b}
			for _, s := range tc.writes {
				n, err := w.Write([]byte(s))
				if err != nil || n != len(s) {
					t.Fatalf("Write(%q) = %d, %v", s, n, err)
				}
			}
			if err := w.Flush(); err != nil {
				t.Fatal(err)
			}
			if b.String() != tc.want {
				t.Errorf("got %q, want %q", b.String(), tc.want)
			}
		})
	}
	// JSON output stays JSON, and means the same.
	in := map[string]string{"title": "a\u0085b\u009bc"}
	js, err := json.Marshal(in)
	if err != nil {
		t.Fatal(err)
	}
	var b bytes.Buffer
	if _, err := (&termSafe{w: &b}).Write(js); err != nil {
		t.Fatal(err)
	}
	var out map[string]string
	if err := json.Unmarshal(b.Bytes(), &out); err != nil || out["title"] != in["title"] {
		t.Fatalf("JSON through termSafe: %s: %v, %q", b.String(), err, out["title"])
	}
}
