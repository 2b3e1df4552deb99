package scenarios

import (
	"bytes"
	"errors"
	"fmt"
	"io"
	"math"
	"os"
	"path/filepath"
	"reflect"
	"regexp"
	"sort"
	"strconv"
	"strings"
	"unicode/utf8"

	"gopkg.in/yaml.v3"
)

// Error is a scenario that cannot be used: the file, the line, the field
// and what is wrong with it. Its text is one line,
// "quick.yaml:12: fleet[0].count: must be at least 1", so that editors and
// terminals can jump to the place.
type Error struct {
	// File is the name given to Parse ("" for Validate).
	File string
	// Line is 1-based; 0 when the scenario did not come from a file.
	Line int
	// Path names the field, as in "fleet[0].link" or "expect.updated[1]";
	// "" for the document as a whole.
	Path string
	// Reason says what is wrong and, where it helps, what is allowed.
	Reason string
	// Set is the override, "PATH=VALUE", whose value is wrong, when the
	// value came from one rather than from the file (Line is then 0).
	Set string
}

func (e *Error) Error() string {
	var b strings.Builder
	switch {
	case e.File != "" && e.Line > 0:
		b.WriteString(e.File + ":" + strconv.Itoa(e.Line) + ": ")
	case e.File != "":
		b.WriteString(e.File + ": ")
	case e.Line > 0:
		b.WriteString("line " + strconv.Itoa(e.Line) + ": ")
	}
	if e.Set != "" {
		b.WriteString("--set " + e.Set + ": ")
	}
	// A path the override names already goes without saying.
	if e.Path != "" && !strings.HasPrefix(e.Set, e.Path+"=") {
		b.WriteString(e.Path + ": ")
	}
	b.WriteString(e.Reason)
	// One line whatever a reason quotes: callers print it after a prefix
	// and tools read it line by line.
	return strings.Join(strings.Fields(b.String()), " ")
}

// Load reads and parses the scenario file at path, with overrides; errors
// name the file as path. See Parse.
func Load(path string, overrides ...Override) (*Scenario, error) {
	data, err := os.ReadFile(path)
	if err != nil {
		return nil, err
	}
	return Parse(path, data, overrides...)
}

// Parse decodes a scenario from YAML, fills in its defaults (Defaults) and
// checks it (Validate). name is the file name errors start with; without a
// name: field, the scenario is named after it ("quick.yaml" → "quick").
//
// Every error is an *Error carrying name and the line of the offending
// field: unknown fields, values of the wrong type, YAML syntax, and
// everything Validate checks. Parse never panics, whatever data holds.
//
// The overrides, in order, set fields of the document before it is
// decoded (see Override); an error about a value one of them gave names
// it (Error.Set) instead of a line. An override of a field the matrix
// varies is refused: the matrix's values would win.
func Parse(name string, data []byte, overrides ...Override) (*Scenario, error) {
	fail := func(line int, path, format string, args ...any) (*Scenario, error) {
		return nil, &Error{File: name, Line: line, Path: path, Reason: fmt.Sprintf(format, args...)}
	}
	if line, ok := invalidUTF8(data); ok {
		return fail(line, "", "the file is not UTF-8 text")
	}
	dec := yaml.NewDecoder(bytes.NewReader(data))
	var doc yaml.Node
	if err := decodeNode(dec, &doc); err != nil {
		if errors.Is(err, io.EOF) {
			return fail(1, "", "the file is empty: a scenario needs at least fleet and rollout")
		}
		line, reason := yamlError(err, data)
		return fail(line, "", "%s", reason)
	}
	var extra yaml.Node
	switch err := decodeNode(dec, &extra); {
	case errors.Is(err, io.EOF):
	case err != nil:
		line, reason := yamlError(err, data)
		return fail(line, "", "%s", reason)
	default:
		return fail(extra.Line, "", "a second YAML document: a scenario file holds one")
	}

	root := &doc
	if root.Kind == yaml.DocumentNode && len(root.Content) == 1 {
		root = root.Content[0]
	}
	switch {
	case root.Kind == yaml.ScalarNode && root.ShortTag() == "!!null":
		return fail(1, "", "the file is empty: a scenario needs at least fleet and rollout")
	case root.Kind != yaml.MappingNode:
		return fail(root.Line, "", "a scenario is a mapping of fields (fleet:, rollout:, ...), not a %s", kindName(root.Kind))
	}

	for i, o := range overrides {
		if err := applyOverride(root, o, overrideLine(i)); err != nil {
			return nil, blame(err, name, overrides)
		}
	}
	d := decoder{lines: map[string]int{"": root.Line}}
	s := new(Scenario)
	if err := d.decode(root, reflect.ValueOf(s).Elem(), ""); err != nil {
		return nil, blame(err, name, overrides)
	}
	if s.Name == "" && name != "" {
		base := filepath.Base(name)
		s.Name = strings.TrimSuffix(base, filepath.Ext(base))
	}
	if o, varied, ok := overriddenByMatrix(s.Matrix, overrides); ok {
		return nil, &Error{File: name, Set: o.String(), Reason: fmt.Sprintf(
			"the matrix varies %s in every variant, so this value would never run: change the matrix instead (matrix=... or matrix= for none)", varied)}
	}
	if err := d.checkMatrix(s); err != nil {
		return nil, blame(err, name, overrides)
	}
	s.Defaults()
	if err := s.validate(d.line); err != nil {
		return nil, blame(err, name, overrides)
	}
	return s, nil
}

// blame names the file in err, and the override instead of a line when
// the offending value is one an override gave (overrideLine).
func blame(err *Error, name string, overrides []Override) *Error {
	err.File = name
	if i := -err.Line - 1; i >= 0 && i < len(overrides) {
		err.Line, err.Set = 0, overrides[i].String()
	}
	return err
}

// decodeNode reads the next document, turning a panic in the YAML parser
// into an error: the parser is third-party code, and bad input must never
// crash the CLI.
func decodeNode(dec *yaml.Decoder, n *yaml.Node) (err error) {
	defer func() {
		if r := recover(); r != nil {
			err = fmt.Errorf("yaml: cannot parse the file (%v)", r)
		}
	}()
	return dec.Decode(n)
}

// invalidUTF8 finds the line of the first byte that is not UTF-8.
func invalidUTF8(data []byte) (line int, bad bool) {
	if utf8.Valid(data) {
		return 0, false
	}
	for i := 0; i < len(data); {
		r, n := utf8.DecodeRune(data[i:])
		if r == utf8.RuneError && n <= 1 {
			return lineAt(data, i), true
		}
		i += n
	}
	return 1, true
}

// lineAt is the 1-based line of data[i], counting line breaks as YAML
// does (and yaml.v3's line numbers with it): LF, CR, CR LF, and the
// Unicode NEL, LS and PS.
func lineAt(data []byte, i int) int {
	line := 1
	s := string(data[:min(i, len(data))])
	for j, r := range s {
		switch r {
		case '\r':
			if j+1 < len(s) && s[j+1] == '\n' {
				continue // CR LF is one break, counted at the LF
			}
			line++
		case '\n', '\u0085', '\u2028', '\u2029':
			line++
		}
	}
	return line
}

var (
	yamlLineRE   = regexp.MustCompile(`^yaml: line (\d+): (.*)$`)
	yamlAnchorRE = regexp.MustCompile(`^yaml: unknown anchor '(.*)' referenced$`)
)

// yamlParserProblems are the messages of libyaml's parser (as opposed to
// its scanner). yaml.v3 reports their line 0-based, and omits it on the
// first line (yaml.v3's parser.fail adds one for scanner errors only).
var yamlParserProblems = []string{
	"did not find expected <stream-start>",
	"did not find expected <document start>",
	"found undefined tag handle",
	"did not find expected node content",
	"did not find expected '-' indicator",
	"did not find expected key",
	"did not find expected ',' or ']'",
	"did not find expected ',' or '}'",
	"found duplicate %YAML directive",
	"found incompatible YAML document",
	"found duplicate %TAG directive",
}

// yamlError turns a yaml.v3 syntax error into a line and a reason that
// starts with "yaml: ".
func yamlError(err error, data []byte) (line int, reason string) {
	msg := strings.Join(strings.Fields(err.Error()), " ")
	if !strings.HasPrefix(msg, "yaml: ") {
		msg = "yaml: " + msg
	}
	lines := lineAt(data, len(data))
	if m := yamlLineRE.FindStringSubmatch(msg); m != nil {
		line, _ = strconv.Atoi(m[1])
		msg = "yaml: " + m[2]
		for _, p := range yamlParserProblems {
			if m[2] == p {
				line++
				break
			}
		}
	} else if m := yamlAnchorRE.FindStringSubmatch(msg); m != nil {
		if i := bytes.Index(data, []byte("*"+m[1])); i >= 0 {
			line = lineAt(data, i)
		}
	} else {
		for _, p := range yamlParserProblems {
			if msg == "yaml: "+p {
				line = 1 // the parser leaves out line numbers of the first line
			}
		}
	}
	return min(max(line, 1), lines), msg
}

// decoder fills a Scenario from a YAML tree, field by field, so that every
// error names the field's path and line, unknown fields are refused, and
// the lines of all fields are kept for Validate's messages. (yaml.v3's own
// KnownFields check reports several errors in one multi-line message, with
// lines but without paths.)
type decoder struct {
	// lines maps paths ("fleet[0].link") to the lines that set them.
	lines map[string]int
	// visited counts the nodes decoded, aliases each time they are
	// followed, so that a small file of nested aliases cannot take hours.
	visited int
	// matrixNodes are the matrix's values as the file wrote them, by
	// parameter: checkMatrix decodes them into their fields.
	matrixNodes [][]*yaml.Node
}

// maxVisits is far beyond any real scenario (a fleet is a few cohorts) and
// small enough to decode in a blink.
const maxVisits = 1 << 20

// line returns the line that set path or, when the field is absent (left
// to its default), the line of the nearest enclosing field that is there.
func (d *decoder) line(path string) int {
	for {
		if l, ok := d.lines[path]; ok {
			return l
		}
		if path == "" {
			return 0
		}
		path = parentPath(path)
	}
}

// parentPath drops the last element of a path: "fleet[0].link" →
// "fleet[0]" → "fleet" → "".
func parentPath(path string) string {
	i := strings.LastIndexAny(path, ".[")
	if i < 0 {
		return ""
	}
	return path[:i]
}

// typeNouns name the structs in "field "x" is not a cohort field".
var typeNouns = map[reflect.Type]string{
	reflect.TypeFor[Scenario](): "scenario",
	reflect.TypeFor[Cohort]():   "cohort",
	reflect.TypeFor[Rollout]():  "rollout",
	reflect.TypeFor[Wave]():     "wave",
	reflect.TypeFor[Fault]():    "fault",
	reflect.TypeFor[Gateway]():  "gateway",
}

var matrixType = reflect.TypeFor[Matrix]()

var unmarshalerType = reflect.TypeFor[yaml.Unmarshaler]()

// decode sets v from n; path is v's place in the scenario.
func (d *decoder) decode(n *yaml.Node, v reflect.Value, path string) *Error {
	fail := func(n *yaml.Node, format string, args ...any) *Error {
		return &Error{Line: n.Line, Path: path, Reason: fmt.Sprintf(format, args...)}
	}
	if n = resolveAlias(n); n.Kind == yaml.AliasNode {
		return fail(n, "an alias that leads nowhere")
	}
	if d.visited++; d.visited > maxVisits {
		return fail(n, "the file expands to too many values (aliases within aliases?)")
	}
	if n.Kind == yaml.ScalarNode && n.ShortTag() == "!!null" {
		return nil // "field:" with nothing after it leaves the default
	}
	if v.Type() == matrixType {
		return d.decodeMatrix(n, v, path)
	}

	if reflect.PointerTo(v.Type()).Implements(unmarshalerType) {
		if err := v.Addr().Interface().(yaml.Unmarshaler).UnmarshalYAML(n); err != nil {
			// The path says it is a duration or a size: drop the sentinel.
			msg := err.Error()
			for _, sentinel := range []error{ErrBadDuration, ErrBadSize} {
				msg = strings.TrimPrefix(msg, sentinel.Error()+": ")
			}
			return fail(n, "%s", msg)
		}
		return nil
	}

	switch v.Kind() {
	case reflect.Struct:
		if n.Kind != yaml.MappingNode {
			return fail(n, "want a mapping of %s fields, not a %s", typeNouns[v.Type()], kindName(n.Kind))
		}
		return d.decodeStruct(n, v, path)

	case reflect.Slice:
		if n.Kind != yaml.SequenceNode {
			return fail(n, "want a list, not a %s", kindName(n.Kind))
		}
		s := reflect.MakeSlice(v.Type(), len(n.Content), len(n.Content))
		for i, item := range n.Content {
			p := fmt.Sprintf("%s[%d]", path, i)
			d.lines[p] = item.Line
			if err := d.decode(item, s.Index(i), p); err != nil {
				return err
			}
		}
		v.Set(s)
		return nil

	case reflect.Map:
		if n.Kind != yaml.MappingNode {
			return fail(n, "want a mapping, not a %s", kindName(n.Kind))
		}
		pairs, err := d.pairs(n, path)
		if err != nil {
			return err
		}
		m := reflect.MakeMapWithSize(v.Type(), len(pairs))
		for _, p := range pairs {
			key := p.key.Value
			kp := path + "." + key
			d.lines[kp] = p.key.Line
			val := reflect.New(v.Type().Elem()).Elem()
			if err := d.decode(p.val, val, kp); err != nil {
				return err
			}
			m.SetMapIndex(reflect.ValueOf(key), val)
		}
		v.Set(m)
		return nil
	}

	if n.Kind != yaml.ScalarNode {
		return fail(n, "want a single value, not a %s", kindName(n.Kind))
	}
	return decodeScalar(n, v, fail)
}

// decodeStruct sets the fields of v from the mapping n, refusing keys that
// are not fields.
func (d *decoder) decodeStruct(n *yaml.Node, v reflect.Value, path string) *Error {
	t := v.Type()
	fields := make(map[string]int, t.NumField())
	var names []string
	for i := range t.NumField() {
		name, _, _ := strings.Cut(t.Field(i).Tag.Get("yaml"), ",")
		if name != "" && name != "-" {
			fields[name] = i
			names = append(names, name)
		}
	}
	pairs, err := d.pairs(n, path)
	if err != nil {
		return err
	}
	for _, p := range pairs {
		i, ok := fields[p.key.Value]
		if !ok {
			reason := fmt.Sprintf("field %q is not a %s field", p.key.Value, typeNouns[t])
			if near := nearest(p.key.Value, names); near != "" {
				reason += fmt.Sprintf(" (did you mean %q?)", near)
			}
			return &Error{Line: p.key.Line, Path: path, Reason: reason}
		}
		fp := joinPath(path, p.key.Value)
		d.lines[fp] = p.key.Line
		if err := d.decode(p.val, v.Field(i), fp); err != nil {
			return err
		}
	}
	return nil
}

func joinPath(path, field string) string {
	if path == "" {
		return field
	}
	return path + "." + field
}

// pair is one key and value of a mapping.
type pair struct{ key, val *yaml.Node }

// pairs lists a mapping's entries with YAML merge keys ("<<: *base")
// expanded: explicit keys win over merged ones, and earlier merged
// mappings over later ones. A key given twice is an error, as in yaml.v3.
func (d *decoder) pairs(n *yaml.Node, path string) ([]pair, *Error) {
	return d.mergedPairs(n, path, 0)
}

// maxMergeDepth bounds merges of merges; an anchor can merge itself.
const maxMergeDepth = 8

func (d *decoder) mergedPairs(n *yaml.Node, path string, depth int) ([]pair, *Error) {
	var out, merged []pair
	seen := map[string]*yaml.Node{}
	for i := 0; i+1 < len(n.Content); i += 2 {
		k, val := n.Content[i], n.Content[i+1]
		if d.visited++; d.visited > maxVisits {
			return nil, &Error{Line: k.Line, Path: path, Reason: "the file expands to too many values (aliases within aliases?)"}
		}
		if k.Kind != yaml.ScalarNode {
			return nil, &Error{Line: k.Line, Path: path, Reason: fmt.Sprintf("a key must be a single value, not a %s", kindName(k.Kind))}
		}
		if k.ShortTag() == "!!merge" {
			m, err := d.mergeSources(val, path, depth)
			if err != nil {
				return nil, err
			}
			merged = append(merged, m...)
			continue
		}
		if first, dup := seen[k.Value]; dup {
			return nil, &Error{Line: k.Line, Path: joinPath(path, k.Value), Reason: fmt.Sprintf("given twice (first on line %d)", first.Line)}
		}
		seen[k.Value] = k
		out = append(out, pair{k, val})
	}
	for _, p := range merged {
		if _, dup := seen[p.key.Value]; !dup {
			seen[p.key.Value] = p.key
			out = append(out, p)
		}
	}
	return out, nil
}

// mergeSources lists the entries that a merge key's value brings: a
// mapping, or a list of them (the YAML 1.1 merge key type).
func (d *decoder) mergeSources(n *yaml.Node, path string, depth int) ([]pair, *Error) {
	bad := &Error{Line: n.Line, Path: path, Reason: "a merge key (<<) takes a mapping or a list of mappings"}
	if depth >= maxMergeDepth {
		return nil, &Error{Line: n.Line, Path: path, Reason: "merge keys (<<) nested too deep (a mapping that merges itself?)"}
	}
	n = resolveAlias(n)
	items := []*yaml.Node{n}
	if n.Kind == yaml.SequenceNode {
		items = n.Content
	}
	var out []pair
	for _, item := range items {
		item = resolveAlias(item)
		if item.Kind != yaml.MappingNode {
			return nil, bad
		}
		m, err := d.mergedPairs(item, path, depth+1)
		if err != nil {
			return nil, err
		}
		out = append(out, m...)
	}
	return out, nil
}

// resolveAlias follows aliases to the node they name; a broken chain
// gives the alias itself, which no caller accepts.
func resolveAlias(n *yaml.Node) *yaml.Node {
	for hops := 0; n.Kind == yaml.AliasNode && n.Alias != nil && hops < 100; hops++ {
		n = n.Alias
	}
	return n
}

// decodeScalar sets a string, bool or number from a scalar, with messages
// that say what the field wants rather than which Go type it has.
func decodeScalar(n *yaml.Node, v reflect.Value, fail func(*yaml.Node, string, ...any) *Error) *Error {
	switch v.Kind() {
	case reflect.String:
		if n.ShortTag() == "!!binary" {
			return fail(n, "want text, not binary data")
		}
		v.SetString(n.Value)
		return nil
	case reflect.Bool:
		var b bool
		if n.ShortTag() != "!!bool" || n.Decode(&b) != nil {
			return fail(n, "want true or false, not %q", n.Value)
		}
		v.SetBool(b)
		return nil
	case reflect.Int, reflect.Int64:
		var i int64
		if n.ShortTag() != "!!int" || n.Decode(&i) != nil || v.OverflowInt(i) {
			return fail(n, "want a whole number, not %q", n.Value)
		}
		v.SetInt(i)
		return nil
	case reflect.Uint32, reflect.Uint64:
		var u uint64
		if n.ShortTag() != "!!int" || n.Decode(&u) != nil || v.OverflowUint(u) {
			return fail(n, "want a whole number from 0 to %d, not %q", uint64(1)<<v.Type().Bits()-1, n.Value)
		}
		v.SetUint(u)
		return nil
	case reflect.Float64:
		var f float64
		if (n.ShortTag() != "!!int" && n.ShortTag() != "!!float") || n.Decode(&f) != nil {
			return fail(n, "want a number, not %q", n.Value)
		}
		if math.IsNaN(f) || math.IsInf(f, 0) {
			return fail(n, "want a finite number, not %q", n.Value)
		}
		v.SetFloat(f)
		return nil
	}
	// The scenario types use only the kinds above; a new field of another
	// kind must be added here.
	return fail(n, "cannot decode into a field of Go type %s", v.Type())
}

// nearest returns the candidate within two edits of s, if one is, for
// "did you mean" hints.
func nearest(s string, candidates []string) string {
	best, bestD := "", 3
	for _, c := range candidates {
		if d := editDistance(s, c, bestD); d < bestD {
			best, bestD = c, d
		}
	}
	return best
}

// editDistance is the Levenshtein distance of a and b, or limit when it is
// limit or more (names are short; the limit keeps long keys cheap).
func editDistance(a, b string, limit int) int {
	if len(a) > 64 || len(b) > 64 {
		return limit
	}
	if d := len(a) - len(b); d >= limit || -d >= limit {
		return limit
	}
	prev := make([]int, len(b)+1)
	cur := make([]int, len(b)+1)
	for j := range prev {
		prev[j] = j
	}
	for i := 1; i <= len(a); i++ {
		cur[0] = i
		for j := 1; j <= len(b); j++ {
			cost := 1
			if a[i-1] == b[j-1] {
				cost = 0
			}
			cur[j] = min(prev[j]+1, cur[j-1]+1, prev[j-1]+cost)
		}
		prev, cur = cur, prev
	}
	return min(prev[len(b)], limit)
}

// byLine sorts map keys by the line that set them, then by name, so that
// checks report the first problem in the file first.
func byLine[V any](m map[string]V, path string, line func(string) int) []string {
	keys := make([]string, 0, len(m))
	for k := range m {
		keys = append(keys, k)
	}
	sort.Slice(keys, func(i, j int) bool {
		li, lj := line(path+"."+keys[i]), line(path+"."+keys[j])
		if li != lj {
			return li < lj
		}
		return keys[i] < keys[j]
	})
	return keys
}
