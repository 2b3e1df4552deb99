package lint

import (
	"encoding/json"
	"go/ast"
	"go/parser"
	"go/token"
	"os/exec"
	"path/filepath"
	"slices"
	"sort"
	"strconv"
	"strings"
	"testing"
)

const module = "github.com/fleetsim/fleetsim"

type pkg struct {
	ImportPath string
	Dir        string
	GoFiles    []string
	Imports    []string
}

func listPackages(t *testing.T) []pkg {
	t.Helper()
	cmd := exec.Command("go", "list", "-json", module+"/...")
	cmd.Dir = "../.."
	out, err := cmd.Output()
	if err != nil {
		t.Fatalf("go list: %v", err)
	}
	var pkgs []pkg
	dec := json.NewDecoder(strings.NewReader(string(out)))
	for dec.More() {
		var p pkg
		if err := dec.Decode(&p); err != nil {
			t.Fatalf("decoding go list output: %v", err)
		}
		pkgs = append(pkgs, p)
	}
	if len(pkgs) == 0 {
		t.Fatal("go list found no packages")
	}
	return pkgs
}

// rel strips the module path: "github.com/fleetsim/fleetsim/agent" -> "agent".
func rel(path string) string {
	if path == module {
		return "."
	}
	return strings.TrimPrefix(path, module+"/")
}

// under reports whether package path p is pkg or one of its subpackages.
func under(p, pkg string) bool { return p == pkg || strings.HasPrefix(p, pkg+"/") }

// boundary says which of our packages a package (and its subpackages) may import.
type boundary struct {
	pkg     string
	allowed []string // prefixes of our packages it may import, besides its own subtree
	denied  []string // prefixes it must never import (used where the rule is a deny list)
	except  []string // packages under a denied prefix it may import all the same
}

// The rules of design/architecture.md "Packages": dependencies point downwards only.
var boundaries = []boundary{
	{pkg: "flashsim", allowed: []string{}},
	// sigmemo is a leaf: a memo of pure signature checks, keyed by content.
	{pkg: "internal/sigmemo", allowed: []string{}},
	{pkg: "devicemodel/mcuboot", allowed: []string{"flashsim", "internal/sigmemo"}},
	{pkg: "agent", denied: []string{"sim", "gateway", "scenarios", "k6", "cmd", "devicemodel/bootsweep"}},
	// The gateway checks uploaded firmware with MCUboot's image format: a
	// data format both sides share, not device behaviour.
	{pkg: "gateway", denied: []string{"sim", "devicemodel", "agent", "scenarios", "k6", "cmd"}, except: []string{"devicemodel/mcuboot/image"}},
	{pkg: "sim", denied: []string{"scenarios", "k6", "cmd"}},
	{pkg: "scenarios", denied: []string{"k6", "cmd"}},
}

func TestImportBoundaries(t *testing.T) {
	for _, p := range listPackages(t) {
		from := rel(p.ImportPath)
		for _, imp := range p.Imports {
			if !strings.HasPrefix(imp, module+"/") {
				continue
			}
			to := rel(imp)
			for _, b := range boundaries {
				if !under(from, b.pkg) || under(to, b.pkg) {
					continue
				}
				if b.allowed != nil {
					ok := false
					for _, a := range b.allowed {
						ok = ok || under(to, a)
					}
					if !ok {
						t.Errorf("%s imports %s: %s may import only %v", from, to, b.pkg, b.allowed)
					}
				}
				for _, d := range b.denied {
					if under(to, d) && !slices.Contains(b.except, to) {
						t.Errorf("%s imports %s: %s must never import %s", from, to, b.pkg, d)
					}
				}
			}
		}
	}
}

// purePackages take time, randomness, storage and network as arguments
// (style.md points 2 and 3): they may not reach for them.
var purePackages = []string{"flashsim", "devicemodel/mcuboot", "agent/tufnano", "sim", "gateway/rollout", "internal/sigmemo"}

// forbidden maps an import path to the identifiers of it a pure package may
// not use; "*" forbids the whole package.
var forbidden = map[string][]string{
	"time":         {"Now", "Since", "Until", "Sleep", "After", "AfterFunc", "Tick", "NewTimer", "NewTicker"},
	"math/rand":    {"*"},
	"math/rand/v2": {"Int", "IntN", "Int32", "Int32N", "Int64", "Int64N", "Uint", "UintN", "Uint32", "Uint32N", "Uint64", "Uint64N", "Float32", "Float64", "ExpFloat64", "NormFloat64", "Perm", "Shuffle", "N"},
	"crypto/rand":  {"*"},
	"os":           {"*"},
	"net":          {"*"},
	"net/http":     {"*"},
}

func TestPurePackages(t *testing.T) {
	checked := 0
	for _, p := range listPackages(t) {
		from := rel(p.ImportPath)
		pure := false
		for _, pp := range purePackages {
			pure = pure || under(from, pp)
		}
		if !pure {
			continue
		}
		for _, f := range p.GoFiles {
			checked++
			for _, v := range impurities(t, filepath.Join(p.Dir, f)) {
				t.Errorf("%s/%s: %s (pure packages take clocks, randomness, storage and network as arguments)", from, f, v)
			}
		}
	}
	if checked == 0 {
		t.Fatal("no pure package files were checked")
	}
}

func impurities(t *testing.T, path string) []string {
	t.Helper()
	fset := token.NewFileSet()
	f, err := parser.ParseFile(fset, path, nil, parser.SkipObjectResolution)
	if err != nil {
		t.Fatalf("parsing %s: %v", path, err)
	}
	names := map[string]string{} // local name -> import path
	for _, imp := range f.Imports {
		ip, _ := strconv.Unquote(imp.Path.Value)
		if _, ok := forbidden[ip]; !ok {
			continue
		}
		name := ip[strings.LastIndex(ip, "/")+1:]
		if ip == "math/rand/v2" {
			name = "rand"
		}
		if imp.Name != nil {
			name = imp.Name.Name
		}
		if name == "_" {
			continue
		}
		names[name] = ip
	}
	var found []string
	ast.Inspect(f, func(n ast.Node) bool {
		sel, ok := n.(*ast.SelectorExpr)
		if !ok {
			return true
		}
		x, ok := sel.X.(*ast.Ident)
		if !ok {
			return true
		}
		ip, ok := names[x.Name]
		if !ok {
			return true
		}
		for _, id := range forbidden[ip] {
			if id == "*" || id == sel.Sel.Name {
				found = append(found, fset.Position(sel.Pos()).String()+": uses "+ip+"."+sel.Sel.Name)
			}
		}
		return true
	})
	sort.Strings(found)
	return found
}

// TestImpuritiesDetects keeps the purity check honest: it must flag clock
// reads and global randomness, and must not flag types or seeded sources.
func TestImpuritiesDetects(t *testing.T) {
	got := impurities(t, "testdata/impure.go.txt")
	want := []string{"time.Now", "math/rand/v2.IntN", "crypto/rand.Read"} // in source order
	if len(got) != len(want) {
		t.Fatalf("impurities = %q, want %d findings %v", got, len(want), want)
	}
	for i, w := range want {
		if !strings.HasSuffix(got[i], "uses "+w) {
			t.Errorf("finding %d = %q, want one ending in %q", i, got[i], w)
		}
	}
}
