package scenarios

import (
	_ "embed"
	"encoding/json"
	"fmt"
	"go/ast"
	"go/doc"
	"go/parser"
	"go/token"
	"os"
	"path/filepath"
	"reflect"
	"slices"
	"strconv"
	"strings"

	"github.com/fleetsim/fleetsim/devicemodel"
	"github.com/fleetsim/fleetsim/devicemodel/mcuboot"
	"github.com/invopop/jsonschema"
)

//go:generate go run ./internal/schemagen

// SchemaFile is the JSON Schema of scenario files, beside this package's
// sources; editors that validate YAML against a schema (the YAML language
// server, for one) can point at it.
const SchemaFile = "scenario.schema.json"

//go:embed scenario.schema.json
var schemaJSON []byte

// Schema returns the JSON Schema of scenario files that this build ships
// (SchemaFile, made by GenerateSchema).
func Schema() []byte { return slices.Clone(schemaJSON) }

// schemaID is where the schema says it lives.
const schemaID = "https://github.com/fleetsim/fleetsim/scenarios/scenario.schema.json"

// GenerateSchema reflects the scenario types into a JSON Schema, indented,
// with the doc comments of the Go sources in srcDir (this package's
// directory) as descriptions. go generate writes it to SchemaFile, and a
// test checks that the shipped file is what it returns.
//
// The schema says what the types say, plus the lists Validate checks
// against (boards, metric names, firmware behaviours), so that an editor
// completes them; Validate remains the authority on everything else.
func GenerateSchema(srcDir string) ([]byte, error) {
	comments, err := fieldDocs(srcDir)
	if err != nil {
		return nil, err
	}
	r := &jsonschema.Reflector{
		// The json tags carry omitempty, which decides what is required;
		// a test checks that they name every field as the yaml tags do.
		FieldNameTag: "json",
		CommentMap:   comments,
	}
	s := r.Reflect(&Scenario{})
	s.ID = schemaID
	s.Title = "fleetsim scenario"
	s.Description = "A fleet run for fleetsim: devices, a rollout, faults and expectations. Made by go generate ./scenarios/ from scenarios/scenario.go."

	def := func(name string) (*jsonschema.Schema, error) {
		d, ok := s.Definitions[name]
		if !ok {
			return nil, fmt.Errorf("scenarios: schema has no definition %q", name)
		}
		return d, nil
	}
	prop := func(d *jsonschema.Schema, name string) (*jsonschema.Schema, error) {
		p, ok := d.Properties.Get(name)
		if !ok || p == nil {
			return nil, fmt.Errorf("scenarios: schema has no property %q", name)
		}
		return p, nil
	}

	scen, err := def("Scenario")
	if err != nil {
		return nil, err
	}
	expect, err := prop(scen, "expect")
	if err != nil {
		return nil, err
	}
	expect.PropertyNames = &jsonschema.Schema{Enum: toAny(MetricNames())}
	if expect.AdditionalProperties != nil {
		expect.AdditionalProperties.MinItems = ptr(uint64(1))
	}

	cohort, err := def("Cohort")
	if err != nil {
		return nil, err
	}
	board, err := prop(cohort, "board")
	if err != nil {
		return nil, err
	}
	board.Enum = toAny(agentBoards())
	strategy, err := prop(cohort, "strategy")
	if err != nil {
		return nil, err
	}
	strategy.Enum = toAny(mcuboot.StrategyNames())
	bl, err := prop(cohort, "bootloader")
	if err != nil {
		return nil, err
	}
	bl.Enum = toAny(Bootloaders)
	fw, err := prop(cohort, "firmware")
	if err != nil {
		return nil, err
	}
	fw.PropertyNames = &jsonschema.Schema{Pattern: `^(default|[0-9]+)$`}
	fw.AdditionalProperties = &jsonschema.Schema{Type: "string", Enum: toAny(behaviourNames())}

	out, err := json.MarshalIndent(s, "", "  ")
	if err != nil {
		return nil, err
	}
	return append(out, '\n'), nil
}

// behaviourNames lists devicemodel's firmware behaviours.
func behaviourNames() []string {
	var names []string
	for b := devicemodel.Behaviour(0); ; b++ {
		if _, err := devicemodel.ParseBehaviour(b.String()); err != nil {
			return names // past the last: String gives "behaviour(N)"
		}
		names = append(names, b.String())
	}
}

func toAny(ss []string) []any {
	out := make([]any, len(ss))
	for i, s := range ss {
		out[i] = s
	}
	return out
}

func ptr[T any](v T) *T { return &v }

// fieldDocs reads the doc comments of the exported types and their fields
// in the package's non-test sources in dir, keyed as jsonschema's
// CommentMap wants them ("pkgpath.Type" and "pkgpath.Type.Field"). Field
// docs start with the field's YAML name rather than its Go name, the way a
// scenario's author sees it. (jsonschema's AddGoComments would walk
// subdirectories too, reading other packages' sources.)
func fieldDocs(dir string) (map[string]string, error) {
	pkg := reflect.TypeFor[Scenario]().PkgPath()
	entries, err := os.ReadDir(dir)
	if err != nil {
		return nil, err
	}
	fset := token.NewFileSet()
	docs := map[string]string{}
	for _, e := range entries {
		name := e.Name()
		if e.IsDir() || !strings.HasSuffix(name, ".go") || strings.HasSuffix(name, "_test.go") {
			continue
		}
		f, err := parser.ParseFile(fset, filepath.Join(dir, name), nil, parser.ParseComments)
		if err != nil {
			return nil, err
		}
		for _, decl := range f.Decls {
			gd, ok := decl.(*ast.GenDecl)
			if !ok || gd.Tok != token.TYPE {
				continue
			}
			for _, spec := range gd.Specs {
				ts := spec.(*ast.TypeSpec)
				if !ts.Name.IsExported() {
					continue
				}
				text := ts.Doc.Text()
				if text == "" && len(gd.Specs) == 1 {
					text = gd.Doc.Text()
				}
				var p doc.Package
				docs[pkg+"."+ts.Name.Name] = oneLine(p.Synopsis(text))
				st, ok := ts.Type.(*ast.StructType)
				if !ok {
					continue
				}
				for _, field := range st.Fields.List {
					text := field.Doc.Text()
					if text == "" || len(field.Names) != 1 {
						continue
					}
					goName := field.Names[0].Name
					docs[pkg+"."+ts.Name.Name+"."+goName] = oneLine(withYAMLName(text, goName, field.Tag))
				}
			}
		}
	}
	return docs, nil
}

// withYAMLName replaces a doc comment's leading Go field name by the
// field's YAML name.
func withYAMLName(text, goName string, tag *ast.BasicLit) string {
	if tag == nil {
		return text
	}
	raw, err := strconv.Unquote(tag.Value)
	if err != nil {
		return text
	}
	yamlName, _, _ := strings.Cut(reflect.StructTag(raw).Get("yaml"), ",")
	if rest, ok := strings.CutPrefix(text, goName+" "); ok && yamlName != "" {
		return yamlName + " " + rest
	}
	return text
}

func oneLine(s string) string { return strings.Join(strings.Fields(s), " ") }
