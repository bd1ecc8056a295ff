package cli

import (
	"bytes"
	"encoding/json"
	"os"
	"strings"
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
	// On a terminal (bidi), the bidirectional controls and invisible
	// characters are escaped too, also split between writes; right-to-left
	// letters, joined emoji and the rest of UTF-8 are not. Into a pipe or
	// a file they are written as they are.
	for _, tc := range []struct {
		name     string
		writes   []string
		terminal string
	}{
		{"override", []string{"Disk full on \u202e1-bd\n"}, `Disk full on \u202e1-bd` + "\n"},
		{"isolates and marks", []string{"resolved \u2067firing\u2069 \u200f\u061c\n"}, `resolved \u2067firing\u2069 \u200f\u061c` + "\n"},
		{"zero-width space, word joiner, BOM", []string{"pay\u200bpal\u2060\ufeff\n"}, `pay\u200bpal\u2060\ufeff` + "\n"},
		{"tag characters", []string{"a\U000E0041b\n"}, `a\U000e0041b` + "\n"},
		{"an override split between writes", []string{"x\xe2", "\x80", "\xaey\n"}, `x\u202ey` + "\n"},
		{"a tag split between writes", []string{"x\xf3\xa0", "\x81\x81y\n"}, `x\U000e0041y` + "\n"},
		{"right-to-left letters and emoji", []string{"שירות api خدمة 👩\u200d💻\n"}, "שירות api خدمة 👩\u200d💻\n"},
		{"invalid UTF-8 kept", []string{"a\xff\xe2b\n"}, "a\xff\xe2b\n"},
	} {
		t.Run("terminal/"+tc.name, func(t *testing.T) {
			for _, terminal := range []bool{true, false} {
				var b bytes.Buffer
				w := &termSafe{w: &b, bidi: terminal}
				for _, s := range tc.writes {
					if n, err := w.Write([]byte(s)); err != nil || n != len(s) {
						t.Fatalf("Write(%q) = %d, %v", s, n, err)
					}
				}
				if err := w.Flush(); err != nil {
					t.Fatal(err)
				}
				want := strings.Join(tc.writes, "")
				if terminal {
					want = tc.terminal
				}
				if b.String() != want {
					t.Errorf("terminal %t: got %q, want %q", terminal, b.String(), want)
				}
			}
		})
	}
	// srectl's output is a terminal only when it is one: not a pipe, not
	// a buffer.
	r, pw, err := os.Pipe()
	if err != nil {
		t.Fatal(err)
	}
	defer r.Close()
	defer pw.Close()
	if isTerminal(pw) || isTerminal(&bytes.Buffer{}) {
		t.Fatal("a pipe or a buffer taken for a terminal")
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
