package yamlerr

import (
	"fmt"

	yaml "go.yaml.in/yaml/v3"
)

// Pair is a field of a mapping as the decoder reads it: its key, where it
// is written (under the anchor for a field a merge key brings in, so a
// check of it is placed there), and its value, an alias resolved to the
// value of its anchor.
type Pair struct {
	Key, Value *yaml.Node
}

// Pairs returns the fields of mapping n as yaml.v3 decodes them, for the
// decoders that check a mapping's keys themselves: an alias (*d) stands
// for the value of its anchor (&d), and a merge key (<<: *d, or
// <<: [*a, *b]) brings in the fields of the mappings it names that n does
// not write itself, the first of a list first, each at the place of the
// merge key. A key n writes twice comes twice (the decoder refuses it). A
// merge of anything but a mapping, or of a mapping that holds it, is a
// *NodeError at the merge key's value. n itself may be an alias; a node
// that is no mapping has no fields.
func Pairs(n *yaml.Node) ([]Pair, error) {
	n = resolve(n)
	if n == nil || n.Kind != yaml.MappingNode {
		return nil, nil
	}
	m := merger{won: map[string]Pair{}, open: map[*yaml.Node]bool{}, done: map[*yaml.Node]bool{}}
	// The fields that win: those n writes, then those of its merges,
	// the first merged mapping over a later one.
	for i := 0; i+1 < len(n.Content); i += 2 {
		if k := n.Content[i]; !isMerge(k) {
			if _, ok := m.won[k.Value]; !ok {
				m.won[k.Value] = Pair{Key: k, Value: resolve(n.Content[i+1])}
			}
		}
	}
	m.done[n] = true
	if err := m.merges(n); err != nil {
		return nil, err
	}
	// In the order they are written, a merge's fields at its place.
	var out []Pair
	emitted := map[*yaml.Node]bool{}
	var walk func(n *yaml.Node, top bool)
	walk = func(n *yaml.Node, top bool) {
		if emitted[n] {
			return
		}
		emitted[n] = true
		merge := lastMerge(n)
		for i := 0; i+1 < len(n.Content); i += 2 {
			k := n.Content[i]
			switch {
			case i == merge:
				for _, src := range mergeSources(n.Content[i+1]) {
					walk(src, false)
				}
			case isMerge(k):
			case top:
				out = append(out, Pair{Key: k, Value: resolve(n.Content[i+1])})
			case m.won[k.Value].Key == k:
				out = append(out, m.won[k.Value])
			}
		}
	}
	walk(n, true)
	return out, nil
}

// Lookup returns the value of key in mapping n as the decoder reads it
// (Pairs), nil when n has no such field.
func Lookup(n *yaml.Node, key string) *yaml.Node {
	v, _ := child(n, key)
	return v
}

// merger finds the fields of a mapping's merges that win (Pairs).
type merger struct {
	won map[string]Pair
	// open holds the mappings being merged, done those merged: a mapping
	// merged twice adds nothing the second time.
	open, done map[*yaml.Node]bool
}

// merges adds to m.won the fields the merge key of mapping n brings in.
func (m *merger) merges(n *yaml.Node) error {
	i := lastMerge(n)
	if i < 0 {
		return nil
	}
	m.open[n] = true
	defer delete(m.open, n)
	val := n.Content[i+1]
	srcs := []*yaml.Node{val}
	if val.Kind == yaml.SequenceNode {
		srcs = val.Content
	}
	for _, src := range srcs {
		r := resolve(src)
		if r == nil || r.Kind != yaml.MappingNode {
			return At(val, "a merge key (<<) takes a mapping or a list of mappings (e.g. <<: *base), got %s", kindName(r))
		}
		if m.open[r] {
			return At(val, "a merge key (<<) cannot merge %s, a mapping that holds it", anchorName(src))
		}
		if m.done[r] {
			continue
		}
		m.done[r] = true
		for j := 0; j+1 < len(r.Content); j += 2 {
			if k := r.Content[j]; !isMerge(k) {
				if _, ok := m.won[k.Value]; !ok {
					m.won[k.Value] = Pair{Key: k, Value: resolve(r.Content[j+1])}
				}
			}
		}
		if err := m.merges(r); err != nil {
			return err
		}
	}
	return nil
}

// lastMerge is the index in n.Content of the merge key of mapping n that
// the decoder reads (its last), -1 if none.
func lastMerge(n *yaml.Node) int {
	at := -1
	for i := 0; i+1 < len(n.Content); i += 2 {
		if isMerge(n.Content[i]) {
			at = i
		}
	}
	return at
}

// mergeSources returns the mappings merge key value v brings in.
func mergeSources(v *yaml.Node) []*yaml.Node {
	srcs := []*yaml.Node{v}
	if v.Kind == yaml.SequenceNode {
		srcs = v.Content
	}
	var out []*yaml.Node
	for _, s := range srcs {
		if s = resolve(s); s != nil && s.Kind == yaml.MappingNode {
			out = append(out, s)
		}
	}
	return out
}

// isMerge reports whether k is a merge key as yaml.v3 decodes it: <<
// unquoted (tagged !!merge), or with no tag or the non-specific one.
func isMerge(k *yaml.Node) bool {
	return k.Kind == yaml.ScalarNode && k.Value == "<<" && (k.Tag == "" || k.Tag == "!" || k.ShortTag() == "!!merge")
}

// kindName names the kind of node n in an error: "a list", "a mapping",
// or the scalar quoted.
func kindName(n *yaml.Node) string {
	switch {
	case n == nil:
		return "nothing"
	case n.Kind == yaml.MappingNode:
		return "a mapping"
	case n.Kind == yaml.SequenceNode:
		return "a list"
	case n.Kind == yaml.ScalarNode:
		return fmt.Sprintf("%q", n.Value)
	}
	return "an unexpected node"
}

// anchorName is "*name" for alias n, "itself" for any other node.
func anchorName(n *yaml.Node) string {
	if n.Kind == yaml.AliasNode {
		return "*" + n.Value
	}
	return "itself"
}

// MaxExpandNodes is the most nodes Expand writes: aliases of aliases can
// stand for far more nodes than a file writes.
const MaxExpandNodes = 100_000

// Expand returns a copy of n as the decoder reads it, for a document that
// is written out again for a reader of its own: each alias is replaced by
// a copy of the value of its anchor, each mapping holds its fields as
// Pairs gives them (its merge keys applied), and no node has an anchor.
// Each node keeps its line and column. A merge Pairs refuses, an anchor
// whose value holds an alias of itself, or a copy of more than
// MaxExpandNodes nodes is a *NodeError.
func Expand(n *yaml.Node) (*yaml.Node, error) {
	e := expander{open: map[*yaml.Node]bool{}}
	return e.expand(n)
}

type expander struct {
	open  map[*yaml.Node]bool // the nodes being copied: an alias of one is a cycle
	outer *yaml.Node          // the outermost alias being copied, where too many nodes are placed
	nodes int
}

func (e *expander) expand(n *yaml.Node) (*yaml.Node, error) {
	at := n
	if n.Kind == yaml.AliasNode {
		if n.Alias == nil {
			return nil, At(n, "alias *%s names no anchor", n.Value)
		}
		if e.outer == nil {
			e.outer = n
			defer func() { e.outer = nil }()
		}
		n = n.Alias
	}
	if e.open[n] {
		return nil, At(at, "the value of anchor &%s holds an alias of itself", n.Anchor)
	}
	if e.nodes++; e.nodes > MaxExpandNodes {
		if e.outer != nil {
			at = e.outer
		}
		return nil, At(at, "aliases expand the document to more than %d nodes", MaxExpandNodes)
	}
	c := *n
	c.Anchor, c.Alias, c.Content = "", nil, nil
	e.open[n] = true
	defer delete(e.open, n)
	switch n.Kind {
	case yaml.MappingNode:
		pairs, err := Pairs(n)
		if err != nil {
			return nil, err
		}
		for _, p := range pairs {
			k, err := e.expand(p.Key)
			if err != nil {
				return nil, err
			}
			v, err := e.expand(p.Value)
			if err != nil {
				return nil, err
			}
			c.Content = append(c.Content, k, v)
		}
	case yaml.DocumentNode, yaml.SequenceNode:
		for _, item := range n.Content {
			v, err := e.expand(item)
			if err != nil {
				return nil, err
			}
			c.Content = append(c.Content, v)
		}
	}
	return &c, nil
}
