package cli

import (
	"net/url"

	"github.com/alecthomas/kingpin/v2"

	"github.com/rootuip/sre/pkg/sla"
)

func init() {
	registerCommand(62, func(app *kingpin.Application) map[string]func(*Env) error {
		var (
			c                               sredAPI
			customer, period, month, format string
		)
		cmd := app.Command("sla", "Customer SLA reports.")
		report := cmd.Command("report", "Render a customer's SLA report (from a running sred) over a period or a calendar month.")
		c.flags(report)
		report.Flag("customer", "Customer ID.").Required().StringVar(&customer)
		report.Flag("period", "Rolling period ending now, e.g. 30d (default: the customer's period).").StringVar(&period)
		report.Flag("month", "Calendar month, e.g. 2026-10.").StringVar(&month)
		report.Flag("format", "Output format: md, csv, html or json.").Default("md").EnumVar(&format, sla.Formats...)
		return map[string]func(*Env) error{
			"sla report": func(env *Env) error {
				q := url.Values{}
				if period != "" {
					q.Set("period", period)
				}
				if month != "" {
					q.Set("month", month)
				}
				var r sla.Report
				if err := c.get("/api/v1/sla/report/"+url.PathEscape(customer), q, nil, &r); err != nil {
					return err
				}
				return sla.Render(env.Stdout, &r, format)
			},
		}
	})
}
