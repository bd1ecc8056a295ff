package incident

import (
	"encoding/json"
	"fmt"
	"testing"
	"time"
)

// benchImportLine is an import line as an export of a busy incident
// writes it: 20 alerts with their labels and annotations, 60 timeline
// entries, 5 links, 3 action items (about 24 KB).
func benchImportLine(b *testing.B) []byte {
	b.Helper()
	at := time.Date(2026, 3, 1, 9, 0, 0, 0, time.UTC)
	labels := func(i int) map[string]string {
		return map[string]string{"alertname": "HighErrorRate", "service": "checkout", "severity": "critical",
			"instance": fmt.Sprintf("10.0.0.%d:9090", i), "job": "checkout", "namespace": "shop"}
	}
	rec := ExportRecord{Incident: Incident{ID: "INC-2026-0042", Title: "[CRITICAL] checkout: HighErrorRate", Service: "checkout",
		Severity: SeverityCritical, PeakSeverity: SeverityCritical, Status: StatusResolved, Labels: labels(0),
		GroupKey: `{}/{severity="critical"}:{alertname="HighErrorRate", service="checkout"}`, Receiver: "sred",
		RunbookURLs: []string{"https://runbooks.example.com/checkout/high-error-rate"}, Assignee: "rita",
		DetectedAt: at, CreatedAt: at, UpdatedAt: at.Add(time.Hour)}}
	for i := range 20 {
		end := at.Add(time.Duration(i) * time.Minute)
		rec.Alerts = append(rec.Alerts, ExportAlert{GroupKey: rec.Incident.GroupKey, Alert: Alert{Fingerprint: fmt.Sprintf("%016x", i),
			StartsAt: at, EndsAt: &end, Status: "resolved", Labels: labels(i),
			Annotations:  map[string]string{"summary": "checkout is failing 14.4 times its error budget", "runbook_url": rec.Incident.RunbookURLs[0]},
			GeneratorURL: "http://prometheus:9090/graph?g0.expr=up"}, FirstSeenAt: at, UpdatedAt: end})
	}
	for i := range 60 {
		rec.Timeline = append(rec.Timeline, ExportTimelineEntry{Time: at.Add(time.Duration(i) * time.Second), Kind: "note", Actor: "rita",
			Message: "checked the dashboards, errors from the payment provider", Data: json.RawMessage(`{"from":"triggered","to":"acknowledged"}`)})
	}
	for i := range 5 {
		rec.Links = append(rec.Links, Link{GroupKey: fmt.Sprintf("{}:{service=\"dep-%d\"}", i), Service: fmt.Sprintf("dep-%d", i),
			Labels: map[string]string{"service": fmt.Sprintf("dep-%d", i)}, Reason: "dependency", Explanation: "checkout depends on it", AttachedAt: at})
	}
	for i := range 3 {
		rec.ActionItems = append(rec.ActionItems, ExportActionItem{ID: int64(i + 1), Title: "add a probe", Owner: "rita", State: ActionOpen,
			CreatedAt: at, UpdatedAt: at})
	}
	line, err := json.Marshal(rec)
	if err != nil {
		b.Fatal(err)
	}
	return line
}

// BenchmarkImportDecodeLine is what Import does with one line before it
// writes it: decode it strictly, check its keys, validate it
// (docs/benchmarks.md, Incident import).
func BenchmarkImportDecodeLine(b *testing.B) {
	line := benchImportLine(b)
	s := &Service{opts: DefaultOptions()}
	if err := checkOptions(&s.opts); err != nil {
		b.Fatal(err)
	}
	b.SetBytes(int64(len(line)))
	b.ReportAllocs()
	for b.Loop() {
		if _, err := s.decodeLine(line); err != nil {
			b.Fatal(err)
		}
	}
}
