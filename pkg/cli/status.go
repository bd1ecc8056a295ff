package cli

import (
	"fmt"
	"net/http"
	"strings"
	"text/tabwriter"

	"github.com/alecthomas/kingpin/v2"

	"github.com/rootuip/sre/pkg/status"
)

type statusOptions struct {
	sredAPI
	output string
}

func init() {
	registerCommand(41, func(app *kingpin.Application) map[string]func(*Env) error {
		var o statusOptions
		cmd := app.Command("status", "Show the public status page of sred: components, active incidents with their public updates, maintenance.")
		o.flags(cmd)
		cmd.Flag("output", "Output format: table or json.").Short('o').Default("table").EnumVar(&o.output, "table", "json")
		return map[string]func(*Env) error{"status": func(env *Env) error { return statusShow(env, o) }}
	})
}

func statusShow(env *Env, o statusOptions) error {
	var p status.Page
	if err := o.call(http.MethodGet, "/api/v1/status", nil, nil, nil, &p); err != nil {
		return err
	}
	if o.output == "json" {
		return printJSON(env.Stdout, p)
	}
	fmt.Fprintf(env.Stdout, "%s: %s\n\n", p.Title, p.Status.Label())
	tw := tabwriter.NewWriter(env.Stdout, 0, 0, 2, ' ', 0)
	fmt.Fprintf(tw, "COMPONENT\tSTATUS\tUPTIME (%dd)\n", len(firstUptime(p)))
	for _, c := range p.Components {
		fmt.Fprintf(tw, "%s\t%s\t%s\n", c.Name, c.Status.Label(), uptimeText(c))
	}
	if err := tw.Flush(); err != nil {
		return err
	}
	for _, i := range p.Incidents {
		when := "since " + i.StartedAt.Format("2006-01-02 15:04")
		if i.ResolvedAt != nil {
			when = "resolved " + i.ResolvedAt.Format("2006-01-02 15:04")
		}
		fmt.Fprintf(env.Stdout, "\n%s (%s, %s UTC)\n", i.Title, i.Stage, when)
		for _, u := range i.Updates {
			fmt.Fprintf(env.Stdout, "  %s  %s\n", u.Time.Format("2006-01-02 15:04"), strings.ReplaceAll(u.Message, "\n", "\n                    "))
		}
	}
	for _, m := range p.Maintenance {
		fmt.Fprintf(env.Stdout, "\nMaintenance: %s (%s to %s UTC) on %s\n", m.Title, m.Start.Format("2006-01-02 15:04"), m.End.Format("2006-01-02 15:04"), strings.Join(m.Components, ", "))
	}
	return nil
}

// uptimeText is a component's uptime, and over how many days when some
// have no data (before the component was first monitored).
func uptimeText(c status.ComponentStatus) string {
	n := c.DataDays()
	switch {
	case n == 0:
		return "no data"
	case n == len(c.Uptime):
		return status.Percent(c.UptimeRatio, 3)
	case n == 1:
		return status.Percent(c.UptimeRatio, 3) + " (1 day with data)"
	}
	return fmt.Sprintf("%s (%d days with data)", status.Percent(c.UptimeRatio, 3), n)
}

func firstUptime(p status.Page) []status.Day {
	if len(p.Components) == 0 {
		return nil
	}
	return p.Components[0].Uptime
}
