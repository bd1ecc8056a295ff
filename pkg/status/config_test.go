package status

import (
	"testing"
	"time"

	"bytes"
	"github.com/stretchr/testify/require"
	yaml "go.yaml.in/yaml/v3"
	"strings"
)

func TestConfigErrors(t *testing.T) {
	for _, c := range []struct{ name, in, err string }{
		{"no name", "components: [{services: [a]}]", "components[0]: name is required"},
		{"duplicate", "components: [{name: A, services: [a]}, {name: A, services: [b]}]", `components[1]: duplicate name "A"`},
		{"no services", "components: [{name: A}]", "components[0] (A): services: at least one service is required"},
		{"bad url", "url: status.example.com\ncomponents: [{name: A, services: [a]}]", `url: "status.example.com" is not an http(s) URL`},
		{"uptime days", "uptime_days: 400", "uptime_days: 400 is out of range"},
		{"maintenance unknown component", "components: [{name: A, services: [a]}]\nmaintenance: [{title: M, components: [B], start: 2026-12-01T00:00:00Z, end: 2026-12-01T01:00:00Z}]",
			`maintenance[0] (M): components: unknown component "B"`},
		{"maintenance backwards", "components: [{name: A, services: [a]}]\nmaintenance: [{title: M, components: [A], start: 2026-12-01T02:00:00Z, end: 2026-12-01T01:00:00Z}]",
			"maintenance[0] (M): start and end are required, end after start"},
		{"maintenance title two lines", "components: [{name: A, services: [a]}]\nmaintenance: [{title: \"Database\\nupgrade\", components: [A], start: 2026-12-01T00:00:00Z, end: 2026-12-01T01:00:00Z}]",
			`maintenance[0]: title "Database\nupgrade": character U+000A at byte 8 is not printable`},
		{"maintenance title long", "components: [{name: A, services: [a]}]\nmaintenance: [{title: " + strings.Repeat("x", 201) + ", components: [A], start: 2026-12-01T00:00:00Z, end: 2026-12-01T01:00:00Z}]",
			"maintenance[0]: title \"xxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxx\": 201 characters long: at most 200"},
		{"component name control", "components: [{name: \"A\\tB\", services: [a]}]", `components[0]: name "A\tB": character U+0009 at byte 1 is not printable`},
		{"unknown field", "components: [{name: A, service: [a]}]", "field service not found"},
	} {
		t.Run(c.name, func(t *testing.T) {
			require.ErrorContains(t, decode(c.in, &Config{}), c.err)
		})
	}
	var cfg Config
	require.NoError(t, decode("components: [{name: A, services: [a]}]", &cfg))
	require.Equal(t, "Service status", cfg.Title)
	require.Equal(t, DefaultUptimeDays, cfg.UptimeDays)
}

func TestUnion(t *testing.T) {
	at := func(m int) time.Time { return time.Date(2026, 12, 1, 0, m, 0, 0, time.UTC) }
	require.Equal(t, 20*time.Minute, union([][2]time.Time{{at(10), at(20)}, {at(0), at(5)}, {at(15), at(25)}}))
	require.Equal(t, time.Duration(0), union(nil))
	require.Equal(t, 10*time.Minute, union([][2]time.Time{{at(0), at(10)}, {at(2), at(3)}}))
}

func decode(in string, c *Config) error {
	d := yaml.NewDecoder(bytes.NewReader([]byte(in)))
	d.KnownFields(true)
	return d.Decode(c)
}
