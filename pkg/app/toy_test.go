package app_test

import (
	"context"
	"database/sql"
	"errors"
	"os"
	"path/filepath"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/prometheus/common/model"
	"github.com/stretchr/testify/require"

	"github.com/rootuip/sre/pkg/app"
	"github.com/rootuip/sre/pkg/clock"
	"github.com/rootuip/sre/pkg/config"
	"github.com/rootuip/sre/pkg/incident"
	"github.com/rootuip/sre/pkg/jobs"
	"github.com/rootuip/sre/pkg/store"
)

// toyConfig is the `toy` section of sred.yml, owned by the toy subsystem:
// it sets its defaults and validates itself, decoded strictly.
type toyConfig struct {
	Greeting string         `yaml:"greeting"`
	Delay    model.Duration `yaml:"delay"`
}

func (c *toyConfig) UnmarshalYAML(unmarshal func(any) error) error {
	*c = toyConfig{Greeting: "hello", Delay: model.Duration(10 * time.Minute)}
	type plain toyConfig
	if err := unmarshal((*plain)(c)); err != nil {
		return err
	}
	if c.Greeting == "" {
		return errors.New("toy: greeting must not be empty")
	}
	return nil
}

// toyMigrations is the toy's own table.
var toyMigrations = []store.Migration{{ID: "toy-0001", SQLite: `CREATE TABLE toy_greetings (incident_id TEXT PRIMARY KEY, message TEXT NOT NULL)`}}

// toyQueue is the toy's queue and toyGreet its one job kind.
const (
	toyQueue           = "toy"
	toyGreet jobs.Kind = "greet"
)

// newToy defines a subsystem that greets every new incident, delay after
// it opened, through a durable job: what a new subsystem (chaos, rollouts)
// does, through the same public wiring sred's own subsystems use.
func newToy(clock clock.Clock, worker **jobs.Worker) app.Spec[toyConfig] {
	return app.Spec[toyConfig]{
		Name:       "toy",
		Sections:   []string{"toy"},
		Migrations: toyMigrations,
		Load: func(cfg *config.Config) (toyConfig, error) {
			var c toyConfig
			err := cfg.Decode("toy", &c)
			return c, err
		},
		Build: func(_ context.Context, a *app.App, c toyConfig) (func(context.Context, toyConfig), error) {
			var cur atomic.Pointer[toyConfig]
			cur.Store(&c)
			a.AddHook(incident.HookFunc(func(ctx context.Context, tx *sql.Tx, ch incident.Change) error {
				if ch.Kind != incident.ChangeCreated {
					return nil
				}
				_, err := jobs.Enqueue(ctx, tx, ch.Time, jobs.New{Queue: toyQueue, Kind: toyGreet, Key: ch.Incident.ID, Group: ch.Incident.ID,
					RunAt: ch.Time.Add(time.Duration(cur.Load().Delay)), Payload: map[string]string{"incident": ch.Incident.ID}})
				return err
			}))
			w := jobs.NewWorker(a.DB, toyQueue, func(ctx context.Context, tx *sql.Tx, j jobs.Job) error {
				var p struct{ Incident string }
				if err := j.Decode(&p); err != nil {
					return err
				}
				_, err := tx.ExecContext(ctx, `INSERT INTO toy_greetings (incident_id, message) VALUES ($1, $2)`,
					p.Incident, cur.Load().Greeting+" "+p.Incident)
				return err
			}, jobs.Options{Clock: clock, Logger: a.Logger, Registerer: a.Registry, Kinds: []jobs.Kind{toyGreet}})
			*worker = w
			a.AddActor(app.Actor{Name: "toy-worker", Execute: w.Run})
			return func(_ context.Context, c toyConfig) { cur.Store(&c) }, nil
		},
	}
}

// TestToySubsystem adds a subsystem from outside package app, with its own
// config section, migration and job kind, without touching package config:
// the section is strict and checked by app.LoadConfig (srectl check config),
// the job runs when due on the manual clock, and a reload changes it.
func TestToySubsystem(t *testing.T) {
	dir := t.TempDir()
	file := filepath.Join(dir, "sred.yml")
	write := func(s string) { require.NoError(t, os.WriteFile(file, []byte(s), 0o644)) }
	start := time.Date(2026, 3, 2, 10, 0, 0, 0, time.UTC)
	clock := clock.NewManual(start)
	var worker *jobs.Worker
	toy := newToy(clock, &worker)

	write("toy:\n  greting: hi\n")
	_, err := app.LoadConfig(file, toy)
	require.EqualError(t, err, "load config "+file+":2:3: unknown field \"greting\" in toy (did you mean \"greeting\"?)")
	write("toy:\n  greeting: hi\n")
	_, err = app.LoadConfig(file)
	require.EqualError(t, err, "load config "+file+":1:1: unknown field \"toy\"",
		"without the toy subsystem its section is unknown")
	cfg, err := app.LoadConfig(file, toy)
	require.NoError(t, err)
	require.Equal(t, toyConfig{Greeting: "hi", Delay: model.Duration(10 * time.Minute)}, toy.Of(cfg))

	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	a, err := app.New(ctx, app.Options{ConfigFile: file, StoragePath: filepath.Join(dir, "data"), Subsystems: []app.Subsystem{toy}})
	require.NoError(t, err)
	defer a.Close()
	require.NotNil(t, worker)
	a.Incidents.Clock = clock
	go func() {
		for _, act := range a.Actors() {
			if act.Name == "reload" {
				_ = act.Execute(ctx)
			}
		}
	}()

	open := func(fp string) string {
		res, err := a.Incidents.Ingest(ctx, incident.Notification{Receiver: "sred", Status: "firing", GroupKey: "{}:" + fp,
			CommonLabels: map[string]string{"alertname": "Down", "service": fp},
			Alerts: []incident.NotifiedAlert{{Status: "firing", Fingerprint: fp, StartsAt: start,
				Labels: map[string]string{"alertname": "Down", "service": fp}}}})
		require.NoError(t, err)
		require.Len(t, res.Created, 1)
		return res.Created[0]
	}
	greetings := func() []string {
		rows, err := a.DB.QueryContext(ctx, `SELECT message FROM toy_greetings ORDER BY message`)
		require.NoError(t, err)
		defer rows.Close()
		var out []string
		for rows.Next() {
			var m string
			require.NoError(t, rows.Scan(&m))
			out = append(out, m)
		}
		require.NoError(t, rows.Err())
		return out
	}

	id1 := open("api")
	n, err := worker.RunDue(ctx)
	require.NoError(t, err)
	require.Zero(t, n, "not due before the delay")
	require.Empty(t, greetings())
	clock.Advance(10 * time.Minute)
	n, err = worker.RunDue(ctx)
	require.NoError(t, err)
	require.Equal(t, 1, n)
	require.Equal(t, []string{"hi " + id1}, greetings())

	// A bad toy section fails the reload and changes nothing.
	write("toy:\n  greeting: ''\n")
	require.EqualError(t, a.RequestReload(ctx), "load config "+file+":2:3: toy: greeting must not be empty")
	write("toy:\n  greeting: bonjour\n  delay: 1m\n")
	require.NoError(t, a.RequestReload(ctx))
	require.Equal(t, "bonjour", toy.Of(a.Config()).Greeting)
	id2 := open("web")
	clock.Advance(time.Minute)
	n, err = worker.RunDue(ctx)
	require.NoError(t, err)
	require.Equal(t, 1, n)
	require.Equal(t, []string{"bonjour " + id2, "hi " + id1}, greetings())
	require.True(t, strings.HasPrefix(id2, "INC-"), id2)
}
