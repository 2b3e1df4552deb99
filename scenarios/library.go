package scenarios

import (
	"embed"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path"
	"slices"
	"strings"
	"sync"

	"gopkg.in/yaml.v3"
)

// library holds the built-in scenarios, one YAML file each, named after the
// scenario.
//
//go:embed library/*.yaml
var library embed.FS

// DefaultScenario is the built-in a run uses when told nothing else.
const DefaultScenario = "quick"

// ErrUnknownScenario: a name that is neither a file nor a built-in
// scenario.
var ErrUnknownScenario = errors.New("unknown scenario")

// Entry is one built-in scenario.
type Entry struct {
	// Name is what LoadBuiltin and Resolve take, e.g. "quick".
	Name string
	// Description is the scenario's description: field.
	Description string
	// Data is the scenario's YAML, as shipped.
	Data []byte
}

var builtins = sync.OnceValue(func() []Entry {
	files, _ := fs.Glob(library, "library/*.yaml") // the pattern is valid
	var out []Entry
	for _, f := range files {
		data, err := library.ReadFile(f)
		if err != nil {
			continue // cannot happen for an embedded file
		}
		var head struct {
			Description string `yaml:"description"`
		}
		_ = yaml.Unmarshal(data, &head) // TestBuiltinsParse checks them all
		out = append(out, Entry{
			Name:        strings.TrimSuffix(path.Base(f), ".yaml"),
			Description: strings.Join(strings.Fields(head.Description), " "),
			Data:        data,
		})
	}
	slices.SortFunc(out, func(a, b Entry) int { return strings.Compare(a.Name, b.Name) })
	return out
})

// Builtin lists the built-in scenarios, sorted by name. The entries are
// copies: callers may change them.
func Builtin() []Entry {
	es := slices.Clone(builtins())
	for i := range es {
		es[i].Data = slices.Clone(es[i].Data)
	}
	return es
}

// BuiltinNames lists the built-in scenarios' names, sorted.
func BuiltinNames() []string {
	var names []string
	for _, e := range builtins() {
		names = append(names, e.Name)
	}
	return names
}

// LoadBuiltin parses the built-in scenario called name, with overrides;
// its errors name the file as "NAME.yaml".
//
// Errors: ErrUnknownScenario (wrapped, listing the built-ins) for a name
// that is not built in.
func LoadBuiltin(name string, overrides ...Override) (*Scenario, error) {
	for _, e := range builtins() {
		if e.Name == name {
			return Parse(name+".yaml", e.Data, overrides...)
		}
	}
	return nil, fmt.Errorf("%w %q (built-in scenarios: %s)", ErrUnknownScenario, name, strings.Join(BuiltinNames(), ", "))
}

// Resolve finds the scenario a command line names: the file at arg when
// there is one, otherwise the built-in scenario called arg; the overrides
// apply to either (Parse).
//
// Errors: those of Load and Parse; the file's error when arg looks like a
// path (it has a directory or a .yaml/.yml suffix) but cannot be read;
// ErrUnknownScenario (wrapped, listing the built-ins) otherwise.
func Resolve(arg string, overrides ...Override) (*Scenario, error) {
	if info, err := os.Stat(arg); err == nil && !info.IsDir() {
		return Load(arg, overrides...)
	}
	if strings.ContainsAny(arg, `/\`) || strings.HasSuffix(arg, ".yaml") || strings.HasSuffix(arg, ".yml") {
		return Load(arg, overrides...) // says why the file cannot be read
	}
	s, err := LoadBuiltin(arg, overrides...)
	if errors.Is(err, ErrUnknownScenario) {
		return nil, fmt.Errorf("%w %q: no such file, nor a built-in scenario (built-ins: %s)", ErrUnknownScenario, arg, strings.Join(BuiltinNames(), ", "))
	}
	return s, err
}
