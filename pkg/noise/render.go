package noise

import (
	"encoding/json"
	"fmt"
	"io"
	"strings"
	"text/tabwriter"
	"time"
	"unicode"

	"github.com/rootuip/sre/pkg/mdtext"
)

// Formats are the report's output formats.
var Formats = []string{"text", "json", "md"}

// Render writes the report as text, JSON or Markdown.
func Render(w io.Writer, r *Report, format string) error {
	switch format {
	case "json":
		enc := json.NewEncoder(w)
		enc.SetIndent("", "  ")
		return enc.Encode(r)
	case "md":
		return renderMarkdown(w, r)
	case "text", "":
		return renderText(w, r)
	}
	return fmt.Errorf("unknown format %q (want text, json or md)", format)
}

func ack(row Row) string {
	if row.Acked == 0 {
		return "-"
	}
	return formatAck(time.Duration(row.MeanTimeToAckSeconds * float64(time.Second)))
}

// formatAck shows a mean time to acknowledge to the second: "<1s", "12s",
// "3m", "3m20s", "90m", "2h", "1h30m1s", "1d".
func formatAck(d time.Duration) string {
	if d < time.Second {
		return "<1s"
	}
	return formatDuration(d.Round(time.Second))
}

// sloCell is the row's SLO, "-" for an alert of no SLO.
func sloCell(row Row) string {
	if row.SLO == "" {
		return "-"
	}
	return row.SLO
}

// rowName names a row in the suggestions: service/alertname, and the SLO
// of a generated SLO alert (the same alert name for every SLO).
func rowName(row Row) string {
	if row.SLO == "" {
		return row.Service + "/" + row.Alertname
	}
	return row.Service + "/" + row.Alertname + " (SLO " + row.SLO + ")"
}

// pages is "1 page", "0 pages", "12 pages".
func pages(n int) string {
	if n == 1 {
		return "1 page"
	}
	return fmt.Sprintf("%d pages", n)
}

func renderText(w io.Writer, r *Report) error {
	fmt.Fprintf(w, "Noise from %s to %s: %s\n\n", r.Since.Format(time.RFC3339), r.Until.Format(time.RFC3339), pages(r.Pages))
	if len(r.Rows) == 0 {
		fmt.Fprintln(w, "No pages in this period.")
		return nil
	}
	tw := tabwriter.NewWriter(w, 0, 4, 2, ' ', 0)
	fmt.Fprintf(tw, "ALERT\tSERVICE\tSLO\tPAGES\tPER WEEK\tSELF-RESOLVED<%s\tACK NO ACTION\tFLAPPING\tNIGHT\tMEAN ACK\n", r.ShortAfter)
	for _, row := range r.Rows {
		fmt.Fprintf(tw, "%s\t%s\t%s\t%d\t%.1f\t%d\t%d\t%d\t%.0f%%\t%s\n", printable(row.Alertname), printable(row.Service), printable(sloCell(row)), row.Pages, row.PagesPerWeek,
			row.AutoResolvedShort, row.AckedWithoutAction, row.Flapping, row.NightShare*100, ack(row))
	}
	if err := tw.Flush(); err != nil {
		return err
	}
	first := true
	for _, row := range r.Rows {
		if len(row.Suggestions) == 0 {
			continue
		}
		if first {
			fmt.Fprintln(w, "\nSuggestions:")
			first = false
		}
		for _, s := range row.Suggestions {
			fmt.Fprintf(w, "  %s: %s\n", printable(rowName(row)), printable(s))
		}
	}
	return nil
}

func renderMarkdown(w io.Writer, r *Report) error {
	fmt.Fprintf(w, "# Alert noise\n\n%s to %s: %s.\n\n", r.Since.Format(time.RFC3339), r.Until.Format(time.RFC3339), pages(r.Pages))
	if len(r.Rows) == 0 {
		fmt.Fprintln(w, "No pages in this period.")
		return nil
	}
	fmt.Fprintf(w, "| alert | service | slo | pages | per week | self-resolved < %s | acked, no action | flapping | at night | mean ack | suggestion |\n", r.ShortAfter)
	fmt.Fprintln(w, "| --- | --- | --- | ---: | ---: | ---: | ---: | ---: | ---: | ---: | --- |")
	for _, row := range r.Rows {
		fmt.Fprintf(w, "| %s | %s | %s | %d | %.1f | %d | %d | %d | %.0f%% | %s | %s |\n", mdtext.Cell(row.Alertname), mdtext.Cell(row.Service), mdtext.Cell(sloCell(row)),
			row.Pages, row.PagesPerWeek, row.AutoResolvedShort, row.AckedWithoutAction, row.Flapping, row.NightShare*100, ack(row),
			mdtext.Text(strings.Join(row.Suggestions, "; ")))
	}
	return nil
}

// Alert names, services and SLOs come from alert labels, so they may hold
// anything: the renderings keep them to their cell (mdtext) or line.

// printable replaces control characters (newlines, tabs, terminal escapes)
// with U+FFFD.
func printable(s string) string {
	return strings.Map(func(r rune) rune {
		if unicode.IsControl(r) {
			return unicode.ReplacementChar
		}
		return r
	}, s)
}
