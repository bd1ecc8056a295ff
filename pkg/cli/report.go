package cli

import (
	"fmt"
	"net/url"

	"github.com/alecthomas/kingpin/v2"

	"github.com/rootuip/sre/pkg/noise"
)

func init() {
	registerCommand(64, func(app *kingpin.Application) map[string]func(*Env) error {
		var (
			c                           sredAPI
			since, until, short, format string
			limit                       int
		)
		cmd := app.Command("report", "Reports computed by a running sred.")
		nz := cmd.Command("noise", "The noisiest alerts: pages per alert rule, service and SLO, pages resolved by themselves, acknowledged without action, flapping, at night, time to acknowledge, and what to change.")
		c.flags(nz)
		nz.Flag("since", "Start of the period: a duration back from now (30d) or an RFC 3339 time.").Default("30d").StringVar(&since)
		nz.Flag("until", "End of the period (default now): a duration back from now or an RFC 3339 time.").StringVar(&until)
		nz.Flag("short", "A page resolved automatically within this long resolved by itself.").Default("10m").StringVar(&short)
		nz.Flag("limit", "Show the N noisiest (0: all).").Default("20").IntVar(&limit)
		nz.Flag("format", "Output format: text, json or md.").Short('o').Default("text").EnumVar(&format, noise.Formats...)
		return map[string]func(*Env) error{
			"report noise": func(env *Env) error {
				q := url.Values{"since": {since}, "short": {short}, "limit": {fmt.Sprint(limit)}}
				if until != "" {
					q.Set("until", until)
				}
				var r noise.Report
				if err := c.get("/api/v1/reports/noise", q, nil, &r); err != nil {
					return err
				}
				return noise.Render(env.Stdout, &r, format)
			},
		}
	})
}
