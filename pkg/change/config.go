package change

import (
	"fmt"
	"time"

	"github.com/prometheus/common/model"
)

// Config is the `changes` section of sred.yml.
//
//	changes:
//	  incident_link_window: 1h       # an incident this soon after a change is linked to it
//	  yellow_max_changes_per_day: 3  # the gate's quota while the budget is yellow (0: none)
//	  dora_window: 7d                # window of the ratio and frequency gauges
type Config struct {
	// IncidentLinkWindow: an incident on a service that starts within this
	// window after a change of the service finished (or while it is in
	// progress) is linked to it as its likely cause, and the change counts
	// as failed.
	IncidentLinkWindow model.Duration `yaml:"incident_link_window"`
	// YellowMaxChangesPerDay is how many changes of a service the deploy
	// gate allows in 24 hours while the service's budget is yellow ("reduce
	// deployment frequency"); critical changes are not counted against it.
	// 0 means no quota.
	YellowMaxChangesPerDay int `yaml:"yellow_max_changes_per_day"`
	// DORAWindow is the window of sre_change_failure_ratio and
	// sre_deployment_frequency_per_day.
	DORAWindow model.Duration `yaml:"dora_window"`
}

// DefaultConfig holds the defaults of the `changes` section.
var DefaultConfig = Config{
	IncidentLinkWindow:     model.Duration(time.Hour),
	YellowMaxChangesPerDay: 0,
	DORAWindow:             model.Duration(7 * 24 * time.Hour),
}

// UnmarshalYAML implements yaml.Unmarshaler.
func (c *Config) UnmarshalYAML(unmarshal func(any) error) error {
	*c = DefaultConfig
	type plain Config
	if err := unmarshal((*plain)(c)); err != nil {
		return err
	}
	return c.Validate()
}

// Validate checks the section.
func (c Config) Validate() error {
	if c.IncidentLinkWindow < model.Duration(time.Minute) || c.IncidentLinkWindow > model.Duration(7*24*time.Hour) {
		return fmt.Errorf("changes: incident_link_window must be between 1m and 7d, got %s", c.IncidentLinkWindow)
	}
	if c.YellowMaxChangesPerDay < 0 {
		return fmt.Errorf("changes: yellow_max_changes_per_day must not be negative (0 means no quota), got %d", c.YellowMaxChangesPerDay)
	}
	if c.DORAWindow < model.Duration(24*time.Hour) || c.DORAWindow > model.Duration(90*24*time.Hour) {
		return fmt.Errorf("changes: dora_window must be between 1d and 90d, got %s", c.DORAWindow)
	}
	return nil
}
