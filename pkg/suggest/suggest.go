// Package suggest finds what a user probably meant by a mistyped name: a
// flag of srectl or sred, a command, a field of a configuration file.
package suggest

import (
	"fmt"
	"strings"

	"github.com/alecthomas/kingpin/v2"
)

// Flags returns the long names a flag answers to (with --no- for
// booleans), none when it is hidden.
func Flags(f *kingpin.FlagModel) []string {
	if f.Hidden {
		return nil
	}
	names := []string{f.Name}
	if f.IsBoolFlag() {
		names = append(names, "no-"+f.Name)
	}
	return names
}

// Closest returns the candidate nearest to s: the only one s is a prefix of,
// else the one at the smallest edit distance if that distance is small for
// its length; "" when none is close.
func Closest(s string, candidates []string) string {
	if s == "" {
		return ""
	}
	var prefixed []string
	for _, c := range candidates {
		if strings.HasPrefix(c, s) && c != s {
			prefixed = append(prefixed, c)
		}
	}
	if len(prefixed) == 1 && len(s) >= 2 {
		return prefixed[0]
	}
	best, bestD := "", 0
	for _, c := range candidates {
		d := editDistance(strings.ToLower(s), strings.ToLower(c))
		if best == "" || d < bestD {
			best, bestD = c, d
		}
	}
	limit := 2
	if len(s) <= 3 {
		limit = 1
	}
	if best == "" || bestD > limit {
		return ""
	}
	return best
}

// editDistance is the Damerau-Levenshtein distance of a and b (optimal
// string alignment: insertions, deletions, substitutions, transpositions).
func editDistance(a, b string) int {
	ra, rb := []rune(a), []rune(b)
	d := make([][]int, len(ra)+1)
	for i := range d {
		d[i] = make([]int, len(rb)+1)
		d[i][0] = i
	}
	for j := range rb {
		d[0][j+1] = j + 1
	}
	for i := 1; i <= len(ra); i++ {
		for j := 1; j <= len(rb); j++ {
			cost := 1
			if ra[i-1] == rb[j-1] {
				cost = 0
			}
			d[i][j] = min(d[i-1][j]+1, d[i][j-1]+1, d[i-1][j-1]+cost)
			if i > 1 && j > 1 && ra[i-1] == rb[j-2] && ra[i-2] == rb[j-1] {
				d[i][j] = min(d[i][j], d[i-2][j-2]+1)
			}
		}
	}
	return d[len(ra)][len(rb)]
}

// FlagHint returns what to append to the command-line error of an
// application without commands (sred): " (did you mean --web.listen-address?)"
// for a mistyped long flag, " (<name> --help lists the flags)" for another
// unknown one; "" when the error is not about an unknown flag.
func FlagHint(app *kingpin.Application, args []string) (hint string) {
	defer func() {
		// A hint is a courtesy: it never turns an error into a crash.
		if recover() != nil {
			hint = ""
		}
	}()
	ctx, err := app.ParseContext(args)
	if ctx == nil || err == nil || ctx.EOL() {
		return ""
	}
	tok := ctx.Peek()
	if tok.Type != kingpin.TokenLong {
		return ""
	}
	name, _, _ := strings.Cut(tok.Value, "=")
	var flags []string
	for _, f := range app.Model().Flags {
		flags = append(flags, Flags(f)...)
	}
	if m := Closest(name, flags); m != "" {
		return fmt.Sprintf(" (did you mean --%s?)", m)
	}
	return fmt.Sprintf(" (%s --help lists the flags)", app.Name)
}
