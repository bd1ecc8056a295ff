package bidi

import (
	"fmt"
	"strings"
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
		{"neighbours kept", "\u2029\u202f\u2065\u206a\u061b\u200a", "\u2029\u202f\u2065\u206a\u061b\u200a"},
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

func invisibleSpan(code, name string) string {
	return `<span class="bidi" title="U+` + code + ` ` + name + `: an invisible character in the text, shown instead of hidden">&lt;U+` + code + `&gt;</span>`
}

// TestHTMLInvisible: a zero-width space, a word joiner, a byte order mark
// and tag characters are shown in a page as the bidirectional controls
// are, in a span naming them, and as the text <U+200B> in an attribute;
// a zero-width joiner or non-joiner next to ASCII or markup is shown
// too. Right-to-left text, emoji joined with a joiner, a Persian word with
// a non-joiner and an emoji flag's tags are left as they are.
func TestHTMLInvisible(t *testing.T) {
	const england = "🏴\U000E0067\U000E0062\U000E0065\U000E006E\U000E0067\U000E007F"
	for _, tc := range []struct{ name, in, want string }{
		{"zero width space", "<p>pay\u200bpal</p>", "<p>pay" + invisibleSpan("200B", "ZERO WIDTH SPACE") + "pal</p>"},
		{"word joiner and bom", "<p>\ufeffa\u2060b</p>",
			"<p>" + invisibleSpan("FEFF", "ZERO WIDTH NO-BREAK SPACE") + "a" + invisibleSpan("2060", "WORD JOINER") + "b</p>"},
		{"tags smuggled", "<td>ok\U000E0069\U000E0041\U000E0001\U000E0021</td>",
			"<td>ok" + invisibleSpan("E0069", "TAG LATIN SMALL LETTER I") + invisibleSpan("E0041", "TAG LATIN CAPITAL LETTER A") +
				invisibleSpan("E0001", "LANGUAGE TAG") + invisibleSpan("E0021", "TAG CHARACTER") + "</td>"},
		{"joiner next to ASCII", "<p>@\u200dchannel ad\u200cmin</p>",
			"<p>@" + invisibleSpan("200D", "ZERO WIDTH JOINER") + "channel ad" + invisibleSpan("200C", "ZERO WIDTH NON-JOINER") + "min</p>"},
		{"joiner next to markup", "<p>\u200d😀\u200d</p>",
			"<p>" + invisibleSpan("200D", "ZERO WIDTH JOINER") + "😀" + invisibleSpan("200D", "ZERO WIDTH JOINER") + "</p>"},
		{"joiner beside a control", "<p>😀\u200d\u202e</p>",
			"<p>😀" + invisibleSpan("200D", "ZERO WIDTH JOINER") + span("202E", "RIGHT-TO-LEFT OVERRIDE") + "</p>"},
		{"tags after a flag without cancel", "<p>🏴\U000E0067\U000E0062</p>",
			"<p>🏴" + invisibleSpan("E0067", "TAG LATIN SMALL LETTER G") + invisibleSpan("E0062", "TAG LATIN SMALL LETTER B") + "</p>"},
		{"attribute", `<p title="a` + "\u200b" + `b">c</p>`, `<p title="a&lt;U+200B&gt;b">c</p>`},
		{"title", "<title>a\u2060b</title>", "<title>a&lt;U+2060&gt;b</title>"},
		// Legitimate text: unchanged.
		{"arabic", "<p>خدمة الدفع متوقفة</p>", "<p>خدمة الدفع متوقفة</p>"},
		{"hebrew", "<p>שירות התשלומים</p>", "<p>שירות התשלומים</p>"},
		{"persian non-joiner", "<p>می\u200cخواهم</p>", "<p>می\u200cخواهم</p>"},
		{"emoji joiner", "<p>👩\u200d💻 and 👨\u200d👩\u200d👧</p>", "<p>👩\u200d💻 and 👨\u200d👩\u200d👧</p>"},
		{"emoji joiner in an attribute", `<p title="👩` + "\u200d" + `💻">x</p>`, `<p title="👩` + "\u200d" + `💻">x</p>`},
		{"flag of England", "<p>" + england + "!</p>", "<p>" + england + "!</p>"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			require.Equal(t, tc.want, string(HTML([]byte(tc.in))))
		})
	}
}

// TestText: the text form, which the notification channels send, shows
// the same characters as HTML and XML; a second pass changes nothing.
// wales is the flag of Wales: 🏴, the tags g b w l s, CANCEL TAG.
const wales = "🏴\U000E0067\U000E0062\U000E0077\U000E006C\U000E0073\U000E007F"

// textCases are the texts TestText and TestNext read, with their Text.
var textCases = []struct{ in, want string }{
	{"api down", "api down"},
	{"\u202eexe.live", "<U+202E>exe.live"},
	{"pay\u200bpal", "pay<U+200B>pal"},
	{"@\u200dchannel", "@<U+200D>channel"},
	{"ok\U000E0069", "ok<U+E0069>"},
	{"👩\u200d💻", "👩\u200d💻"},
	{"می\u200cخواهم", "می\u200cخواهم"},
	{"🏴\U000E0067\U000E0062\U000E0073\U000E0063\U000E0074\U000E007F", "🏴\U000E0067\U000E0062\U000E0073\U000E0063\U000E0074\U000E007F"},
	{"\u200d", "<U+200D>"},
	{"\u200d😀", "<U+200D>😀"},
	{"😀\u200d", "😀<U+200D>"},
	{"a\u200dé", "a<U+200D>é"},
	// A C1 control is no visible character: a joiner next to one is shown.
	{"\u0085\u200dé", "\u0085<U+200D>é"},
	{"é\u200c\u009b", "é<U+200C>\u009b"},
	{wales + "!", wales + "!"},
	{"x\U000E0077\U000E006C\U000E007F", "x<U+E0077><U+E006C><U+E007F>"},
	{"🏴\U000E0077\U000E006C", "🏴<U+E0077><U+E006C>"},
	{"🏴\U000E0077\U000E006Cs", "🏴<U+E0077><U+E006C>s"},
	{"🏴\U000E007F", "🏴<U+E007F>"},
	{"🏴\u200d☠\ufe0f", "🏴\u200d☠\ufe0f"},
	{"a\xe2\x80\u200d\xf0\x9f", "a\xe2\x80<U+200D>\xf0\x9f"},
}

func TestText(t *testing.T) {
	for _, tc := range textCases {
		require.Equal(t, tc.want, Text(tc.in), "%+q", tc.in)
		require.Equal(t, tc.want, Text(tc.want), "%+q, second pass", tc.in)
		require.Equal(t, strings.NewReplacer("<", "&lt;", ">", "&gt;").Replace(tc.want), string(XML([]byte(tc.in))), "%+q in XML", tc.in)
	}
}

func TestXML(t *testing.T) {
	require.Equal(t, `<title a="&lt;U+202E&gt;">x&lt;U+2067&gt;y</title>`, string(XML([]byte(`<title a="`+"\u202e"+`">x`+"\u2067"+`y</title>`))))
	require.Equal(t, "<a>\xff</a>", string(XML([]byte("<a>\xff</a>"))))
}

// stream reads parts one after the other with Next, as a writer gets
// them, and returns them with each character shown as <U+XXXX>: the
// bytes Next needs more of wait for the next part, and the end of the
// text (more false) comes after the last part.
func stream(parts []string) string {
	var out strings.Builder
	var held []byte
	prev := rune(-1)
	for k := 0; k <= len(parts); k++ {
		b, more := held, k < len(parts)
		if more {
			b = append(b, parts[k]...)
		}
		i := 0
		for i < len(b) {
			r, n, show, need := Next(b[i:], prev, more)
			if need {
				break
			}
			if show {
				fmt.Fprintf(&out, "<U+%04X>", r)
			} else {
				out.Write(b[i : i+n])
			}
			i, prev = i+n, r
		}
		held = append([]byte(nil), b[i:]...)
	}
	return out.String()
}

// TestNext: a text read in parts, split at any byte, in two parts or
// one byte a part, is shown as Text shows it whole.
func TestNext(t *testing.T) {
	for _, tc := range textCases {
		require.Equal(t, tc.want, stream([]string{tc.in}), "%+q", tc.in)
		var single []string
		for k := range len(tc.in) {
			require.Equal(t, tc.want, stream([]string{tc.in[:k], tc.in[k:]}), "%+q split at %d", tc.in, k)
			single = append(single, tc.in[k:k+1])
		}
		require.Equal(t, tc.want, stream(single), "%+q one byte a part", tc.in)
	}
	// What needs more waits for it.
	for _, tc := range []struct {
		in   string
		prev rune
	}{
		{"\u200d", '😀'},
		{"\u200d\xf0\x9f", '😀'},
		{"\xe2\x80", 'a'},
		{"\U000E0077\U000E006C", '🏴'},
		{"\U000E0077\xf3\xa0", '🏴'},
	} {
		_, _, _, need := Next([]byte(tc.in), tc.prev, true)
		require.True(t, need, "%+q after %q", tc.in, tc.prev)
	}
	// What does not, does not: a joiner after ASCII is shown whatever follows.
	r, n, show, need := Next([]byte("\u200d"), 'a', true)
	require.Equal(t, []any{rune(0x200D), 3, true, false}, []any{r, n, show, need})
	// An empty part has nothing to decide, even at the end: a caller that
	// advances by n is told to wait rather than given n == 0.
	for _, more := range []bool{true, false} {
		_, n, _, need := Next(nil, 'a', more)
		require.Equal(t, []any{0, true}, []any{n, need}, "empty, more %v", more)
	}
}
