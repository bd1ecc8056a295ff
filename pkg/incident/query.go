package incident

import (
	"context"
	"database/sql"
	"encoding/json"
	"errors"
	"fmt"
	"maps"
	"slices"
	"strings"
	"sync"
	"time"

	"github.com/rootuip/sre/pkg/limits"
	"github.com/rootuip/sre/pkg/store"
)

const incidentColumns = `id, title, service, severity, status, labels, group_key, receiver, runbook_urls,
	assignee, impact, flapping, reopen_count, mitigated_by, detected_at, created_at, acknowledged_at,
	investigating_at, resolved_at, recovered_at, postmortem_at, updated_at, snoozed_until, root_service, recovering_since,
	merged_into, peak_severity`

type rowScanner interface{ Scan(dest ...any) error }

// record is an incident row with the columns Incident does not expose.
type record struct {
	Incident
	reopenCount     int
	investigatingAt *time.Time
	postmortemAt    *time.Time

	// sevBefore is the severity before the delivery being applied changed
	// anything (set when the delivery touches the incident).
	sevBefore Severity
	// recheckSeverity: an alert of the incident's severity resolved, the
	// severity may fall to the highest one still firing.
	recheckSeverity bool
	// raisedBy is the new alert that last raised the severity in the
	// delivery being applied: settle renders the title from it when the
	// raise sets a new peak (retitle).
	raisedBy *titleSource
	// deferred is the delivery's persisting statement not yet run
	// (PostgreSQL, see persistMerged): save runs it with its UPDATE, any
	// statement reading the delivery's rows runs it first (flushDeferred).
	deferred *deferredWrite
	// shared is the row as loaded (saveRow) when the delivery holds only a
	// share lock on it (PostgreSQL, a group joining an open incident).
	shared []any
	// groups are the alert groups whose new firing alerts the change being
	// applied places on the incident (Change.Groups).
	groups []AlertGroup
}

func scanIncident(r rowScanner) (*record, error) {
	var (
		rec                                          record
		labels, urls                                 string
		flapping                                     int
		detected, created, updated                   int64
		acked, investigating, resolved, recov, postm sql.NullInt64
		snoozed, recovering                          sql.NullInt64
	)
	inc := &rec.Incident
	if err := r.Scan(&inc.ID, &inc.Title, &inc.Service, &inc.Severity, &inc.Status, &labels, &inc.GroupKey,
		&inc.Receiver, &urls, &inc.Assignee, &inc.Impact, &flapping, &rec.reopenCount, &inc.MitigatedBy,
		&detected, &created, &acked, &investigating, &resolved, &recov, &postm, &updated, &snoozed, &inc.RootService, &recovering,
		&inc.MergedInto, &inc.PeakSeverity); err != nil {
		return nil, err
	}
	inc.Labels = map[string]string{}
	_ = json.Unmarshal([]byte(labels), &inc.Labels)
	_ = json.Unmarshal([]byte(urls), &inc.RunbookURLs)
	inc.Flapping = flapping != 0
	// A row written without a peak (by a replica of an older sred during
	// an upgrade) peaks at least at its severity.
	inc.PeakSeverity = higher(inc.PeakSeverity, inc.Severity)
	inc.DetectedAt = fromMS(detected)
	inc.CreatedAt = fromMS(created)
	inc.UpdatedAt = fromMS(updated)
	inc.AcknowledgedAt = fromNullMS(acked)
	inc.ResolvedAt = fromNullMS(resolved)
	inc.RecoveredAt = fromNullMS(recov)
	inc.SnoozedUntil = fromNullMS(snoozed)
	inc.RecoveringSince = fromNullMS(recovering)
	rec.investigatingAt = fromNullMS(investigating)
	rec.postmortemAt = fromNullMS(postm)
	return &rec, nil
}

// load reads one incident inside tx, locking its row on PostgreSQL.
func (s *Service) load(ctx context.Context, tx *sql.Tx, id string) (*record, error) {
	if s.db.Dialect == store.Postgres {
		return s.loadWith(ctx, tx, id, lockUpdate)
	}
	return s.loadWith(ctx, tx, id, lockNone)
}

// rowLock is how loadWith locks the incident's row (PostgreSQL).
type rowLock string

const (
	lockNone   rowLock = ""
	lockUpdate rowLock = " FOR UPDATE"
	// lockShare: concurrent deliveries joining the incident hold it
	// together (FOR KEY SHARE, the lock their rows' foreign keys take
	// anyway); a change of the incident's status (load, FOR UPDATE) waits
	// for all of them, and they for it. save writes nothing when the
	// delivery changed none of the columns but updated_at, and sends the
	// delivery round again otherwise (errIncidentMoved: it then locks with
	// lockWrite).
	lockShare rowLock = " FOR KEY SHARE"
	// lockWrite: a delivery joining the incident that changes its row
	// (severity, runbook URLs, root): it waits for the others that write
	// it, not for those that only join (FOR NO KEY UPDATE and FOR KEY SHARE
	// do not conflict), and reads the row as the writer before it left it.
	lockWrite rowLock = " FOR NO KEY UPDATE"
)

// loadWith reads one incident inside tx, its row locked as lock says.
func (s *Service) loadWith(ctx context.Context, tx *sql.Tx, id string, lock rowLock) (*record, error) {
	q := `SELECT ` + incidentColumns + ` FROM incidents WHERE id = $1` + string(lock)
	rec, err := scanIncident(s.queryRow(ctx, tx, q, id))
	if err == nil && lock == lockShare {
		rec.shared = saveRow(rec)
	}
	if errors.Is(err, sql.ErrNoRows) {
		return nil, notFound(id)
	}
	if err != nil {
		return nil, fmt.Errorf("load incident %s: %w", limits.Quote(id), err)
	}
	return rec, nil
}

// save writes every mutable column of rec. With a deferred persisting
// statement (rec.deferred), the UPDATE is one more query of it, and both go
// in one round trip.
//
// When rec was loaded under a share lock (loadWith, lockShare) and only
// its updated_at changed, save writes nothing to the incident (the
// delivery's own rows still go in): concurrent deliveries joining one
// incident then hold its row together instead of one after the other,
// and updated_at keeps the time of the incident's last own change. Any
// other change under a share lock sends the delivery round again
// (errIncidentMoved): upgrading a share lock that others hold too would
// wait for them, and they for it.
func (s *Service) save(ctx context.Context, tx *sql.Tx, rec *record) error {
	if rec.shared != nil && !sameRowButUpdated(saveRow(rec), rec.shared) {
		return fmt.Errorf("%w: %s changed since the delivery read it", errIncidentMoved, rec.ID)
	}
	if rec.shared != nil {
		rec.UpdatedAt = fromMS(rec.shared[updatedAtArg].(int64))
		if w := rec.deferred; w != nil {
			rec.deferred = nil
			if err := w.exec(ctx, s, tx); err != nil {
				return fmt.Errorf("store delivery on incident %s: %w", rec.ID, err)
			}
		}
		return nil
	}
	if w := rec.deferred; w != nil {
		rec.deferred = nil
		w.add(saveSQL(len(w.args)), saveRow(rec)...)
		if err := w.exec(ctx, s, tx); err != nil {
			return fmt.Errorf("store delivery and save incident %s: %w", rec.ID, err)
		}
		return nil
	}
	if _, err := s.exec(ctx, tx, saveSQL(0), saveRow(rec)...); err != nil {
		return fmt.Errorf("save incident %s: %w", rec.ID, err)
	}
	return nil
}

// saveColumns are the columns save writes, $n+2 and on (the ID is $n+1).
var saveColumns = []string{"title", "service", "severity", "status", "runbook_urls", "assignee", "impact", "flapping",
	"reopen_count", "mitigated_by", "detected_at", "acknowledged_at", "investigating_at", "resolved_at", "recovered_at",
	"postmortem_at", "updated_at", "snoozed_until", "root_service", "recovering_since", "merged_into", "peak_severity"}

// saveSQL0 is saveSQL(0), the statement of a save on its own.
var saveSQL0 = saveSQLAt(0)

// saveSQL is the UPDATE of save with its parameters from $n+1.
func saveSQL(n int) string {
	if n == 0 {
		return saveSQL0
	}
	return saveSQLAt(n)
}

func saveSQLAt(n int) string {
	var sb strings.Builder
	sb.WriteString("UPDATE incidents SET ")
	for i, c := range saveColumns {
		if i > 0 {
			sb.WriteString(", ")
		}
		fmt.Fprintf(&sb, "%s = $%d", c, n+i+2)
	}
	fmt.Fprintf(&sb, " WHERE id = $%d", n+1)
	return sb.String()
}

// updatedAtArg is the index of updated_at in saveRow.
var updatedAtArg = slices.Index(saveColumns, "updated_at") + 1

// sameRowButUpdated reports whether two saveRows differ at most in
// updated_at.
func sameRowButUpdated(a, b []any) bool {
	for i := range a {
		if i != updatedAtArg && a[i] != b[i] {
			return false
		}
	}
	return len(a) == len(b)
}

// saveRow is the ID and the saveColumns of rec.
func saveRow(rec *record) []any {
	inc := &rec.Incident
	flapping := 0
	if inc.Flapping {
		flapping = 1
	}
	urls := inc.RunbookURLs
	if urls == nil {
		urls = []string{}
	}
	// The peak follows a raise in the same UPDATE: no statement of its own.
	inc.PeakSeverity = higher(inc.PeakSeverity, inc.Severity)
	return []any{inc.ID, inc.Title, inc.Service, string(inc.Severity), string(inc.Status), mustJSON(urls), inc.Assignee,
		inc.Impact, flapping, rec.reopenCount, inc.MitigatedBy, ms(inc.DetectedAt), nullMS(inc.AcknowledgedAt),
		nullMS(rec.investigatingAt), nullMS(inc.ResolvedAt), nullMS(inc.RecoveredAt), nullMS(rec.postmortemAt),
		ms(inc.UpdatedAt), nullMS(inc.SnoozedUntil), inc.RootService, nullMS(inc.RecoveringSince), inc.MergedInto,
		string(inc.PeakSeverity)}
}

type querier interface {
	QueryContext(ctx context.Context, query string, args ...any) (*sql.Rows, error)
}

// loadAlerts returns an incident's alert episodes, each once: an episode
// (fingerprint and start) that several Alertmanager groups delivered (its
// group_by changed while it fired) is stored once per group and listed
// once, as the copy updated last says, with every group in GroupKeys.
func loadAlerts(ctx context.Context, q querier, id string) ([]Alert, error) {
	rows, err := q.QueryContext(ctx, `SELECT fingerprint, starts_at, ends_at, status, labels, annotations, generator_url, group_key
		FROM incident_alerts WHERE incident_id = $1 ORDER BY starts_at, fingerprint, updated_at DESC, group_key`, id)
	if err != nil {
		return nil, fmt.Errorf("alerts of %s: %w", id, err)
	}
	defer rows.Close()
	out := []Alert{}
	for rows.Next() {
		var a Alert
		var starts int64
		var ends sql.NullInt64
		var labels, annotations, group string
		if err := rows.Scan(&a.Fingerprint, &starts, &ends, &a.Status, &labels, &annotations, &a.GeneratorURL, &group); err != nil {
			return nil, fmt.Errorf("alerts of %s: %w", id, err)
		}
		if n := len(out); n > 0 && out[n-1].Fingerprint == a.Fingerprint && ms(out[n-1].StartsAt) == starts {
			// The same episode from another group, updated before.
			out[n-1].GroupKeys = append(out[n-1].GroupKeys, group)
			continue
		}
		a.GroupKeys = []string{group}
		a.StartsAt = fromMS(starts)
		a.EndsAt = fromNullMS(ends)
		_ = json.Unmarshal([]byte(labels), &a.Labels)
		_ = json.Unmarshal([]byte(annotations), &a.Annotations)
		out = append(out, a)
	}
	return out, rows.Err()
}

// ResolveID returns the stored form of the incident ID id: id itself when
// an incident has it, else that of the one incident whose ID is id in
// another case (INC-2026-0001 for inc-2026-0001: sred writes the prefix
// as incident_id_prefix spells it, people type it as they like). None
// gives ErrNotFound naming id; several (imported IDs that differ only in
// case) give ErrNotFound naming them, since none of them is meant more
// than the others.
func (s *Service) ResolveID(ctx context.Context, id string) (string, error) {
	var got string
	err := s.db.QueryRowContext(ctx, `SELECT id FROM incidents WHERE id = $1`, id).Scan(&got)
	if err == nil {
		return got, nil
	}
	if !errors.Is(err, sql.ErrNoRows) {
		return "", fmt.Errorf("find incident %s: %w", limits.Quote(id), err)
	}
	if !importIDRE.MatchString(id) {
		// No stored ID has it in any case.
		return "", notFound(id)
	}
	matches, err := s.idsFolded(ctx, id)
	if err != nil {
		return "", err
	}
	switch len(matches) {
	case 0:
		return "", notFound(id)
	case 1:
		return matches[0], nil
	}
	return "", fmt.Errorf("%w: %s (incident IDs %s differ from it only in case: name one exactly)", ErrNotFound, id, strings.Join(matches, ", "))
}

// idsFolded returns the stored incident IDs equal to id in upper or in
// lower case (at most two, sorted): INC-2026-0001 for inc-2026-0001 or
// Inc-2026-0001, an imported lower-case ID for its upper-case form. Both
// are looked up in the primary key (idCaseSQL), so an ID typed in
// another case costs two index probes, never a scan of the table; an
// imported ID in mixed case is found as it is stored only.
func (s *Service) idsFolded(ctx context.Context, id string) ([]string, error) {
	rows, err := s.db.QueryContext(ctx, idCaseSQL, strings.ToUpper(id), strings.ToLower(id))
	if err != nil {
		return nil, fmt.Errorf("find incident %s: %w", limits.Quote(id), err)
	}
	defer rows.Close()
	var out []string
	for rows.Next() {
		var v string
		if err := rows.Scan(&v); err != nil {
			return nil, fmt.Errorf("find incident %s: %w", limits.Quote(id), err)
		}
		out = append(out, v)
	}
	if err := rows.Err(); err != nil {
		return nil, fmt.Errorf("find incident %s: %w", limits.Quote(id), err)
	}
	return out, nil
}

// idCaseSQL finds an incident ID in upper ($1) or lower ($2) case.
const idCaseSQL = `SELECT id FROM incidents WHERE id IN ($1, $2) ORDER BY id`

// Get returns an incident with its alerts.
func (s *Service) Get(ctx context.Context, id string) (*Incident, error) {
	rec, err := scanIncident(s.db.QueryRowContext(ctx, `SELECT `+incidentColumns+` FROM incidents WHERE id = $1`, id))
	if errors.Is(err, sql.ErrNoRows) {
		return nil, notFound(id)
	}
	if err != nil {
		return nil, fmt.Errorf("get incident %s: %w", limits.Quote(id), err)
	}
	alerts, err := loadAlerts(ctx, s.db, id)
	if err != nil {
		return nil, err
	}
	rec.Alerts = alerts
	if rec.Links, err = loadLinks(ctx, s.db, id); err != nil {
		return nil, err
	}
	rec.Services = servicesOf(rec.Links)
	return &rec.Incident, nil
}

// Filter selects incidents for List. Zero fields do not filter.
type Filter struct {
	Status        []Status
	Service       string
	Severity      []Severity
	PeakSeverity  []Severity
	Since         time.Time // created at or after
	Until         time.Time // created before
	ResolvedSince time.Time // resolved at or after
	Limit         int       // default 50, at most 1000
	Offset        int
	WithAlerts    bool
}

// PeakSeverityExpr is the SQL expression of an incident's peak severity
// as every query reads it (the Filter's PeakSeverity: CRITICAL finds every
// incident that paged CRITICAL, also after its severity fell; the
// collector's metrics count an incident under it): a row written without
// one (by a replica of an older sred during an upgrade) peaks at its
// severity, as scanIncident reads it. table qualifies the incidents
// table's columns when a query names it by an alias ("i"); "" leaves them
// unqualified.
func PeakSeverityExpr(table string) string {
	col := func(name string) string {
		if table == "" {
			return name
		}
		return table + "." + name
	}
	return "CASE WHEN " + col("peak_severity") + " = '' THEN " + col("severity") + " ELSE " + col("peak_severity") + " END"
}

// Page is one page of List results.
type Page struct {
	Incidents []Incident `json:"incidents"`
	Total     int        `json:"total"`
	Limit     int        `json:"limit"`
	Offset    int        `json:"offset"`
}

// List returns incidents matching f, newest first.
func (s *Service) List(ctx context.Context, f Filter) (*Page, error) {
	if f.Limit <= 0 {
		f.Limit = 50
	}
	if f.Limit > 1000 {
		f.Limit = 1000
	}
	if f.Offset < 0 {
		f.Offset = 0
	}
	var where []string
	var args []any
	arg := func(v any) string {
		args = append(args, v)
		return fmt.Sprintf("$%d", len(args))
	}
	if len(f.Status) > 0 {
		var ph []string
		for _, st := range f.Status {
			ph = append(ph, arg(string(st)))
		}
		where = append(where, "status IN ("+strings.Join(ph, ", ")+")")
	}
	if len(f.Severity) > 0 {
		var ph []string
		for _, sv := range f.Severity {
			ph = append(ph, arg(string(sv)))
		}
		where = append(where, "severity IN ("+strings.Join(ph, ", ")+")")
	}
	if len(f.PeakSeverity) > 0 {
		var ph []string
		for _, sv := range f.PeakSeverity {
			ph = append(ph, arg(string(sv)))
		}
		where = append(where, PeakSeverityExpr("")+" IN ("+strings.Join(ph, ", ")+")")
	}
	if f.Service != "" {
		where = append(where, "service = "+arg(f.Service))
	}
	if !f.Since.IsZero() {
		where = append(where, "created_at >= "+arg(ms(f.Since)))
	}
	if !f.Until.IsZero() {
		where = append(where, "created_at < "+arg(ms(f.Until)))
	}
	if !f.ResolvedSince.IsZero() {
		where = append(where, "resolved_at >= "+arg(ms(f.ResolvedSince)))
	}
	cond := ""
	if len(where) > 0 {
		cond = " WHERE " + strings.Join(where, " AND ")
	}
	page := &Page{Incidents: []Incident{}, Limit: f.Limit, Offset: f.Offset}
	if err := s.db.QueryRowContext(ctx, `SELECT COUNT(*) FROM incidents`+cond, args...).Scan(&page.Total); err != nil {
		return nil, fmt.Errorf("list incidents: %w", err)
	}
	q := `SELECT ` + incidentColumns + ` FROM incidents` + cond +
		` ORDER BY created_at DESC, id DESC LIMIT ` + arg(f.Limit) + ` OFFSET ` + arg(f.Offset)
	rows, err := s.db.QueryContext(ctx, q, args...)
	if err != nil {
		return nil, fmt.Errorf("list incidents: %w", err)
	}
	defer rows.Close()
	for rows.Next() {
		rec, err := scanIncident(rows)
		if err != nil {
			return nil, fmt.Errorf("list incidents: %w", err)
		}
		page.Incidents = append(page.Incidents, rec.Incident)
	}
	if err := rows.Err(); err != nil {
		return nil, fmt.Errorf("list incidents: %w", err)
	}
	rows.Close()
	if f.WithAlerts {
		for i := range page.Incidents {
			a, err := loadAlerts(ctx, s.db, page.Incidents[i].ID)
			if err != nil {
				return nil, err
			}
			page.Incidents[i].Alerts = a
		}
	}
	return page, nil
}

// OpenWithServices returns the open incidents (triggered, acknowledged,
// investigating), newest first, at most limit, each with Services (those
// of its alert groups, as Get fills them; Alerts and Links stay empty),
// in one query; more says whether further incidents are open. Pages that
// draw every open incident by service (the console's dependency graph)
// read it instead of a Get per incident.
func (s *Service) OpenWithServices(ctx context.Context, limit int) (incs []Incident, more bool, err error) {
	cols := strings.Split(incidentColumns, ",")
	for i, c := range cols {
		cols[i] = "o." + strings.TrimSpace(c)
	}
	rows, err := s.db.QueryContext(ctx, `SELECT `+strings.Join(cols, ", ")+`, l.service
		FROM (SELECT `+incidentColumns+` FROM incidents
			WHERE status IN ($1, $2, $3) ORDER BY created_at DESC, id DESC LIMIT $4) o
		LEFT JOIN incident_links l ON l.incident_id = o.id
		ORDER BY o.created_at DESC, o.id DESC`,
		string(StatusTriggered), string(StatusAcknowledged), string(StatusInvestigating), limit+1)
	if err != nil {
		return nil, false, fmt.Errorf("open incidents with services: %w", err)
	}
	defer rows.Close()
	incs = []Incident{}
	services := map[string]bool{}
	flush := func() {
		if len(incs) > 0 {
			incs[len(incs)-1].Services = slices.Sorted(maps.Keys(services))
		}
		clear(services)
	}
	for rows.Next() {
		var svc sql.NullString
		rec, err := scanIncident(withExtra{rows, []any{&svc}})
		if err != nil {
			return nil, false, fmt.Errorf("open incidents with services: %w", err)
		}
		if len(incs) == 0 || incs[len(incs)-1].ID != rec.ID {
			flush()
			incs = append(incs, rec.Incident)
		}
		if svc.Valid {
			services[svc.String] = true
		}
	}
	if err := rows.Err(); err != nil {
		return nil, false, fmt.Errorf("open incidents with services: %w", err)
	}
	flush()
	if len(incs) > limit {
		return incs[:limit], true, nil
	}
	return incs, false, nil
}

// withExtra scans the columns of r into dest and then into extra.
type withExtra struct {
	r     rowScanner
	extra []any
}

func (w withExtra) Scan(dest ...any) error { return w.r.Scan(append(dest, w.extra...)...) }

// nextID allocates the next incident ID of year t. The upsert locks the
// year's row, so concurrent creators (on any replica) get distinct numbers.
// On SQLite it runs inside tx (writers are serialised anyway), so numbers
// are gap-free. On PostgreSQL it commits on its own, so that the row lock
// is held for one statement instead of the whole delivery (holding it until
// the delivery commits serialises every incident creation of every replica:
// about 150 creations/s in BenchmarkWebhook), through store.DB.Side, not
// the pool whose connection tx holds; a delivery that fails after
// allocating leaves a gap in the sequence. Concurrent creators of one
// sred on PostgreSQL share that statement (idAllocator): each commit of it
// waits for the one before (the row lock), so one per creation bounded
// every replica's creations by the commits one after the other.
func (s *Service) nextID(ctx context.Context, tx *sql.Tx, prefix string, t time.Time) (string, error) {
	year := t.UTC().Year()
	var seq int64
	if s.db.Dialect == store.Postgres {
		var err error
		if seq, err = s.idAlloc.next(ctx, s.db.Side(), year); err != nil { // not the main pool: see Side
			return "", fmt.Errorf("allocate incident id: %w", err)
		}
		return fmt.Sprintf("%s-%d-%04d", prefix, year, seq), nil
	}
	if err := s.queryRow(ctx, tx, allocateIDsSQL, year, 1).Scan(&seq); err != nil {
		return "", fmt.Errorf("allocate incident id: %w", err)
	}
	return fmt.Sprintf("%s-%d-%04d", prefix, year, seq), nil
}

// allocateIDsSQL takes the next $2 numbers of year $1 and returns the last.
const allocateIDsSQL = `INSERT INTO incident_seq (year, last) VALUES ($1, $2)
		ON CONFLICT (year) DO UPDATE SET last = incident_seq.last + excluded.last RETURNING last`

// allocateIDsAsyncSQL is allocateIDsSQL for PostgreSQL's shared allocation
// (idAllocator), whose statement is a transaction of its own: it commits
// without waiting for its WAL to reach the disk (synchronous_commit off
// for that transaction alone, set_config's third argument). Every incident
// that gets one of its numbers is written by a later transaction whose
// commit is synchronous and flushes the WAL up to its own commit record,
// which lies after the allocation's: no stored incident can outlive, in a
// crash, the allocation of its number, and a delivery is answered only
// after that flush. What a crash can lose is an allocation whose incidents
// were never committed: their numbers are taken again, as if never
// allocated. Under webhook load each creating delivery waited for two WAL
// flushes, the allocation's and its own, and the allocations of both
// replicas queued on the year's row for the whole of each flush.
const allocateIDsAsyncSQL = `INSERT INTO incident_seq (year, last)
		SELECT $1, $2 FROM (SELECT set_config('synchronous_commit', 'off', true)) AS async
		ON CONFLICT (year) DO UPDATE SET last = incident_seq.last + excluded.last RETURNING last`

// idAllocator hands out incident numbers on PostgreSQL: the creators that
// ask while one allocation runs wait for it to end, then the first of them
// allocates for all (one statement and commit for the year's numbers of
// the lot) and gives each its number, in the order they asked. Nobody
// waits longer than one allocation for a turn, and no number is taken
// that no creator asked for.
type idAllocator struct {
	mu      sync.Mutex
	running bool
	queue   []*idRequest
	// onAllocate, when set (tests), is told the size of each allocation.
	onAllocate func(n int)
}

type idRequest struct {
	year int
	seq  int64
	err  error
	done chan struct{}
}

// next returns the next number of year, allocated through db.
func (a *idAllocator) next(ctx context.Context, db *sql.DB, year int) (int64, error) {
	r := &idRequest{year: year, done: make(chan struct{})}
	a.mu.Lock()
	a.queue = append(a.queue, r)
	if a.running {
		a.mu.Unlock()
		select {
		case <-r.done:
			return r.seq, r.err
		case <-ctx.Done():
			return 0, ctx.Err() // the number is allocated all the same: a gap
		}
	}
	a.running = true
	for len(a.queue) > 0 {
		batch := a.queue
		a.queue = nil
		a.mu.Unlock()
		a.allocate(ctx, db, batch)
		a.mu.Lock()
	}
	a.running = false
	a.mu.Unlock()
	return r.seq, r.err
}

// allocate gives every request of batch its number, one statement per year.
func (a *idAllocator) allocate(ctx context.Context, db *sql.DB, batch []*idRequest) {
	for len(batch) > 0 {
		year := batch[0].year
		var mine, rest []*idRequest
		for _, r := range batch {
			if r.year == year {
				mine = append(mine, r)
			} else {
				rest = append(rest, r)
			}
		}
		if a.onAllocate != nil {
			a.onAllocate(len(mine))
		}
		var last int64
		err := db.QueryRowContext(context.WithoutCancel(ctx), allocateIDsAsyncSQL, year, len(mine)).Scan(&last)
		for i, r := range mine {
			r.seq, r.err = last-int64(len(mine)-1-i), err
			close(r.done)
		}
		batch = rest
	}
}

// FiringAlert is a stored alert episode still firing, for reconciliation.
type FiringAlert struct {
	// GroupKey is the alert's own group: the one that delivered it, not
	// necessarily its incident's (Incident.GroupKey), as correlation
	// attaches other groups to an incident.
	GroupKey    string
	IncidentID  string
	Fingerprint string
	StartsAt    time.Time
	FirstSeen   time.Time
	Labels      map[string]string
}

// FiringAlerts lists the alert episodes stored as firing, optionally only
// those of one group (groupKey not empty).
func (s *Service) FiringAlerts(ctx context.Context, groupKey string) ([]FiringAlert, error) {
	q := `SELECT group_key, COALESCE(incident_id, ''), fingerprint, starts_at, first_seen_at, labels
		FROM incident_alerts WHERE status = 'firing'`
	var args []any
	if groupKey != "" {
		q += ` AND group_key = $1`
		args = append(args, groupKey)
	}
	return s.firingAlerts(ctx, q+` ORDER BY group_key, fingerprint, starts_at`, args...)
}

// OpenFiringAlerts lists the alert episodes stored as firing on open
// incidents (triggered, acknowledged, investigating), by incident, each
// with its own group (FiringAlert.GroupKey).
func (s *Service) OpenFiringAlerts(ctx context.Context) ([]FiringAlert, error) {
	return s.firingAlerts(ctx, `SELECT a.group_key, a.incident_id, a.fingerprint, a.starts_at, a.first_seen_at, a.labels
		FROM incidents i JOIN incident_alerts a ON a.incident_id = i.id
		WHERE i.status IN ('triggered', 'acknowledged', 'investigating') AND a.status = 'firing'
		ORDER BY a.incident_id, a.group_key, a.fingerprint, a.starts_at`)
}

// ResolvedAlerts lists the alert episodes of Alertmanager groups stored as
// resolved that ended at or after since and have one of fingerprints
// (FiringAlert.IncidentID is their incident).
func (s *Service) ResolvedAlerts(ctx context.Context, since time.Time, fingerprints []string) ([]FiringAlert, error) {
	var out []FiringAlert
	for len(fingerprints) > 0 {
		n := min(len(fingerprints), 500)
		args := []any{ms(since)}
		for _, fp := range fingerprints[:n] {
			args = append(args, fp)
		}
		fingerprints = fingerprints[n:]
		got, err := s.firingAlerts(ctx, `SELECT group_key, COALESCE(incident_id, ''), fingerprint, starts_at, first_seen_at, labels
			FROM incident_alerts WHERE status = 'resolved' AND ends_at >= $1 AND group_key LIKE '{}%'
			AND fingerprint IN (`+store.Placeholders(2, n)+`) ORDER BY group_key, fingerprint, starts_at`, args...)
		if err != nil {
			return nil, err
		}
		out = append(out, got...)
	}
	return out, nil
}

func (s *Service) firingAlerts(ctx context.Context, q string, args ...any) ([]FiringAlert, error) {
	rows, err := s.db.QueryContext(ctx, q, args...)
	if err != nil {
		return nil, fmt.Errorf("list firing alerts: %w", err)
	}
	defer rows.Close()
	var out []FiringAlert
	for rows.Next() {
		var a FiringAlert
		var starts, seen int64
		var labels string
		if err := rows.Scan(&a.GroupKey, &a.IncidentID, &a.Fingerprint, &starts, &seen, &labels); err != nil {
			return nil, fmt.Errorf("list firing alerts: %w", err)
		}
		a.StartsAt, a.FirstSeen = fromMS(starts), fromMS(seen)
		_ = json.Unmarshal([]byte(labels), &a.Labels)
		out = append(out, a)
	}
	if err := rows.Err(); err != nil {
		return nil, fmt.Errorf("list firing alerts: %w", err)
	}
	return out, nil
}
