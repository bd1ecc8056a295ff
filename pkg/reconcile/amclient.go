package reconcile

import (
	"context"
	"errors"
	"fmt"
	"net/url"
	"path"
	"sync/atomic"
	"time"

	httptransport "github.com/go-openapi/runtime/client"
	"github.com/go-openapi/strfmt"
	amclient "github.com/prometheus/alertmanager/api/v2/client"
	"github.com/prometheus/alertmanager/api/v2/client/alert"
	"github.com/prometheus/alertmanager/api/v2/client/general"
	"github.com/prometheus/alertmanager/api/v2/client/silence"
	"github.com/prometheus/alertmanager/api/v2/models"
	commoncfg "github.com/prometheus/common/config"
)

// Alert is an alert as Alertmanager's API v2 reports it.
type Alert struct {
	Fingerprint string
	Labels      map[string]string
	StartsAt    time.Time
	EndsAt      time.Time
	// State is active, suppressed or unprocessed.
	State string
}

// Silence is a silence to create: equality matchers on labels.
type Silence struct {
	Matchers  map[string]string
	StartsAt  time.Time
	EndsAt    time.Time
	CreatedBy string
	Comment   string
}

// Alertmanager is what sred needs from Alertmanager's API v2.
type Alertmanager interface {
	// Alerts returns every alert Alertmanager holds that has not resolved
	// (active, silenced, inhibited and unprocessed alike).
	Alerts(ctx context.Context) ([]Alert, error)
	// CreateSilence creates a silence and returns its ID.
	CreateSilence(ctx context.Context, s Silence) (string, error)
	// ExpireSilence expires a silence; expiring one that is already expired
	// or unknown is not an error.
	ExpireSilence(ctx context.Context, id string) error
}

// starter is an Alertmanager that tells when it started (Client).
type starter interface {
	Started(ctx context.Context) (time.Time, error)
}

// Client talks to one Alertmanager through the generated API v2 client,
// with an HTTP client built from prometheus/common configuration (TLS,
// basic auth, bearer tokens, proxies), as amtool does.
type Client struct {
	api     *amclient.AlertmanagerAPI
	timeout time.Duration
}

// NewClient returns a client for the Alertmanager at rawURL (its external
// URL, with any route prefix).
func NewClient(rawURL string, cfg commoncfg.HTTPClientConfig, timeout time.Duration) (*Client, error) {
	u, err := url.Parse(rawURL)
	if err != nil {
		return nil, fmt.Errorf("alertmanager url: %w", err)
	}
	if u.Scheme != "http" && u.Scheme != "https" || u.Host == "" {
		return nil, fmt.Errorf("alertmanager url %q: want http(s)://host[:port][/prefix]", rawURL)
	}
	hc, err := commoncfg.NewClientFromConfig(cfg, "alertmanager")
	if err != nil {
		return nil, fmt.Errorf("alertmanager http client: %w", err)
	}
	if timeout <= 0 {
		timeout = 10 * time.Second
	}
	tr := httptransport.NewWithClient(u.Host, path.Join(u.Path, "/api/v2"), []string{u.Scheme}, hc)
	return &Client{api: amclient.New(tr, strfmt.Default), timeout: timeout}, nil
}

// Alerts implements Alertmanager.
func (c *Client) Alerts(ctx context.Context) ([]Alert, error) {
	ctx, cancel := context.WithTimeout(ctx, c.timeout)
	defer cancel()
	yes := true
	p := alert.NewGetAlertsParamsWithContext(ctx).
		WithActive(&yes).WithSilenced(&yes).WithInhibited(&yes).WithUnprocessed(&yes)
	res, err := c.api.Alert.GetAlerts(p)
	if err != nil {
		return nil, fmt.Errorf("get alerts from alertmanager: %w", err)
	}
	out := make([]Alert, 0, len(res.Payload))
	for _, a := range res.Payload {
		if a == nil || a.Fingerprint == nil {
			continue
		}
		al := Alert{Fingerprint: *a.Fingerprint, Labels: map[string]string(a.Labels)}
		if a.StartsAt != nil {
			al.StartsAt = time.Time(*a.StartsAt).UTC()
		}
		if a.EndsAt != nil {
			al.EndsAt = time.Time(*a.EndsAt).UTC()
		}
		if a.Status != nil && a.Status.State != nil {
			al.State = *a.Status.State
		}
		out = append(out, al)
	}
	return out, nil
}

// Started returns when Alertmanager started (the uptime of its
// /api/v2/status): it holds alerts in memory only, so until Prometheus has
// sent them again after a restart it does not have them all.
func (c *Client) Started(ctx context.Context) (time.Time, error) {
	ctx, cancel := context.WithTimeout(ctx, c.timeout)
	defer cancel()
	res, err := c.api.General.GetStatus(general.NewGetStatusParamsWithContext(ctx))
	if err != nil {
		return time.Time{}, fmt.Errorf("get status from alertmanager: %w", err)
	}
	if res.Payload == nil || res.Payload.Uptime == nil {
		return time.Time{}, errors.New("get status from alertmanager: no uptime in the answer")
	}
	return time.Time(*res.Payload.Uptime).UTC(), nil
}

// CreateSilence implements Alertmanager.
func (c *Client) CreateSilence(ctx context.Context, s Silence) (string, error) {
	if len(s.Matchers) == 0 {
		return "", errors.New("create silence: no matchers")
	}
	ctx, cancel := context.WithTimeout(ctx, c.timeout)
	defer cancel()
	ms := make(models.Matchers, 0, len(s.Matchers))
	for _, name := range sortedKeys(s.Matchers) {
		n, v := name, s.Matchers[name]
		no, yes := false, true
		ms = append(ms, &models.Matcher{Name: &n, Value: &v, IsRegex: &no, IsEqual: &yes})
	}
	starts, ends := strfmt.DateTime(s.StartsAt), strfmt.DateTime(s.EndsAt)
	createdBy, comment := s.CreatedBy, s.Comment
	body := &models.PostableSilence{Silence: models.Silence{
		Matchers: ms, StartsAt: &starts, EndsAt: &ends, CreatedBy: &createdBy, Comment: &comment,
	}}
	res, err := c.api.Silence.PostSilences(silence.NewPostSilencesParamsWithContext(ctx).WithSilence(body))
	if err != nil {
		return "", fmt.Errorf("create silence in alertmanager: %w", err)
	}
	if res.Payload == nil || res.Payload.SilenceID == "" {
		return "", errors.New("create silence in alertmanager: no silence ID in the answer")
	}
	return res.Payload.SilenceID, nil
}

// ExpireSilence implements Alertmanager.
func (c *Client) ExpireSilence(ctx context.Context, id string) error {
	ctx, cancel := context.WithTimeout(ctx, c.timeout)
	defer cancel()
	sid := strfmt.UUID(id)
	_, err := c.api.Silence.DeleteSilence(silence.NewDeleteSilenceParamsWithContext(ctx).WithSilenceID(sid))
	if err == nil {
		return nil
	}
	// Expiring is idempotent in Alertmanager; 404 means the silence was
	// already garbage-collected: either way the work is done.
	var nf *silence.DeleteSilenceNotFound
	if errors.As(err, &nf) {
		return nil
	}
	return fmt.Errorf("expire silence %s in alertmanager: %w", id, err)
}

var _ Alertmanager = (*Client)(nil)

// Swappable is an Alertmanager whose target can be replaced while in use
// (on config reload). Until Set is called, every call fails.
type Swappable struct {
	p atomic.Pointer[Alertmanager]
}

// Set replaces the target; nil disables it.
func (s *Swappable) Set(am Alertmanager) {
	if am == nil {
		s.p.Store(nil)
		return
	}
	s.p.Store(&am)
}

func (s *Swappable) get() (Alertmanager, error) {
	p := s.p.Load()
	if p == nil {
		return nil, errors.New("alertmanager.url is not configured")
	}
	return *p, nil
}

// Alerts implements Alertmanager.
func (s *Swappable) Alerts(ctx context.Context) ([]Alert, error) {
	am, err := s.get()
	if err != nil {
		return nil, err
	}
	return am.Alerts(ctx)
}

// Started implements starter when the target does (a Client).
func (s *Swappable) Started(ctx context.Context) (time.Time, error) {
	am, err := s.get()
	if err != nil {
		return time.Time{}, err
	}
	st, ok := am.(starter)
	if !ok {
		return time.Time{}, errors.New("alertmanager start time unknown")
	}
	return st.Started(ctx)
}

// CreateSilence implements Alertmanager.
func (s *Swappable) CreateSilence(ctx context.Context, sil Silence) (string, error) {
	am, err := s.get()
	if err != nil {
		return "", err
	}
	return am.CreateSilence(ctx, sil)
}

// ExpireSilence implements Alertmanager.
func (s *Swappable) ExpireSilence(ctx context.Context, id string) error {
	am, err := s.get()
	if err != nil {
		return err
	}
	return am.ExpireSilence(ctx, id)
}
