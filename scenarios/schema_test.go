package scenarios_test

import (
	"bytes"
	"encoding/json"
	"reflect"
	"strings"
	"testing"

	"github.com/fleetsim/fleetsim/scenarios"
)

// TestSchemaUpToDate: the shipped schema is what the types make now.
func TestSchemaUpToDate(t *testing.T) {
	got, err := scenarios.GenerateSchema(".")
	if err != nil {
		t.Fatal(err)
	}
	if !bytes.Equal(got, scenarios.Schema()) {
		t.Fatalf("%s is out of date: run go generate ./scenarios/", scenarios.SchemaFile)
	}
}

// scenarioTypes are the structs a scenario file is made of.
var scenarioTypes = []reflect.Type{
	reflect.TypeFor[scenarios.Scenario](),
	reflect.TypeFor[scenarios.Cohort](),
	reflect.TypeFor[scenarios.Rollout](),
	reflect.TypeFor[scenarios.Wave](),
	reflect.TypeFor[scenarios.Rotation](),
	reflect.TypeFor[scenarios.Fault](),
	reflect.TypeFor[scenarios.Gateway](),
}

// TestSchemaMentionsEveryField: every field of every scenario type has a
// property, with a description, and no property is left over.
func TestSchemaMentionsEveryField(t *testing.T) {
	var schema struct {
		Defs map[string]struct {
			Properties           map[string]struct{ Description string }
			AdditionalProperties *bool
		} `json:"$defs"`
	}
	if err := json.Unmarshal(scenarios.Schema(), &schema); err != nil {
		t.Fatal(err)
	}
	for _, typ := range scenarioTypes {
		def, ok := schema.Defs[typ.Name()]
		if !ok {
			t.Errorf("the schema has no definition of %s", typ.Name())
			continue
		}
		if def.AdditionalProperties == nil || *def.AdditionalProperties {
			t.Errorf("%s: the schema allows unknown fields, which Parse refuses", typ.Name())
		}
		for i := range typ.NumField() {
			name := yamlName(typ.Field(i))
			p, ok := def.Properties[name]
			switch {
			case !ok:
				t.Errorf("%s.%s: the schema has no property %q", typ.Name(), typ.Field(i).Name, name)
			case p.Description == "":
				t.Errorf("%s.%s: no description (a doc comment on the field)", typ.Name(), typ.Field(i).Name)
			}
		}
		if len(def.Properties) != typ.NumField() {
			t.Errorf("%s: %d properties for %d fields", typ.Name(), len(def.Properties), typ.NumField())
		}
	}
}

// TestTagsAgree: the schema is made from the json tags and Parse reads the
// yaml tags; they must name every field alike.
func TestTagsAgree(t *testing.T) {
	for _, typ := range scenarioTypes {
		for i := range typ.NumField() {
			f := typ.Field(i)
			j, _, _ := strings.Cut(f.Tag.Get("json"), ",")
			if y := yamlName(f); y == "" || y != j {
				t.Errorf("%s.%s: yaml name %q, json name %q", typ.Name(), f.Name, y, j)
			}
		}
	}
}

func yamlName(f reflect.StructField) string {
	name, _, _ := strings.Cut(f.Tag.Get("yaml"), ",")
	return name
}
