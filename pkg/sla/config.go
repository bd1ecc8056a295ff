package sla

// Config is the `sla` section of sred.yml.
// PLACEHOLDER: the owner of this package fills it in, with defaults and
// validation in UnmarshalYAML.
type Config struct{}
