package cli

import (
	"errors"
	"fmt"
	"strings"

	"github.com/rootuip/sre/pkg/limits"
)

// cutParseError is kingpin's parse error with the value it quotes cut by
// limits.Cut: kingpin names the value whole (`enum value must be one of
// table,json, got 'xxxx'`, `unknown long flag '--xxxx'`, `expected command
// but got "xxxx"`), and a value of thousands of characters would fill the
// terminal. The value is what lies between the first quote (' or ") and the
// last quote of the same kind; the rest of the message stays as kingpin
// wrote it. An error with nothing to cut is returned as it is.
func cutParseError(err error) error {
	if err == nil {
		return nil
	}
	s := err.Error()
	i := strings.IndexAny(s, `'"`)
	if i < 0 {
		return err
	}
	j := strings.LastIndexByte(s, s[i])
	if j <= i || j-i-1 <= limits.MaxEchoBytes {
		return err
	}
	return errors.New(s[:i+1] + limits.Cut(s[i+1:j]) + s[j:])
}

// negativeValueHint is the hint for kingpin's "expected argument for flag
// '--for'" when the flag is followed by a value starting with '-' (a
// negative duration or number, --for -5m), which kingpin reads as another
// flag: the same value after '=' reaches the command, which says what is
// wrong with it. "" otherwise.
func negativeValueHint(err error, args []string) string {
	flag, ok := strings.CutPrefix(err.Error(), "expected argument for flag '")
	if !ok {
		return ""
	}
	flag, ok = strings.CutSuffix(flag, "'")
	if !ok || !strings.HasPrefix(flag, "--") {
		return ""
	}
	for i := 0; i+1 < len(args); i++ {
		if v := args[i+1]; args[i] == flag && len(v) > 1 && v[0] == '-' && (v[1] >= '0' && v[1] <= '9' || v[1] == '.') {
			return fmt.Sprintf(" (a value starting with '-' goes after '=': %s=%s)", flag, limits.Cut(v))
		}
	}
	return ""
}
