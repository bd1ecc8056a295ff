// Package chaos runs chaos experiments written in git: a hypothesis with
// steady-state probes, a target, faults and a duration. It refuses
// experiments that break the blast-radius limits or whose target's error
// budget is red, journals every fault in the store with a lease before it
// takes effect, watches abort conditions (SLO burn rate, error rate, custom
// PromQL, critical incidents, manual stop) while the faults are active,
// always rolls back, and scores the target's resilience.
//
// The fault drivers live in the drivers subpackages and are passed in by the
// wiring; this package knows them through the Driver interface.
package chaos
