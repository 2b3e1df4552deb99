package gateway

import (
	"encoding/json"
	"maps"
	"net/http"
	"sync"
	"time"

	"github.com/fleetsim/fleetsim/gateway/store"
)

// configValue is one fioconfig file as devices read it.
type configValue struct {
	Value       string   `json:"Value"`
	Unencrypted bool     `json:"Unencrypted"`
	OnChanged   []string `json:"OnChanged,omitempty"`
}

// configSet is config scopes merged, widest first: a file of a narrower
// scope replaces the same file of a wider one, but z-50-fioctl.toml is
// merged section by section when the answer is made.
type configSet struct {
	files   map[string]configValue
	fioctl  []string // z-50-fioctl.toml of each scope, widest first
	updated time.Time
}

// add merges the files of the next narrower scope, stored at updated.
func (c *configSet) add(files []store.ConfigFile, updated time.Time) {
	if updated.After(c.updated) {
		c.updated = updated
	}
	if c.files == nil {
		c.files = make(map[string]configValue, len(files))
	}
	for _, f := range files {
		c.files[f.Name] = configValue{Value: f.Value, Unencrypted: f.Unencrypted, OnChanged: f.OnChanged}
		if f.Name == fioctlFile {
			c.fioctl = append(c.fioctl, f.Value)
		}
	}
}

// clone returns a set that add does not share with c.
func (c *configSet) clone() configSet {
	return configSet{files: maps.Clone(c.files), fioctl: c.fioctl[:len(c.fioctl):len(c.fioctl)], updated: c.updated}
}

// configAnswer is GET /config for a device: 204 when body is nil, else the
// body, sent with Last-Modified.
type configAnswer struct {
	body []byte
	// updated is the last change of the scopes answered, to the second (HTTP
	// dates have no finer resolution).
	updated      time.Time
	lastModified string // updated as an HTTP date
}

func (c *configSet) answer() (configAnswer, error) {
	if len(c.files) == 0 {
		return configAnswer{}, nil
	}
	files := c.files
	if len(c.fioctl) > 1 {
		files = maps.Clone(files)
		v := files[fioctlFile]
		v.Value = mergeFioctl(c.fioctl)
		files[fioctlFile] = v
	}
	body, err := json.Marshal(files)
	if err != nil {
		return configAnswer{}, err
	}
	updated := c.updated.Truncate(time.Second)
	return configAnswer{body: body, updated: updated, lastModified: updated.UTC().Format(http.TimeFormat)}, nil
}

// wideConfigs is the gateway's memory of the factory scope merged with
// each group's (or with no group): every check-in reads them, and they
// change only when an operator writes config files. An entry holds while
// the store's config generation is the one it was read at, so a write is
// seen by the next check-in and a restart starts with none.
//
// Groups are the operator's, a few per fleet; the gateway keeps at most
// maxWideConfigs and forgets one when it needs room for another.
type wideConfigs struct {
	mu     sync.Mutex
	groups map[string]*wideConfig // by group, "" for devices in none
}

const maxWideConfigs = 256

// wideConfig is the factory and group scopes of one group merged, and
// the answer for a device of the group without files of its own.
type wideConfig struct {
	gen    uint64 // the store's config generation when it was read
	set    configSet
	answer configAnswer
}

// deviceConfig answers GET /config for device uuid of group.
//
// Errors: the store's.
func (g *Gateway) deviceConfig(group, uuid string) (configAnswer, error) {
	wide, err := g.wideConfig(group)
	if err != nil {
		return configAnswer{}, err
	}
	files, updated, ok, err := g.store.Config(store.ConfigScope{Kind: store.ScopeDevice, Name: uuid})
	if err != nil {
		return configAnswer{}, err
	}
	if !ok {
		return wide.answer, nil
	}
	set := wide.set.clone()
	set.add(files, updated)
	return set.answer()
}

func (g *Gateway) wideConfig(group string) (*wideConfig, error) {
	// Read before the store is: a write committed meanwhile moves the
	// generation past the one this entry is kept under.
	gen := g.store.ConfigGeneration()
	c := &g.configs
	c.mu.Lock()
	wc := c.groups[group]
	c.mu.Unlock()
	if wc != nil && wc.gen == gen {
		return wc, nil
	}
	wc = &wideConfig{gen: gen}
	scopes := []store.ConfigScope{{Kind: store.ScopeFactory}}
	if group != "" {
		scopes = append(scopes, store.ConfigScope{Kind: store.ScopeGroup, Name: group})
	}
	for _, s := range scopes {
		files, updated, ok, err := g.store.Config(s)
		if err != nil {
			return nil, err
		}
		if ok {
			wc.set.add(files, updated)
		}
	}
	var err error
	if wc.answer, err = wc.set.answer(); err != nil {
		return nil, err
	}
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.groups == nil {
		c.groups = make(map[string]*wideConfig)
	}
	if old, ok := c.groups[group]; ok && old.gen > gen {
		return wc, nil // a newer reader was first
	}
	if _, ok := c.groups[group]; !ok && len(c.groups) >= maxWideConfigs {
		for k := range c.groups {
			delete(c.groups, k)
			break
		}
	}
	c.groups[group] = wc
	return wc, nil
}
