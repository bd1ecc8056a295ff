package rollout

import (
	"errors"
	"fmt"
	"time"

	"github.com/prometheus/common/model"
)

// Interrupted policies: what a rollout does when the sred running one of
// its transitions died in the middle of it.
const (
	InterruptedResume   = "resume"
	InterruptedRollback = "rollback"
)

// Config is the `rollouts` section of sred.yml.
//
//	rollouts:
//	  files: [rollouts/stages]
//	  poll_interval: 1s
//	  lock_ttl: 10m
//	  interrupted: resume
type Config struct {
	// Files are rollout definition files, directories or glob patterns,
	// relative to sred.yml.
	Files []string `yaml:"files,omitempty"`
	// PollInterval is how often the runner looks for due stages.
	PollInterval model.Duration `yaml:"poll_interval,omitempty"`
	// Lease is how long a transition stays owned by the sred that claimed
	// it; past it (that sred died) another replica or the next start takes
	// it over, per Interrupted.
	Lease model.Duration `yaml:"lease,omitempty"`
	// LockTTL is the lease of the target lock a rollout holds from its
	// gate to its end; it is renewed at every poll.
	LockTTL model.Duration `yaml:"lock_ttl,omitempty"`
	// Interrupted is resume (default: the interrupted transition is done
	// again; actions must be idempotent, as setting a weight is) or
	// rollback (the rollout is rolled back).
	Interrupted string `yaml:"interrupted,omitempty"`
	// ActionAttempts is how many times a failing action is tried before
	// the rollout rolls back (or, for the rollback itself, fails and waits
	// for a human).
	ActionAttempts int `yaml:"action_attempts,omitempty"`
	// RetryInterval is the wait between attempts of a failing action, and
	// between analyses of a stage waiting for data.
	RetryInterval model.Duration `yaml:"retry_interval,omitempty"`
	// NoDataWait is how long after a stage's hold a fail that comes only
	// from no-data policies (Verdict.NoData) keeps the stage held, its
	// analysis run again every RetryInterval; past it, the rollout rolls
	// back for lack of data. 0 rolls back at once.
	NoDataWait model.Duration `yaml:"no_data_wait,omitempty"`
}

// DefaultConfig is the section's defaults.
var DefaultConfig = Config{
	PollInterval:   model.Duration(time.Second),
	Lease:          model.Duration(2 * time.Minute),
	LockTTL:        model.Duration(10 * time.Minute),
	Interrupted:    InterruptedResume,
	ActionAttempts: 3,
	RetryInterval:  model.Duration(10 * time.Second),
	NoDataWait:     model.Duration(5 * time.Minute),
}

// UnmarshalYAML sets defaults and validates.
func (c *Config) UnmarshalYAML(unmarshal func(any) error) error {
	*c = DefaultConfig
	type plain Config
	if err := unmarshal((*plain)(c)); err != nil {
		return err
	}
	return c.Validate()
}

// Validate checks a Config built in code.
func (c *Config) Validate() error {
	if c.PollInterval <= 0 {
		return errors.New("rollouts: poll_interval must be positive")
	}
	if c.Lease < 3*c.PollInterval {
		return fmt.Errorf("rollouts: lease (%s) must be at least 3 poll intervals (%s)", c.Lease, 3*c.PollInterval)
	}
	if c.LockTTL < 3*c.PollInterval {
		return fmt.Errorf("rollouts: lock_ttl (%s) must be at least 3 poll intervals (%s)", c.LockTTL, 3*c.PollInterval)
	}
	switch c.Interrupted {
	case InterruptedResume, InterruptedRollback:
	default:
		return fmt.Errorf("rollouts: interrupted %q: want resume or rollback", c.Interrupted)
	}
	if c.ActionAttempts < 1 {
		return errors.New("rollouts: action_attempts must be at least 1")
	}
	if c.RetryInterval <= 0 {
		return errors.New("rollouts: retry_interval must be positive")
	}
	if c.NoDataWait < 0 {
		return errors.New("rollouts: no_data_wait must not be negative")
	}
	for _, f := range c.Files {
		if f == "" {
			return errors.New("rollouts: empty entry in files")
		}
	}
	return nil
}
