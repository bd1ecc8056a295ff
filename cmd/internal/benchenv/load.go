package benchenv

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"time"

	"github.com/rootuip/sre/pkg/receiver"
)

// Post sends body (JSON) to url; an answer other than 2xx is an error
// that carries the answer's body.
func Post(c *http.Client, url string, body []byte) error {
	resp, err := c.Post(url, "application/json", bytes.NewReader(body))
	if err != nil {
		return err
	}
	b, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	if resp.StatusCode/100 != 2 {
		return fmt.Errorf("HTTP %d: %s", resp.StatusCode, bytes.TrimSpace(b))
	}
	return nil
}

// services are the services the deliveries of Payload take turns on.
var services = []string{"api", "checkout", "payments", "search"}

// Payload is delivery i: an Alertmanager webhook notification of a new
// group (prefix-i) of n firing alerts, started a minute ago, of one of four
// services in turn. A runbookURL that is not "" is each alert's
// runbook_url annotation.
func Payload(prefix string, i int64, n int, runbookURL string) []byte {
	svc := services[i%int64(len(services))]
	name := "HighErrorRate"
	group := fmt.Sprintf("%s-%d", prefix, i)
	start := time.Now().UTC().Add(-time.Minute).Truncate(time.Second)
	alerts := make([]receiver.Alert, n)
	for j := range alerts {
		annotations := map[string]string{"summary": "error rate above 5%"}
		if runbookURL != "" {
			annotations["runbook_url"] = runbookURL
		}
		alerts[j] = receiver.Alert{
			Status: "firing",
			Labels: map[string]string{"alertname": name, "service": svc, "group": group, "severity": "critical",
				"instance": fmt.Sprintf("10.0.%d.%d:8080", j/256, j%256)},
			Annotations:  annotations,
			StartsAt:     start,
			GeneratorURL: "http://127.0.0.1:9090/graph",
			Fingerprint:  fmt.Sprintf("%012x%04x", i, j),
		}
	}
	b, err := json.Marshal(receiver.Message{
		Version: receiver.SupportedVersion, Status: "firing", Receiver: "sred", ExternalURL: "http://127.0.0.1:9093",
		GroupKey:          fmt.Sprintf(`{}:{alertname=%q, group=%q, service=%q}`, name, group, svc),
		GroupLabels:       map[string]string{"alertname": name, "service": svc, "group": group},
		CommonLabels:      map[string]string{"alertname": name, "service": svc, "group": group, "severity": "critical"},
		CommonAnnotations: map[string]string{"summary": "error rate above 5%"},
		Alerts:            alerts,
	})
	if err != nil {
		panic(errors.Join(errors.New("encode payload"), err))
	}
	return b
}

// Quantile is the q-quantile (0 <= q <= 1) of sorted latencies: the one
// of rank q·n rounded to the nearest whole number (1-based, at least 1),
// so q=1 is the largest and q=0.5 of an even count the lower middle one.
// None: 0.
func Quantile(sorted []time.Duration, q float64) time.Duration {
	if len(sorted) == 0 {
		return 0
	}
	i := int(q*float64(len(sorted))+0.5) - 1
	return sorted[max(0, min(i, len(sorted)-1))]
}

// Millis is d in milliseconds, as the benchmarks print it.
func Millis(d time.Duration) float64 { return float64(d) / float64(time.Millisecond) }
