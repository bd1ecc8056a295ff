// Package english writes the counts of sred's and srectl's messages.
package english

import "strconv"

// Count is "1 service", "2 services", "0 services": n and the noun,
// singular for one.
func Count(n int, one, many string) string {
	if n == 1 {
		return "1 " + one
	}
	return strconv.Itoa(n) + " " + many
}
