// Package status is the public status page of sred: per public component
// (configured in the status_page section of sred.yml, each mapped to
// services) its state derived from open incidents and error budgets, the
// active incidents with only their public status updates, scheduled
// maintenance, and daily uptime bars; as HTML (/status), JSON
// (/status.json) and an Atom feed (/status/feed.atom). Nothing internal
// leaks: no incident IDs, titles, labels, responders, notes or runbook
// output, only what responders post as public.
package status

import (
	"errors"
	"fmt"
	"net/url"
	"strings"
	"time"
	"unicode"
	"unicode/utf8"
)

// maxTextLen bounds a component's name and a maintenance title, in
// characters: the public page, its JSON and its feed show them.
const maxTextLen = 200

// checkLine refuses a public name or title that is not one line of at
// most maxTextLen printable characters.
func checkLine(s string) error {
	if !utf8.ValidString(s) {
		return errors.New("not valid UTF-8")
	}
	if n := utf8.RuneCountInString(s); n > maxTextLen {
		return fmt.Errorf("%d characters long: at most %d", n, maxTextLen)
	}
	for i, r := range s {
		if !unicode.IsPrint(r) {
			return fmt.Errorf("character %U at byte %d is not printable (one line of printable characters)", r, i)
		}
	}
	return nil
}

// Config is the status_page section of sred.yml.
type Config struct {
	// Title heads the page. Default "Service status".
	Title string `yaml:"title,omitempty"`
	// URL is the public address of the page (links of the feed, and the
	// status page link of the status-update template).
	URL string `yaml:"url,omitempty"`
	// Components are what customers see, in this order.
	Components []Component `yaml:"components"`
	// Maintenance are scheduled maintenance windows shown on the page.
	Maintenance []Maintenance `yaml:"maintenance,omitempty"`
	// UptimeDays is the length of the uptime bars. Default 90.
	UptimeDays int `yaml:"uptime_days,omitempty"`
	// Notify lists the notification channels status updates are delivered
	// to (through the notification outbox): slack, email, webhook, ...
	Notify []string `yaml:"notify,omitempty"`
	// NotifyTo are the recipients of the email channel.
	NotifyTo []string `yaml:"notify_to,omitempty"`
}

// Component is one public component.
type Component struct {
	Name        string   `yaml:"name"`
	Description string   `yaml:"description,omitempty"`
	Services    []string `yaml:"services"`
}

// Maintenance is a scheduled maintenance window.
type Maintenance struct {
	Title       string    `yaml:"title"`
	Description string    `yaml:"description,omitempty"`
	Components  []string  `yaml:"components"`
	Start       time.Time `yaml:"start"`
	End         time.Time `yaml:"end"`
}

// DefaultUptimeDays is the default length of the uptime bars.
const DefaultUptimeDays = 90

// UnmarshalYAML decodes and checks the section. Its errors name the
// section, as the escalation section's do: "maintenance[0]: title ..."
// alone did not say whose maintenance.
func (c *Config) UnmarshalYAML(unmarshal func(any) error) error {
	type plain Config
	if err := unmarshal((*plain)(c)); err != nil {
		return err
	}
	if err := c.Validate(); err != nil {
		return fmt.Errorf("status_page: %w", err)
	}
	return nil
}

// Validate checks the section and fills the defaults.
func (c *Config) Validate() error {
	if c.Title == "" {
		c.Title = "Service status"
	}
	if c.UptimeDays == 0 {
		c.UptimeDays = DefaultUptimeDays
	}
	if c.UptimeDays < 1 || c.UptimeDays > 366 {
		return fmt.Errorf("uptime_days: %d is out of range (1 to 366)", c.UptimeDays)
	}
	if c.URL != "" {
		u, err := url.Parse(c.URL)
		if err != nil || (u.Scheme != "http" && u.Scheme != "https") || u.Host == "" {
			return fmt.Errorf("url: %q is not an http(s) URL", c.URL)
		}
	}
	names := map[string]bool{}
	for i, comp := range c.Components {
		if strings.TrimSpace(comp.Name) == "" {
			return fmt.Errorf("components[%d]: name is required", i)
		}
		if err := checkLine(comp.Name); err != nil {
			return fmt.Errorf("components[%d]: name %.40q: %w", i, comp.Name, err)
		}
		if names[comp.Name] {
			return fmt.Errorf("components[%d]: duplicate name %q", i, comp.Name)
		}
		names[comp.Name] = true
		if len(comp.Services) == 0 {
			return fmt.Errorf("components[%d] (%s): services: at least one service is required", i, comp.Name)
		}
		for _, s := range comp.Services {
			if s == "" {
				return fmt.Errorf("components[%d] (%s): services: empty service name", i, comp.Name)
			}
		}
	}
	for i, m := range c.Maintenance {
		if strings.TrimSpace(m.Title) == "" {
			return fmt.Errorf("maintenance[%d]: title is required", i)
		}
		if err := checkLine(m.Title); err != nil {
			return fmt.Errorf("maintenance[%d]: title %.40q: %w", i, m.Title, err)
		}
		if m.Start.IsZero() || m.End.IsZero() || !m.End.After(m.Start) {
			return fmt.Errorf("maintenance[%d] (%s): start and end are required, end after start", i, m.Title)
		}
		if len(m.Components) == 0 {
			return fmt.Errorf("maintenance[%d] (%s): components: at least one component is required", i, m.Title)
		}
		for _, n := range m.Components {
			if !names[n] {
				return fmt.Errorf("maintenance[%d] (%s): components: unknown component %q", i, m.Title, n)
			}
		}
	}
	if len(c.NotifyTo) > 0 && len(c.Notify) == 0 {
		return errors.New("notify_to: set notify (the channels) too")
	}
	return nil
}
