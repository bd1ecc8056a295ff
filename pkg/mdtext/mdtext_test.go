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
