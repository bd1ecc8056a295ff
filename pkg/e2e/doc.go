// Package e2e holds the end-to-end tests of ROOTUIP SRE. They build sred,
// srectl and the demo service (examples/demo-service), then run them as real
// processes on 127.0.0.1 together with the pinned Prometheus and Alertmanager
// from ./bin, and walk one incident through its whole life: errors injected
// into the demo, the burn-rate page firing in Prometheus, Alertmanager
// delivering it to sred, escalation, the runbook healing the demo, the alert
// and the incident resolving, and the MTTR metric in Prometheus.
//
// See docs/e2e.md for what each step asserts and how to read a failure.
package e2e
