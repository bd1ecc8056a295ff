package dashboards

import (
	"bufio"
	"fmt"
	"io"
	"strings"
)

// BlackboxCompatible are the metrics sred exports without the sre_ prefix, on
// purpose: the health checks' results under blackbox_exporter's names, so
// that rules read them the same whichever of the two probes.
var BlackboxCompatible = []string{"probe_success", "probe_duration_seconds", "probe_http_status_code"}

// DBStats are the series of client_golang's database/sql collector that
// sred registers for its store's connection pools (db_name main, and side
// on PostgreSQL; docs/metrics.md) and the dashboards read: not sred's
// namespace, the library's names.
var DBStats = []string{"go_sql_wait_duration_seconds_total", "go_sql_wait_count_total", "go_sql_in_use_connections", "go_sql_max_open_connections"}

// Catalogue maps each metric listed in docs/metrics.md to its type
// (counter, gauge, histogram, summary).
type Catalogue map[string]string

// ParseCatalogue reads the metric tables of docs/metrics.md: rows whose first
// cell is a back-quoted sre_ metric name, or one of the blackbox-compatible
// probe_ names of the health checks (BlackboxCompatible), and whose second
// is its type.
func ParseCatalogue(r io.Reader) (Catalogue, error) {
	c := Catalogue{}
	sc := bufio.NewScanner(r)
	line := 0
	for sc.Scan() {
		line++
		text := sc.Text()
		if !strings.HasPrefix(text, "| `sre_") && !strings.HasPrefix(text, "| `probe_") {
			continue
		}
		cells := strings.Split(strings.Trim(text, "|"), "|")
		if len(cells) < 4 {
			return nil, fmt.Errorf("metrics catalogue line %d: want | metric | type | labels | meaning |, got %q", line, text)
		}
		name := strings.Trim(strings.TrimSpace(cells[0]), "`")
		typ := strings.TrimSpace(cells[1])
		switch typ {
		case "counter", "gauge", "histogram", "summary":
		default:
			return nil, fmt.Errorf("metrics catalogue line %d: %s has unknown type %q", line, name, typ)
		}
		if _, dup := c[name]; dup {
			return nil, fmt.Errorf("metrics catalogue line %d: %s listed twice", line, name)
		}
		c[name] = typ
	}
	if err := sc.Err(); err != nil {
		return nil, fmt.Errorf("read metrics catalogue: %w", err)
	}
	return c, nil
}

// Series returns every series name a metric of the catalogue produces:
// histograms add _bucket, _sum and _count, summaries _sum and _count.
func (c Catalogue) Series() map[string]bool {
	out := map[string]bool{}
	for name, typ := range c {
		out[name] = true
		switch typ {
		case "histogram":
			out[name+"_bucket"], out[name+"_sum"], out[name+"_count"] = true, true, true
		case "summary":
			out[name+"_sum"], out[name+"_count"] = true, true
		}
	}
	return out
}
