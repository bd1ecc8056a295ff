package runbook

import (
	"fmt"
	"regexp"
	"sort"
	"strings"
	"text/template"
	"text/template/parse"
)

// MaxLabelValueLength caps every label value used in a template, whatever
// its allow-list says.
const MaxLabelValueLength = 256

// TemplateData is what step templates see. Only .Labels values come from
// alerts, and each is checked against the allow-list before use.
type TemplateData struct {
	Labels map[string]string
	// Vars are the caller's variables of an Action (the same map as
	// Labels there, checked against the same allow-list).
	Vars       map[string]string
	IncidentID string
	Severity   string
	Runbook    string
	RunID      int64
}

// allowList maps a label name to the anchored pattern its values must match.
type allowList map[string]*regexp.Regexp

// compileAllowList compiles label patterns; each is anchored at both ends.
func compileAllowList(m map[string]string) (allowList, error) {
	out := allowList{}
	for name, pat := range m {
		if pat == "" {
			return nil, fmt.Errorf("label %q: empty pattern", name)
		}
		re, err := regexp.Compile("^(?:" + pat + ")$")
		if err != nil {
			return nil, fmt.Errorf("label %q: pattern %q: %w", name, pat, err)
		}
		out[name] = re
	}
	return out, nil
}

func (a allowList) merge(b allowList) allowList {
	out := allowList{}
	for k, v := range a {
		out[k] = v
	}
	for k, v := range b {
		out[k] = v
	}
	return out
}

// tmpl is a parsed step template and the labels it references.
type tmpl struct {
	src    string
	t      *template.Template
	labels []string
	allow  allowList
}

// newTmpl parses src and checks that every alert label it uses is declared
// in allow. Templates reach labels only as .Labels.<name>.
func newTmpl(name, src string, allow allowList) (*tmpl, error) {
	t, err := template.New(name).Option("missingkey=error").Parse(src)
	if err != nil {
		return nil, fmt.Errorf("template %q: %w", src, err)
	}
	refs := map[string]bool{}
	if t.Tree != nil && t.Tree.Root != nil {
		if err := walkTemplate(t.Tree.Root, refs); err != nil {
			return nil, fmt.Errorf("template %q: %w", src, err)
		}
	}
	out := &tmpl{src: src, t: t, allow: allow}
	for l := range refs {
		if _, ok := allow[l]; !ok {
			return nil, fmt.Errorf("template %q uses label %q, which has no allow-list pattern in `labels`", src, l)
		}
		out.labels = append(out.labels, l)
	}
	sort.Strings(out.labels)
	return out, nil
}

func walkTemplate(n parse.Node, refs map[string]bool) error {
	switch n := n.(type) {
	case *parse.ListNode:
		if n == nil {
			return nil
		}
		for _, c := range n.Nodes {
			if err := walkTemplate(c, refs); err != nil {
				return err
			}
		}
	case *parse.ActionNode:
		return walkTemplate(n.Pipe, refs)
	case *parse.PipeNode:
		if n == nil {
			return nil
		}
		if len(n.Decl) > 0 {
			return fmt.Errorf("variables are not allowed")
		}
		for _, c := range n.Cmds {
			if err := walkTemplate(c, refs); err != nil {
				return err
			}
		}
	case *parse.CommandNode:
		for _, a := range n.Args {
			if err := walkTemplate(a, refs); err != nil {
				return err
			}
		}
	case *parse.FieldNode:
		switch n.Ident[0] {
		case "Labels", "Vars":
			if len(n.Ident) != 2 {
				return fmt.Errorf("use .%s.<name> to reach a value", n.Ident[0])
			}
			refs[n.Ident[1]] = true
		case "IncidentID", "Severity", "Runbook", "RunID":
			if len(n.Ident) != 1 {
				return fmt.Errorf("unknown field %s", n.String())
			}
		default:
			return fmt.Errorf("unknown field %s (want .Labels.<name>, .IncidentID, .Severity, .Runbook or .RunID)", n.String())
		}
	case *parse.TextNode, *parse.StringNode, *parse.NumberNode, *parse.BoolNode, *parse.NilNode, *parse.CommentNode:
	case *parse.IdentifierNode:
		switch n.Ident {
		case "printf", "print", "len", "eq", "ne", "and", "or", "not", "urlquery", "js":
		default:
			return fmt.Errorf("function %q is not allowed", n.Ident)
		}
	case *parse.IfNode:
		return walkBranch(&n.BranchNode, refs)
	default:
		return fmt.Errorf("%q is not allowed in runbook templates", n.String())
	}
	return nil
}

func walkBranch(b *parse.BranchNode, refs map[string]bool) error {
	for _, n := range []parse.Node{b.Pipe, b.List, b.ElseList} {
		if n == nil || n == (*parse.ListNode)(nil) {
			continue
		}
		if err := walkTemplate(n, refs); err != nil {
			return err
		}
	}
	return nil
}

// LabelError reports an alert label value refused by an allow-list.
type LabelError struct {
	Label  string
	Reason string
}

func (e *LabelError) Error() string {
	return fmt.Sprintf("label %q %s", e.Label, e.Reason)
}

// checkLabels returns the referenced labels of d after checking each value
// against the allow-list: a missing, too long or non-matching value is an
// error, and the value never reaches a command.
func (t *tmpl) checkLabels(labels map[string]string) (map[string]string, error) {
	out := make(map[string]string, len(t.labels))
	for _, l := range t.labels {
		v, ok := labels[l]
		if !ok {
			return nil, &LabelError{Label: l, Reason: "is missing from the incident"}
		}
		if len(v) > MaxLabelValueLength {
			return nil, &LabelError{Label: l, Reason: fmt.Sprintf("value is %d bytes long (limit %d)", len(v), MaxLabelValueLength)}
		}
		if !t.allow[l].MatchString(v) {
			return nil, &LabelError{Label: l, Reason: fmt.Sprintf("value %q does not match its allow-list pattern %q", v, strings.TrimSuffix(strings.TrimPrefix(t.allow[l].String(), "^(?:"), ")$"))}
		}
		out[l] = v
	}
	return out, nil
}

// render executes the template on d, with labels checked first.
func (t *tmpl) render(d TemplateData) (string, error) {
	labels, err := t.checkLabels(d.Labels)
	if err != nil {
		return "", err
	}
	d.Labels = labels
	if d.Vars != nil {
		d.Vars = labels
	}
	var b strings.Builder
	if err := t.t.Execute(&b, d); err != nil {
		return "", fmt.Errorf("render %q: %w", t.src, err)
	}
	return b.String(), nil
}
