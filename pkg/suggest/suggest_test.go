package suggest

import (
	"testing"

	"github.com/alecthomas/kingpin/v2"
	"github.com/stretchr/testify/require"
)

func TestClosest(t *testing.T) {
	cands := []string{"service", "sred.url", "timeout", "output", "override-token", "override-token-file"}
	for in, want := range map[string]string{
		"servce":    "service",
		"serivce":   "service",
		"sred":      "sred.url",
		"timout":    "timeout",
		"override":  "", // a prefix of two flags: ambiguous
		"x":         "",
		"utput":     "output",
		"SERVICE":   "service",
		"unrelated": "",
	} {
		require.Equal(t, want, Closest(in, cands), in)
	}
}

// sred has flags and no commands: a mistyped long flag gets the flag meant,
// another unknown one the way to list them, and other errors nothing.
func TestFlagHint(t *testing.T) {
	app := kingpin.New("sred", "")
	app.Flag("web.listen-address", "").String()
	app.Flag("config.file", "").String()
	app.Flag("web.no-auth", "").Bool()
	app.Flag("secret", "").Hidden().String()
	for _, c := range []struct {
		args []string
		want string
	}{
		{[]string{"--web.listen-adress=:8096"}, " (did you mean --web.listen-address?)"},
		{[]string{"--config.file=x", "--config-file", "sred.yml"}, " (did you mean --config.file?)"},
		{[]string{"--no-web.noauth"}, " (did you mean --no-web.no-auth?)"},
		{[]string{"--secrt=x"}, " (sred --help lists the flags)"}, // hidden flags are never suggested
		{[]string{"--listen=:8096"}, " (sred --help lists the flags)"},
		{[]string{"--web.listen-address=:8096"}, ""},
		{[]string{"stray"}, ""},
	} {
		require.Equal(t, c.want, FlagHint(app, c.args), "%v", c.args)
	}
}
