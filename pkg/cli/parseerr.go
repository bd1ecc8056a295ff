package cli

import (
	"errors"
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
