package scenarios

import (
	"bytes"
	"errors"
	"fmt"
	"io"
	"reflect"
	"strconv"
	"strings"

	"gopkg.in/yaml.v3"
)

// Override sets one field of a scenario from outside its file, as
// `fleetsim run --set PATH=VALUE` does. Parse applies overrides to the YAML
// document before decoding it, so an overridden value is read, defaulted
// and checked exactly as if the file had said it, and every field can be
// overridden without code of its own.
type Override struct {
	// Path names the field the way errors and matrices do: YAML field
	// names joined by dots, list indexes in brackets, and the keys of
	// expect and firmware as names: "seed", "fleet[0].poll",
	// "rollout.versions[1]", "gateway.cores", "expect.updated",
	// "fleet[1].firmware.1001".
	Path string
	// Value is written as the file would write it: "5m", "1MiB", "7",
	// "[1001, 1002]", "{cores: 4}". A text field takes the text as it is;
	// an empty value leaves the field to its default.
	Value string
}

// ErrBadOverride reports text that is not PATH=VALUE.
var ErrBadOverride = errors.New("bad override")

// ParseOverride reads "PATH=VALUE"; the value is everything after the
// first "=".
//
// Errors wrap ErrBadOverride.
func ParseOverride(s string) (Override, error) {
	path, value, ok := strings.Cut(s, "=")
	path = strings.TrimSpace(path)
	if !ok || path == "" {
		return Override{}, fmt.Errorf("%w: %q: want PATH=VALUE, e.g. fleet[0].poll=5m", ErrBadOverride, s)
	}
	return Override{Path: path, Value: value}, nil
}

func (o Override) String() string { return o.Path + "=" + o.Value }

// pathStep is one step of an override's path: a field or mapping key, or a
// list index.
type pathStep struct {
	name  string
	index int // -1 for a name
}

// splitPath cuts an override's path into steps. Field names are checked
// against the types as the path is walked; here only the syntax is.
func splitPath(path string) ([]pathStep, bool) {
	var steps []pathStep
	rest := path
	for {
		end := strings.IndexAny(rest, ".[")
		if end < 0 {
			end = len(rest)
		}
		if end == 0 {
			return nil, false
		}
		steps = append(steps, pathStep{name: rest[:end], index: -1})
		rest = rest[end:]
		for strings.HasPrefix(rest, "[") {
			end := strings.IndexByte(rest, ']')
			if end < 0 {
				return nil, false
			}
			digits := rest[1:end]
			rest = rest[end+1:]
			if digits == "" || strings.Trim(digits, "0123456789") != "" || (digits[0] == '0' && digits != "0") {
				return nil, false
			}
			i, err := strconv.Atoi(digits)
			if err != nil {
				return nil, false
			}
			steps = append(steps, pathStep{index: i})
		}
		if rest == "" {
			return steps, true
		}
		if rest[0] != '.' {
			return nil, false
		}
		rest = rest[1:]
	}
}

// overrideLine marks the nodes override i puts in a document: a line no
// file has, so that an error about them can be told apart and blamed on
// the override instead of a line.
func overrideLine(i int) int { return -(i + 1) }

// applyOverride sets the node o names in the scenario mapping root to o's
// value, marking every node it adds with line. It walks the scenario's
// types beside the document, so that a path naming no field fails here,
// with the names there are, and so that the value is read as its field
// needs. Nodes that the file shares through anchors are copied before
// they change: an override changes one place, not every alias of it.
func applyOverride(root *yaml.Node, o Override, line int) *Error {
	fail := func(path, format string, args ...any) *Error {
		return &Error{Line: line, Path: path, Reason: fmt.Sprintf(format, args...)}
	}
	steps, ok := splitPath(o.Path)
	if !ok {
		return fail("", "%q is not a field path: write field names and list indexes the way errors name them, e.g. fleet[0].poll or rollout.image_size", o.Path)
	}
	t := reflect.TypeFor[Scenario]()
	slot := &root
	at := ""
	for k, st := range steps {
		n := *slot
		switch {
		case st.index >= 0:
			if t.Kind() != reflect.Slice {
				return fail(at, "not a list: it has no entry [%d]", st.index)
			}
			if n.Kind != yaml.SequenceNode || st.index >= len(n.Content) {
				have := 0
				if n.Kind == yaml.SequenceNode {
					have = len(n.Content)
				}
				return fail(fmt.Sprintf("%s[%d]", at, st.index), "out of range: %s has %s", at, countOf(have, t.Elem()))
			}
			slot = &n.Content[st.index]
			t = t.Elem()
			at = fmt.Sprintf("%s[%d]", at, st.index)
		case t == matrixType:
			return fail("matrix", `set the matrix as a whole, e.g. matrix={"fleet[0].count": [100, 200]}, or matrix= for none`)
		case t.Kind() == reflect.Struct:
			i, names := yamlField(t, st.name)
			if i < 0 {
				r := fmt.Sprintf("%q is not a %s field", st.name, typeNouns[t])
				if near := nearest(st.name, names); near != "" {
					r += fmt.Sprintf(" (did you mean %q?)", near)
				}
				return fail(at, "%s", r)
			}
			if n.Kind != yaml.MappingNode {
				return fail(at, "want a mapping of %s fields, not a %s", typeNouns[t], kindName(n.Kind))
			}
			slot = mappingSlot(n, st.name, line, k == len(steps)-1)
			t = t.Field(i).Type
			at = joinPath(at, st.name)
		case t.Kind() == reflect.Map:
			if n.Kind != yaml.MappingNode {
				return fail(at, "want a mapping, not a %s", kindName(n.Kind))
			}
			slot = mappingSlot(n, st.name, line, k == len(steps)-1)
			t = t.Elem()
			at = joinPath(at, st.name)
		case t.Kind() == reflect.Slice:
			return fail(at, "a list has no field %q: give an index, e.g. %s[0]", st.name, at)
		default:
			return fail(at, "a single value has no field %q", st.name)
		}
		if k == len(steps)-1 {
			v, err := overrideValue(o.Value, t, line)
			if err != nil {
				return fail(at, "%s", err)
			}
			*slot = v
			return nil
		}
		// Below here the override changes the node: it must be this
		// place's own, and a container.
		own(slot)
		if c := *slot; c.Kind == yaml.ScalarNode && c.ShortTag() == "!!null" {
			if steps[k+1].index >= 0 {
				*slot = &yaml.Node{Kind: yaml.SequenceNode, Tag: "!!seq", Line: line}
			} else {
				*slot = &yaml.Node{Kind: yaml.MappingNode, Tag: "!!map", Line: line}
			}
		}
	}
	return nil // steps is never empty
}

// mappingSlot returns the place of key's value in the mapping n: its own
// entry, or a copy of the entry a merge key (<<) brings, which the own
// entry then overrides, or a new entry with no value. The decoder takes a
// field's line from its key: the key of the value set (last) is marked
// with the override's line.
func mappingSlot(n *yaml.Node, key string, line int, last bool) **yaml.Node {
	for i := 0; i+1 < len(n.Content); i += 2 {
		if k := n.Content[i]; k.Kind == yaml.ScalarNode && k.ShortTag() != "!!merge" && k.Value == key {
			if last {
				marked := *k
				marked.Line = line
				n.Content[i] = &marked
			}
			return &n.Content[i+1]
		}
	}
	var merged *yaml.Node
	for i := 0; i+1 < len(n.Content) && merged == nil; i += 2 {
		if n.Content[i].ShortTag() == "!!merge" {
			merged = mergedValue(n.Content[i+1], key, 0)
		}
	}
	val := &yaml.Node{Kind: yaml.ScalarNode, Tag: "!!null", Line: line}
	if merged != nil {
		val = copyNode(merged)
	}
	n.Content = append(n.Content, &yaml.Node{Kind: yaml.ScalarNode, Tag: "!!str", Value: key, Line: line}, val)
	return &n.Content[len(n.Content)-1]
}

// mergedValue finds key among what a merge key's value brings, as the
// decoder reads merges: earlier mappings first.
func mergedValue(src *yaml.Node, key string, depth int) *yaml.Node {
	if depth >= maxMergeDepth {
		return nil
	}
	src = resolveAlias(src)
	items := []*yaml.Node{src}
	if src.Kind == yaml.SequenceNode {
		items = src.Content
	}
	for _, m := range items {
		m = resolveAlias(m)
		if m.Kind != yaml.MappingNode {
			continue
		}
		for i := 0; i+1 < len(m.Content); i += 2 {
			if k := m.Content[i]; k.ShortTag() != "!!merge" && k.Value == key {
				return m.Content[i+1]
			}
		}
		for i := 0; i+1 < len(m.Content); i += 2 {
			if m.Content[i].ShortTag() == "!!merge" {
				if v := mergedValue(m.Content[i+1], key, depth+1); v != nil {
					return v
				}
			}
		}
	}
	return nil
}

// own makes the node at slot this place's alone: an alias, or a node
// other places alias (it has an anchor), is replaced by a copy.
func own(slot **yaml.Node) {
	n := *slot
	if n.Kind == yaml.AliasNode || n.Anchor != "" {
		*slot = copyNode(resolveAlias(n))
	}
}

// copyNode copies n and the nodes it holds; aliases inside stay aliases
// of the same nodes.
func copyNode(n *yaml.Node) *yaml.Node {
	c := *n
	c.Anchor = ""
	c.Content = make([]*yaml.Node, len(n.Content))
	for i, child := range n.Content {
		c.Content[i] = copyNode(child)
	}
	return &c
}

// overrideValue is the node of an override's value for a field of type t:
// the text itself for a text field, the plain scalar for any other single
// value (as YAML reads it in a file), and the YAML text parsed for a
// section, a list or a mapping.
func overrideValue(value string, t reflect.Type, line int) (*yaml.Node, error) {
	var n *yaml.Node
	switch {
	case t != matrixType && isParam(t):
		n = textNode(value, t.Kind() == reflect.String)
	default:
		var doc yaml.Node
		err := decodeNode(yaml.NewDecoder(bytes.NewReader([]byte(value))), &doc)
		switch {
		case errors.Is(err, io.EOF):
			n = &yaml.Node{Kind: yaml.ScalarNode, Tag: "!!null"}
		case err != nil:
			return nil, fmt.Errorf("%s", strings.Join(strings.Fields(err.Error()), " "))
		case doc.Kind == yaml.DocumentNode && len(doc.Content) == 1:
			n = doc.Content[0]
		default:
			n = &doc
		}
	}
	markLines(n, line)
	return n, nil
}

// markLines gives n and the nodes it holds the line of the override.
func markLines(n *yaml.Node, line int) {
	n.Line = line
	for _, c := range n.Content {
		markLines(c, line)
	}
}

// overriddenByMatrix says which override sets a field that the matrix
// also varies: the matrix's value would win in every variant, and the
// override would silently never run.
func overriddenByMatrix(m Matrix, overrides []Override) (Override, string, bool) {
	within := func(p, q string) bool {
		return p == q || strings.HasPrefix(p, q+".") || strings.HasPrefix(p, q+"[")
	}
	for _, o := range overrides {
		for _, p := range m {
			if within(p.Path, o.Path) || within(o.Path, p.Path) {
				return o, p.Path, true
			}
		}
	}
	return Override{}, "", false
}
