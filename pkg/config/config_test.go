package config

import (
	"errors"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/prometheus/common/model"
	"github.com/stretchr/testify/require"

	"github.com/rootuip/sre/pkg/incident"
)

func TestGoodConfig(t *testing.T) {
	cfg, err := LoadFile("testdata/conf.good.yml", "slos", "escalation", "oncall", "notifications", "runbooks", "sla")
	require.NoError(t, err)
	require.Equal(t, "INC", cfg.Global.IncidentIDPrefix)
	require.Equal(t, "http://localhost:8095", cfg.Global.ExternalURL)
	require.Equal(t, int64(4<<20), cfg.Webhook.MaxBodyBytes)
	require.Equal(t, []string{"service", "job"}, cfg.Incidents.ServiceLabels)
	require.Equal(t, incident.SeverityCritical, cfg.Incidents.SeverityMap["page"])
	require.Equal(t, model.Duration(time.Hour), cfg.Incidents.FlapWindow)
	require.True(t, cfg.Incidents.AutoResolve)
	require.Equal(t, model.Duration(6*time.Hour), cfg.Incidents.AutoResolveAfter)
	require.Equal(t, WatchdogConfig{Alertname: "Watchdog", Timeout: model.Duration(10 * time.Minute)}, cfg.Alertmanager.Watchdog)
	require.True(t, cfg.Alertmanager.SilenceOnSnooze)
	require.False(t, cfg.Alertmanager.ExpireSilencesOnResolve)
	abs, _ := filepath.Abs("testdata")
	require.Equal(t, abs, cfg.BaseDir)
}

func TestEmptyConfigHasDefaults(t *testing.T) {
	for _, src := range []string{"", "{}\n", "global:\n", "incidents: {}\n"} {
		cfg, err := Load([]byte(src))
		require.NoError(t, err, "%q", src)
		require.Equal(t, DefaultGlobalConfig, cfg.Global)
		require.Equal(t, DefaultWebhookConfig, cfg.Webhook)
		require.Equal(t, DefaultIncidentsConfig, cfg.Incidents)
		require.Equal(t, DefaultWatchdogConfig, cfg.Alertmanager.Watchdog)
		require.Empty(t, cfg.Alertmanager.Watchdog.Alertname, "the Watchdog is off unless configured")
		require.True(t, cfg.Alertmanager.ExpireSilencesOnResolve)
		require.False(t, cfg.Alertmanager.SilenceOnSnooze)
		require.Zero(t, cfg.Incidents.AutoResolveAfter, "auto_resolve_after is off by default")
		require.Equal(t, model.Duration(time.Minute), cfg.Alertmanager.ReconcileInterval)
	}
}

func TestOverridesKeepOtherDefaults(t *testing.T) {
	cfg, err := Load([]byte("incidents:\n  auto_resolve: false\n  severity_map:\n    Sev1: critical\n"))
	require.NoError(t, err)
	require.False(t, cfg.Incidents.AutoResolve)
	require.Equal(t, map[string]incident.Severity{"sev1": incident.SeverityCritical}, cfg.Incidents.SeverityMap,
		"a severity_map replaces the default one; keys are lower-cased, values normalised")
	require.Equal(t, DefaultIncidentsConfig.ServiceLabels, cfg.Incidents.ServiceLabels)
	require.Equal(t, "severity", cfg.Incidents.SeverityLabel)
}

func TestRelativePathsAndSecrets(t *testing.T) {
	dir := t.TempDir()
	require.NoError(t, os.WriteFile(filepath.Join(dir, "token"), []byte("s3cret\n"), 0o600))
	path := filepath.Join(dir, "sred.yml")
	require.NoError(t, os.WriteFile(path, []byte(`
webhook:
  bearer_token_file: token
alertmanager:
  url: http://am:9093
  basic_auth:
    username: sred
    password: hunter2
`), 0o600))
	cfg, err := LoadFile(path)
	require.NoError(t, err)
	require.Equal(t, filepath.Join(dir, "token"), cfg.Webhook.BearerTokenFile)
	tok, err := cfg.Webhook.Token().Get()
	require.NoError(t, err)
	require.Equal(t, "s3cret", tok)
	out := cfg.String()
	require.NotContains(t, out, "hunter2")
	require.Contains(t, out, "password: <secret>")

	cfg, err = Load([]byte("webhook:\n  bearer_token: topsecret\n"))
	require.NoError(t, err)
	require.NotContains(t, cfg.String(), "topsecret")
	tok, err = cfg.Webhook.Token().Get()
	require.NoError(t, err)
	require.Equal(t, "topsecret", tok)
}

// A subsystem's section decodes strictly, with the file's line numbers,
// and gets its defaults when absent; a section no subsystem owns is an error.
func TestDecodeSection(t *testing.T) {
	src := []byte("global:\n  incident_id_prefix: OPS\ntoy:\n  name: x\n  colour: red\n")
	_, err := Load(src)
	require.EqualError(t, err, "yaml: unmarshal errors:\n  line 3: field toy not found in type config.Config")
	cfg, err := Load(src, "toy", "absent")
	require.NoError(t, err)
	require.Equal(t, "OPS", cfg.Global.IncidentIDPrefix)
	var tc toyConfig
	require.EqualError(t, cfg.Decode("toy", &tc), "yaml: unmarshal errors:\n  line 5: field colour not found in type config.toyPlain")
	cfg, err = Load([]byte("toy:\n  name: x\n"), "toy", "absent")
	require.NoError(t, err)
	require.NoError(t, cfg.Decode("toy", &tc))
	require.Equal(t, toyConfig{Name: "x", Size: 3}, tc)
	require.NoError(t, cfg.Decode("absent", &tc))
	require.Equal(t, toyConfig{Size: 3}, tc, "an absent section gets its defaults")
	cfg, err = Load([]byte("toy:\n  size: 0\n"), "toy")
	require.NoError(t, err)
	require.EqualError(t, cfg.Decode("toy", &tc), "toy: size must be positive")
	require.Error(t, cfg.Decode("toy", tc), "not a pointer")
}

type toyConfig struct {
	Name string `yaml:"name"`
	Size int    `yaml:"size"`
}

func (c *toyConfig) UnmarshalYAML(unmarshal func(any) error) error {
	*c = toyConfig{Size: 3}
	type toyPlain toyConfig
	if err := unmarshal((*toyPlain)(c)); err != nil {
		return err
	}
	if c.Size <= 0 {
		return errors.New("toy: size must be positive")
	}
	return nil
}

// TestBadConfigs checks one fixture per error, with its exact message.
func TestBadConfigs(t *testing.T) {
	for file, want := range BadFixtures {
		t.Run(file, func(t *testing.T) {
			path := filepath.Join("testdata", file)
			_, err := LoadFile(path)
			sep := ": "
			if strings.HasPrefix(want, ":") {
				sep = "" // positioned: file:line:col
			}
			want = strings.ReplaceAll(want, "\n:", "\n"+path+":")
			require.EqualError(t, err, "load config "+path+sep+want)
		})
	}
	files, err := filepath.Glob("testdata/*.bad.yml")
	require.NoError(t, err)
	require.Len(t, files, len(BadFixtures), "every bad fixture has its expected message")
	for _, f := range files {
		require.Contains(t, BadFixtures, strings.TrimPrefix(f, "testdata/"))
	}
}
