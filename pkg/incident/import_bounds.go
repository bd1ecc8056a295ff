package incident

import (
	"fmt"
	"slices"
	"strings"
	"unicode/utf8"

	"github.com/rootuip/sre/pkg/limits"
)

// maxFingerprintBytes bounds an alert's fingerprint, as the webhook
// receiver does (Alertmanager's are 16 hex digits).
const maxFingerprintBytes = 64

// boundError is a value of an import line over a bound: Field is its path
// on the line.
type boundError struct {
	Field string
	Msg   string
}

// checkImportBounds refuses the first string or collection of rec that is
// larger than what sred stores through its API and its webhook: the
// limits of the actions (validate.go: an assignee, an impact, a note, an
// action item), of a title (MaxTitle) and a manual incident's service,
// and the webhook.limits wl the alerts' labels and annotations were cut to
// (limits.Webhook), with the group key's (limits.MaxGroupKeyBytes). NUL
// bytes and invalid UTF-8 are limits.Check's.
func checkImportBounds(rec *ExportRecord, wl limits.Webhook) *boundError {
	inc := &rec.Incident
	// A manual incident's service is a label value too (its service
	// label): MaxManualService bytes even when the webhook's values are
	// cut shorter.
	maxValue := max(wl.MaxLabelValueBytes, MaxManualService)
	var err *boundError
	fail := func(field, format string, a ...any) {
		if err == nil {
			err = &boundError{Field: field, Msg: fmt.Sprintf(format, a...)}
		}
	}
	chars := func(field, s string, max int) {
		if utf8.RuneCountInString(s) > max {
			fail(field, "longer than %d characters", max)
		}
	}
	line := func(field, s string, max int) {
		chars(field, s, max)
		if strings.ContainsAny(s, "\r\n") {
			fail(field, "must be one line")
		}
	}
	bytes := func(field, s string, max int, limit string) {
		if len(s) > max {
			if limit != "" {
				fail(field, "longer than %d bytes (%s)", max, limit)
			} else {
				fail(field, "longer than %d bytes", max)
			}
		}
	}
	groupKey := func(field, s string) {
		bytes(field, s, limits.MaxGroupKeyBytes, "")
	}
	labels := func(field string, ls map[string]string) {
		if len(ls) > wl.MaxLabelsPerAlert {
			fail(field, "%d labels, more than webhook.limits.max_labels_per_alert (%d)", len(ls), wl.MaxLabelsPerAlert)
		}
		for _, k := range sortedKeys(ls) {
			if len(k) > wl.MaxLabelNameBytes {
				fail(field, "label name %s longer than webhook.limits.max_label_name_bytes (%d)", limits.Quote(k), wl.MaxLabelNameBytes)
			}
			bytes(fmt.Sprintf("%s[%s]", field, limits.Quote(k)), ls[k], maxValue, "webhook.limits.max_label_value_bytes")
		}
	}
	annotations := func(field string, as map[string]string) {
		for _, k := range sortedKeys(as) {
			bytes(fmt.Sprintf("%s[%s]", field, limits.Quote(k)), as[k], wl.MaxAnnotationValueBytes, "webhook.limits.max_annotation_value_bytes")
		}
	}

	chars("incident.title", inc.Title, MaxTitle)
	bytes("incident.service", inc.Service, maxValue, "webhook.limits.max_label_value_bytes")
	bytes("incident.root_service", inc.RootService, maxValue, "webhook.limits.max_label_value_bytes")
	labels("incident.labels", inc.Labels)
	groupKey("incident.group_key", inc.GroupKey)
	bytes("incident.receiver", inc.Receiver, wl.MaxLabelValueBytes, "webhook.limits.max_label_value_bytes")
	for i, u := range inc.RunbookURLs {
		bytes(fmt.Sprintf("incident.runbook_urls[%d]", i), u, wl.MaxAnnotationValueBytes, "webhook.limits.max_annotation_value_bytes")
	}
	line("incident.assignee", inc.Assignee, MaxAssignee)
	chars("incident.impact", inc.Impact, MaxImpact)
	line("incident.mitigated_by", inc.MitigatedBy, MaxActor)
	if inc.MergedInto != "" && !importIDRE.MatchString(inc.MergedInto) {
		fail("incident.merged_into", "%s is not an incident ID", limits.Quote(inc.MergedInto))
	} else if inc.MergedInto != "" && strings.EqualFold(inc.MergedInto, inc.ID) {
		fail("incident.merged_into", "names the incident itself: an incident cannot be merged into itself")
	}
	for i := range rec.Alerts {
		a := &rec.Alerts[i]
		at := fmt.Sprintf("alerts[%d]", i)
		groupKey(at+".group_key", a.GroupKey)
		for j, gk := range a.GroupKeys {
			groupKey(fmt.Sprintf("%s.group_keys[%d]", at, j), gk)
		}
		bytes(at+".fingerprint", a.Fingerprint, maxFingerprintBytes, "")
		labels(at+".labels", a.Labels)
		annotations(at+".annotations", a.Annotations)
		bytes(at+".generator_url", a.GeneratorURL, wl.MaxAnnotationValueBytes, "webhook.limits.max_annotation_value_bytes")
		if err != nil {
			return err
		}
	}
	for i, g := range rec.Groups {
		groupKey(fmt.Sprintf("groups[%d].group_key", i), g.GroupKey)
	}
	for i, e := range rec.Timeline {
		at := fmt.Sprintf("timeline[%d]", i)
		line(at+".kind", e.Kind, MaxActor)
		line(at+".actor", e.Actor, MaxActor)
		if e.Kind == "note" {
			chars(at+".message", e.Message, MaxNote)
		}
		if err != nil {
			return err
		}
	}
	for i, l := range rec.Links {
		at := fmt.Sprintf("links[%d]", i)
		groupKey(at+".group_key", l.GroupKey)
		bytes(at+".service", l.Service, maxValue, "webhook.limits.max_label_value_bytes")
		labels(at+".labels", l.Labels)
		line(at+".reason", l.Reason, MaxActor)
	}
	for i, it := range rec.ActionItems {
		at := fmt.Sprintf("action_items[%d]", i)
		chars(at+".title", strings.TrimSpace(it.Title), MaxActionItemTitle)
		line(at+".owner", it.Owner, MaxActionItemOwner)
	}
	return err
}

func sortedKeys(m map[string]string) []string {
	if len(m) == 0 {
		return nil
	}
	keys := make([]string, 0, len(m))
	for k := range m {
		keys = append(keys, k)
	}
	slices.Sort(keys)
	return keys
}
