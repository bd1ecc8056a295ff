package incident

import (
	"bufio"
	"bytes"
	"context"
	"database/sql"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"regexp"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/rootuip/sre/pkg/jsonerr"
	"github.com/rootuip/sre/pkg/limits"
	"github.com/rootuip/sre/pkg/store"
)

// ExportRecord is one incident in the export format (JSON lines, one
// record a line): every column of the incident, its alert episodes, the
// alert groups it holds, its timeline (notes and status updates included),
// its links, its post-mortem action items, and the parts other subsystems
// keep for it (Parts: the escalation state, the change links).
type ExportRecord struct {
	Incident        Incident              `json:"incident"`
	ReopenCount     int                   `json:"reopen_count,omitempty"`
	InvestigatingAt *time.Time            `json:"investigating_at,omitempty"`
	PostmortemAt    *time.Time            `json:"postmortem_at,omitempty"`
	Alerts          []ExportAlert         `json:"alerts"`
	Groups          []ExportGroup         `json:"groups,omitempty"`
	Timeline        []ExportTimelineEntry `json:"timeline"`
	Links           []Link                `json:"links"`
	ActionItems     []ExportActionItem    `json:"action_items,omitempty"`
	// Parts are keyed by the name an ExportPart was added with.
	Parts map[string]json.RawMessage `json:"parts,omitempty"`
}

// ExportAlert is a stored alert episode.
type ExportAlert struct {
	GroupKey string `json:"group_key"`
	Alert
	FirstSeenAt time.Time `json:"first_seen_at"`
	UpdatedAt   time.Time `json:"updated_at"`
}

// ExportGroup is an Alertmanager group whose current incident is this one.
type ExportGroup struct {
	GroupKey string `json:"group_key"`
	// LastDeliveryAt is the group's last delivery (nil: none recorded).
	LastDeliveryAt *time.Time `json:"last_delivery_at,omitempty"`
}

// ExportTimelineEntry is a timeline entry; Data is the stored JSON as it is.
type ExportTimelineEntry struct {
	// ID and IncidentID are read (and ignored) in exports of older sred
	// versions; imported entries get new IDs.
	ID         int64  `json:"id,omitempty"`
	IncidentID string `json:"incident_id,omitempty"`

	Time    time.Time       `json:"time"`
	Kind    string          `json:"kind"`
	Actor   string          `json:"actor"`
	Message string          `json:"message"`
	Data    json.RawMessage `json:"data,omitempty"`
}

// ExportActionItem is a post-mortem action item.
type ExportActionItem struct {
	// ID is kept on import when no other item has it (the post-mortem and
	// the API name items by it); otherwise the item gets a new one.
	ID        int64           `json:"id,omitempty"`
	Title     string          `json:"title"`
	Owner     string          `json:"owner,omitempty"`
	State     ActionItemState `json:"state"`
	DueAt     *time.Time      `json:"due_at,omitempty"`
	CreatedAt time.Time       `json:"created_at"`
	UpdatedAt time.Time       `json:"updated_at"`
}

// Querier reads rows (a *sql.DB or *sql.Tx).
type Querier interface {
	QueryContext(ctx context.Context, query string, args ...any) (*sql.Rows, error)
}

// ExportPart exports and imports the rows another subsystem keeps for
// incidents (escalation state, change links), as one JSON value per
// incident in ExportRecord.Parts.
type ExportPart interface {
	// ExportIncidents returns the part of each incident of ids that has one.
	ExportIncidents(ctx context.Context, q Querier, ids []string) (map[string]json.RawMessage, error)
	// ValidateIncident checks one incident's part before anything is written;
	// its error names the field.
	ValidateIncident(id string, part json.RawMessage) error
	// ImportIncidents writes the parts of incidents that were just imported
	// (none of them existed before), in the import's transaction.
	ImportIncidents(ctx context.Context, tx *sql.Tx, parts map[string]json.RawMessage) error
}

// PathCutter is an ExportPart whose parts hold text sred wrote that can
// name the server's file paths (an escalation timer's last error, a
// change's gate reason). CutPaths returns part with those paths cut to
// their base names (auth.RedactPaths), for the export of a reader who is
// not an admin; part itself when there is nothing to cut.
type PathCutter interface {
	CutPaths(part json.RawMessage) json.RawMessage
}

// CutPartPaths applies the PathCutter of each part of rec that has one.
func (s *Service) CutPartPaths(rec *ExportRecord) {
	for name, raw := range rec.Parts {
		if c, ok := s.exportPart(name).(PathCutter); ok {
			rec.Parts[name] = c.CutPaths(raw)
		}
	}
}

type namedPart struct {
	name string
	part ExportPart
}

// AddExportPart adds a part to every exported record under name; Import
// writes it with the incident. Call it while wiring, before serving.
func (s *Service) AddExportPart(name string, p ExportPart) {
	s.exportParts = append(s.exportParts, namedPart{name, p})
}

func (s *Service) exportPart(name string) ExportPart {
	for _, p := range s.exportParts {
		if p.name == name {
			return p.part
		}
	}
	return nil
}

// exportChunk is how many incidents Export reads at once.
const exportChunk = 500

// Export writes the incidents created at or after since (all when zero),
// oldest first, as JSON lines to w. It reads exportChunk incidents at a
// time, each chunk in one read transaction (a consistent view of its
// incidents), with one query per table.
func (s *Service) Export(ctx context.Context, since time.Time, w io.Writer) (int, error) {
	return s.ExportWith(ctx, since, w, nil)
}

// ExportWith is Export with each record passed to view (when not nil)
// before it is written: the API writes a viewer's export as the viewer may
// read it.
func (s *Service) ExportWith(ctx context.Context, since time.Time, w io.Writer, view func(*ExportRecord)) (int, error) {
	bw := bufio.NewWriterSize(w, 256<<10)
	enc := json.NewEncoder(bw)
	// Stored JSON (timeline data, parts) is written as it is.
	enc.SetEscapeHTML(false)
	n := 0
	lastAt, lastID := ms(since)-1, ""
	for {
		recs, err := s.exportChunk(ctx, ms(since), lastAt, lastID)
		if err != nil {
			bw.Flush() //nolint:errcheck
			return n, err
		}
		for _, rec := range recs {
			if view != nil {
				view(rec)
			}
			if err := enc.Encode(rec); err != nil {
				return n, fmt.Errorf("export %s: %w", rec.Incident.ID, err)
			}
			n++
		}
		if err := bw.Flush(); err != nil {
			return n, fmt.Errorf("export: %w", err)
		}
		if len(recs) < exportChunk {
			return n, nil
		}
		last := recs[len(recs)-1].Incident
		lastAt, lastID = ms(last.CreatedAt), last.ID
	}
}

func (s *Service) exportChunk(ctx context.Context, since, afterAt int64, afterID string) ([]*ExportRecord, error) {
	var opts *sql.TxOptions
	if s.db.Dialect == store.Postgres {
		opts = &sql.TxOptions{Isolation: sql.LevelRepeatableRead, ReadOnly: true}
	}
	tx, err := s.db.BeginTx(ctx, opts)
	if err != nil {
		return nil, fmt.Errorf("export: %w", err)
	}
	defer tx.Rollback() //nolint:errcheck
	rows, err := tx.QueryContext(ctx, `SELECT `+incidentColumns+` FROM incidents
		WHERE created_at >= $1 AND (created_at > $2 OR (created_at = $2 AND id > $3))
		ORDER BY created_at, id LIMIT `+strconv.Itoa(exportChunk), since, afterAt, afterID)
	if err != nil {
		return nil, fmt.Errorf("export: %w", err)
	}
	var recs []*ExportRecord
	byID := map[string]*ExportRecord{}
	for rows.Next() {
		r, err := scanIncident(rows)
		if err != nil {
			rows.Close()
			return nil, fmt.Errorf("export: %w", err)
		}
		rec := &ExportRecord{Incident: r.Incident, ReopenCount: r.reopenCount, InvestigatingAt: r.investigatingAt,
			PostmortemAt: r.postmortemAt, Alerts: []ExportAlert{}, Timeline: []ExportTimelineEntry{}, Links: []Link{}}
		recs = append(recs, rec)
		byID[rec.Incident.ID] = rec
	}
	rows.Close()
	if err := rows.Err(); err != nil {
		return nil, fmt.Errorf("export: %w", err)
	}
	if len(recs) == 0 {
		return nil, nil
	}
	ids := make([]string, len(recs))
	for i, r := range recs {
		ids[i] = r.Incident.ID
	}
	in := `incident_id IN (` + store.Placeholders(1, len(ids)) + `)`
	args := store.Args(ids)
	each := func(what, q string, scan func(rows *sql.Rows) error) error {
		rows, err := tx.QueryContext(ctx, q, args...)
		if err != nil {
			return fmt.Errorf("export %s: %w", what, err)
		}
		defer rows.Close()
		for rows.Next() {
			if err := scan(rows); err != nil {
				return fmt.Errorf("export %s: %w", what, err)
			}
		}
		if err := rows.Err(); err != nil {
			return fmt.Errorf("export %s: %w", what, err)
		}
		return nil
	}
	err = each("alerts", `SELECT incident_id, group_key, fingerprint, starts_at, ends_at, status, labels, annotations, generator_url,
		first_seen_at, updated_at FROM incident_alerts WHERE `+in+` ORDER BY incident_id, group_key, starts_at, fingerprint`,
		func(rows *sql.Rows) error {
			var a ExportAlert
			var id, labels, ann string
			var starts, seen, updated int64
			var ends sql.NullInt64
			if err := rows.Scan(&id, &a.GroupKey, &a.Fingerprint, &starts, &ends, &a.Status, &labels, &ann, &a.GeneratorURL, &seen, &updated); err != nil {
				return err
			}
			a.StartsAt, a.EndsAt, a.FirstSeenAt, a.UpdatedAt = fromMS(starts), fromNullMS(ends), fromMS(seen), fromMS(updated)
			if err := json.Unmarshal([]byte(labels), &a.Labels); err != nil {
				return fmt.Errorf("%s: labels of alert %s: %w", id, a.Fingerprint, err)
			}
			if err := json.Unmarshal([]byte(ann), &a.Annotations); err != nil {
				return fmt.Errorf("%s: annotations of alert %s: %w", id, a.Fingerprint, err)
			}
			byID[id].Alerts = append(byID[id].Alerts, a)
			return nil
		})
	if err != nil {
		return nil, err
	}
	err = each("alert groups", `SELECT incident_id, group_key, last_delivery_at FROM alert_groups WHERE `+in+` ORDER BY incident_id, group_key`,
		func(rows *sql.Rows) error {
			var id string
			var g ExportGroup
			var last int64
			if err := rows.Scan(&id, &g.GroupKey, &last); err != nil {
				return err
			}
			if last != 0 {
				t := fromMS(last)
				g.LastDeliveryAt = &t
			}
			byID[id].Groups = append(byID[id].Groups, g)
			return nil
		})
	if err != nil {
		return nil, err
	}
	err = each("timeline", `SELECT incident_id, at, kind, actor, message, data FROM incident_timeline WHERE `+in+` ORDER BY incident_id, id`,
		func(rows *sql.Rows) error {
			var id, data string
			var e ExportTimelineEntry
			var at int64
			if err := rows.Scan(&id, &at, &e.Kind, &e.Actor, &e.Message, &data); err != nil {
				return err
			}
			e.Time = fromMS(at)
			if data != "" && data != "{}" {
				if !json.Valid([]byte(data)) {
					return fmt.Errorf("%s: timeline data is not JSON: %q", id, data)
				}
				e.Data = json.RawMessage(data)
			}
			byID[id].Timeline = append(byID[id].Timeline, e)
			return nil
		})
	if err != nil {
		return nil, err
	}
	err = each("links", `SELECT incident_id, group_key, service, labels, reason, explanation, attached_at, firing FROM incident_links
		WHERE `+in+` ORDER BY incident_id, attached_at, group_key`,
		func(rows *sql.Rows) error {
			var id, labels string
			var l Link
			var at, firing int64
			if err := rows.Scan(&id, &l.GroupKey, &l.Service, &labels, &l.Reason, &l.Explanation, &at, &firing); err != nil {
				return err
			}
			l.Firing = firing != 0
			if err := json.Unmarshal([]byte(labels), &l.Labels); err != nil {
				return fmt.Errorf("%s: labels of link %s: %w", id, l.GroupKey, err)
			}
			l.AttachedAt = fromMS(at)
			byID[id].Links = append(byID[id].Links, l)
			return nil
		})
	if err != nil {
		return nil, err
	}
	err = each("action items", `SELECT incident_id, id, title, owner, state, due_at, created_at, updated_at FROM incident_action_items
		WHERE `+in+` ORDER BY incident_id, id`,
		func(rows *sql.Rows) error {
			var id string
			var it ExportActionItem
			var due sql.NullInt64
			var created, updated int64
			if err := rows.Scan(&id, &it.ID, &it.Title, &it.Owner, &it.State, &due, &created, &updated); err != nil {
				return err
			}
			it.DueAt, it.CreatedAt, it.UpdatedAt = fromNullMS(due), fromMS(created), fromMS(updated)
			byID[id].ActionItems = append(byID[id].ActionItems, it)
			return nil
		})
	if err != nil {
		return nil, err
	}
	for _, p := range s.exportParts {
		parts, err := p.part.ExportIncidents(ctx, tx, ids)
		if err != nil {
			return nil, fmt.Errorf("export %s: %w", p.name, err)
		}
		for id, raw := range parts {
			rec := byID[id]
			if rec == nil {
				continue
			}
			if rec.Parts == nil {
				rec.Parts = map[string]json.RawMessage{}
			}
			rec.Parts[p.name] = raw
		}
	}
	return recs, nil
}

// ImportResult says what Import did.
type ImportResult struct {
	// Imported incidents were written; Skipped ones already existed.
	Imported int `json:"imported"`
	Skipped  int `json:"skipped"`
}

// importBatch is how many lines Import writes in one transaction; a batch
// is written sooner when its lines reach importBatchBytes.
const (
	importBatch      = 500
	importBatchBytes = 64 << 20
)

// MaxImportLineBytes bounds one line of an import (one incident with its
// alerts, timeline and parts): Import holds a line whole while it decodes
// it, so a longer one is refused when this many bytes are read, not read
// to its end.
const MaxImportLineBytes = 64 << 20

// ImportLineError is a line of an import longer than MaxImportLineBytes.
type ImportLineError struct {
	Line int
}

func (e *ImportLineError) Error() string {
	return fmt.Sprintf("line longer than %d bytes (one incident a line)", MaxImportLineBytes)
}

// readImportLine reads one line of at most MaxImportLineBytes bytes, its
// newline included; a longer one is an *ImportLineError once its first
// MaxImportLineBytes+1 bytes are read. At the end of r it returns what is
// left with io.EOF.
func readImportLine(br *bufio.Reader, n int) ([]byte, error) {
	var line []byte
	for {
		chunk, err := br.ReadSlice('\n')
		if len(line)+len(chunk) > MaxImportLineBytes {
			return nil, &ImportLineError{Line: n}
		}
		line = append(line, chunk...)
		if !errors.Is(err, bufio.ErrBufferFull) {
			return line, err
		}
	}
}

// importLine is a decoded, validated line.
type importLine struct {
	n, size int
	rec     *ExportRecord
}

// Import reads JSON lines of ExportRecord and writes each incident that
// does not exist yet, with everything the record carries (importing again
// skips what is there). Every line is decoded and validated before it is
// written; lines are written importBatch at a time, each batch in one
// transaction with a few multi-row statements. A line is applied whole or
// not at all: an invalid line, or one the database refuses, is an error
// naming its line number (and field), and the lines before it stay
// imported. An incident's merged_into names an incident stored or on a
// line of the import, earlier or later (checkMergeTargets): a line whose
// incident is on no line read so far waits for it (holdMerged, at most
// maxWaiting lines) and is written after it. The ID sequence moves past
// the imported IDs.
func (s *Service) Import(ctx context.Context, r io.Reader) (*ImportResult, error) {
	res := &ImportResult{}
	br := bufio.NewReaderSize(r, 1<<20)
	var batch []importLine
	// seen is the ID of each line of the batch by its upper case, to
	// refuse two that differ only in case and to name the line of the
	// first of two incidents with one ID. It holds one batch, not the
	// import, so that memory does not grow with the import: a line of an
	// earlier batch is in the store by then (committed), where
	// importLines finds it as it finds an incident stored before
	// (IDTakenError and IDCaseError without the line).
	type idLine struct {
		id string
		n  int
	}
	seen := make(map[string]idLine, importBatch)
	// waiting are the lines held back because the incident they are
	// merged into is neither stored nor on a line read so far, by the
	// upper case of that incident's ID: export writes incidents oldest
	// first, and an incident may have been merged into a newer one. They
	// are written with the line of that incident, after it; those still
	// waiting at the end are refused. held is their IDs, as seen.
	waiting := map[string][]importLine{}
	held := map[string]idLine{}
	waitingBytes := 0
	firstWaiting := func(full bool) error {
		var first *importLine
		for _, ls := range waiting {
			for i := range ls {
				if first == nil || ls[i].n < first.n {
					first = &ls[i]
				}
			}
		}
		inc := &first.rec.Incident
		return fmt.Errorf("import line %d (%s): %w", first.n, inc.ID, &MergeTargetError{ID: inc.ID, MergedInto: inc.MergedInto, Waiting: full})
	}
	flush := func() error {
		if len(batch) == 0 {
			return nil
		}
		now, hold, err := s.holdMerged(ctx, batch)
		if err != nil {
			return fmt.Errorf("import line %d: %w", batch[0].n, err)
		}
		for _, l := range hold {
			up := strings.ToUpper(l.rec.Incident.MergedInto)
			waiting[up] = append(waiting[up], l)
			held[strings.ToUpper(l.rec.Incident.ID)] = idLine{id: l.rec.Incident.ID, n: l.n}
			waitingBytes += l.size
		}
		batch = now
		if len(batch) == 0 {
			clear(seen)
			return nil
		}
		defer func() {
			batch = batch[:0]
			clear(seen)
		}()
		var imported, skipped int
		err = s.Write(ctx, func(ctx context.Context, tx *sql.Tx) error {
			var err error
			imported, skipped, err = s.importLines(ctx, tx, batch)
			return err
		})
		if err == nil {
			res.Imported += imported
			res.Skipped += skipped
			return nil
		}
		if ctx.Err() != nil || len(batch) == 1 {
			if len(batch) == 1 {
				return fmt.Errorf("import line %d (%s): %w", batch[0].n, batch[0].rec.Incident.ID, err)
			}
			return err
		}
		// The batch was rolled back: write it line by line, to name the
		// line the database refuses and keep the lines before it (an
		// incident before those merged into it).
		for _, l := range targetsFirst(batch) {
			err := s.Write(ctx, func(ctx context.Context, tx *sql.Tx) error {
				var err error
				imported, skipped, err = s.importLines(ctx, tx, []importLine{l})
				return err
			})
			if err != nil {
				var taken *IDTakenError
				if first, ok := seen[strings.ToUpper(l.rec.Incident.ID)]; ok && first.id == l.rec.Incident.ID && first.n < l.n && errors.As(err, &taken) {
					// The incident it clashes with is an earlier line's.
					taken.OtherLine = first.n
				}
				var mt *MergeTargetError
				if errors.As(err, &mt) && mt.Other != "" && mt.Line == 0 {
					if o, ok := seen[strings.ToUpper(mt.MergedInto)]; ok && o.id == mt.Other {
						// The incident it names in another case is a line's
						// of this batch, written before it.
						mt.Line = o.n
					}
				}
				return fmt.Errorf("import line %d (%s): %w", l.n, l.rec.Incident.ID, err)
			}
			res.Imported += imported
			res.Skipped += skipped
		}
		return nil
	}
	n, batchBytes := 0, 0
	for {
		b, rerr := readImportLine(br, n+1)
		if rerr != nil && rerr != io.EOF {
			if ferr := flush(); ferr != nil {
				return res, ferr
			}
			return res, fmt.Errorf("import line %d: %w", n+1, rerr)
		}
		if len(b) > 0 {
			n++
		}
		if b = bytes.TrimSpace(b); len(b) > 0 {
			rec, err := s.decodeLine(b)
			if err != nil {
				if ferr := flush(); ferr != nil {
					return res, ferr
				}
				return res, fmt.Errorf("import line %d: %w", n, err)
			}
			up := strings.ToUpper(rec.Incident.ID)
			first, ok := seen[up]
			if h, wait := held[up]; !ok && wait {
				first, ok = h, true
			}
			if ok && first.id != rec.Incident.ID {
				if ferr := flush(); ferr != nil {
					return res, ferr
				}
				return res, fmt.Errorf("import line %d: %w", n, &IDCaseError{ID: rec.Incident.ID, Other: first.id, Line: first.n})
			} else if !ok {
				seen[up] = idLine{id: rec.Incident.ID, n: n}
			}
			batch = append(batch, importLine{n: n, size: len(b), rec: rec})
			batchBytes += len(b)
			// The lines waiting for this incident come after it.
			for _, l := range waiting[up] {
				batch = append(batch, l)
				lu := strings.ToUpper(l.rec.Incident.ID)
				delete(held, lu)
				if _, ok := seen[lu]; !ok {
					seen[lu] = idLine{id: l.rec.Incident.ID, n: l.n}
				}
				batchBytes += l.size
				waitingBytes -= l.size
			}
			delete(waiting, up)
			if len(batch) >= importBatch || batchBytes >= importBatchBytes {
				batchBytes = 0
				if err := flush(); err != nil {
					return res, err
				}
				if len(held) > maxWaiting || waitingBytes >= importBatchBytes {
					return res, firstWaiting(true)
				}
			}
		}
		if rerr == io.EOF {
			break
		}
	}
	if err := flush(); err != nil {
		return res, err
	}
	if len(waiting) > 0 {
		return res, firstWaiting(false)
	}
	return res, nil
}

// decodeLine decodes and validates one line: as strictly as the API reads
// a JSON body (unknown fields, a key given twice, a key naming a field
// only without regard to case, data after the value are errors).
func (s *Service) decodeLine(b []byte) (*ExportRecord, error) {
	// encoding/json would read invalid UTF-8 as U+FFFD and store that.
	if err := limits.UTF8("line", b); err != nil {
		return nil, err
	}
	dec := json.NewDecoder(bytes.NewReader(b))
	dec.DisallowUnknownFields()
	var rec ExportRecord
	if err := dec.Decode(&rec); err != nil {
		return nil, describeJSONError(err, b, &rec)
	}
	// Not dec.More, which takes a stray "}" or "]" after the value for
	// the end of the line: {"incident":...}} was imported.
	if _, err := dec.Token(); !errors.Is(err, io.EOF) {
		return nil, errors.New("data after the JSON value on the line (one incident a line)")
	}
	// A key given twice (encoding/json keeps the last) or naming a field
	// only without regard to case ("Incident"): refused as the API's
	// bodies are, named by its path on the line.
	if err := jsonerr.CheckKeysOf(b, &rec, ""); err != nil {
		return nil, err
	}
	if err := s.validateRecord(&rec); err != nil {
		return nil, err
	}
	return &rec, nil
}

// describeJSONError words a decoding error as the API words one of its
// bodies (jsonerr.Rewrite): a value of the wrong type names its path on
// the line and the JSON it wants ("incident.severity: want a string, got
// a number"), never a Go type; an unknown field's name is quoted cut as
// every refused value (a key of thousands of characters never comes back
// whole).
func describeJSONError(err error, line []byte, rec *ExportRecord) error {
	return jsonerr.Rewrite(err, line, rec)
}

// importIDRE is what an imported incident's ID may be: sred's own IDs
// (PREFIX-2026-0001) and other plain names, nothing a path or a query
// would read otherwise.
var importIDRE = regexp.MustCompile(`^[A-Za-z0-9][A-Za-z0-9._-]{0,63}$`)

func (s *Service) validateRecord(rec *ExportRecord) error {
	inc := &rec.Incident
	bad := func(field, format string, a ...any) error {
		id := inc.ID
		if id == "" || !importIDRE.MatchString(id) {
			id = "?"
		}
		return fmt.Errorf("incident %s: field %s: %s", id, field, fmt.Sprintf(format, a...))
	}
	switch {
	case strings.TrimSpace(inc.ID) == "":
		return bad("incident.id", "is missing")
	case !importIDRE.MatchString(inc.ID):
		return bad("incident.id", "%s is not an incident ID (letters, digits, '.', '_' and '-', at most 64, such as INC-2026-0001)", limits.Quote(inc.ID))
	case inc.Title == "":
		return bad("incident.title", "is missing")
	case inc.CreatedAt.IsZero():
		return bad("incident.created_at", "is missing")
	case inc.UpdatedAt.IsZero():
		return bad("incident.updated_at", "is missing")
	case inc.DetectedAt.IsZero():
		return bad("incident.detected_at", "is missing")
	case rec.ReopenCount < 0:
		return bad("reopen_count", "is negative (%d)", rec.ReopenCount)
	}
	// Times outside the years 1 to 9999 (which no answer could encode),
	// NUL bytes, non-finite numbers: as the API refuses them.
	if err := limits.Check(rec); err != nil {
		var fe *limits.FieldError
		if errors.As(err, &fe) {
			return bad(fe.Field, "%v", fe.Err)
		}
		return bad("?", "%v", err)
	}
	// Strings and collections over what the API and the webhook store.
	if be := checkImportBounds(rec, s.Options().WebhookLimits); be != nil {
		return bad(be.Field, "%s", be.Msg)
	}
	if !slices.Contains([]Severity{SeverityCritical, SeverityHigh, SeverityMedium, SeverityLow}, inc.Severity) {
		return bad("incident.severity", "%s is not one of CRITICAL, HIGH, MEDIUM, LOW", limits.Quote(string(inc.Severity)))
	}
	if inc.PeakSeverity != "" && !slices.Contains([]Severity{SeverityCritical, SeverityHigh, SeverityMedium, SeverityLow}, inc.PeakSeverity) {
		return bad("incident.peak_severity", "%s is not one of CRITICAL, HIGH, MEDIUM, LOW", limits.Quote(string(inc.PeakSeverity)))
	}
	if !slices.Contains([]Status{StatusTriggered, StatusAcknowledged, StatusInvestigating, StatusResolved, StatusPostmortemDone}, inc.Status) {
		return bad("incident.status", "%s is not one of triggered, acknowledged, investigating, resolved, postmortem_done", limits.Quote(string(inc.Status)))
	}
	for i, a := range rec.Alerts {
		switch {
		case a.GroupKey == "":
			return bad(fmt.Sprintf("alerts[%d].group_key", i), "is missing")
		case a.Fingerprint == "":
			return bad(fmt.Sprintf("alerts[%d].fingerprint", i), "is missing")
		case a.StartsAt.IsZero():
			return bad(fmt.Sprintf("alerts[%d].starts_at", i), "is missing")
		case a.Status != "firing" && a.Status != "resolved":
			return bad(fmt.Sprintf("alerts[%d].status", i), "%s is not firing or resolved", limits.Quote(a.Status))
		}
	}
	for i, g := range rec.Groups {
		if g.GroupKey == "" {
			return bad(fmt.Sprintf("groups[%d].group_key", i), "is missing")
		}
	}
	for i, e := range rec.Timeline {
		switch {
		case e.Time.IsZero():
			return bad(fmt.Sprintf("timeline[%d].time", i), "is missing")
		case e.Kind == "":
			return bad(fmt.Sprintf("timeline[%d].kind", i), "is missing")
		case len(e.Data) > 0 && (e.Data[0] != '{' && string(e.Data) != "null"):
			return bad(fmt.Sprintf("timeline[%d].data", i), "is not an object")
		}
	}
	for i, l := range rec.Links {
		switch {
		case l.GroupKey == "":
			return bad(fmt.Sprintf("links[%d].group_key", i), "is missing")
		case l.Reason == "":
			return bad(fmt.Sprintf("links[%d].reason", i), "is missing")
		case l.AttachedAt.IsZero():
			return bad(fmt.Sprintf("links[%d].attached_at", i), "is missing")
		}
	}
	for i, it := range rec.ActionItems {
		if it.Title == "" {
			return bad(fmt.Sprintf("action_items[%d].title", i), "is missing")
		}
		if _, err := ParseActionItemState(string(it.State)); err != nil {
			return bad(fmt.Sprintf("action_items[%d].state", i), "%v", err)
		}
		if it.CreatedAt.IsZero() {
			return bad(fmt.Sprintf("action_items[%d].created_at", i), "is missing")
		}
	}
	// As many notes, status updates, action items and changes as the
	// API lets an incident have (MaxNotes, ...): an import does not pass
	// the bounds the API holds.
	if field, err := importBounds(rec); err != nil {
		return bad(field, "%v", err)
	}
	names := make([]string, 0, len(rec.Parts))
	for name := range rec.Parts {
		names = append(names, name)
	}
	slices.Sort(names)
	for _, name := range names {
		p := s.exportPart(name)
		if p == nil {
			return bad("parts."+name, "this sred has no %s subsystem to import it into (enable it, or remove the part)", name)
		}
		if err := p.ValidateIncident(inc.ID, rec.Parts[name]); err != nil {
			return bad("parts."+name, "%v", err)
		}
	}
	return nil
}

// IDTakenError is an imported incident whose ID another incident of the
// importing store has.
type IDTakenError struct {
	Line     int
	ID       string
	Created  time.Time
	GroupKey string
	// OtherLine is the line of the same import the other incident came
	// from when it is in the same batch (0 when it was stored before the
	// import or by an earlier batch of it).
	OtherLine int
}

func (e *IDTakenError) Error() string {
	if e.OtherLine > 0 {
		return fmt.Sprintf("incident %s is on line %d as another incident (created %s, group %q): an ID names one incident; give one of them another ID",
			e.ID, e.OtherLine, e.Created.Format(time.RFC3339), e.GroupKey)
	}
	return fmt.Sprintf("incident %s exists here as another incident (created %s, group %q), stored before the import or by an earlier line of it: an ID names one incident; import into a store whose incidents all came from the export, each under its own ID (docs/storage.md, Moving from SQLite to PostgreSQL)",
		e.ID, e.Created.Format(time.RFC3339), e.GroupKey)
}

// IDCaseError is an imported incident whose ID differs only in case from
// another incident's: IDs are read in any case (ResolveID), so one would
// stand for the other. Line is the line of the other one when it is in
// the same import (0 when it is stored).
type IDCaseError struct {
	ID, Other string
	Line      int
}

func (e *IDCaseError) Error() string {
	where := "exists here"
	if e.Line > 0 {
		where = fmt.Sprintf("is on line %d", e.Line)
	}
	return fmt.Sprintf("incident %s differs only in case from incident %s, which %s: incident IDs are read in any case, so one would stand for the other (rename one in the export)",
		e.ID, e.Other, where)
}

// idCaseClashes returns the stored IDs, by the ID of a line, that differ
// from that ID only in case, found as ResolveID finds them: the ID in
// upper and in lower case, from the primary key.
func idCaseClashes(ctx context.Context, tx *sql.Tx, ids []string) (map[string]string, error) {
	folded := make([]string, 0, 2*len(ids))
	for _, id := range ids {
		folded = append(folded, strings.ToUpper(id), strings.ToLower(id))
	}
	rows, err := tx.QueryContext(ctx, `SELECT id FROM incidents WHERE id IN (`+store.Placeholders(1, len(folded))+`)`, store.Args(folded)...)
	if err != nil {
		return nil, fmt.Errorf("look up incidents of the IDs in another case: %w", err)
	}
	defer rows.Close()
	stored := map[string]string{} // upper case -> stored ID
	for rows.Next() {
		var id string
		if err := rows.Scan(&id); err != nil {
			return nil, err
		}
		stored[strings.ToUpper(id)] = id
	}
	if err := rows.Err(); err != nil {
		return nil, err
	}
	out := map[string]string{}
	for _, id := range ids {
		if other, ok := stored[strings.ToUpper(id)]; ok && other != id {
			out[id] = other
		}
	}
	return out, nil
}

// importLines writes the incidents of lines that do not exist yet; a line
// whose incident exists (or came earlier in lines) is skipped whole.
func (s *Service) importLines(ctx context.Context, tx *sql.Tx, lines []importLine) (imported, skipped int, err error) {
	if s.db.Dialect == store.Postgres {
		// sred's sessions plan prepared statements generically
		// (store.openPgx); a batch's look-ups of up to 1,000 IDs (id IN
		// ($1, ...)) then scanned the whole incidents table of a store
		// being filled by the import, never analysed, comparing each row
		// with every ID: 2-3 s of PostgreSQL's CPU a batch, about ten
		// minutes for a 100,000-incident move. Planned with their values
		// they walk the primary key.
		if _, err := tx.ExecContext(ctx, `SET LOCAL plan_cache_mode = force_custom_plan`); err != nil {
			return 0, 0, fmt.Errorf("plan the import's look-ups with their values: %w", err)
		}
	}
	ids := make([]string, len(lines))
	for i, l := range lines {
		ids[i] = l.rec.Incident.ID
	}
	// An incident is the same one when its ID, creation time and group
	// key are: importing again skips it. Another incident with its ID (one
	// the importing sred opened itself before the import) is an error:
	// skipping it would lose the imported one.
	type stored struct {
		created  int64
		groupKey string
	}
	exists := map[string]bool{}
	have := map[string]stored{}
	rows, err := tx.QueryContext(ctx, `SELECT id, created_at, group_key FROM incidents WHERE id IN (`+store.Placeholders(1, len(ids))+`)`, store.Args(ids)...)
	if err != nil {
		return 0, 0, fmt.Errorf("look up existing incidents: %w", err)
	}
	for rows.Next() {
		var id string
		var st stored
		if err := rows.Scan(&id, &st.created, &st.groupKey); err != nil {
			rows.Close()
			return 0, 0, err
		}
		exists[id] = true
		have[id] = st
	}
	rows.Close()
	if err := rows.Err(); err != nil {
		return 0, 0, err
	}
	for _, l := range lines {
		inc := &l.rec.Incident
		st, ok := have[inc.ID]
		if ok && (st.created != ms(inc.CreatedAt) || st.groupKey != inc.GroupKey) {
			return 0, 0, &IDTakenError{Line: l.n, ID: inc.ID, Created: time.UnixMilli(st.created).UTC(), GroupKey: st.groupKey}
		}
		if !ok {
			// A later line of the batch with this ID is the same
			// incident (skipped) or another one: an error, as it is
			// when the lines are in two batches (the first one is
			// stored then), never skipped as if it were there.
			have[inc.ID] = stored{created: ms(inc.CreatedAt), groupKey: inc.GroupKey}
		}
	}
	clashes, err := idCaseClashes(ctx, tx, ids)
	if err != nil {
		return 0, 0, err
	}
	for _, l := range lines {
		if other, ok := clashes[l.rec.Incident.ID]; ok && !exists[l.rec.Incident.ID] {
			return 0, 0, &IDCaseError{ID: l.rec.Incident.ID, Other: other}
		}
	}
	// An incident merged into one that is stored or on a line, under
	// that very ID.
	if err := checkMergeTargets(ctx, tx, lines, exists); err != nil {
		return 0, 0, err
	}
	// As many incidents merged into one as Merge allows (MaxMerged):
	// those stored count, and those of the lines that add an incident.
	if err := importMerged(ctx, tx, lines, exists); err != nil {
		return 0, 0, err
	}
	var (
		incRows, alertRows, tlRows, linkRows, itemRows [][]any
		groups                                         = map[string][]any{}
		groupOrder                                     []string
		groupAt                                        = map[string]int64{}
		seq                                            = map[int]int64{}
		parts                                          = map[string]map[string]json.RawMessage{}
		oldestUpdated                                  int64 // unix ms, of the imported incidents
	)
	for _, l := range lines {
		rec := l.rec
		inc := &rec.Incident
		if exists[inc.ID] {
			skipped++
			continue
		}
		exists[inc.ID] = true
		if imported == 0 || ms(inc.UpdatedAt) < oldestUpdated {
			oldestUpdated = ms(inc.UpdatedAt)
		}
		imported++
		urls := inc.RunbookURLs
		if urls == nil {
			urls = []string{}
		}
		flapping := 0
		if inc.Flapping {
			flapping = 1
		}
		inc.PeakSeverity = importedPeak(rec)
		incRows = append(incRows, []any{inc.ID, inc.Title, inc.Service, string(inc.Severity), string(inc.Status),
			labelsJSON(nonNil(inc.Labels)), inc.GroupKey, inc.Receiver, mustJSON(urls), inc.Assignee, inc.Impact, flapping,
			rec.ReopenCount, inc.MitigatedBy, ms(inc.DetectedAt), ms(inc.CreatedAt), nullMS(inc.AcknowledgedAt),
			nullMS(rec.InvestigatingAt), nullMS(inc.ResolvedAt), nullMS(inc.RecoveredAt), nullMS(rec.PostmortemAt),
			ms(inc.UpdatedAt), nullMS(inc.SnoozedUntil), inc.RootService, nullMS(inc.RecoveringSince), inc.MergedInto,
			string(inc.PeakSeverity)})
		for _, a := range rec.Alerts {
			alertRows = append(alertRows, []any{a.GroupKey, a.Fingerprint, ms(a.StartsAt), inc.ID, a.Status, nullMS(a.EndsAt),
				labelsJSON(nonNil(a.Labels)), labelsJSON(nonNil(a.Annotations)), a.GeneratorURL, ms(a.FirstSeenAt), ms(a.UpdatedAt)})
		}
		// The groups this incident holds; an export without them (older
		// sred) holds the groups of its alerts. A group's current incident
		// is its latest.
		held := rec.Groups
		if held == nil {
			for _, a := range rec.Alerts {
				if !slices.ContainsFunc(held, func(g ExportGroup) bool { return g.GroupKey == a.GroupKey }) {
					held = append(held, ExportGroup{GroupKey: a.GroupKey})
				}
			}
		}
		for _, g := range held {
			var last int64
			if g.LastDeliveryAt != nil {
				last = ms(*g.LastDeliveryAt)
			}
			if prev, ok := groups[g.GroupKey]; ok {
				if groupAt[g.GroupKey] > ms(inc.CreatedAt) {
					continue
				}
				last = max(last, prev[2].(int64))
			} else {
				groupOrder = append(groupOrder, g.GroupKey)
			}
			groups[g.GroupKey] = []any{g.GroupKey, inc.ID, last}
			groupAt[g.GroupKey] = ms(inc.CreatedAt)
		}
		for _, e := range rec.Timeline {
			data := "{}"
			if len(e.Data) > 0 && string(e.Data) != "null" {
				data = string(e.Data)
			}
			tlRows = append(tlRows, []any{inc.ID, ms(e.Time), e.Kind, e.Actor, e.Message, data})
		}
		for _, lk := range rec.Links {
			// Whether the group fires on the incident is what its alerts
			// say (an export of an older sred has no firing).
			firing := slices.ContainsFunc(rec.Alerts, func(a ExportAlert) bool { return a.GroupKey == lk.GroupKey && a.Status == "firing" })
			linkRows = append(linkRows, []any{inc.ID, lk.GroupKey, lk.Service, labelsJSON(lk.Labels), lk.Reason, lk.Explanation, ms(lk.AttachedAt),
				boolInt(firing)})
		}
		for _, it := range rec.ActionItems {
			updated := it.UpdatedAt
			if updated.IsZero() {
				updated = it.CreatedAt
			}
			itemRows = append(itemRows, []any{it.ID, inc.ID, it.Title, it.Owner, string(it.State), nullMS(it.DueAt), ms(it.CreatedAt), ms(updated)})
		}
		for name, raw := range rec.Parts {
			if parts[name] == nil {
				parts[name] = map[string]json.RawMessage{}
			}
			parts[name][inc.ID] = raw
		}
		if year, n, ok := idSequence(inc.ID); ok {
			seq[year] = max(seq[year], n)
		}
	}
	if imported == 0 {
		return 0, skipped, nil
	}
	if err := store.InsertRows(ctx, tx, s.db.Dialect, "incidents", []string{"id", "title", "service", "severity", "status", "labels", "group_key",
		"receiver", "runbook_urls", "assignee", "impact", "flapping", "reopen_count", "mitigated_by", "detected_at", "created_at",
		"acknowledged_at", "investigating_at", "resolved_at", "recovered_at", "postmortem_at", "updated_at", "snoozed_until",
		"root_service", "recovering_since", "merged_into", "peak_severity"}, incRows, ""); err != nil {
		return 0, 0, err
	}
	if err := store.InsertRows(ctx, tx, s.db.Dialect, "incident_alerts", []string{"group_key", "fingerprint", "starts_at", "incident_id", "status",
		"ends_at", "labels", "annotations", "generator_url", "first_seen_at", "updated_at"}, alertRows,
		`ON CONFLICT (group_key, fingerprint, starts_at) DO NOTHING`); err != nil {
		return 0, 0, err
	}
	groupRows := make([][]any, 0, len(groupOrder))
	for _, gk := range groupOrder {
		groupRows = append(groupRows, groups[gk])
	}
	if err := store.InsertRows(ctx, tx, s.db.Dialect, "alert_groups", []string{"group_key", "incident_id", "last_delivery_at"}, groupRows,
		`ON CONFLICT (group_key) DO UPDATE SET incident_id = excluded.incident_id,
			last_delivery_at = CASE WHEN alert_groups.last_delivery_at > excluded.last_delivery_at THEN alert_groups.last_delivery_at ELSE excluded.last_delivery_at END
		WHERE alert_groups.incident_id IS NULL
			OR (SELECT created_at FROM incidents WHERE id = alert_groups.incident_id) <= (SELECT created_at FROM incidents WHERE id = excluded.incident_id)`); err != nil {
		return 0, 0, err
	}
	if err := store.InsertRows(ctx, tx, s.db.Dialect, "incident_timeline", []string{"incident_id", "at", "kind", "actor", "message", "data"}, tlRows, ""); err != nil {
		return 0, 0, err
	}
	if err := store.InsertRows(ctx, tx, s.db.Dialect, "incident_links", []string{"incident_id", "group_key", "service", "labels", "reason", "explanation",
		"attached_at", "firing"}, linkRows, `ON CONFLICT (incident_id, group_key) DO NOTHING`); err != nil {
		return 0, 0, err
	}
	if err := s.importActionItems(ctx, tx, itemRows); err != nil {
		return 0, 0, err
	}
	for _, p := range s.exportParts {
		if len(parts[p.name]) == 0 {
			continue
		}
		if err := p.part.ImportIncidents(ctx, tx, parts[p.name]); err != nil {
			return 0, 0, fmt.Errorf("import %s: %w", p.name, err)
		}
	}
	for year, n := range seq {
		q := `INSERT INTO incident_seq (year, last) VALUES ($1, $2)
			ON CONFLICT (year) DO UPDATE SET last = CASE WHEN incident_seq.last > excluded.last THEN incident_seq.last ELSE excluded.last END`
		if _, err := tx.ExecContext(ctx, q, year, n); err != nil {
			return 0, 0, fmt.Errorf("move the ID sequence: %w", err)
		}
	}
	for _, h := range s.importHooks {
		if err := h(ctx, tx, time.UnixMilli(oldestUpdated)); err != nil {
			return 0, 0, err
		}
	}
	return imported, skipped, nil
}

// ImportHook is called last in the transaction of an import that stored
// incidents, with the oldest updated_at among them: the statistics rollup,
// which reads incidents by updated_at, reads them again from there.
type ImportHook func(ctx context.Context, tx *sql.Tx, oldestUpdated time.Time) error

// AddImportHook registers h (at wiring time, before requests).
func (s *Service) AddImportHook(h ImportHook) {
	s.importHooks = append(s.importHooks, h)
}

// idSequence parses PREFIX-YYYY-NNNN.
func idSequence(id string) (int, int64, bool) {
	parts := strings.Split(id, "-")
	if len(parts) < 3 {
		return 0, 0, false
	}
	year, err1 := strconv.Atoi(parts[len(parts)-2])
	seq, err2 := strconv.ParseInt(parts[len(parts)-1], 10, 64)
	if err1 != nil || err2 != nil {
		return 0, 0, false
	}
	return year, seq, true
}

// importActionItems inserts action items (rows: id first, 0 for none),
// keeping each ID no other item has.
func (s *Service) importActionItems(ctx context.Context, tx *sql.Tx, rows [][]any) error {
	if len(rows) == 0 {
		return nil
	}
	var want []any
	for _, r := range rows {
		if id := r[0].(int64); id > 0 {
			want = append(want, id)
		}
	}
	taken := map[int64]bool{}
	for start := 0; start < len(want); start += 1000 {
		chunk := want[start:min(len(want), start+1000)]
		res, err := tx.QueryContext(ctx, `SELECT id FROM incident_action_items WHERE id IN (`+store.Placeholders(1, len(chunk))+`)`, chunk...)
		if err != nil {
			return fmt.Errorf("look up action item IDs: %w", err)
		}
		for res.Next() {
			var id int64
			if err := res.Scan(&id); err != nil {
				res.Close()
				return err
			}
			taken[id] = true
		}
		res.Close()
		if err := res.Err(); err != nil {
			return err
		}
	}
	var keep, renew [][]any
	for _, r := range rows {
		if id := r[0].(int64); id > 0 && !taken[id] {
			taken[id] = true
			keep = append(keep, r)
		} else {
			renew = append(renew, r[1:])
		}
	}
	cols := []string{"incident_id", "title", "owner", "state", "due_at", "created_at", "updated_at"}
	if err := store.InsertRows(ctx, tx, s.db.Dialect, "incident_action_items", append([]string{"id"}, cols...), keep, ""); err != nil {
		return err
	}
	if len(keep) > 0 && s.db.Dialect == store.Postgres {
		// Explicit IDs do not move the sequence: new items come after them.
		if _, err := tx.ExecContext(ctx, `SELECT setval(pg_get_serial_sequence('incident_action_items', 'id'),
			GREATEST((SELECT MAX(id) FROM incident_action_items), 1))`); err != nil {
			return fmt.Errorf("move the action item ID sequence: %w", err)
		}
	}
	return store.InsertRows(ctx, tx, s.db.Dialect, "incident_action_items", cols, renew, "")
}

// importedPeak is the peak severity of an imported incident: the higher of
// its severity, its exported peak and the severities its timeline's
// severity changes went from or to (an export of an older sred has no
// peak).
func importedPeak(rec *ExportRecord) Severity {
	var tl []TimelineEntry
	for _, e := range rec.Timeline {
		if e.Kind != "severity" {
			continue
		}
		var data map[string]any
		if json.Unmarshal(e.Data, &data) == nil {
			tl = append(tl, TimelineEntry{Kind: e.Kind, Data: data})
		}
	}
	return peakSeverity(&rec.Incident, tl)
}

// peakSeverity is the highest severity inc had: its own, its stored
// peak, or one its timeline's severity changes (raised, lowered) went from
// or to (an export of an older sred has no stored peak).
func peakSeverity(inc *Incident, tl []TimelineEntry) Severity {
	peak := higher(inc.Severity, inc.PeakSeverity)
	for _, e := range tl {
		if e.Kind != "severity" {
			continue
		}
		for _, k := range []string{"from", "to"} {
			if v, ok := e.Data[k].(string); ok && Severity(v).Rank() < peak.Rank() {
				peak = Severity(v)
			}
		}
	}
	return peak
}
