package notify

// Config is the `notifications` section of sred.yml.
// PLACEHOLDER: the owner of this package fills it in, with defaults and
// validation in UnmarshalYAML.
type Config struct{}
