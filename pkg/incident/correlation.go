package incident

import (
	"cmp"
	"context"
	"database/sql"
	"encoding/json"
	"errors"
	"fmt"
	"maps"
	"slices"
	"sort"
	"strconv"
	"strings"
	"time"

	"github.com/rootuip/sre/pkg/limits"
	"github.com/rootuip/sre/pkg/store"
)

// Correlation tells the place stage when an alert group that would open a
// new incident joins an open one instead: because its service depends on
// a service of that incident (or the other way round), or because it
// shares labels with it. It comes from the `services` and `correlation`
// sections of sred.yml (package correlation) and changes on reload
// (SetCorrelation). The zero value correlates nothing.
type Correlation struct {
	// Window: a group correlates with an incident only when the matching
	// service (or labels) joined that incident at most this long ago, or
	// (the service graph) when a group of the matching service still
	// fires on it, however long ago it joined.
	Window time.Duration
	// DependsOn maps each service to its transitive dependencies, each
	// with the path that leads to it (service first, dependency last).
	DependsOn map[string]map[string][]string
	// SharedDependencies also attaches a group to an open incident of a
	// service that shares a dependency with its own (api and search both
	// depend on db): in a storm, dependants often alert before the root.
	SharedDependencies bool
	// LabelRules correlate groups that share the values of labels.
	LabelRules []LabelRule
}

// LabelRule correlates a new alert group with an open incident when the
// group's common labels and those of a group of the incident have the same,
// not empty, value for every one of Labels.
type LabelRule struct {
	Name   string
	Labels []string
	// Window replaces Correlation.Window for this rule when not zero.
	Window time.Duration
}

// Enabled reports whether c can correlate anything.
func (c *Correlation) Enabled() bool {
	return c != nil && (len(c.DependsOn) > 0 || len(c.LabelRules) > 0)
}

func (c *Correlation) known(svc string) bool {
	_, ok := c.DependsOn[svc]
	return ok
}

// sharedDependency returns the nearest dependency of a that b depends on
// too ("" when none).
func (c *Correlation) sharedDependency(a, b string) string {
	best, bestLen := "", 0
	for dep, p := range c.DependsOn[a] {
		if c.DependsOn[b][dep] == nil {
			continue
		}
		if best == "" || len(p) < bestLen || (len(p) == bestLen && dep < best) {
			best, bestLen = dep, len(p)
		}
	}
	return best
}

// related returns the services whose links can place a group of svc by
// the graph: svc, its dependencies, its dependants and, with
// SharedDependencies, the services sharing a dependency with it.
func (c *Correlation) related(svc string) []string {
	out := []string{svc}
	for other := range c.DependsOn {
		if other == svc {
			continue
		}
		if c.dependsOn(svc, other) != nil || c.dependsOn(other, svc) != nil ||
			(c.SharedDependencies && c.sharedDependency(svc, other) != "") {
			out = append(out, other)
		}
	}
	sort.Strings(out)
	return out
}

// dependsOn returns the path from a to b when a depends on b (transitively).
func (c *Correlation) dependsOn(a, b string) []string {
	return c.DependsOn[a][b]
}

// Root returns the likely root cause among the affected services: the
// deepest failing dependency, that is an affected service with no affected
// dependency; among several, the one most of the others depend on, then
// the first by name. Services unknown to the graph count as leaves.
func (c *Correlation) Root(affected []string) string {
	var best string
	bestDependants := -1
	for _, s := range slices.Sorted(slices.Values(affected)) {
		hasDep := false
		dependants := 0
		for _, o := range affected {
			if o == s {
				continue
			}
			if c.dependsOn(s, o) != nil {
				hasDep = true
			}
			if c.dependsOn(o, s) != nil {
				dependants++
			}
		}
		if hasDep {
			continue
		}
		if dependants > bestDependants {
			best, bestDependants = s, dependants
		}
	}
	return best
}

// SetCorrelation installs the correlation rules (on start and reload);
// nil turns correlation off.
func (s *Service) SetCorrelation(c *Correlation) {
	s.corr.Store(c)
}

// Link is an alert group placed on an incident: the group that opened it,
// or one correlation attached to it (or a responder merged into it).
type Link struct {
	GroupKey string            `json:"group_key"`
	Service  string            `json:"service"`
	Labels   map[string]string `json:"labels,omitempty"`
	// Reason is "opened", "dependency", "dependant", "service",
	// "shared_dependency", "label" or "merged".
	Reason string `json:"reason"`
	// Explanation says why, as in the timeline.
	Explanation string    `json:"explanation,omitempty"`
	AttachedAt  time.Time `json:"attached_at"`
	// Firing: the group has a firing alert on the incident. A group of a
	// related service still firing on an open incident makes it a
	// correlation candidate however long ago it joined.
	Firing bool `json:"firing"`
}

// correlationCandidate is an open incident a new group may join.
type correlationCandidate struct {
	incidentID  string
	reason      string
	rank        int    // lower is better
	depth       int    // for dependencies: deeper is better
	service     string // for dependencies: the dependency
	attached    int64
	explanation string
	rule        string
	// pre is the incident as correlation read it, without a lock
	// (PostgreSQL, a group joining an incident that has a group of its
	// service): attach tells from it whether the group's alerts change the
	// incident's row.
	pre *record
}

// A related service's groups make an open incident a candidate in two
// ways: a group of the service placed on it within the window (resolved or
// not), or a group of the service still firing on it, however long ago it
// was placed (a long outage: the database down for two hours, a dependant
// alerting 40 minutes in). The queries below find both, each per service
// through an index, and return for each (incident, service) the earliest
// link of each kind: the earliest attachment within the window, and the
// earliest attachment of a link still firing (NULL when none).
//
// incident_link_services (one row per incident and service, with the
// latest attachment) finds the incidents of the window through its
// (service, last_at) index; the index on incident_links (incident_id,
// service, attached_at) gives the earliest link within the window.
// incident_links_firing (service, incident_id, attached_at), which holds
// only the links whose group fires on their incident, finds the incidents
// with a firing group of the service one index probe per incident (a
// loose index scan: the next incident_id after the one before), and the
// earliest such link in one more. Their cost grows with the incidents of
// the service, not with the alert groups attached to them: a storm of
// thousands of groups costs as much as one.

// relatedLinksAnyQuery returns the candidates of every service of an array
// ($1) at once, the window starting at $2, with the service (PostgreSQL).
// It looks linkServiceSlackMS further back in incident_link_services: on
// PostgreSQL a join moves an incident's last_at forward only once it is
// that much behind (persistMerged).
//
// It also returns what joinKeepsRow needs of each incident (severity,
// runbook URLs, detection and recovery times), so that the group joining
// it tells without reading the incident again whether its alerts change it.
//
// Each incident is read by its primary key, once per (incident, service)
// found (a LATERAL subquery that OFFSET 0 keeps from being merged into a
// join): as a plain join, with statistics taken before a storm of new
// incidents, the planner hashed every open incident of the database for
// every delivery, a cost growing with the storm.
//
// The parameters are read through scalar subqueries ((SELECT $1), values
// of InitPlans the planner does not see), so that a custom plan costs what
// the generic one does and PostgreSQL keeps the generic plan of the
// prepared statement after its first five executions: with the values in
// sight the custom plans looked cheaper (fewer rows for the array and the
// window than the generic estimate) and the statement was planned again
// at almost every execution (0.45 plans per delivery in bench-http
// postgres-2, 0.37-0.67 ms of planning per delivery), for the same plan.
var relatedLinksAnyQuery = fmt.Sprintf(`WITH RECURSIVE firing (service, incident_id) AS (
	SELECT v.service, (SELECT MIN(l.incident_id) FROM incident_links l WHERE l.service = v.service AND l.firing = 1)
	FROM unnest((SELECT $1::text[])::text[]) v (service)
	UNION ALL
	SELECT f.service, (SELECT MIN(l.incident_id) FROM incident_links l
		WHERE l.service = f.service AND l.firing = 1 AND l.incident_id > f.incident_id)
	FROM firing f WHERE f.incident_id IS NOT NULL
), pairs AS (
	SELECT s.incident_id, s.service FROM incident_link_services s
	WHERE s.service = ANY((SELECT $1::text[])::text[]) AND s.last_at >= (SELECT $2::bigint - %d)
	UNION
	SELECT incident_id, service FROM firing WHERE incident_id IS NOT NULL
)
SELECT p.incident_id, (SELECT MIN(l.attached_at) FROM incident_links l
	WHERE l.incident_id = p.incident_id AND l.service = p.service AND l.attached_at >= (SELECT $2::bigint)),
	(SELECT MIN(l.attached_at) FROM incident_links l WHERE l.service = p.service AND l.incident_id = p.incident_id AND l.firing = 1),
	p.service, i.status, i.severity, i.runbook_urls, i.detected_at, i.recovered_at
FROM pairs p CROSS JOIN LATERAL (SELECT status, severity, runbook_urls, detected_at, recovered_at
	FROM incidents WHERE id = p.incident_id AND status IN ('triggered', 'acknowledged', 'investigating') OFFSET 0) i`,
	linkServiceSlackMS)

// linkServiceSlackMS is how far behind the latest attachment of a service
// an incident's incident_link_services.last_at may be on PostgreSQL:
// persistMerged moves it forward only once it is that far behind, so that
// the groups of a storm joining one incident do not each take that row's
// lock until they commit (one of them does, once a minute). The links
// themselves (incident_links) still decide, to the millisecond; the
// summary only narrows where correlation looks.
const linkServiceSlackMS = 60_000

// relatedLinksInQuery is relatedLinksAnyQuery for SQLite: the window's
// start is $1, the n services $2..$n+1 (a VALUES list and an IN list).
// CROSS JOIN keeps SQLite's planner from reading every open incident
// (incidents_status) to join the pairs to: each pair reads its incident
// by primary key.
func relatedLinksInQuery(n int) string {
	var values strings.Builder
	for i := range n {
		if i > 0 {
			values.WriteString(", ")
		}
		fmt.Fprintf(&values, "($%d)", i+2)
	}
	return `WITH RECURSIVE svcs (service) AS (VALUES ` + values.String() + `),
firing (service, incident_id) AS (
	SELECT v.service, (SELECT MIN(l.incident_id) FROM incident_links l WHERE l.service = v.service AND l.firing = 1) FROM svcs v
	UNION ALL
	SELECT f.service, (SELECT MIN(l.incident_id) FROM incident_links l
		WHERE l.service = f.service AND l.firing = 1 AND l.incident_id > f.incident_id)
	FROM firing f WHERE f.incident_id IS NOT NULL
),
pairs (incident_id, service) AS (
	SELECT s.incident_id, s.service FROM incident_link_services s
	WHERE s.service IN (` + store.Placeholders(2, n) + `) AND s.last_at >= $1
	UNION
	SELECT incident_id, service FROM firing WHERE incident_id IS NOT NULL
)
SELECT p.incident_id, (SELECT MIN(l.attached_at) FROM incident_links l
	WHERE l.incident_id = p.incident_id AND l.service = p.service AND l.attached_at >= $1),
	(SELECT MIN(l.attached_at) FROM incident_links l WHERE l.service = p.service AND l.incident_id = p.incident_id AND l.firing = 1),
	p.service
FROM pairs p CROSS JOIN incidents i ON i.id = p.incident_id
WHERE i.status IN ('triggered', 'acknowledged', 'investigating')`
}

// linkServicesQuery returns the distinct services of an incident's links
// by walking the index on incident_links (incident_id, service,
// attached_at) one service at a time (a loose index scan, the same on both
// backends): one probe per service, however many groups are attached.
const linkServicesQuery = `WITH RECURSIVE svc (service) AS (
	SELECT MIN(service) FROM incident_links WHERE incident_id = $1
	UNION ALL
	SELECT (SELECT MIN(l.service) FROM incident_links l WHERE l.incident_id = $1 AND l.service > svc.service)
	FROM svc WHERE svc.service IS NOT NULL
)
SELECT service FROM svc WHERE service IS NOT NULL`

// serviceCandidate is an open incident with a link of a service within
// the window: the earliest such link.
type serviceCandidate struct {
	incidentID, service string
	at                  int64
	// inc is the incident as the query read it, without a lock
	// (PostgreSQL: relatedLinksAnyQuery).
	inc *record
}

// correlate looks for the open incident the delivery's new firing group
// joins instead of opening one. On PostgreSQL it first takes a
// transaction-level advisory lock, so that replicas receiving correlated
// groups at the same moment decide one after the other, each seeing the
// incident the one before it committed.
//
// The decision is the one of examining every link (alert group) attached
// to an open incident within the window or, for the service graph, still
// firing on it, in the order they were attached: the best reason wins
// (dependency, deepest first; same service; dependant; shared dependency;
// shared labels), and among equals the incident whose link came first.
// For the service graph only the earliest such link of each (incident,
// service) can decide, so that is all correlate reads; labels are read
// link by link, within the window, only when no service relation placed
// the group, and stop at the first link that shares them.
//
// Only the services the group's service relates to by the graph can place
// it (itself, its dependencies and dependants, and with shared
// dependencies the services sharing one), so those are the services read
// (relatedLinksAnyQuery, relatedLinksInQuery).
func (s *Service) correlate(ctx context.Context, tx *sql.Tx, d *delivery, svc string) (*correlationCandidate, error) {
	c := s.corr.Load()
	if !c.Enabled() {
		return nil, nil
	}
	byGraph := c.Window > 0 && c.known(svc)
	groupLabels := nonNil(d.n.CommonLabels)
	var rules []LabelRule
	for _, r := range c.LabelRules {
		w := r.Window
		if w == 0 {
			w = c.Window
		}
		if w <= 0 || !hasLabels(r.Labels, groupLabels) {
			continue // no link can share labels the group does not have
		}
		r.Window = w
		rules = append(rules, r)
	}
	if !byGraph && len(rules) == 0 {
		return nil, nil
	}
	now := d.now
	if byGraph && s.db.Dialect == store.Postgres {
		// A group joining an incident that already has a group of its
		// service within the window or still firing changes no other
		// delivery's decision (the incidents and services found stay the
		// same, and so does the earliest link of each: the group's link is
		// later, and it fires): it needs neither the lock nor
		// to wait for the deliveries holding it. Its incident must still be
		// open: the query read it open, without a lock, and attach checks
		// again once it holds the incident's row (the delivery runs again
		// if it changed status in between).
		best, joined, err := s.graphCandidate(ctx, tx, c, svc, now)
		if err != nil {
			return nil, err
		}
		if best != nil && joined && best.pre != nil && best.pre.Status.Open() {
			return best, nil
		}
	}
	if s.db.Dialect == store.Postgres {
		if _, err := tx.ExecContext(ctx, `SELECT pg_advisory_xact_lock($1)`, int64(store.LockCorrelation)); err != nil {
			return nil, fmt.Errorf("correlation lock: %w", err)
		}
	}
	if byGraph {
		best, _, err := s.graphCandidate(ctx, tx, c, svc, now)
		if err != nil || best != nil {
			return best, err
		}
	}
	if len(rules) == 0 {
		return nil, nil
	}
	// Shared labels rank last: the first link (in the order attached) that
	// shares a rule's labels within that rule's window decides (after
	// graphCandidate found nothing).
	widest := time.Duration(0)
	for _, r := range rules {
		widest = max(widest, r.Window)
	}
	rows, err := tx.QueryContext(ctx, `SELECT l.incident_id, l.labels, l.attached_at
		FROM incident_links l JOIN incidents i ON i.id = l.incident_id
		WHERE i.status IN ('triggered', 'acknowledged', 'investigating') AND l.attached_at >= $1
		ORDER BY l.attached_at, l.incident_id`, ms(now.Add(-widest)))
	if err != nil {
		return nil, fmt.Errorf("correlation candidates: %w", err)
	}
	defer rows.Close()
	for rows.Next() {
		var id, labels string
		var at int64
		if err := rows.Scan(&id, &labels, &at); err != nil {
			return nil, fmt.Errorf("correlation candidates: %w", err)
		}
		var ls map[string]string
		_ = json.Unmarshal([]byte(labels), &ls)
		for _, r := range rules {
			if at < ms(now.Add(-r.Window)) {
				continue
			}
			if shared, ok := sharedLabels(r.Labels, groupLabels, ls); ok {
				return &correlationCandidate{incidentID: id, reason: "label", rank: 4, attached: at, rule: r.Name,
					explanation: fmt.Sprintf("attached because it shares %s with %s (rule %s)", shared, id, r.Name)}, nil
			}
		}
	}
	if err := rows.Err(); err != nil {
		return nil, fmt.Errorf("correlation candidates: %w", err)
	}
	return nil, nil
}

// graphCandidate is the best open incident for a group of svc by the
// service graph (nil: none), and whether that incident already has a link
// of svc within the window or still firing.
func (s *Service) graphCandidate(ctx context.Context, tx *sql.Tx, c *Correlation, svc string, now time.Time) (*correlationCandidate, bool, error) {
	pairs, err := s.relatedLinks(ctx, tx, c.related(svc), ms(now.Add(-c.Window)))
	if err != nil {
		return nil, false, err
	}
	var best *correlationCandidate
	consider := func(k correlationCandidate) {
		if best == nil || k.rank < best.rank {
			best = &k
			return
		}
		if k.rank != best.rank {
			return
		}
		if k.reason == "dependency" && best.reason == "dependency" {
			// The deepest dependency: one the other depends on, whatever
			// the paths from svc (checkout depends on api and on db, and
			// api on db: db).
			switch {
			case c.dependsOn(best.service, k.service) != nil:
				best = &k
				return
			case c.dependsOn(k.service, best.service) != nil:
				return
			}
		}
		if k.depth > best.depth {
			best = &k
		}
	}
	for _, p := range pairs {
		id, other, at := p.incidentID, p.service, p.at
		switch {
		case c.dependsOn(svc, other) != nil:
			path := c.dependsOn(svc, other)
			exp := fmt.Sprintf("attached because %s depends on %s, which has %s", serviceText(svc), serviceText(other), id)
			if len(path) > 2 {
				exp = fmt.Sprintf("attached because %s depends on %s (%s), which has %s", serviceText(svc), serviceText(other), servicesText(path, " -> "), id)
			}
			consider(correlationCandidate{incidentID: id, reason: "dependency", rank: 0, depth: len(path), service: other, attached: at, explanation: exp})
		case other == svc:
			consider(correlationCandidate{incidentID: id, reason: "service", rank: 1, attached: at,
				explanation: fmt.Sprintf("attached because %s already has %s", serviceText(svc), id)})
		case c.dependsOn(other, svc) != nil:
			consider(correlationCandidate{incidentID: id, reason: "dependant", rank: 2, attached: at,
				explanation: fmt.Sprintf("attached because %s, affected by %s, depends on %s", serviceText(other), id, serviceText(svc))})
		case c.SharedDependencies:
			if dep := c.sharedDependency(svc, other); dep != "" {
				consider(correlationCandidate{incidentID: id, reason: "shared_dependency", rank: 3, attached: at,
					explanation: fmt.Sprintf("attached because %s and %s, affected by %s, both depend on %s", serviceText(svc), serviceText(other), id, serviceText(dep))})
			}
		}
	}
	joined := false
	if best != nil {
		i := slices.IndexFunc(pairs, func(p serviceCandidate) bool { return p.incidentID == best.incidentID && p.service == svc })
		if joined = i >= 0; joined {
			best.pre = pairs[i].inc
		}
	}
	return best, joined, nil
}

// relatedLinks returns the open incidents with a link of one of services
// within the window (since) or still firing (relatedLinksAnyQuery,
// relatedLinksInQuery), in the order of their earliest such link (then
// incident, service): the order correlate examines them in.
func (s *Service) relatedLinks(ctx context.Context, tx *sql.Tx, services []string, since int64) ([]serviceCandidate, error) {
	var out []serviceCandidate
	// scan appends the candidates of rows; the rows of
	// relatedLinksAnyQuery (PostgreSQL) carry their incident's columns.
	withIncident := s.db.Dialect == store.Postgres
	scan := func(rows *sql.Rows) error {
		defer rows.Close()
		for rows.Next() {
			var p serviceCandidate
			var within, firing sql.NullInt64
			dest := []any{&p.incidentID, &within, &firing, &p.service}
			var status, severity, urls string
			var detected int64
			var recovered sql.NullInt64
			if withIncident {
				dest = append(dest, &status, &severity, &urls, &detected, &recovered)
			}
			if err := rows.Scan(dest...); err != nil {
				return err
			}
			if withIncident {
				p.inc = &record{Incident: Incident{ID: p.incidentID, Status: Status(status), Severity: Severity(severity),
					DetectedAt: fromMS(detected), RecoveredAt: fromNullMS(recovered)}}
				_ = json.Unmarshal([]byte(urls), &p.inc.RunbookURLs)
			}
			switch {
			case within.Valid && firing.Valid:
				p.at = min(within.Int64, firing.Int64)
			case within.Valid:
				p.at = within.Int64
			case firing.Valid:
				p.at = firing.Int64
			default:
				continue // the link(s) found moved away (split) or stopped firing
			}
			out = append(out, p)
		}
		return rows.Err()
	}
	var rows *sql.Rows
	var err error
	if s.db.Dialect == store.Postgres {
		// Every service in one statement (one round trip): an array
		// parameter, the same index probes per service.
		rows, err = s.query(ctx, tx, relatedLinksAnyQuery, services, since)
	} else {
		// Every service in one statement, a VALUES and an IN list probing
		// the same indexes once per service: one statement instead of one
		// per service (four for a service with a dependency, a dependant
		// and one sharing its dependency).
		args := make([]any, 0, len(services)+1)
		args = append(args, since)
		for _, svc := range services {
			args = append(args, svc)
		}
		rows, err = s.query(ctx, tx, relatedLinksInQuery(len(services)), args...)
	}
	if err == nil {
		err = scan(rows)
	}
	if err != nil {
		return nil, fmt.Errorf("correlation candidates: %w", err)
	}
	slices.SortFunc(out, func(a, b serviceCandidate) int {
		return cmp.Or(cmp.Compare(a.at, b.at), cmp.Compare(a.incidentID, b.incidentID), cmp.Compare(a.service, b.service))
	})
	return out, nil
}

// hasLabels reports whether ls has a non-empty value for every name.
func hasLabels(names []string, ls map[string]string) bool {
	for _, n := range names {
		if ls[n] == "" {
			return false
		}
	}
	return len(names) > 0
}

// sharedLabels reports whether a and b have the same non-empty value for
// every name, and renders them (cluster="eu-1", region="eu").
func sharedLabels(names []string, a, b map[string]string) (string, bool) {
	parts := make([]string, 0, len(names))
	for _, n := range names {
		v := a[n]
		if v == "" || b[n] != v {
			return "", false
		}
		var sb strings.Builder
		sb.WriteString(n)
		sb.WriteByte('=')
		jsonString(&sb, v)
		parts = append(parts, sb.String())
	}
	return strings.Join(parts, ", "), len(parts) > 0
}

// affectedServices returns the distinct services of an incident's links,
// sorted (linkServicesQuery: one index probe per service, however many
// groups are attached).
func (s *Service) affectedServices(ctx context.Context, tx *sql.Tx, id string) ([]string, error) {
	rows, err := s.query(ctx, tx, linkServicesQuery, id)
	if err != nil {
		return nil, fmt.Errorf("services of %s: %w", id, err)
	}
	defer rows.Close()
	var out []string
	for rows.Next() {
		var v string
		if err := rows.Scan(&v); err != nil {
			return nil, fmt.Errorf("services of %s: %w", id, err)
		}
		out = append(out, v)
	}
	sort.Strings(out)
	return out, rows.Err()
}

// loadWithServices is loadWith and affectedServices in one statement
// (PostgreSQL): the incident's row, locked as lock says, and the distinct
// services of its links, sorted.
func (s *Service) loadWithServices(ctx context.Context, tx *sql.Tx, id string, lock rowLock) (*record, []string, error) {
	var raw string
	rec, err := scanIncident(withExtra{s.queryRow(ctx, tx, loadWithServicesQuery+string(lock), id), []any{&raw}})
	if errors.Is(err, sql.ErrNoRows) {
		return nil, nil, notFound(id)
	}
	if err != nil {
		return nil, nil, fmt.Errorf("load incident %s: %w", limits.Quote(id), err)
	}
	if lock == lockShare {
		rec.shared = saveRow(rec)
	}
	var affected []string
	if err := json.Unmarshal([]byte(raw), &affected); err != nil {
		return nil, nil, fmt.Errorf("services of %s: %w", id, err)
	}
	return rec, affected, nil
}

// loadWithServicesQuery reads an incident ($1) and its services as a JSON
// array (linkServicesQuery); the caller appends the row lock.
const loadWithServicesQuery = `SELECT ` + incidentColumns + `, COALESCE((SELECT json_agg(service ORDER BY service)
	FROM (` + linkServicesQuery + `) svcs), '[]') FROM incidents WHERE id = $1`

// attach places the delivery's new group on the incident correlation chose,
// explains why in its timeline and updates its likely root.
//
// On PostgreSQL a group joining an incident that already has a group of
// its service (k.pre), whose alerts change nothing of the incident's row
// (joinKeepsRow), locks the row FOR KEY SHARE (lockShare): deliveries
// joining one incident at once hold it together, none waits for another,
// and save writes nothing. Otherwise the row is locked FOR NO KEY UPDATE
// (lockWrite): it waits for the other deliveries writing the row, not for
// those only joining. Either way the incident must be open once locked:
// a status change committed since correlation read it sends the delivery
// round again (errIncidentMoved); status changes lock FOR UPDATE and wait
// for the joining deliveries.
func (s *Service) attach(ctx context.Context, tx *sql.Tx, d *delivery, k *correlationCandidate, svc string) error {
	lock := lockNone
	if s.db.Dialect == store.Postgres {
		lock = lockWrite
		if k.pre != nil && ctx.Value(lockForWriteKey{}) == nil && joinKeepsRow(k.pre, d) {
			lock = lockShare
		}
	}
	var r *record
	var affected []string
	var err error
	if s.db.Dialect == store.Postgres {
		r, affected, err = s.loadWithServices(ctx, tx, k.incidentID, lock)
	} else if r, err = s.loadWith(ctx, tx, k.incidentID, lock); err == nil {
		affected, err = s.affectedServices(ctx, tx, r.ID)
	}
	if err != nil {
		return err
	}
	if !r.Status.Open() {
		return fmt.Errorf("%w: %s is %s", errIncidentMoved, r.ID, r.Status)
	}
	if !slices.Contains(affected, svc) {
		affected = append(affected, svc)
		sort.Strings(affected)
	}
	root := r.RootService
	if c := s.corr.Load(); c != nil {
		if rt := c.Root(affected); rt != "" {
			root = rt
		}
	}
	data := map[string]any{"group_key": d.n.GroupKey, "service": svc, "reason": k.reason, "services": affected, "root": root}
	if k.rule != "" {
		data["rule"] = k.rule
	}
	d.tl = append(d.tl, TimelineEntry{IncidentID: r.ID, Time: d.now, Kind: "correlation", Actor: "sred",
		Message: k.explanation, Data: data})
	if root != r.RootService {
		d.tl = append(d.tl, TimelineEntry{IncidentID: r.ID, Time: d.now, Kind: "correlation", Actor: "sred",
			Message: fmt.Sprintf("likely root: %s (the deepest failing dependency of %s)", serviceText(root), servicesText(affected, ", ")),
			Data:    map[string]any{"root": root, "previous_root": r.RootService, "services": affected}})
		r.RootService = root
	}
	d.target = r
	d.attached = true
	d.link = &Link{GroupKey: d.n.GroupKey, Service: svc, Labels: nonNil(d.n.CommonLabels), Reason: k.reason,
		Explanation: k.explanation, AttachedAt: d.now, Firing: true}
	return nil
}

// insertLink records a group placed on an incident (once per pair).
func (s *Service) insertLink(ctx context.Context, tx *sql.Tx, incidentID string, l *Link) error {
	if _, err := s.exec(ctx, tx, insertLinkSQL+`($1, $2, $3, $4, $5, $6, $7, $8)`+insertLinkConflict,
		linkRow(incidentID, l)...); err != nil {
		return fmt.Errorf("link group to %s: %w", incidentID, err)
	}
	// The incident's summary for correlation (relatedLinksAnyQuery): its
	// services, each with the latest attachment. Links deleted later (split,
	// merge) leave it as it is: it only narrows where correlation looks,
	// and the links themselves decide.
	if _, err := s.exec(ctx, tx, insertLinkServiceSQL+`($1, $2, $3)`+insertLinkServiceConflict,
		incidentID, l.Service, ms(l.AttachedAt)); err != nil {
		return fmt.Errorf("link group to %s: %w", incidentID, err)
	}
	return nil
}

const (
	insertLinkSQL             = `INSERT INTO incident_links (incident_id, group_key, service, labels, reason, explanation, attached_at, firing) VALUES `
	insertLinkConflict        = ` ON CONFLICT (incident_id, group_key) DO NOTHING`
	insertLinkServiceSQL      = `INSERT INTO incident_link_services (incident_id, service, last_at) VALUES `
	insertLinkServiceConflict = ` ON CONFLICT (incident_id, service) DO UPDATE SET last_at = CASE
			WHEN incident_link_services.last_at > excluded.last_at THEN incident_link_services.last_at
			ELSE excluded.last_at END`
)

// linkRow is the row insertLinkSQL writes (8 columns: its incident_id,
// service and attached_at, 1st, 3rd and 7th, are the row of
// insertLinkServiceSQL).
func linkRow(incidentID string, l *Link) []any {
	return []any{incidentID, l.GroupKey, l.Service, labelsJSON(l.Labels), l.Reason, l.Explanation, ms(l.AttachedAt), boolInt(l.Firing)}
}

func boolInt(b bool) int {
	if b {
		return 1
	}
	return 0
}

// setLinkFiring marks the link of groupKey on an incident firing: the
// delivery placed firing alerts of the group on it. A link already firing
// is not written (nor, on PostgreSQL, locked).
const setLinkFiringSQL = `UPDATE incident_links SET firing = 1 WHERE incident_id = $1 AND group_key = $2 AND firing = 0`

// clearLinkFiringSQL marks the link of a group ($2) on an incident ($1) no
// longer firing once none of the group's alerts on it fires (the delivery
// resolved some): an index probe on the group's alerts.
const clearLinkFiringSQL = `UPDATE incident_links SET firing = 0 WHERE incident_id = $1 AND group_key = $2 AND firing = 1
	AND NOT EXISTS (SELECT 1 FROM incident_alerts a WHERE a.group_key = $2 AND a.incident_id = $1 AND a.status = 'firing')`

// clearManualLinksFiringSQL marks the links of incidents opened by hand on
// an incident ($1) no longer firing when its alerts resolve it: one merged
// into an incident opened by alerts does not keep it firing once resolved.
const clearManualLinksFiringSQL = `UPDATE incident_links SET firing = 0 WHERE incident_id = $1 AND firing = 1 AND group_key LIKE 'manual:%'`

// restoreLinksFiringSQL marks the links of an incident ($1) firing whose
// group still has a firing alert on it: a resolve by hand cleared them
// (clearLinksFiring) while their alerts went on firing, and a re-opened
// incident is a firing one for correlation through them again. So is the
// link of an incident opened by hand (manualLink), firing while it is open.
const restoreLinksFiringSQL = `UPDATE incident_links SET firing = 1 WHERE incident_id = $1 AND firing = 0
	AND (group_key LIKE 'manual:%' OR
		EXISTS (SELECT 1 FROM incident_alerts a WHERE a.group_key = incident_links.group_key AND a.incident_id = $1 AND a.status = 'firing'))`

// restoreLinksFiring marks the links of a re-opened incident whose groups
// still fire on it (restoreLinksFiringSQL); the group re-opening it is
// marked by persistStage.
func (s *Service) restoreLinksFiring(ctx context.Context, tx *sql.Tx, id string) error {
	if _, err := s.exec(ctx, tx, restoreLinksFiringSQL, id); err != nil {
		return fmt.Errorf("links of %s: %w", id, err)
	}
	return nil
}

// Links returns the alert groups placed on an incident, in the order they
// joined it.
func (s *Service) Links(ctx context.Context, id string) ([]Link, error) {
	return loadLinks(ctx, s.db, id)
}

func loadLinks(ctx context.Context, q querier, id string) ([]Link, error) {
	rows, err := q.QueryContext(ctx, `SELECT group_key, service, labels, reason, explanation, attached_at, firing
		FROM incident_links WHERE incident_id = $1 ORDER BY attached_at, group_key`, id)
	if err != nil {
		return nil, fmt.Errorf("links of %s: %w", id, err)
	}
	defer rows.Close()
	out := []Link{}
	for rows.Next() {
		var l Link
		var labels string
		var at, firing int64
		if err := rows.Scan(&l.GroupKey, &l.Service, &labels, &l.Reason, &l.Explanation, &at, &firing); err != nil {
			return nil, fmt.Errorf("links of %s: %w", id, err)
		}
		l.Firing = firing != 0
		_ = json.Unmarshal([]byte(labels), &l.Labels)
		l.AttachedAt = fromMS(at)
		out = append(out, l)
	}
	return out, rows.Err()
}

// servicesOf returns the distinct services of links, sorted.
func servicesOf(ls []Link) []string {
	m := map[string]bool{}
	for _, l := range ls {
		m[l.Service] = true
	}
	return slices.Sorted(maps.Keys(m))
}

// errIncidentMoved: the incident correlation chose changed status before
// the delivery locked it; the delivery runs again (ingestWrite).
var errIncidentMoved = errors.New("incident changed status while the delivery joined it")

// joinKeepsRow reports whether placing the delivery's new alerts on r (as
// read before locking it) leaves every column of r's row but updated_at
// as it is: the severity, runbook URLs and detection time placeStage
// merges from them, and no recovery to clear (settle). The likely root
// cannot change either: the group's service already has a link on r.
func joinKeepsRow(r *record, d *delivery) bool {
	if r.RecoveredAt != nil {
		return false
	}
	inc := r.Incident
	inc.RunbookURLs = slices.Clone(inc.RunbookURLs)
	for _, as := range [][]*incoming{d.newFiring, d.newResolved} {
		for _, a := range as {
			mergeAlertInfo(&inc, a.NotifiedAlert, d.opts)
		}
	}
	return inc.Severity == r.Severity && slices.Equal(inc.RunbookURLs, r.RunbookURLs) && ms(inc.DetectedAt) == ms(r.DetectedAt)
}

// serviceText is a service as the timeline's messages name it: as written
// when it is a plain name (ASCII letters, digits, '_', '.', ':', '/',
// '-'), else quoted as the timeline quotes an alert's label values
// (describe: strconv.Quote, a newline is \n, a quote \"). A service is a
// label value: a newline, a comma or words in it cannot split the message
// or pass for more of it (`attached because "web\nlikely root: db"
// already has INC-2026-0001`).
func serviceText(s string) string {
	if plainService(s) {
		return s
	}
	return strconv.Quote(s)
}

// servicesText joins services as serviceText names each.
func servicesText(ss []string, sep string) string {
	out := make([]string, len(ss))
	for i, s := range ss {
		out[i] = serviceText(s)
	}
	return strings.Join(out, sep)
}

func plainService(s string) bool {
	if s == "" {
		return false
	}
	for i := 0; i < len(s); i++ {
		c := s[i]
		if !(c >= 'a' && c <= 'z' || c >= 'A' && c <= 'Z' || c >= '0' && c <= '9' || strings.IndexByte("_.:/-", c) >= 0) {
			return false
		}
	}
	return true
}
