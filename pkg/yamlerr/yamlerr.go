// Package yamlerr rewrites the errors of the YAML decoder for people: the
// decoder names the Go types it decodes into ("field x not found in type
// config.Config", "cannot unmarshal !!int `5` into escalation.plain"), which
// mean nothing to whoever wrote the file. Rewrite says what was found and
// what the place wants instead, keeping the line numbers. It also rewrites
// the type name out of the error of a template (in a config file) that uses
// a field its data does not have.
package yamlerr

import (
	"regexp"
	"strconv"
	"strings"
	"unicode/utf8"

	"github.com/rootuip/sre/pkg/limits"
)

var (
	notFound = regexp.MustCompile("field (.+?) not found in type \\S+")
	// The decoder writes a value between backticks as it is, backticks
	// inside it included (`a`b`): the value runs to the "` into " whose Go
	// type ends the line (cannotIntoEOL), or to the first "` into " when
	// more follows the type on its line (cannotInto).
	cannotIntoEOL = regexp.MustCompile("(?m)cannot unmarshal !!(\\w+) `((?s:.*?))` into (\\S+)$")
	cannotInto    = regexp.MustCompile("cannot unmarshal !!(\\w+) `((?s:.*?))` into (\\S+)")
	cannotPlain   = regexp.MustCompile("cannot unmarshal !!(\\w+) into (\\S+)")
	// A template of a config file (titles, messages) using a field its data lacks.
	noTmplField = regexp.MustCompile("can't evaluate field (\\w+) in type \\S+")
	// A duration that does not parse, quoted whole by prometheus/common
	// (model.Duration) and by time.ParseDuration.
	badDuration = regexp.MustCompile(`(not a valid duration string: |time: invalid duration |time: unknown unit |time: missing unit in duration )("(?:[^"\\]|\\.)*")`)
)

// Message rewrites the Go type names out of a YAML decoder message.
func Message(msg string) string {
	msg = notFound.ReplaceAllString(msg, `unknown field "$1"`)
	for _, re := range []*regexp.Regexp{cannotIntoEOL, cannotInto} {
		msg = re.ReplaceAllStringFunc(msg, func(m string) string {
			s := re.FindStringSubmatch(m)
			return "cannot use " + kind(s[1]) + " " + quote(s[2]) + " here: want " + want(s[3])
		})
	}
	msg = cannotPlain.ReplaceAllStringFunc(msg, func(m string) string {
		s := cannotPlain.FindStringSubmatch(m)
		return "cannot use " + kind(s[1]) + " here: want " + want(s[2])
	})
	msg = noTmplField.ReplaceAllString(msg, "the template data has no field $1")
	msg = badDuration.ReplaceAllStringFunc(msg, func(m string) string {
		s := badDuration.FindStringSubmatch(m)
		v, err := strconv.Unquote(s[2])
		if err != nil {
			return m
		}
		return s[1] + limits.Quote(v)
	})
	return msg
}

// Rewrite returns err with its message rewritten by Message; errors.Is and
// errors.As still see the original. It returns err itself when there is
// nothing to rewrite.
func Rewrite(err error) error {
	if err == nil {
		return nil
	}
	msg := Message(err.Error())
	if msg == err.Error() {
		return err
	}
	return &rewritten{msg: msg, err: err}
}

type rewritten struct {
	msg string
	err error
}

func (r *rewritten) Error() string { return r.msg }
func (r *rewritten) Unwrap() error { return r.err }

// kind names a YAML tag.
func kind(tag string) string {
	switch tag {
	case "str":
		return "the string"
	case "int":
		return "the integer"
	case "float":
		return "the number"
	case "bool":
		return "the boolean"
	case "null":
		return "null"
	case "seq":
		return "a list"
	case "map":
		return "a mapping"
	case "binary":
		return "binary data"
	case "timestamp":
		return "the timestamp"
	}
	return "a value of type !!" + tag
}

// decoderCutBytes and decoderCutMark are how the decoder names a value longer than ten bytes in
// its message: the first seven bytes and "...".
const (
	decoderCutBytes = 7
	decoderCutMark  = "..."
)

// quote quotes a value the decoder names as the project quotes every value
// it echoes in an error (limits.Quote: cut at limits.MaxEchoBytes, ending
// with limits.TruncationMark). The decoder cuts a value longer than ten
// bytes to its first seven bytes and "...", even inside a character: that
// cut ends with limits.TruncationMark too, on a character boundary.
func quote(v string) string {
	if len(v) == decoderCutBytes+len(decoderCutMark) && strings.HasSuffix(v, decoderCutMark) {
		v = wholeRunes(v[:decoderCutBytes]) + limits.TruncationMark
	}
	return limits.Quote(v)
}

// wholeRunes drops the bytes of a character cut off at the end of s.
func wholeRunes(s string) string {
	for len(s) > 0 {
		r, size := utf8.DecodeLastRuneInString(s)
		if r != utf8.RuneError || size > 1 {
			break
		}
		s = s[:len(s)-1]
	}
	return s
}

// want describes what a Go type accepts in YAML.
func want(goType string) string {
	t := strings.TrimLeft(goType, "*")
	switch {
	case strings.HasPrefix(t, "[]"):
		return "a list"
	case strings.HasPrefix(t, "map["):
		return "a mapping"
	}
	switch t {
	case "string", "config.Secret":
		return "a string"
	case "bool":
		return "true or false"
	case "int", "int8", "int16", "int32", "int64", "uint", "uint8", "uint16", "uint32", "uint64":
		return "an integer"
	case "float32", "float64":
		return "a number"
	case "time.Duration", "model.Duration":
		return "a duration such as 30s or 5m"
	case "time.Time":
		return "a time (RFC 3339)"
	case "config.URL", "url.URL":
		return "a URL"
	case "config.Regexp", "regexp.Regexp":
		return "a regular expression"
	case "model.LabelSet", "labels.Labels":
		return "a mapping of label names to values"
	}
	// A section or an entry of the file (a Go struct, often the "plain"
	// alias of one that validates itself).
	return "a mapping of fields"
}
