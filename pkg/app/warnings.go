package app

import (
	"slices"
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
