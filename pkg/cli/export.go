package cli

import (
	"bufio"
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"mime"
	"net/http"
	"net/url"
	"os"
	"strconv"
	"strings"
	"time"

	"github.com/prometheus/common/model"

	"github.com/rootuip/sre/pkg/incident"
	"github.com/rootuip/sre/pkg/limits"
)

func incidentsExport(env *Env, o incidentsOptions) error {
	q := url.Values{}
	if o.exportSince != "" {
		since, err := sinceTime(o.exportSince, time.Now())
		if err != nil {
			return err
		}
		q.Set("since", since)
	}
	return o.stream(env.Stdout, q)
}

// sinceTime reads a --since flag: a Prometheus duration back from now
// (90m, 24h, 7d, 1w), an RFC 3339 time or Unix seconds, and returns what
// sred's since parameter takes (an RFC 3339 time or Unix seconds).
func sinceTime(v string, now time.Time) (string, error) {
	if d, err := model.ParseDuration(v); err == nil {
		return now.Add(-time.Duration(d)).UTC().Format(time.RFC3339), nil
	}
	if _, err := time.Parse(time.RFC3339, v); err == nil {
		return v, nil
	}
	if _, err := strconv.ParseFloat(v, 64); err == nil {
		return v, nil
	}
	return "", &ExitError{Code: exitUsage, Err: fmt.Errorf("--since: want a duration (24h, 7d), an RFC 3339 time (2026-05-04T10:00:00Z) or Unix seconds, got %q", limits.Cut(v))}
}

func incidentsImport(env *Env, o incidentsOptions) error {
	var r io.Reader = os.Stdin
	if o.importFile != "-" {
		f, err := os.Open(o.importFile)
		if err != nil {
			return err
		}
		defer f.Close()
		r = f
	}
	var res incident.ImportResult
	if err := o.call(http.MethodPost, "/api/v1/incidents/import", nil, nil, rawBody{r, o.importFile}, &res); err != nil {
		var read *readError
		if errors.As(err, &read) {
			return fmt.Errorf("read %s: %w", o.importFile, read.err)
		}
		return err
	}
	verb := "exist"
	if res.Skipped == 1 {
		verb = "exists"
	}
	fmt.Fprintf(env.Stdout, "imported %s, skipped %d that %s\n", count(res.Imported, "incident", "incidents"), res.Skipped, verb)
	return nil
}

// rawBody is a request body streamed as it is from its reader, never held
// whole in memory (an export of a whole store may be gigabytes); call
// marshals other bodies. name names the source in a read error.
type rawBody struct {
	r    io.Reader
	name string
}

// Read reads the source; its errors are readErrors, which call's
// caller tells apart from sred's.
func (b rawBody) Read(p []byte) (int, error) {
	n, err := b.r.Read(p)
	if err != nil && err != io.EOF {
		err = &readError{err}
	}
	return n, err
}

// readError is an error reading a request body's source.
type readError struct{ err error }

func (e *readError) Error() string { return e.err.Error() }
func (e *readError) Unwrap() error { return e.err }

// stream copies GET /api/v1/incidents/export to w.
func (a *sredAPI) stream(w io.Writer, q url.Values) error {
	u, err := url.Parse(strings.TrimSuffix(a.url, "/") + "/api/v1/incidents/export")
	if err != nil || (u.Scheme != "http" && u.Scheme != "https") {
		return a.urlError()
	}
	u.RawQuery = q.Encode()
	req, err := http.NewRequestWithContext(context.Background(), http.MethodGet, u.String(), nil)
	if err != nil {
		return a.urlError()
	}
	if tok := strings.TrimSpace(os.Getenv(TokenEnv)); tok != "" && a.httpConfigFile == "" {
		req.Header.Set("Authorization", "Bearer "+tok)
	}
	client, err := a.httpClient()
	if err != nil {
		return err
	}
	resp, err := client.Do(req)
	if err != nil {
		return a.reachError(err)
	}
	defer resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		b, _ := io.ReadAll(io.LimitReader(resp.Body, 1<<20))
		var env struct {
			ErrorType string `json:"errorType"`
			Error     string `json:"error"`
		}
		if json.Unmarshal(b, &env) == nil && env.Error != "" {
			return a.answerError(resp.StatusCode, env.ErrorType, env.Error)
		}
		return a.answerError(resp.StatusCode, "", strings.TrimSpace(string(b)))
	}
	if mt, _, _ := mime.ParseMediaType(resp.Header.Get("Content-Type")); mt != "application/x-ndjson" {
		// Not sred's export (a proxy's page): sred failing, exit 3, not
		// a body written out as incidents.
		b, _ := io.ReadAll(io.LimitReader(resp.Body, 1<<10))
		return &ExitError{Code: exitUnavailable, Err: fmt.Errorf("sred answered %d with Content-Type %q, not an export (application/x-ndjson): %s",
			resp.StatusCode, resp.Header.Get("Content-Type"), bytes.TrimSpace(b))}
	}
	// An export that failed half-way ends with an error object.
	br := bufio.NewReaderSize(resp.Body, 64<<10)
	for {
		line, err := br.ReadBytes('\n')
		if bytes.HasPrefix(line, []byte(`{"error":`)) {
			return &ExitError{Code: 3, Err: fmt.Errorf("sred failed half-way through the export: %s", bytes.TrimSpace(line))}
		}
		if len(line) > 0 {
			if _, werr := w.Write(line); werr != nil {
				return werr
			}
		}
		if err == io.EOF {
			return nil
		}
		if err != nil {
			return &ExitError{Code: 3, Err: fmt.Errorf("read the export: %w", err)}
		}
	}
}
