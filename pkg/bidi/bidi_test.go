package bidi

import (
	"testing"

	"github.com/stretchr/testify/require"
)

func span(code, name string) string {
	return `<span class="bidi" title="U+` + code + ` ` + name + `: a bidirectional control character in the text, shown instead of applied">&lt;U+` + code + `&gt;</span>`
}

// TestHTML: a control character in a page's text becomes a span naming
// it; in an attribute value, the title, a textarea, a script and inline
// SVG, where a span is no markup, the escaped text <U+202E>. Other text,
// invalid UTF-8 included, is left as it is.
func TestHTML(t *testing.T) {
	for _, tc := range []struct{ name, in, want string }{
		{"none", "<p>plain \xff text</p>", "<p>plain \xff text</p>"},
		{"text", "<p>a\u202eb</p>", "<p>a" + span("202E", "RIGHT-TO-LEFT OVERRIDE") + "b</p>"},
		{"every one", "\u061c\u200e\u200f\u202a\u202b\u202c\u202d\u2066\u2067\u2068\u2069",
			span("061C", "ARABIC LETTER MARK") + span("200E", "LEFT-TO-RIGHT MARK") + span("200F", "RIGHT-TO-LEFT MARK") +
				span("202A", "LEFT-TO-RIGHT EMBEDDING") + span("202B", "RIGHT-TO-LEFT EMBEDDING") + span("202C", "POP DIRECTIONAL FORMATTING") +
				span("202D", "LEFT-TO-RIGHT OVERRIDE") + span("2066", "LEFT-TO-RIGHT ISOLATE") + span("2067", "RIGHT-TO-LEFT ISOLATE") +
				span("2068", "FIRST STRONG ISOLATE") + span("2069", "POP DIRECTIONAL ISOLATE")},
		{"neighbours kept", "\u2029\u202f\u2065\u206a\u061b\u200d", "\u2029\u202f\u2065\u206a\u061b\u200d"},
		{"attribute", `<p title="a>` + "\u202e" + `b" data-x='` + "\u2066" + `'>c` + "\u2069</p>",
			`<p title="a>&lt;U+202E&gt;b" data-x='&lt;U+2066&gt;'>c` + span("2069", "POP DIRECTIONAL ISOLATE") + "</p>"},
		{"title", "<title>a\u202eb</title><p>\u202e", "<title>a&lt;U+202E&gt;b</title><p>" + span("202E", "RIGHT-TO-LEFT OVERRIDE")},
		{"textarea", "<TEXTAREA rows=2>x<p>\u202e</Textarea >\u202e",
			"<TEXTAREA rows=2>x<p>&lt;U+202E&gt;</Textarea >" + span("202E", "RIGHT-TO-LEFT OVERRIDE")},
		{"script", `<script>"</title>` + "\u202e\"</script>\u202e", `<script>"</title>&lt;U+202E&gt;"</script>` + span("202E", "RIGHT-TO-LEFT OVERRIDE")},
		{"svg", "<svg><text>a\u202e</text><svg/></svg>b\u202e",
			"<svg><text>a&lt;U+202E&gt;</text><svg/></svg>b" + span("202E", "RIGHT-TO-LEFT OVERRIDE")},
		{"doctype", "<!doctype html>\u202e", "<!doctype html>" + span("202E", "RIGHT-TO-LEFT OVERRIDE")},
	} {
		t.Run(tc.name, func(t *testing.T) {
			require.Equal(t, tc.want, string(HTML([]byte(tc.in))))
		})
	}
}

func TestXML(t *testing.T) {
	require.Equal(t, `<title a="&lt;U+202E&gt;">x&lt;U+2067&gt;y</title>`, string(XML([]byte(`<title a="`+"\u202e"+`">x`+"\u2067"+`y</title>`))))
	require.Equal(t, "<a>\xff</a>", string(XML([]byte("<a>\xff</a>"))))
}
