package tufnano

import (
	"crypto/sha256"
	"errors"
	"fmt"
	"reflect"
	"testing"
	"time"

	"github.com/theupdateframework/go-tuf/v2/metadata"
)

func TestDelegations(t *testing.T) {
	type tc struct {
		name   string
		build  func(r *testRepo)
		target string
		want   Kind     // KindNone: found
		role   string   // the role expected to list it
		fetch  []string // delegated role files fetched, in order
	}
	cases := []tc{
		{"first matching role that lists it", func(r *testRepo) {
			r.delegate(RoleTargets, metadata.DelegatedRole{Name: "a", Paths: []string{"fw/*"}})
			r.delegate(RoleTargets, metadata.DelegatedRole{Name: "b", Paths: []string{"fw/*"}})
			r.addTarget("b", "fw/x.bin", []byte("x"))
		}, "fw/x.bin", KindNone, "b", []string{"a.json", "b.json"}},
		{"pre-order: a child before a sibling", func(r *testRepo) {
			r.delegate(RoleTargets, metadata.DelegatedRole{Name: "a", Paths: []string{"*"}})
			r.delegate(RoleTargets, metadata.DelegatedRole{Name: "b", Paths: []string{"*"}})
			r.delegate("a", metadata.DelegatedRole{Name: "a1", Paths: []string{"*"}})
			r.addTarget("a1", "x", []byte("from a1"))
			r.addTarget("b", "x", []byte("from b"))
		}, "x", KindNone, "a1", []string{"a.json", "a1.json"}},
		{"terminating role stops the search", func(r *testRepo) {
			r.delegate(RoleTargets, metadata.DelegatedRole{Name: "a", Paths: []string{"fw/*"}, Terminating: true})
			r.delegate(RoleTargets, metadata.DelegatedRole{Name: "b", Paths: []string{"fw/*"}})
			r.addTarget("b", "fw/x.bin", []byte("x"))
		}, "fw/x.bin", KindNotFound, "", []string{"a.json"}},
		{"pattern matches one segment per segment", func(r *testRepo) {
			r.delegate(RoleTargets, metadata.DelegatedRole{Name: "a", Paths: []string{"fw/*.bin"}})
			r.addTarget("a", "fw/sub/x.bin", []byte("x"))
		}, "fw/sub/x.bin", KindNotFound, "", nil},
		{"role not trusted for the path", func(r *testRepo) {
			r.delegate(RoleTargets, metadata.DelegatedRole{Name: "a", Paths: []string{"app/*"}})
			r.addTarget("a", "fw/x.bin", []byte("x"))
		}, "fw/x.bin", KindNotFound, "", nil},
		{"path hash prefix", func(r *testRepo) {
			h := sha256.Sum256([]byte("fw/x.bin"))
			r.delegate(RoleTargets, metadata.DelegatedRole{Name: "other", PathHashPrefixes: []string{fmt.Sprintf("%02x", h[0]^0xff)}})
			r.delegate(RoleTargets, metadata.DelegatedRole{Name: "mine", PathHashPrefixes: []string{fmt.Sprintf("%02x", h[0])}})
			r.addTarget("mine", "fw/x.bin", []byte("x"))
		}, "fw/x.bin", KindNone, "mine", []string{"mine.json"}},
		{"delegated role signed by the wrong key", func(r *testRepo) {
			r.delegate(RoleTargets, metadata.DelegatedRole{Name: "a", Paths: []string{"*"}})
			r.addTarget("a", "x", []byte("x"))
			r.signers["a"] = []*testSigner{newSigner(r.t, r.kind, "intruder")}
		}, "x", KindThreshold, "", []string{"a.json"}},
		{"expired delegated role", func(r *testRepo) {
			r.delegate(RoleTargets, metadata.DelegatedRole{Name: "a", Paths: []string{"*"}})
			r.addTarget("a", "x", []byte("x"))
			r.delegated["a"].Signed.Expires = epoch.Add(-time.Hour)
		}, "x", KindFreeze, "", []string{"a.json"}},
		{"cycle is visited once", func(r *testRepo) {
			r.delegate(RoleTargets, metadata.DelegatedRole{Name: "a", Paths: []string{"*"}})
			r.delegate("a", metadata.DelegatedRole{Name: "b", Paths: []string{"*"}})
			r.targetsOf("b").Signed.Delegations = &metadata.Delegations{
				Keys:  r.targetsOf(RoleTargets).Signed.Delegations.Keys,
				Roles: []metadata.DelegatedRole{{Name: "a", KeyIDs: []string{r.signers["a"][0].id}, Threshold: 1, Paths: []string{"*"}}},
			}
		}, "x", KindNotFound, "", []string{"a.json", "b.json"}},
		{"too many delegations", func(r *testRepo) {
			parent := RoleTargets
			for i := 0; i < 40; i++ {
				name := fmt.Sprintf("r%02d", i)
				r.delegate(parent, metadata.DelegatedRole{Name: name, Paths: []string{"*"}})
				parent = name
			}
		}, "x", KindTooManyDelegations, "", nil},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			r := newTestRepo(t, KeyEd25519, false, false)
			c.build(r)
			r.publish()
			d := newDevice(r)
			cl, err := d.refresh(epoch)
			if err != nil {
				t.Fatal(err)
			}
			d.fetch.requests = nil
			info, err := cl.Target(c.target)
			if KindOf(err) != c.want {
				t.Fatalf("Target: %v, want kind %s", err, c.want)
			}
			if c.want == KindNone && info.Role != c.role {
				t.Errorf("listed by %q, want %q", info.Role, c.role)
			}
			if c.fetch != nil && !reflect.DeepEqual(d.fetch.requests, c.fetch) {
				t.Errorf("fetched %q, want %q", d.fetch.requests, c.fetch)
			}
		})
	}
}

// TestSuccinctHashBins delegates to 8 hash bins (TAP 15) and finds a target
// in the bin its path hashes to.
func TestSuccinctHashBins(t *testing.T) {
	r := newTestRepo(t, KeyEd25519, true, false)
	s := newSigner(t, KeyEd25519, "bins")
	sr := &metadata.SuccinctRoles{KeyIDs: []string{s.id}, Threshold: 1, BitLength: 3, NamePrefix: "bin"}
	r.targets.Signed.Delegations = &metadata.Delegations{Keys: map[string]*metadata.Key{s.id: s.pub}, SuccinctRoles: sr}
	for _, name := range sr.GetRoles() {
		r.delegated[name] = metadata.Targets(epoch.AddDate(0, 0, 30))
		r.signers[name] = []*testSigner{s}
	}
	paths := []string{"fw/a.bin", "fw/b.bin", "fw/c.bin", "app/d.bin"}
	for _, p := range paths {
		res := sr.GetRolesForTarget(p)
		r.addTarget(res[0].Name, p, []byte(p))
	}
	r.publish()
	d := newDevice(r)
	c, err := d.refresh(epoch)
	if err != nil {
		t.Fatal(err)
	}
	for _, p := range paths {
		d.fetch.requests = nil
		info, err := c.Target(p)
		if err != nil {
			t.Fatalf("%s: %v", p, err)
		}
		want := sr.GetRolesForTarget(p)[0].Name
		if info.Role != want {
			t.Errorf("%s listed by %s, want %s", p, info.Role, want)
		}
		if err := VerifyTarget(info, []byte(p)); err != nil {
			t.Error(err)
		}
	}
	if _, err := c.Target("fw/none.bin"); !errors.Is(err, ErrNotFound) {
		t.Errorf("absent target: %v", err)
	}
}

func TestMatchPath(t *testing.T) {
	for _, c := range []struct {
		pattern, path string
		want          bool
	}{
		{"*", "x", true},
		{"*", "a/b", false},
		{"*/*", "a/b", true},
		{"fw/*.bin", "fw/x.bin", true},
		{"fw/*.bin", "fw/x.hex", false},
		{"fw/*.bin", "fw/a/x.bin", false},
		{"fw/?.bin", "fw/x.bin", true},
		{"fw/?.bin", "fw/xy.bin", false},
		{"fw/[abc].bin", "fw/b.bin", true},
		{"fw/[!abc].bin", "fw/b.bin", false},
		{"fw/[!abc].bin", "fw/d.bin", true},
		{"fw/[a-c]*", "fw/cat", true},
		{"fw/[a-c]*", "fw/dog", false},
		{"fw/[]]", "fw/]", true},
		{"fw/[x", "fw/[x", true},
		{"*a*b*c", "xaybzc", true},
		{"*a*b*c", "xaybzcd", false},
		{"", "", true},
		{"a/", "a/", true},
	} {
		if got := matchPath(c.pattern, c.path); got != c.want {
			t.Errorf("matchPath(%q, %q) = %v, want %v", c.pattern, c.path, got, c.want)
		}
	}
}
