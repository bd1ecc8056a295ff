package cli

import (
	"bytes"
	"encoding/json"
	"os"
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
	// On a terminal (bidi), the characters bidi.Text shows are escaped
	// too, by its rule: the bidirectional controls, the invisible
	// characters, a joiner next to ASCII, a C1 control or an end, tags out
	// of an emoji flag. Right-to-left letters, joined emoji, a Persian
	// non-joiner, a flag's tags and the rest of UTF-8 are not. Into a pipe
	// or a file they are written as they are (but C0 and C1 controls).
	// Each text is written whole, split in two at every byte, and one
	// byte a write: the output after Flush is the same.
	const wales = "🏴\U000E0067\U000E0062\U000E0077\U000E006C\U000E0073\U000E007F"
	for _, tc := range []struct {
		name     string
		in       string
		terminal string
		pipe     string // "" when in is written as it is
	}{
		{"override", "Disk full on \u202e1-bd\n", `Disk full on \u202e1-bd` + "\n", ""},
		{"isolates and marks", "resolved \u2067firing\u2069 \u200f\u061c\n", `resolved \u2067firing\u2069 \u200f\u061c` + "\n", ""},
		{"zero-width space, word joiner, BOM", "pay\u200bpal\u2060\ufeff\n", `pay\u200bpal\u2060\ufeff` + "\n", ""},
		{"tag characters", "a\U000E0041b\n", `a\U000e0041b` + "\n", ""},
		{"right-to-left letters and emoji", "שירות api خدمة 👩\u200d💻\n", "שירות api خدمة 👩\u200d💻\n", ""},
		{"joined emoji at the end", "👩\u200d💻", "👩\u200d💻", ""},
		{"persian non-joiner", "می\u200cخواهم\n", "می\u200cخواهم\n", ""},
		{"joiner at the start", "\u200d😀\n", `\u200d😀` + "\n", ""},
		{"joiner at the end", "😀\u200d", `😀\u200d`, ""},
		{"joiner alone", "\u200d", `\u200d`, ""},
		{"joiner after ASCII", "@\u200dchannel ad\u200cmin\n", `@\u200dchannel ad\u200cmin` + "\n", ""},
		{"joiner before ASCII", "😀\u200d!\n", `😀\u200d!` + "\n", ""},
		{"joiner beside a control", "😀\u200d\u202e\n", `😀\u200d\u202e` + "\n", ""},
		{"joiner after a C1 control", "\u0085\u200dé\n", `\u0085\u200dé` + "\n", `\u0085` + "\u200dé\n"},
		{"joiner before a C1 control", "é\u200c\u009b\n", `é\u200c\u009b` + "\n", "é\u200c" + `\u009b` + "\n"},
		{"flag of Wales", "Cymru " + wales + "!\n", "Cymru " + wales + "!\n", ""},
		{"flag of Wales at the end", wales, wales, ""},
		{"flag and joined emoji", wales + "👩\u200d💻🏴\u200d☠\ufe0f\n", wales + "👩\u200d💻🏴\u200d☠\ufe0f\n", ""},
		{"tags without the flag", "x\U000E0077\U000E006C\U000E007F\n", `x\U000e0077\U000e006c\U000e007f` + "\n", ""},
		{"tags without CANCEL TAG", "🏴\U000E0077\U000E006Cs\n", `🏴\U000e0077\U000e006cs` + "\n", ""},
		{"tags without CANCEL TAG at the end", "🏴\U000E0077\U000E006C", `🏴\U000e0077\U000e006c`, ""},
		{"CANCEL TAG alone after the flag", "🏴\U000E007F\n", `🏴\U000e007f` + "\n", ""},
		{"invalid UTF-8 kept", "a\xff\xe2b\n", "a\xff\xe2b\n", ""},
		{"cut short at the end", "a\u200d\xe2\x80", `a\u200d` + "\xe2\x80", ""},
	} {
		t.Run("terminal/"+tc.name, func(t *testing.T) {
			splits := [][]string{{tc.in}}
			for k := range len(tc.in) {
				splits = append(splits, []string{tc.in[:k], tc.in[k:]})
			}
			var single []string
			for k := range len(tc.in) {
				single = append(single, tc.in[k:k+1])
			}
			splits = append(splits, single)
			for _, terminal := range []bool{true, false} {
				want := tc.in
				switch {
				case terminal:
					want = tc.terminal
				case tc.pipe != "":
					want = tc.pipe
				}
				for _, writes := range splits {
					var b bytes.Buffer
					w := &termSafe{w: &b, bidi: terminal}
					for _, s := range writes {
						if n, err := w.Write([]byte(s)); err != nil || n != len(s) {
							t.Fatalf("Write(%q) = %d, %v", s, n, err)
						}
					}
					if err := w.Flush(); err != nil {
						t.Fatal(err)
					}
					if b.String() != want {
						t.Errorf("terminal %t, writes %q: got %q, want %q", terminal, writes, b.String(), want)
					}
				}
			}
		})
	}
	// What waits for the next write, to be escaped or not, is written by
	// it, or by Flush at the end.
	for _, tc := range []struct {
		name                   string
		terminal               bool
		write, held, next, end string
	}{
		{"a joiner", true, "😀\u200d", "😀", "", `😀\u200d`},
		{"a joiner, then an emoji", true, "👩\u200d", "👩", "💻", "👩\u200d💻"},
		{"a joiner, then ASCII", true, "👩\u200d", "👩", "x", `👩\u200dx`},
		{"a flag's tags", true, "🏴\U000E0067\U000E0062", "🏴", "", `🏴\U000e0067\U000e0062`},
		{"a flag's tags, then CANCEL TAG", true, "🏴\U000E0067\U000E0062", "🏴", "\U000E007F", "🏴\U000E0067\U000E0062\U000E007F"},
		{"a character cut short", false, "caf\xc3", "caf", "", "caf\xc3"},
		{"a character cut short, then its end", false, "caf\xc3", "caf", "\xa9", "café"},
	} {
		t.Run("held/"+tc.name, func(t *testing.T) {
			var b bytes.Buffer
			w := &termSafe{w: &b, bidi: tc.terminal}
			if _, err := w.Write([]byte(tc.write)); err != nil {
				t.Fatal(err)
			}
			if b.String() != tc.held {
				t.Errorf("after Write(%q): got %q, want %q", tc.write, b.String(), tc.held)
			}
			if tc.next != "" {
				if _, err := w.Write([]byte(tc.next)); err != nil {
					t.Fatal(err)
				}
				if b.String() != tc.end {
					t.Errorf("after Write(%q): got %q, want %q", tc.next, b.String(), tc.end)
				}
			}
			if err := w.Flush(); err != nil {
				t.Fatal(err)
			}
			if b.String() != tc.end {
				t.Errorf("after Flush: got %q, want %q", b.String(), tc.end)
			}
			if err := w.Flush(); err != nil || b.String() != tc.end {
				t.Errorf("second Flush: %v, %q", err, b.String())
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
