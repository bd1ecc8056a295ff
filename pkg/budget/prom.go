package budget

import (
	"context"
	"errors"
	"fmt"
	"net/http"
	"net/url"
	"regexp"
	"time"

	"github.com/prometheus/client_golang/api"
	v1 "github.com/prometheus/client_golang/api/prometheus/v1"
	commoncfg "github.com/prometheus/common/config"
	"github.com/prometheus/common/model"
	"github.com/prometheus/prometheus/model/labels"
)

// UnavailableError says Prometheus could not answer: it is unreachable,
// timed out or returned an error. The API answers it with 503.
type UnavailableError struct {
	URL   string
	Query string
	Err   error
}

func (e *UnavailableError) Error() string {
	return fmt.Sprintf("Prometheus at %s unavailable: query %s: %v", redactURL(e.URL), e.Query, e.Err)
}

// redactURL is s with the password of its user information, if any,
// replaced by "xxxxx" (prometheus.url may carry basic-auth credentials,
// and the error reaches viewers: the API's 503 answers, the console).
func redactURL(s string) string {
	u, err := url.Parse(s)
	if err != nil || u.User == nil {
		return s
	}
	return u.Redacted()
}

func (e *UnavailableError) Unwrap() error { return e.Err }

// IsUnavailable reports whether err is (or wraps) an UnavailableError.
func IsUnavailable(err error) bool {
	var u *UnavailableError
	return errors.As(err, &u)
}

// ErrNoPrometheus is returned when no Prometheus URL is configured.
var ErrNoPrometheus = errors.New("no Prometheus configured (set prometheus.url in sred.yml)")

// Prom queries one Prometheus server through the client_golang API client.
type Prom struct {
	URL     string
	API     v1.API
	Timeout time.Duration
}

// NewProm builds a client for url with the given HTTP client configuration
// (auth, TLS, proxy), as in prometheus/common.
func NewProm(url string, hc commoncfg.HTTPClientConfig, timeout time.Duration) (*Prom, error) {
	if url == "" {
		return nil, ErrNoPrometheus
	}
	rt, err := commoncfg.NewRoundTripperFromConfig(hc, "sred")
	if err != nil {
		return nil, fmt.Errorf("prometheus client: %w", err)
	}
	c, err := api.NewClient(api.Config{Address: url, RoundTripper: authCheck{rt}})
	if err != nil {
		return nil, fmt.Errorf("prometheus client: %w", err)
	}
	return &Prom{URL: url, API: v1.NewAPI(c), Timeout: timeout}, nil
}

// authCheck turns a 401 or 403 answer into an error that says what to fix:
// the API client alone reports "client error: 401".
type authCheck struct{ next http.RoundTripper }

func (a authCheck) RoundTrip(req *http.Request) (*http.Response, error) {
	resp, err := a.next.RoundTrip(req)
	if err != nil {
		return nil, err
	}
	if resp.StatusCode == http.StatusUnauthorized || resp.StatusCode == http.StatusForbidden {
		_ = resp.Body.Close()
		return nil, fmt.Errorf("HTTP %s: Prometheus refused the credentials (check basic_auth, authorization or oauth2 in the prometheus section of sred.yml)", resp.Status)
	}
	return resp, nil
}

func (p *Prom) ctx(ctx context.Context) (context.Context, context.CancelFunc) {
	if p.Timeout > 0 {
		return context.WithTimeout(ctx, p.Timeout)
	}
	return context.WithCancel(ctx)
}

// Instant runs an instant query at time at and expects a vector.
func (p *Prom) Instant(ctx context.Context, q string, at time.Time) (model.Vector, error) {
	if p == nil || p.API == nil {
		return nil, ErrNoPrometheus
	}
	ctx, cancel := p.ctx(ctx)
	defer cancel()
	v, _, _, err := p.API.Query(ctx, q, at)
	if err != nil {
		return nil, &UnavailableError{URL: p.URL, Query: q, Err: err}
	}
	vec, ok := v.(model.Vector)
	if !ok {
		return nil, &UnavailableError{URL: p.URL, Query: q, Err: fmt.Errorf("expected a vector, got %s", v.Type())}
	}
	return vec, nil
}

// Range runs a range query and expects a matrix.
func (p *Prom) Range(ctx context.Context, q string, r v1.Range) (model.Matrix, error) {
	if p == nil || p.API == nil {
		return nil, ErrNoPrometheus
	}
	ctx, cancel := p.ctx(ctx)
	defer cancel()
	v, _, _, err := p.API.QueryRange(ctx, q, r)
	if err != nil {
		return nil, &UnavailableError{URL: p.URL, Query: q, Err: err}
	}
	m, ok := v.(model.Matrix)
	if !ok {
		return nil, &UnavailableError{URL: p.URL, Query: q, Err: fmt.Errorf("expected a matrix, got %s", v.Type())}
	}
	return m, nil
}

// selector returns `{service="...",slo="..."}` with values quoted for PromQL.
func selector(service, sloName string, extra ...*labels.Matcher) string {
	ms := []*labels.Matcher{
		labels.MustNewMatcher(labels.MatchEqual, "service", service),
		labels.MustNewMatcher(labels.MatchEqual, "slo", sloName),
	}
	ms = append(ms, extra...)
	s := "{"
	for i, m := range ms {
		if i > 0 {
			s += ","
		}
		s += m.String()
	}
	return s + "}"
}

func regexpQuote(s string) string { return regexp.QuoteMeta(s) }
