package sla

import (
	"errors"
	"fmt"
	"sort"
	"time"

	"github.com/prometheus/common/model"
)

// Config is the `sla` section of sred.yml: the customers and their contracts.
//
//	sla:
//	  customers:
//	    - id: ACME-001
//	      name: Acme Corp
//	      label_value: acme          # value of the customer label in the metrics
//	      period: 30d
//	      services:
//	        - service: api
//	          availability: {slo: availability, target: 99.99}
//	          latency: {slo: latency, target: 95}
//	      credits:
//	        - {below: 99.99, credit: 10}
//	        - {below: 99.9, credit: 25}
type Config struct {
	Customers []Customer `yaml:"customers,omitempty"`
}

// UnmarshalYAML implements yaml.Unmarshaler.
func (c *Config) UnmarshalYAML(unmarshal func(any) error) error {
	*c = Config{}
	type plain Config
	if err := unmarshal((*plain)(c)); err != nil {
		return err
	}
	seen := map[string]bool{}
	for i := range c.Customers {
		if seen[c.Customers[i].ID] {
			return fmt.Errorf("sla: customer %q is defined twice", c.Customers[i].ID)
		}
		seen[c.Customers[i].ID] = true
	}
	return nil
}

// Customer is one customer and its contract.
type Customer struct {
	// ID identifies the customer in the API (e.g. ACME-001).
	ID   string `yaml:"id"`
	Name string `yaml:"name"`
	// Label is the label carrying the customer (or tenant) in the SLO
	// recordings; default "customer". It is used for SLOs grouped by it.
	Label string `yaml:"label"`
	// LabelValue is the customer's value of Label; default the ID.
	LabelValue string `yaml:"label_value"`
	// Period is the default report period (rolling, ending now). Default 30d.
	Period   model.Duration `yaml:"period"`
	Services []Service      `yaml:"services"`
	// Credits are the service-credit tiers, applied to availability.
	Credits []CreditTier `yaml:"credits,omitempty"`
}

// Service is a contracted service.
type Service struct {
	// Service names the service as in the SLO specs.
	Service      string  `yaml:"service"`
	Availability *Target `yaml:"availability,omitempty"`
	Latency      *Target `yaml:"latency,omitempty"`
}

// Target is a contracted objective backed by an SLO of the service.
type Target struct {
	// SLO names the SLO whose recordings measure it; default "availability"
	// or "latency".
	SLO string `yaml:"slo"`
	// Target is in percent (e.g. 99.99): the share of good events (or, for a
	// latency SLO, of requests faster than its threshold).
	Target float64 `yaml:"target"`
}

// kindTarget is a service's target of one kind (availability or latency;
// t nil when the contract has none).
type kindTarget struct {
	kind string
	t    *Target
}

// targets returns the service's targets of both kinds.
func (s *Service) targets() []kindTarget {
	return []kindTarget{{"availability", s.Availability}, {"latency", s.Latency}}
}

// CreditTier grants Credit percent when availability is below Below percent.
type CreditTier struct {
	Below  float64 `yaml:"below" json:"below"`
	Credit float64 `yaml:"credit" json:"credit"`
}

// UnmarshalYAML implements yaml.Unmarshaler.
func (c *Customer) UnmarshalYAML(unmarshal func(any) error) error {
	*c = Customer{Label: "customer", Period: model.Duration(30 * 24 * time.Hour)}
	type plain Customer
	if err := unmarshal((*plain)(c)); err != nil {
		return err
	}
	if c.ID == "" {
		return errors.New("sla: customer without id")
	}
	where := fmt.Sprintf("sla: customer %q", c.ID)
	if len(c.ID) > 128 {
		return fmt.Errorf("%s: id longer than 128 characters", where)
	}
	if c.Name == "" {
		c.Name = c.ID
	}
	if c.LabelValue == "" {
		c.LabelValue = c.ID
	}
	if !model.LabelName(c.Label).IsValidLegacy() {
		return fmt.Errorf("%s: invalid label name %q", where, c.Label)
	}
	if c.Period <= 0 || time.Duration(c.Period) > maxRange {
		return fmt.Errorf("%s: period must be between 1m and 366d, got %s", where, c.Period)
	}
	if len(c.Services) == 0 {
		return fmt.Errorf("%s: no services", where)
	}
	seen := map[string]bool{}
	for i := range c.Services {
		s := &c.Services[i]
		if s.Service == "" {
			return fmt.Errorf("%s: services[%d]: missing service", where, i)
		}
		if seen[s.Service] {
			return fmt.Errorf("%s: service %q is listed twice", where, s.Service)
		}
		seen[s.Service] = true
		if s.Availability == nil && s.Latency == nil {
			return fmt.Errorf("%s: service %q: no availability or latency target", where, s.Service)
		}
		for _, t := range s.targets() {
			if t.t == nil {
				continue
			}
			if t.t.SLO == "" {
				t.t.SLO = t.kind
			}
			if !(t.t.Target > 0 && t.t.Target < 100) {
				return fmt.Errorf("%s: service %q: %s target must be a percentage between 0 and 100 (exclusive), got %g", where, s.Service, t.kind, t.t.Target)
			}
		}
	}
	for i, ct := range c.Credits {
		if !(ct.Below > 0 && ct.Below <= 100) {
			return fmt.Errorf("%s: credits[%d]: below must be a percentage in (0, 100], got %g", where, i, ct.Below)
		}
		if !(ct.Credit > 0 && ct.Credit <= 100) {
			return fmt.Errorf("%s: credits[%d]: credit must be a percentage in (0, 100], got %g", where, i, ct.Credit)
		}
	}
	// Lowest threshold first: the lowest tier that applies is the largest credit.
	sort.SliceStable(c.Credits, func(i, j int) bool { return c.Credits[i].Below < c.Credits[j].Below })
	for i := 1; i < len(c.Credits); i++ {
		if c.Credits[i].Below == c.Credits[i-1].Below {
			return fmt.Errorf("%s: two credit tiers below %g%%", where, c.Credits[i].Below)
		}
		if c.Credits[i].Credit > c.Credits[i-1].Credit {
			return fmt.Errorf("%s: credit tiers must grant more credit for lower availability: %g%% below %g%% but %g%% below %g%%",
				where, c.Credits[i-1].Credit, c.Credits[i-1].Below, c.Credits[i].Credit, c.Credits[i].Below)
		}
	}
	return nil
}

// maxRange bounds report ranges (one year and a day).
const maxRange = 366 * 24 * time.Hour

// Customer returns the customer with this id.
func (c *Config) Customer(id string) (*Customer, bool) {
	for i := range c.Customers {
		if c.Customers[i].ID == id {
			return &c.Customers[i], true
		}
	}
	return nil, false
}
