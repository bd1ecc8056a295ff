package escalation

import (
	"testing"

	"github.com/prometheus/common/model"
)

// FuzzParseMatchers feeds arbitrary text to the matcher parser used by
// escalation policies and maintenance windows (the runbooks use the same
// syntax): it must answer matchers or an error, never panic, and the
// matchers it accepts must evaluate on any label set and parse again from
// their own text.
func FuzzParseMatchers(f *testing.F) {
	for _, s := range []string{`service="api"`, `{severity=~"CRITICAL|HIGH"}`, `alertname!="Watchdog", env=~"prod.*"`,
		`a!~"(x"`, `{a="b",}`, `namespace=~".+"`, `"quoted name"="v"`, `a="\u0000"`, `{}`, `x=~"[[:alpha:]]"`} {
		f.Add(s)
	}
	ls := model.LabelSet{"service": "api", "severity": "CRITICAL", "alertname": "HighErrorRate"}
	f.Fuzz(func(t *testing.T, s string) {
		ms, err := ParseMatchers([]string{s})
		if err != nil {
			return
		}
		_ = ms.Matches(ls)
		for _, m := range ms {
			if _, err := ParseMatchers([]string{m.String()}); err != nil {
				t.Fatalf("matcher %q of %q does not parse again: %v", m.String(), s, err)
			}
		}
	})
}
