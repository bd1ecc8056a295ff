package limits

import (
	"crypto/sha256"
	"encoding/hex"
	"fmt"
	"strconv"
	"strings"
	"unicode/utf8"
)

// Webhook is the `webhook.limits` section of sred.yml: sizes of an
// Alertmanager delivery. Values over a limit are truncated, names and counts
// over a limit are refused (see docs/security.md):
//
//   - a label name longer than MaxLabelNameBytes, or an alert with more than
//     MaxLabelsPerAlert labels: the delivery is refused (400);
//   - a label value longer than MaxLabelValueBytes, an annotation value longer
//     than MaxAnnotationValueBytes: cut at that many bytes (on a UTF-8
//     boundary) and ended with TruncationMark;
//   - more than MaxAlertsPerGroup alerts: the first MaxAlertsPerGroup are
//     kept, the rest are counted in the delivery's truncatedAlerts, as
//     Alertmanager's own max_alerts does.
//
// Each truncation counts in sre_webhook_limited_total{limit}.
type Webhook struct {
	MaxLabelNameBytes       int `yaml:"max_label_name_bytes"`
	MaxLabelValueBytes      int `yaml:"max_label_value_bytes"`
	MaxLabelsPerAlert       int `yaml:"max_labels_per_alert"`
	MaxAnnotationValueBytes int `yaml:"max_annotation_value_bytes"`
	MaxAlertsPerGroup       int `yaml:"max_alerts_per_group"`
}

// DefaultWebhook holds the defaults: generous for real alerts, small enough
// that one delivery cannot grow the store or /metrics by orders of magnitude.
var DefaultWebhook = Webhook{
	MaxLabelNameBytes:       256,
	MaxLabelValueBytes:      2048,
	MaxLabelsPerAlert:       64,
	MaxAnnotationValueBytes: 16384,
	MaxAlertsPerGroup:       20000,
}

// DefaultWebhookBodyBytes bounds an Alertmanager delivery's body when
// webhook.max_body_bytes is not set (larger ones get 413). Every other
// request body sred reads is bounded by web.MaxBody.
const DefaultWebhookBodyBytes = 4 << 20

// TruncationMark ends a truncated value.
const TruncationMark = "…"

// UnmarshalYAML implements yaml.Unmarshaler.
func (w *Webhook) UnmarshalYAML(unmarshal func(any) error) error {
	*w = DefaultWebhook
	type plain Webhook
	if err := unmarshal((*plain)(w)); err != nil {
		return err
	}
	return w.Validate()
}

// Validate checks that every limit is positive and leaves room for the
// truncation mark.
func (w Webhook) Validate() error {
	for _, f := range []struct {
		name string
		v    int
		min  int
	}{
		{"max_label_name_bytes", w.MaxLabelNameBytes, 1},
		{"max_label_value_bytes", w.MaxLabelValueBytes, 16},
		{"max_labels_per_alert", w.MaxLabelsPerAlert, 1},
		{"max_annotation_value_bytes", w.MaxAnnotationValueBytes, 16},
		{"max_alerts_per_group", w.MaxAlertsPerGroup, 1},
	} {
		if f.v < f.min {
			return fmt.Errorf("webhook.limits: %s must be at least %d, got %d", f.name, f.min, f.v)
		}
	}
	return nil
}

// Truncate cuts s to at most max bytes, ending with TruncationMark, on a
// UTF-8 boundary. It reports whether s was cut.
func Truncate(s string, max int) (string, bool) {
	if len(s) <= max {
		return s, false
	}
	n := max - len(TruncationMark)
	if n < 0 {
		n = 0
	}
	for n > 0 && !utf8.RuneStart(s[n]) {
		n--
	}
	return s[:n] + TruncationMark, true
}

// MaxEchoBytes bounds a value of a request that an error answer quotes
// back (an unknown name or parameter), as jsonerr cuts a refused value.
const MaxEchoBytes = 64

// Quote quotes s for an error message, cut by Cut: an answer names what it
// refused without echoing a name of thousands of characters whole.
func Quote(s string) string {
	return strconv.Quote(Cut(s))
}

// Cut is s as an error shows it unquoted (a size, a label name, an id after
// a colon): at most MaxEchoBytes, cut by Truncate and ending with
// TruncationMark when it was longer.
func Cut(s string) string {
	t, _ := Truncate(s, MaxEchoBytes)
	return t
}

// MaxGroupKeyBytes bounds the group key sred stores for an Alertmanager
// group. Alertmanager's key holds the route and every group-by label
// (`group_by: ['...']`: all of them), so it can be longer than PostgreSQL
// indexes (about 2.7 KB per B-tree entry); see GroupKey.
const MaxGroupKeyBytes = 1024

// GroupKey returns the key sred stores for Alertmanager's group key k: k
// itself when it has at most MaxGroupKeyBytes, otherwise its first bytes
// (cut on a UTF-8 boundary), TruncationMark and the SHA-256 of the whole
// key, MaxGroupKeyBytes in all. The same key always gives the same result,
// so a retry, an HA peer's copy and another replica land on one group, and
// keys that differ anywhere give different results. It reports whether k
// was replaced.
func GroupKey(k string) (string, bool) {
	if len(k) <= MaxGroupKeyBytes {
		return k, false
	}
	sum := sha256.Sum256([]byte(k))
	digest := " sha256:" + hex.EncodeToString(sum[:])
	head, _ := Truncate(k, MaxGroupKeyBytes-len(digest))
	return head + digest, true
}

// MaxParseErrorBytes bounds the text of a parser's error (PromQL) that an
// answer or a config error shows: the parser quotes the token it stopped at
// whole, and a request's body may hold one of a megabyte.
const MaxParseErrorBytes = 256

// ParseError is err (a parser's error, such as PromQL's) as an error
// shows it: every word longer than MaxEchoBytes cut by Truncate (keeping
// its quotes, so `unexpected identifier "xxx…"` still reads as one token),
// then the whole text cut to MaxParseErrorBytes. The position and message
// that lead the text stay. errors.Is and errors.As see err. A nil err
// gives nil.
func ParseError(err error) error {
	if err == nil {
		return nil
	}
	s := err.Error()
	if len(s) <= MaxEchoBytes {
		return err
	}
	words := strings.Split(s, " ")
	for i, w := range words {
		if len(w) <= MaxEchoBytes {
			continue
		}
		q := w[0]
		if (q == '"' || q == '`' || q == '\'') && w[len(w)-1] == q {
			t, _ := Truncate(w[1:len(w)-1], MaxEchoBytes-2)
			words[i] = string(q) + t + string(q)
			continue
		}
		words[i], _ = Truncate(w, MaxEchoBytes)
	}
	s, _ = Truncate(strings.Join(words, " "), MaxParseErrorBytes)
	return &cutError{text: s, err: err}
}

type cutError struct {
	text string
	err  error
}

func (e *cutError) Error() string { return e.text }
func (e *cutError) Unwrap() error { return e.err }
