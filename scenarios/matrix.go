package scenarios

import (
	"bytes"
	"encoding"
	"encoding/json"
	"fmt"
	"math/big"
	"reflect"
	"strconv"
	"strings"

	"github.com/invopop/jsonschema"
	"gopkg.in/yaml.v3"
)

// MaxVariants bounds the combinations of a matrix: each is a whole fleet
// run, and a report that compares more side by side is no longer read.
const MaxVariants = 256

// Matrix lists the parameters a scenario varies, in the order the file
// gives them. Each variant of the scenario (Expand) takes one value of
// every parameter: the capacity-planning question "how many devices per
// gateway at this poll interval?" is a matrix of fleet[0].count and
// fleet[0].poll.
type Matrix []MatrixParam

// MatrixParam is one parameter of a matrix: a field, and the values it
// takes in turn.
type MatrixParam struct {
	// Path names the field the way errors name it: "duration",
	// "fleet[0].count", "rollout.waves[1].percentage", "gateway.cores".
	// Any single-valued field can be varied, found by its YAML name,
	// except the scenario's name and the matrix itself.
	Path string
	// Values are the field's values as a scenario file writes them
	// ("1000", "5m", "64KiB"). Parse writes each the way the field prints
	// it (Duration.String, Size.String), so that "90m" reads "1h30m".
	Values []string
}

// Param is the value one parameter takes in a variant.
type Param struct {
	// Path is MatrixParam.Path.
	Path string
	// Value is the field's value, written as the field prints it.
	Value string
}

// Variant is one combination of a matrix's values.
type Variant struct {
	// Label is the variant's values, "path=value, path=value", in the
	// matrix's order ("" for a scenario without a matrix).
	Label string
	// Params are the values, in the matrix's order.
	Params []Param
	// Scenario is a copy of the scenario with the values applied, its
	// defaults filled in, no matrix, and the name "NAME[path=value,...]".
	Scenario *Scenario
}

// Expand lists the runs a scenario stands for: one per combination of its
// matrix's values, in order, the matrix's first parameter varying slowest
// and its last fastest, and each parameter's values in the order listed.
// Every variant is a deep copy of s: changing one changes neither s nor
// another. A scenario without a matrix expands to one variant, a copy of
// itself with an empty Label.
//
// Errors are those of Validate: an *Error with a Path but no File or
// Line; a variant that fails Validate is named by its label.
func (s *Scenario) Expand() ([]Variant, error) {
	noLines := func(string) int { return 0 }
	if len(s.Matrix) == 0 {
		c := s.clone()
		c.Defaults()
		if err := c.validateRun(noLines); err != nil {
			return nil, err
		}
		return []Variant{{Scenario: c}}, nil
	}
	vs, err := s.expand(checker{noLines})
	if err != nil {
		return nil, err
	}
	return vs, nil
}

// expand makes the variants of s's matrix and validates each, taking the
// lines of errors from c.
func (s *Scenario) expand(c checker) ([]Variant, *Error) {
	values, err := s.matrixValues(c, nil)
	if err != nil {
		return nil, err
	}
	var base *Error // s's own mistake, if it has one; made when first needed
	baseDone := false
	idx := make([]int, len(s.Matrix))
	var out []Variant
	for {
		v := s.variant(idx, values)
		if err := v.Scenario.validateRun(c.line); err != nil {
			if !baseDone {
				b := s.clone()
				b.Matrix = nil
				b.Defaults()
				base, baseDone = b.validateRun(c.line), true
			}
			return nil, s.variantError(c, v, err, base)
		}
		out = append(out, v)
		// The last parameter varies fastest.
		i := len(idx) - 1
		for ; i >= 0; i-- {
			if idx[i]++; idx[i] < len(values[i]) {
				break
			}
			idx[i] = 0
		}
		if i < 0 {
			return out, nil
		}
	}
}

// variant makes the variant that takes values[i][idx[i]] for every
// parameter i.
func (s *Scenario) variant(idx []int, values [][]reflect.Value) Variant {
	c := s.clone()
	c.Matrix = nil
	params := make([]Param, len(idx))
	labels := make([]string, len(idx))
	for i, j := range idx {
		p := s.Matrix[i].Path
		f, _ := paramField(c, p) // matrixValues found it in s, and c is a copy
		f.Set(values[i][j])
		params[i] = Param{Path: p, Value: paramText(values[i][j])}
		labels[i] = p + "=" + params[i].Value
	}
	c.Defaults()
	c.Name = s.Name + "[" + strings.Join(labels, ",") + "]"
	return Variant{Label: strings.Join(labels, ", "), Params: params, Scenario: c}
}

// variantError says why variant v does not validate: at the matrix key
// that set the failing field when one did, as s's own mistake when s makes
// it too without the matrix (base), and otherwise at the matrix as a whole.
func (s *Scenario) variantError(c checker, v Variant, err, base *Error) *Error {
	for _, p := range s.Matrix {
		if err.Path == p.Path || strings.HasPrefix(err.Path, p.Path+".") || strings.HasPrefix(err.Path, p.Path+"[") {
			return c.fail("matrix."+p.Path, "variant %s: %s: %s", v.Label, err.Path, err.Reason)
		}
	}
	if base != nil && *base == *err {
		return err
	}
	return c.fail("matrix", "variant %s: %s: %s", v.Label, err.Path, err.Reason)
}

// matrixValues checks s's matrix against s and decodes its values:
// values[i][j] is s.Matrix[i].Values[j] as a value of the field's type.
// node gives the YAML node of each value, as the file wrote it; without
// it, each value is read from its text.
func (s *Scenario) matrixValues(c checker, node func(i, j int) *yaml.Node) (values [][]reflect.Value, err *Error) {
	seen := make(map[string]bool, len(s.Matrix))
	total := big.NewInt(1)
	var counts []string
	for i, p := range s.Matrix {
		key := "matrix." + p.Path
		if seen[p.Path] {
			return nil, c.fail(key, "given twice")
		}
		seen[p.Path] = true
		f, reason := paramField(s, p.Path)
		if reason != "" {
			return nil, c.fail(key, "%s", reason)
		}
		if len(p.Values) == 0 {
			return nil, c.fail(key, "list at least one value, e.g. [%s]", paramExample(f))
		}
		vals := make([]reflect.Value, len(p.Values))
		for j, text := range p.Values {
			var n *yaml.Node
			if node != nil {
				n = node(i, j)
			} else {
				n = textNode(text, f.Kind() == reflect.String)
			}
			vp := fmt.Sprintf("%s[%d]", key, j)
			if n.ShortTag() == "!!null" {
				return nil, c.fail(vp, "want a value, not nothing: a variant cannot leave a field to its default")
			}
			vals[j] = reflect.New(f.Type()).Elem()
			d := decoder{lines: map[string]int{}}
			if err := d.decode(n, vals[j], vp); err != nil {
				err.Line = c.line(vp)
				return nil, err
			}
		}
		values = append(values, vals)
		total.Mul(total, big.NewInt(int64(len(vals))))
		counts = append(counts, strconv.Itoa(len(vals)))
	}
	if total.Cmp(big.NewInt(MaxVariants)) > 0 {
		return nil, c.fail("matrix", "%s combinations (%s values): at most %d run in one matrix; list fewer values", total, strings.Join(counts, " × "), MaxVariants)
	}
	return values, nil
}

// textNode is the YAML node of a value written text: for a string field
// the text itself, whatever it looks like ("null", "1.0"); for any other
// the plain scalar, resolved as YAML resolves it in a file.
func textNode(text string, str bool) *yaml.Node {
	n := &yaml.Node{Kind: yaml.ScalarNode, Value: text}
	if str {
		n.Tag = "!!str"
	}
	return n
}

// paramText writes a parameter's value the way its field prints: what
// MarshalText gives when the type has it, and Go's shortest form of
// strings, bools and numbers otherwise.
func paramText(v reflect.Value) string {
	if m, ok := v.Interface().(encoding.TextMarshaler); ok {
		if b, err := m.MarshalText(); err == nil {
			return string(b)
		}
	}
	switch v.Kind() {
	case reflect.String:
		return v.String()
	case reflect.Bool:
		return strconv.FormatBool(v.Bool())
	case reflect.Int, reflect.Int8, reflect.Int16, reflect.Int32, reflect.Int64:
		return strconv.FormatInt(v.Int(), 10)
	case reflect.Uint, reflect.Uint8, reflect.Uint16, reflect.Uint32, reflect.Uint64:
		return strconv.FormatUint(v.Uint(), 10)
	case reflect.Float32, reflect.Float64:
		return strconv.FormatFloat(v.Float(), 'g', -1, v.Type().Bits())
	}
	return fmt.Sprint(v.Interface())
}

// paramExample is a list of two values for a field like f, for messages.
func paramExample(f reflect.Value) string {
	switch f.Interface().(type) {
	case Duration:
		return "5m, 15m"
	case Size:
		return "64KiB, 256KiB"
	}
	switch f.Kind() {
	case reflect.Bool:
		return "false, true"
	case reflect.Float32, reflect.Float64:
		return "0.1, 0.5"
	case reflect.String:
		return "a, b"
	}
	return "1, 2"
}

// paramField finds the field that path names in s: YAML field names
// joined by dots, each with any list indexes after it, as in
// "rollout.waves[1].percentage". Because it walks the types by their yaml
// tags, a field added to a scenario type can be varied without more code.
// reason says why path names no field a matrix can vary.
func paramField(s *Scenario, path string) (f reflect.Value, reason string) {
	const bad = "not a parameter path: write field names and list indexes the way errors name them, e.g. fleet[0].count or rollout.image_size"
	v := reflect.ValueOf(s).Elem()
	at, rest := "", path
	for {
		end := strings.IndexAny(rest, ".[")
		if end < 0 {
			end = len(rest)
		}
		name := rest[:end]
		rest = rest[end:]
		if !isFieldName(name) {
			return reflect.Value{}, bad
		}
		switch {
		case v.Kind() == reflect.Struct:
			if at == "" && name == "name" {
				return reflect.Value{}, "a variant's name is the scenario's followed by its values; vary another field"
			}
			if at == "" && name == "matrix" {
				return reflect.Value{}, "a matrix cannot vary itself"
			}
			i, names := yamlField(v.Type(), name)
			if i < 0 {
				r := fmt.Sprintf("%q is not a %s field", name, typeNouns[v.Type()])
				if near := nearest(name, names); near != "" {
					r += fmt.Sprintf(" (did you mean %q?)", near)
				}
				return reflect.Value{}, r
			}
			v = v.Field(i)
		case v.Kind() == reflect.Slice:
			return reflect.Value{}, fmt.Sprintf("%s is a list: give an index, e.g. %s[0]", at, at)
		case v.Kind() == reflect.Map:
			return reflect.Value{}, fmt.Sprintf("%s is a mapping: a matrix varies fields and list entries, not a mapping's entries", at)
		default:
			return reflect.Value{}, fmt.Sprintf("%s is a single value: it has no field %q", at, name)
		}
		at = joinPath(at, name)

		for strings.HasPrefix(rest, "[") {
			end := strings.IndexByte(rest, ']')
			if end < 0 {
				return reflect.Value{}, bad
			}
			digits := rest[1:end]
			rest = rest[end+1:]
			if digits == "" || strings.Trim(digits, "0123456789") != "" || (digits[0] == '0' && digits != "0") {
				return reflect.Value{}, bad
			}
			if v.Kind() != reflect.Slice {
				return reflect.Value{}, fmt.Sprintf("%s is not a list", at)
			}
			i, err := strconv.Atoi(digits)
			if err != nil || i >= v.Len() {
				return reflect.Value{}, fmt.Sprintf("%s[%s] is out of range: %s has %s", at, digits, at, countOf(v.Len(), v.Type().Elem()))
			}
			v = v.Index(i)
			at = fmt.Sprintf("%s[%d]", at, i)
		}
		if rest == "" {
			break
		}
		if rest[0] != '.' {
			return reflect.Value{}, bad
		}
		rest = rest[1:]
	}

	switch {
	case isParam(v.Type()):
		return v, ""
	case v.Kind() == reflect.Struct:
		_, names := yamlField(v.Type(), "")
		return reflect.Value{}, fmt.Sprintf("%s is a %s: name one of its fields (%s)", at, typeNouns[v.Type()], strings.Join(names, ", "))
	case v.Kind() == reflect.Slice:
		return reflect.Value{}, fmt.Sprintf("%s is a list: give an index, e.g. %s[0]", at, at)
	case v.Kind() == reflect.Map:
		return reflect.Value{}, fmt.Sprintf("%s is a mapping: a matrix varies fields and list entries, not a mapping's entries", at)
	}
	return reflect.Value{}, fmt.Sprintf("%s cannot be varied", at)
}

// isFieldName: the YAML names of the scenario types are lower snake case.
func isFieldName(s string) bool {
	if s == "" || s[0] < 'a' || s[0] > 'z' {
		return false
	}
	return strings.Trim(s, "abcdefghijklmnopqrstuvwxyz0123456789_") == ""
}

// yamlField returns the index of t's field called name in YAML (-1 when
// none is), and the YAML names of all its fields.
func yamlField(t reflect.Type, name string) (index int, names []string) {
	index = -1
	for i := range t.NumField() {
		n, _, _ := strings.Cut(t.Field(i).Tag.Get("yaml"), ",")
		if n == "" || n == "-" {
			continue
		}
		if n == name {
			index = i
		}
		names = append(names, n)
	}
	return index, names
}

// isParam: a matrix can vary a field of type t, a single value that the
// decoder reads from a scalar.
func isParam(t reflect.Type) bool {
	if reflect.PointerTo(t).Implements(unmarshalerType) {
		return true
	}
	switch t.Kind() {
	case reflect.String, reflect.Bool,
		reflect.Int, reflect.Int8, reflect.Int16, reflect.Int32, reflect.Int64,
		reflect.Uint, reflect.Uint8, reflect.Uint16, reflect.Uint32, reflect.Uint64,
		reflect.Float32, reflect.Float64:
		return true
	}
	return false
}

// countOf says "2 cohorts", "1 wave", "0 values".
func countOf(n int, elem reflect.Type) string {
	noun := typeNouns[elem]
	if noun == "" {
		noun = "value"
	}
	if n != 1 {
		noun += "s"
	}
	return strconv.Itoa(n) + " " + noun
}

// clone copies s deeply: the copy shares no list or mapping with s.
func (s *Scenario) clone() *Scenario {
	c := deepCopy(reflect.ValueOf(s).Elem()).Interface().(Scenario)
	return &c
}

// deepCopy copies v and everything it refers to. Reflection rather than a
// hand-written copy so that a field added to a scenario type is copied
// too; nil lists and mappings stay nil.
func deepCopy(v reflect.Value) reflect.Value {
	switch v.Kind() {
	case reflect.Struct:
		out := reflect.New(v.Type()).Elem()
		out.Set(v)
		for i := range v.NumField() {
			if v.Type().Field(i).IsExported() {
				out.Field(i).Set(deepCopy(v.Field(i)))
			}
		}
		return out
	case reflect.Slice:
		if v.IsNil() {
			return v
		}
		out := reflect.MakeSlice(v.Type(), v.Len(), v.Len())
		for i := range v.Len() {
			out.Index(i).Set(deepCopy(v.Index(i)))
		}
		return out
	case reflect.Map:
		if v.IsNil() {
			return v
		}
		out := reflect.MakeMapWithSize(v.Type(), v.Len())
		for it := v.MapRange(); it.Next(); {
			out.SetMapIndex(deepCopy(it.Key()), deepCopy(it.Value()))
		}
		return out
	case reflect.Pointer:
		if v.IsNil() {
			return v
		}
		out := reflect.New(v.Type().Elem())
		out.Elem().Set(deepCopy(v.Elem()))
		return out
	case reflect.Interface, reflect.Chan, reflect.Func, reflect.UnsafePointer:
		// The scenario types are plain data; a field like this would be
		// shared between copies without anyone noticing.
		panic("scenarios: cannot copy a field of type " + v.Type().String())
	}
	return v
}

// decodeMatrix reads the matrix: a mapping of parameter paths to lists of
// single values, kept in the file's order. The values are checked against
// their fields once the whole scenario is read (checkMatrix), since the
// matrix may come before the fields it varies.
func (d *decoder) decodeMatrix(n *yaml.Node, v reflect.Value, path string) *Error {
	if n.Kind != yaml.MappingNode {
		return &Error{Line: n.Line, Path: path, Reason: fmt.Sprintf("want a mapping of parameters to lists of values, e.g. fleet[0].count: [1000, 5000], not a %s", kindName(n.Kind))}
	}
	pairs, err := d.pairs(n, path)
	if err != nil {
		return err
	}
	m := make(Matrix, 0, len(pairs))
	d.matrixNodes = d.matrixNodes[:0]
	for _, p := range pairs {
		kp := path + "." + p.key.Value
		d.lines[kp] = p.key.Line
		list := resolveAlias(p.val)
		if list.Kind != yaml.SequenceNode {
			return &Error{Line: p.key.Line, Path: kp, Reason: fmt.Sprintf("want a list of the values to run with, e.g. [5m, 15m], not a %s", kindName(list.Kind))}
		}
		param := MatrixParam{Path: p.key.Value, Values: make([]string, len(list.Content))}
		nodes := make([]*yaml.Node, len(list.Content))
		for i, item := range list.Content {
			ip := fmt.Sprintf("%s[%d]", kp, i)
			d.lines[ip] = item.Line
			if d.visited++; d.visited > maxVisits {
				return &Error{Line: item.Line, Path: ip, Reason: "the file expands to too many values (aliases within aliases?)"}
			}
			item = resolveAlias(item)
			if item.Kind != yaml.ScalarNode {
				return &Error{Line: item.Line, Path: ip, Reason: fmt.Sprintf("want a single value, not a %s", kindName(item.Kind))}
			}
			param.Values[i], nodes[i] = item.Value, item
		}
		m = append(m, param)
		d.matrixNodes = append(d.matrixNodes, nodes)
	}
	v.Set(reflect.ValueOf(m))
	return nil
}

// checkMatrix checks s's matrix against the rest of s, decoding each value
// from its node in the file so that it reads exactly as the field would,
// and rewrites the values the way their fields print.
func (d *decoder) checkMatrix(s *Scenario) *Error {
	if len(s.Matrix) == 0 {
		return nil
	}
	values, err := s.matrixValues(checker{d.line}, func(i, j int) *yaml.Node { return d.matrixNodes[i][j] })
	if err != nil {
		return err
	}
	for i, vals := range values {
		for j, v := range vals {
			s.Matrix[i].Values[j] = paramText(v)
		}
	}
	return nil
}

// MarshalJSON writes m as a JSON object in m's order, each value a number
// or a boolean when its text reads as one and a string otherwise, so that
// Parse reads the output back as the same matrix.
func (m Matrix) MarshalJSON() ([]byte, error) {
	var b bytes.Buffer
	b.WriteByte('{')
	for i, p := range m {
		if i > 0 {
			b.WriteByte(',')
		}
		key, err := json.Marshal(p.Path)
		if err != nil {
			return nil, err
		}
		b.Write(key)
		b.WriteString(":[")
		for j, v := range p.Values {
			if j > 0 {
				b.WriteByte(',')
			}
			if plainScalar(v) {
				b.WriteString(v)
				continue
			}
			s, err := json.Marshal(v)
			if err != nil {
				return nil, err
			}
			b.Write(s)
		}
		b.WriteByte(']')
	}
	b.WriteByte('}')
	return b.Bytes(), nil
}

// MarshalYAML writes m as a mapping in m's order, quoting the values that
// MarshalJSON writes as strings.
func (m Matrix) MarshalYAML() (any, error) {
	n := &yaml.Node{Kind: yaml.MappingNode}
	for _, p := range m {
		list := &yaml.Node{Kind: yaml.SequenceNode, Style: yaml.FlowStyle}
		for _, v := range p.Values {
			item := &yaml.Node{Kind: yaml.ScalarNode, Value: v}
			if !plainScalar(v) {
				item.Tag = "!!str"
			}
			list.Content = append(list.Content, item)
		}
		n.Content = append(n.Content, &yaml.Node{Kind: yaml.ScalarNode, Value: p.Path}, list)
	}
	return n, nil
}

// plainScalar: text is a JSON number or boolean, which YAML reads
// unquoted as the same number or boolean.
func plainScalar(text string) bool {
	if text == "true" || text == "false" {
		return true
	}
	if text == "" || (text[0] != '-' && (text[0] < '0' || text[0] > '9')) {
		return false
	}
	var n json.Number
	return json.Unmarshal([]byte(text), &n) == nil
}

// paramPathPattern is the schema's regular expression for parameter
// paths.
const paramPathPattern = `^[a-z][a-z0-9_]*(\[(0|[1-9][0-9]*)\])*(\.[a-z][a-z0-9_]*(\[(0|[1-9][0-9]*)\])*)*$`

// JSONSchema describes Matrix to invopop/jsonschema: an object whose keys
// are parameter paths and whose values are lists of single values. Which
// paths exist, and what their values may be, Parse decides.
func (Matrix) JSONSchema() *jsonschema.Schema {
	values := &jsonschema.Schema{
		Type:     "array",
		MinItems: ptr(uint64(1)),
		Items: &jsonschema.Schema{AnyOf: []*jsonschema.Schema{
			{Type: "string"}, {Type: "number"}, {Type: "boolean"},
		}},
	}
	return &jsonschema.Schema{
		Type:        "object",
		Description: "Parameters to vary, each a field's path (e.g. fleet[0].count) with the values it takes; the scenario runs once per combination.",
		// A pattern property rather than propertyNames: the key's syntax
		// and the value's type in one place, and unknown keys refused.
		PatternProperties:    map[string]*jsonschema.Schema{paramPathPattern: values},
		AdditionalProperties: jsonschema.FalseSchema,
		Examples:             []any{map[string]any{"fleet[0].count": []any{1000, 5000}, "fleet[0].poll": []any{"5m", "15m"}}},
	}
}
