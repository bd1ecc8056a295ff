package limits

import "regexp"

// NameRE is what a service name (and an SLO name) may be, as an SLO spec
// names its service (pkg/slo): the services of changes, budgets and the
// deploy gate are the same names.
var NameRE = regexp.MustCompile(`^[a-zA-Z0-9][a-zA-Z0-9_.-]{0,62}$`)

// NameRule says what NameRE accepts.
const NameRule = "letters, digits, '_', '.', '-', starting with a letter or digit; at most 63 characters"

// ServiceName refuses a service name NameRE does not accept: a newline or
// a quote in it would reach label values, logs and the links of the UI.
func ServiceName(field, s string) error {
	if !NameRE.MatchString(s) {
		return fieldErr(field, "invalid service name %s (%s)", Quote(s), NameRule)
	}
	return nil
}
