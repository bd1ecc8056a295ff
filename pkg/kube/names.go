package kube

import (
	"fmt"
	"strings"

	"k8s.io/apimachinery/pkg/util/validation"

	"github.com/rootuip/sre/pkg/limits"
)

// Limits of Kubernetes names: an object's name is a DNS subdomain, a
// namespace a DNS label.
const (
	MaxName      = validation.DNS1123SubdomainMaxLength
	MaxNamespace = validation.DNS1123LabelMaxLength
)

// CheckObject refuses a name and namespace no Kubernetes object has, as
// an engine posts them about one of its objects (what: "canary",
// "rollout"), each named by its field in the payload. sred writes them into
// records as namespace/name: a '/' in either (namespace a/b, name c; or
// namespace a, name b/c) made two objects one, and a newline or a quote
// could pass for more of the record.
func CheckObject(what, nameField, name, namespaceField, namespace string) error {
	if len(name) > MaxName || len(namespace) > MaxNamespace {
		return fmt.Errorf("%s and %s of the %s are Kubernetes names: at most %d and %d bytes", nameField, namespaceField, what, MaxName, MaxNamespace)
	}
	if msgs := validation.IsDNS1123Subdomain(name); len(msgs) > 0 {
		return fmt.Errorf("%s %s of the %s is not a Kubernetes name: %s", nameField, limits.Quote(name), what, strings.Join(msgs, "; "))
	}
	if msgs := validation.IsDNS1123Label(namespace); len(msgs) > 0 {
		return fmt.Errorf("%s %s of the %s is not a Kubernetes namespace: %s", namespaceField, limits.Quote(namespace), what, strings.Join(msgs, "; "))
	}
	return nil
}
