// Package slobench writes the SLO specs the generation benchmarks read:
// the same SLOs in Sloth's prometheus/v1 format and in the native format
// (cmd/bench-generate compares srectl with Sloth on them, and
// BenchmarkGenerateFiles in pkg/cli times srectl generate in-process).
package slobench

import (
	"fmt"
	"os"
	"path/filepath"
)

// Write writes files services of two SLOs each (one file per service),
// once as Sloth prometheus/v1 specs into slothDir and once as native specs
// with the same objectives, selectors and alert tiers (period 30d, Sloth's)
// into nativeDir.
func Write(slothDir, nativeDir string, files int) error {
	for _, d := range []string{slothDir, nativeDir} {
		if err := os.MkdirAll(d, 0o755); err != nil {
			return err
		}
	}
	for i := range files {
		svc := fmt.Sprintf("svc-%04d", i)
		if err := os.WriteFile(filepath.Join(slothDir, svc+".yml"), []byte(fmt.Sprintf(slothTemplate, svc)), 0o644); err != nil {
			return err
		}
		if err := os.WriteFile(filepath.Join(nativeDir, svc+".yml"), []byte(fmt.Sprintf(nativeTemplate, svc)), 0o644); err != nil {
			return err
		}
	}
	return nil
}

// The Sloth spec follows Sloth's own getting-started example: an events
// SLI for availability and a raw error-ratio SLI for latency.
const slothTemplate = `version: "prometheus/v1"
service: %[1]q
labels:
  owner: "team-a"
  tier: "2"
slos:
  - name: "requests-availability"
    objective: 99.9
    description: "Requests that do not fail with a 5xx or 429."
    sli:
      events:
        error_query: sum(rate(http_request_duration_seconds_count{job=%[1]q,code=~"(5..|429)"}[{{.window}}]))
        total_query: sum(rate(http_request_duration_seconds_count{job=%[1]q}[{{.window}}]))
    alerting:
      name: HighErrorRate
      labels:
        category: "availability"
      annotations:
        summary: "High error rate on requests"
      page_alert:
        labels:
          severity: pageteam
          routing_key: myteam
      ticket_alert:
        labels:
          severity: "slack"
          slack_channel: "#alerts-myteam"
  - name: "requests-latency"
    objective: 99
    description: "Requests served in under 500ms."
    sli:
      raw:
        error_ratio_query: |
          1 - (
            sum(rate(http_request_duration_seconds_bucket{job=%[1]q,le="0.5"}[{{.window}}]))
            /
            sum(rate(http_request_duration_seconds_count{job=%[1]q}[{{.window}}]))
          )
    alerting:
      name: HighLatency
      labels:
        category: "latency"
      annotations:
        summary: "High latency on requests"
      page_alert:
        labels:
          severity: pageteam
      ticket_alert:
        labels:
          severity: "slack"
`

const nativeTemplate = `apiVersion: sre.rootuip.io/v1
kind: ServiceLevelObjectives
service: %[1]q
labels:
  owner: team-a
  tier: "2"
slos:
  - name: requests-availability
    objective: 99.9
    period: 30d
    description: Requests that do not fail with a 5xx or 429.
    sli:
      events:
        errorSelector: http_request_duration_seconds_count{job=%[1]q,code=~"(5..|429)"}
        totalSelector: http_request_duration_seconds_count{job=%[1]q}
    alerting:
      labels:
        category: availability
      annotations:
        summary: High error rate on requests
      page:
        labels:
          routing_key: myteam
      ticket:
        labels:
          slack_channel: "#alerts-myteam"
  - name: requests-latency
    objective: 99
    period: 30d
    description: Requests served in under 500ms.
    sli:
      latency:
        histogram: http_request_duration_seconds{job=%[1]q}
        threshold: 500ms
    alerting:
      labels:
        category: latency
      annotations:
        summary: High latency on requests
`
