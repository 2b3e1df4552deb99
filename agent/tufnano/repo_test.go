package tufnano

import (
	"bytes"
	"crypto"
	"crypto/ecdsa"
	"crypto/ed25519"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/rsa"
	"crypto/sha256"
	"encoding/json"
	"fmt"
	"slices"
	"sort"
	"strconv"
	"sync"
	"testing"
	"time"

	"github.com/secure-systems-lab/go-securesystemslib/cjson"
	sigstore "github.com/sigstore/sigstore/pkg/signature"
	"github.com/theupdateframework/go-tuf/v2/metadata"
)

// epoch is the reference time of every test: metadata expires relative to it.
var epoch = time.Date(2026, 11, 21, 8, 0, 0, 0, time.UTC)

// testSigner is one key of a test repository.
type testSigner struct {
	id   string
	priv crypto.Signer
	pub  *metadata.Key
}

var (
	keyCacheMu sync.Mutex
	keyCache   = map[string]crypto.Signer{}
)

// newSigner returns the key named seed: ed25519 keys derive from the seed,
// ECDSA and RSA keys (slow to make) are made once per test binary.
func newSigner(t testing.TB, kind KeyTypes, seed string) *testSigner {
	t.Helper()
	var priv crypto.Signer
	switch kind {
	case KeyEd25519:
		s := sha256.Sum256([]byte(seed))
		priv = ed25519.NewKeyFromSeed(s[:])
	default:
		keyCacheMu.Lock()
		name := fmt.Sprint(kind, seed)
		priv = keyCache[name]
		if priv == nil {
			var err error
			if kind == KeyECDSAP256 {
				priv, err = ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
			} else {
				priv, err = rsa.GenerateKey(rand.Reader, 2048)
			}
			if err != nil {
				t.Fatal(err)
			}
			keyCache[name] = priv
		}
		keyCacheMu.Unlock()
	}
	pub, err := metadata.KeyFromPublicKey(priv.Public())
	if err != nil {
		t.Fatal(err)
	}
	id, err := pub.ID()
	if err != nil {
		t.Fatal(err)
	}
	return &testSigner{id: id, priv: priv, pub: pub}
}

func (s *testSigner) sigSigner(t testing.TB) sigstore.Signer {
	var sv sigstore.Signer
	var err error
	switch p := s.priv.(type) {
	case ed25519.PrivateKey:
		sv, err = sigstore.LoadSigner(p, crypto.Hash(0))
	case *rsa.PrivateKey:
		sv, err = sigstore.LoadRSAPSSSigner(p, crypto.SHA256, &rsa.PSSOptions{SaltLength: rsa.PSSSaltLengthEqualsHash})
	default:
		sv, err = sigstore.LoadSigner(p, crypto.SHA256)
	}
	if err != nil {
		t.Fatal(err)
	}
	return sv
}

// testRepo is a TUF repository built with go-tuf's metadata API, served
// from memory. publish signs the current state; tests then tamper with the
// served files for the malicious cases.
type testRepo struct {
	t         testing.TB
	kind      KeyTypes
	root      *metadata.Metadata[metadata.RootType]
	timestamp *metadata.Metadata[metadata.TimestampType]
	snapshot  *metadata.Metadata[metadata.SnapshotType]
	targets   *metadata.Metadata[metadata.TargetsType]
	delegated map[string]*metadata.Metadata[metadata.TargetsType]
	signers   map[string][]*testSigner
	// extraRootSigners also sign the next root (the old keys of a rotation).
	extraRootSigners []*testSigner
	// canonical serves "signed" in canonical form, as fleetsim's gateway does;
	// otherwise as go-tuf writes it (struct field order).
	canonical bool
	// hashMeta puts length and hashes of targets roles into the snapshot.
	hashMeta bool
	files    map[string][]byte
	rootV1   []byte
}

func newTestRepo(t testing.TB, kind KeyTypes, consistent, canonical bool) *testRepo {
	t.Helper()
	r := &testRepo{
		t: t, kind: kind, canonical: canonical,
		root:      metadata.Root(epoch.AddDate(1, 0, 0)),
		timestamp: metadata.Timestamp(epoch.AddDate(0, 0, 1)),
		snapshot:  metadata.Snapshot(epoch.AddDate(0, 0, 7)),
		targets:   metadata.Targets(epoch.AddDate(0, 0, 30)),
		delegated: map[string]*metadata.Metadata[metadata.TargetsType]{},
		signers:   map[string][]*testSigner{},
		files:     map[string][]byte{},
	}
	r.root.Signed.ConsistentSnapshot = consistent
	for _, role := range []string{RoleRoot, RoleTimestamp, RoleSnapshot, RoleTargets} {
		r.addKey(role, newSigner(t, kind, role+"-1"))
	}
	r.publish()
	r.rootV1 = r.files["1.root.json"]
	return r
}

func (r *testRepo) addKey(role string, s *testSigner) {
	if err := r.root.Signed.AddKey(s.pub, role); err != nil {
		r.t.Fatal(err)
	}
	r.signers[role] = append(r.signers[role], s)
}

// addTarget lists a target (in the top-level targets or a delegated role).
func (r *testRepo) addTarget(role, path string, data []byte) {
	tf, err := metadata.TargetFile().FromBytes(path, data, "sha256")
	if err != nil {
		r.t.Fatal(err)
	}
	r.targetsOf(role).Signed.Targets[path] = tf
}

func (r *testRepo) targetsOf(role string) *metadata.Metadata[metadata.TargetsType] {
	if role == RoleTargets {
		return r.targets
	}
	return r.delegated[role]
}

// delegate makes parent delegate role to a new key.
func (r *testRepo) delegate(parent string, d metadata.DelegatedRole) {
	p := r.targetsOf(parent)
	if p.Signed.Delegations == nil {
		p.Signed.Delegations = &metadata.Delegations{Keys: map[string]*metadata.Key{}}
	}
	s := newSigner(r.t, r.kind, "delegated-"+d.Name)
	p.Signed.Delegations.Keys[s.id] = s.pub
	d.KeyIDs = []string{s.id}
	if d.Threshold == 0 {
		d.Threshold = 1
	}
	p.Signed.Delegations.Roles = append(p.Signed.Delegations.Roles, d)
	r.signers[d.Name] = []*testSigner{s}
	r.delegated[d.Name] = metadata.Targets(epoch.AddDate(0, 0, 30))
}

// encode signs md with the signers of role and serialises it.
func encode[T metadata.Roles](r *testRepo, md *metadata.Metadata[T], signers []*testSigner) []byte {
	md.ClearSignatures()
	for _, s := range signers {
		if _, err := md.Sign(s.sigSigner(r.t)); err != nil {
			r.t.Fatal(err)
		}
	}
	b, err := md.ToBytes(false)
	if err != nil {
		r.t.Fatal(err)
	}
	if r.canonical {
		b = canonicalSigned(r.t, b)
	}
	return b
}

// canonicalSigned re-serialises a metadata file with its signed part in
// canonical JSON, as fleetsim's gateway serves it.
func canonicalSigned(t testing.TB, b []byte) []byte {
	var f struct {
		Signatures json.RawMessage `json:"signatures"`
		Signed     any             `json:"signed"`
	}
	if err := json.Unmarshal(b, &f); err != nil {
		t.Fatal(err)
	}
	c, err := cjson.EncodeCanonical(f.Signed)
	if err != nil {
		t.Fatal(err)
	}
	return []byte(`{"signatures":` + string(f.Signatures) + `,"signed":` + string(escapeControls(c)) + `}`)
}

// escapeControls writes the control characters that canonical JSON keeps
// raw (the newlines of PEM keys) as JSON escapes, so the file stays JSON.
func escapeControls(c []byte) []byte {
	var out []byte
	for _, ch := range c {
		switch {
		case ch == '\n':
			out = append(out, '\\', 'n')
		case ch < 0x20:
			out = append(out, fmt.Sprintf("\\u%04x", ch)...)
		default:
			out = append(out, ch)
		}
	}
	return out
}

// publish bumps the versions of the given roles, then signs and serves the
// whole repository: delegated roles, targets, snapshot (listing them) and
// timestamp (with the snapshot's length and hash).
func (r *testRepo) publish(bump ...string) {
	for _, role := range bump {
		switch role {
		case RoleRoot:
			r.root.Signed.Version++
		case RoleTimestamp:
			r.timestamp.Signed.Version++
		case RoleSnapshot:
			r.snapshot.Signed.Version++
		default:
			r.targetsOf(role).Signed.Version++
		}
	}
	rv := r.root.Signed.Version
	if _, ok := r.files[strconv.FormatInt(rv, 10)+".root.json"]; !ok || slices.Contains(bump, RoleRoot) {
		b := encode(r, r.root, append(append([]*testSigner(nil), r.signers[RoleRoot]...), r.extraRootSigners...))
		r.files[strconv.FormatInt(rv, 10)+".root.json"] = b
		r.files["root.json"] = b
		r.extraRootSigners = nil
	}
	names := make([]string, 0, len(r.delegated))
	for n := range r.delegated {
		names = append(names, n)
	}
	sort.Strings(names)
	r.snapshot.Signed.Meta = map[string]*metadata.MetaFiles{}
	for _, role := range append(names, RoleTargets) {
		md := r.targetsOf(role)
		b := encode(r, md, r.signers[role])
		r.serve(role, md.Signed.Version, b)
		mf := metadata.MetaFile(md.Signed.Version)
		if r.hashMeta {
			h := sha256.Sum256(b)
			mf.Length, mf.Hashes = int64(len(b)), metadata.Hashes{"sha256": h[:]}
		}
		r.snapshot.Signed.Meta[role+".json"] = mf
	}
	sb := encode(r, r.snapshot, r.signers[RoleSnapshot])
	r.serve(RoleSnapshot, r.snapshot.Signed.Version, sb)
	h := sha256.Sum256(sb)
	r.timestamp.Signed.Meta["snapshot.json"] = &metadata.MetaFiles{
		Version: r.snapshot.Signed.Version, Length: int64(len(sb)), Hashes: metadata.Hashes{"sha256": h[:]},
	}
	r.files["timestamp.json"] = encode(r, r.timestamp, r.signers[RoleTimestamp])
}

func (r *testRepo) serve(role string, version int64, b []byte) {
	r.files[MetadataFileName(role, 0)] = b
	if r.root.Signed.ConsistentSnapshot {
		r.files[MetadataFileName(role, version)] = b
	}
}

// memFetcher serves files from a map and records the requests.
type memFetcher struct {
	files    map[string][]byte
	requests []string
}

func (m *memFetcher) Fetch(name string, dst []byte) (int, error) {
	m.requests = append(m.requests, name)
	b, ok := m.files[name]
	if !ok {
		return 0, ErrNotFound
	}
	if len(b) > len(dst) {
		return 0, ErrTooLarge
	}
	return copy(dst, b), nil
}

// memStore is the device's metadata flash area.
type memStore map[string][]byte

func (m memStore) Load(role string, dst []byte) (int, error) {
	b, ok := m[role]
	if !ok {
		return 0, ErrNotFound
	}
	if len(b) > len(dst) {
		return 0, ErrTooLarge
	}
	return copy(dst, b), nil
}

func (m memStore) Save(role string, data []byte) error {
	m[role] = append([]byte(nil), data...)
	return nil
}

// device is one client on a repository, as a device keeps it across resets.
type device struct {
	fetch *memFetcher
	store memStore
	lim   Limits
}

func newDevice(r *testRepo) *device {
	return &device{fetch: &memFetcher{files: r.files}, store: memStore{RoleRoot: r.rootV1}, lim: DefaultLimits()}
}

// refresh boots a client from the store and refreshes it at now.
func (d *device) refresh(now time.Time) (*Client, error) {
	d.fetch.requests = nil
	c, err := New(d.lim, d.fetch, d.store)
	if err != nil {
		return nil, err
	}
	return c, c.Refresh(now)
}

func (d *device) version(role string) int64 {
	b, ok := d.store[role]
	if !ok {
		return 0
	}
	var f struct {
		Signed struct {
			Version int64 `json:"version"`
		} `json:"signed"`
	}
	if err := json.Unmarshal(b, &f); err != nil {
		return -1
	}
	return f.Signed.Version
}

func sha256Sum(b []byte) []byte {
	h := sha256.Sum256(b)
	return h[:]
}

// jsonDecoder keeps numbers as written, so tampered files change only
// what a test changes.
func jsonDecoder(b []byte) *json.Decoder {
	d := json.NewDecoder(bytes.NewReader(b))
	d.UseNumber()
	return d
}

func jsonEncode(t testing.TB, v any) []byte {
	t.Helper()
	b, err := json.Marshal(v)
	if err != nil {
		t.Fatal(err)
	}
	return b
}
