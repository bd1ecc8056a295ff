package limits

import (
	"fmt"
	"time"

	"github.com/prometheus/common/model"
)

// Rate is a rate limit of requests of one client (address and principal):
// Burst in a row, then one per Every. It is the type of the
// `slos.gate.request_limit` and `analysis.run_limit` sections of sred.yml:
//
//	request_limit: {burst: 1000, every: 50ms}
type Rate struct {
	Burst int            `yaml:"burst"`
	Every model.Duration `yaml:"every"`
}

// Defaults of Rate. One controller asks for all its canaries from one
// address as one principal: Flagger calls the pre-rollout hook of each
// canary at each analysis interval until it passes and two analysis hooks
// per canary and interval, Argo Rollouts asks GET /api/v1/gate as a web
// metric and one analysis measurement per rollout and interval. 1,000 in a
// row, then one per 50ms (1,200 a minute), keeps hundreds of canaries far
// from the limit, while a client looping on the API still gets no more
// than 20 sets of Prometheus queries a second.
const (
	DefaultRateBurst = 1000
	DefaultRateEvery = 50 * time.Millisecond
)

// Bounds of a Rate's fields.
const (
	MaxRateBurst = 100000
	MaxRateEvery = time.Hour
)

// DefaultRate is Rate's defaults.
var DefaultRate = Rate{Burst: DefaultRateBurst, Every: model.Duration(DefaultRateEvery)}

// UnmarshalYAML sets the defaults of the keys not given. The section that
// holds the Rate validates it with Validate, naming its key in the error.
func (r *Rate) UnmarshalYAML(unmarshal func(any) error) error {
	*r = DefaultRate
	type plain Rate
	return unmarshal((*plain)(r))
}

// Validate checks the bounds of r: burst 1 to 100000, every positive and at
// most 1h. The error names the field, not the section (the caller does).
func (r Rate) Validate() error {
	if r.Burst < 1 || r.Burst > MaxRateBurst {
		return fmt.Errorf("burst must be 1 to %d, got %d", MaxRateBurst, r.Burst)
	}
	if r.Every <= 0 || time.Duration(r.Every) > MaxRateEvery {
		return fmt.Errorf("every must be positive and at most %s, got %s", model.Duration(MaxRateEvery), r.Every)
	}
	return nil
}

// OrDefaults is r with its zero (or negative) fields set to the defaults,
// for a Rate not read from YAML.
func (r Rate) OrDefaults() Rate {
	if r.Burst <= 0 {
		r.Burst = DefaultRateBurst
	}
	if r.Every <= 0 {
		r.Every = model.Duration(DefaultRateEvery)
	}
	return r
}
