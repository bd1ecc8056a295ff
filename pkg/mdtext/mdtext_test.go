package mdtext

import "testing"

func TestEscape(t *testing.T) {
	for _, tc := range []struct{ in, cell, text string }{
		{"api", "api", "api"},
		{"a|b\nc\r\td\x1b[2J", `a\|b c  d \[2J`, `a\|b c  d \[2J`},
		{"<img src=x> [click](http://x) *b* _i_ `c`", "&lt;img src=x&gt; \\[click\\](http://x) \\*b\\* \\_i\\_ \\`c\\`", "&lt;img src=x&gt; \\[click\\](http://x) *b* _i_ `c`"},
		{`\[x\](javascript:y) \| \`, `\\\[x\\\](javascript:y) \\\| \\`, `\\\[x\\\](javascript:y) \\\| \\`},
	} {
		if got := Cell(tc.in); got != tc.cell {
			t.Errorf("Cell(%q) = %q, want %q", tc.in, got, tc.cell)
		}
		if got := Text(tc.in); got != tc.text {
			t.Errorf("Text(%q) = %q, want %q", tc.in, got, tc.text)
		}
	}
}

func TestLines(t *testing.T) {
	for in, want := range map[string]string{
		"15% of checkouts failing":               "15% of checkouts failing",
		"a\r\n\r\n# b\n  - c\n===\n\t<i>d</i> e": "a\n\n\\# b\n\\- c\n\\===\n&lt;i&gt;d&lt;/i&gt; e",
		"```\n~~~\n+ x\n* y\n_z_":                "\\```\n\\~~~\n\\+ x\n\\* y\n\\_z_",
	} {
		if got := Lines(in); got != want {
			t.Errorf("Lines(%q) = %q, want %q", in, got, want)
		}
	}
}
