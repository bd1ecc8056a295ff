package app

import (
	"errors"
	"regexp"
	"slices"
	"strings"

	"github.com/rootuip/sre/pkg/yamlerr"
)

// warner is a loaded subsystem configuration that can say what in it is
// not an error but works differently from what its author most likely
// meant (a channel named but not configured, a contract stricter than the
// objective behind it).
type warner interface {
	ConfigWarnings() []string
}

// Warnings returns the warnings of every subsystem's loaded configuration,
// by subsystem name: sred logs them when it applies a configuration,
// `srectl check config` prints them.
func (c *Config) Warnings() []string {
	names := make([]string, 0, len(c.loaded))
	for n := range c.loaded {
		names = append(names, n)
	}
	slices.Sort(names)
	var out []string
	for _, n := range names {
		if w, ok := c.loaded[n].(warner); ok {
			out = append(out, w.ConfigWarnings()...)
		}
	}
	return out
}

// PlaceWarning returns warning w of the configuration at the node of its
// file it names, "sred.yml:8:38: w", as the errors of a subsystem's checks
// are placed ("escalation: policies[0] (api): levels[1].users[0]: user bob
// has no contact ..." at the bob of that level); a warning naming no node
// of the file, or of a configuration loaded from no file, reads as it is.
// sred logs its warnings so and `srectl check config` prints them so.
func (c *Config) PlaceWarning(w string) string {
	if c == nil || c.Config == nil {
		return w
	}
	placed := c.Locate(errors.New(w)).Error()
	if at, ok := strings.CutSuffix(placed, yamlerr.Message(w)); ok && placedRE.MatchString(at) {
		return placed
	}
	return w
}

// placedRE is the position Locate gives a line it places ("sred.yml:8:38: ").
var placedRE = regexp.MustCompile(`.:\d+:\d+: $`)
