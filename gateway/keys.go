package gateway

import (
	"errors"
	"fmt"
	"net/http"
	"slices"
	"strings"

	"github.com/fleetsim/fleetsim/gateway/tufrepo"
)

// ErrNoRandom is a key rotation asked of a gateway opened without a random
// source (Options.Random) to make the new keys from.
var ErrNoRandom = errors.New("gateway: no random source for new keys (Options.Random)")

// KeyRotationRequest is POST /v1/keys/rotate: the TUF roles whose signing
// keys are replaced.
type KeyRotationRequest struct {
	// Roles are some of root, targets, snapshot and timestamp, each once.
	Roles []string `json:"roles"`
}

// KeyRotation is what a rotation did.
type KeyRotation struct {
	// RootVersions is the new root version of each repository, "ci" and
	// "prod": both move together.
	RootVersions map[string]int64 `json:"root_versions"`
	// Keys are the new keys, in the order the roles were given.
	Keys []RotatedKey `json:"keys"`
}

// RotatedKey is a role's new key.
type RotatedKey struct {
	Role  string `json:"role"`
	KeyID string `json:"key_id"`
}

// rotatableRoles are the roles a rotation may name, in root's order.
var rotatableRoles = []tufrepo.Role{tufrepo.RoleRoot, tufrepo.RoleTargets, tufrepo.RoleSnapshot, tufrepo.RoleTimestamp}

func parseKeyRotationRequest(data []byte) ([]tufrepo.Role, error) {
	var req KeyRotationRequest
	if err := decodeStrict(data, &req); err != nil {
		return nil, err
	}
	names := make([]string, len(rotatableRoles))
	for i, r := range rotatableRoles {
		names[i] = string(r)
	}
	if len(req.Roles) == 0 {
		return nil, badRequest("keys: list the roles to rotate: %s", strings.Join(names, ", "))
	}
	var roles []tufrepo.Role
	for _, name := range req.Roles {
		if !slices.Contains(names, name) {
			return nil, badRequest("keys: unknown role %.40q (roles: %s)", name, strings.Join(names, ", "))
		}
		if slices.Contains(roles, tufrepo.Role(name)) {
			return nil, badRequest("keys: role %s given twice", name)
		}
		roles = append(roles, tufrepo.Role(name))
	}
	return roles, nil
}

// RotateKeys gives each of roles a new Ed25519 key, threshold 1, in both TUF
// repositories: each signs root version N+1 with the old and the new root
// keys (TUF §5.3.4-5), and when an online role changes re-signs every view
// with the new keys. Devices follow by fetching N+1.root.json at their next
// refresh. The new keys come from Options.Random and are held in the data
// directory like the ones they replace, which are dropped; a restarted
// gateway signs with the new ones.
//
// The production repository rotates first, as it was created first. If the
// CI repository then fails, the production one stays rotated: rotating
// again gives both new keys.
//
// Errors: ErrNoRandom; tufrepo.ErrBadConfig for a bad or repeated role;
// tufrepo.ErrMissingKeys when a repository does not hold its root keys;
// storage errors.
func (g *Gateway) RotateKeys(roles ...tufrepo.Role) (KeyRotation, error) {
	g.adminMu.Lock()
	defer g.adminMu.Unlock()
	if g.opts.Random == nil {
		return KeyRotation{}, ErrNoRandom
	}
	out := KeyRotation{RootVersions: map[string]int64{}}
	rots := make([]tufrepo.Rotation, len(roles))
	for i, role := range roles {
		k, err := tufrepo.GenerateKey(tufrepo.KeyEd25519, g.opts.Random)
		if err != nil {
			return KeyRotation{}, err
		}
		rots[i] = tufrepo.Rotation{Role: role, Keys: []*tufrepo.PrivateKey{k}, Threshold: 1}
		out.Keys = append(out.Keys, RotatedKey{Role: string(role), KeyID: k.ID()})
	}
	now := g.opts.Clock.Now()
	for _, repo := range []struct {
		name string
		r    *tufrepo.Repo
	}{{"prod", g.prod}, {"ci", g.ci}} {
		if _, err := repo.r.Rotate(now, rots); err != nil {
			if len(out.RootVersions) > 0 {
				err = fmt.Errorf("gateway: the production repository rotated, the CI repository did not: %w", err)
			}
			return KeyRotation{}, err
		}
		out.RootVersions[repo.name] = repo.r.RootVersion()
	}
	g.log.Info("keys rotated", "roles", roles, "root", out.RootVersions["prod"])
	return out, nil
}

// postKeysRotate rotates signing keys (KeyRotationRequest) and answers the
// KeyRotation.
func (g *Gateway) postKeysRotate(w http.ResponseWriter, r *http.Request) {
	data, ok := readAdminBody(w, r)
	if !ok {
		return
	}
	roles, err := parseKeyRotationRequest(data)
	if err != nil {
		writeBadRequest(w, err)
		return
	}
	rot, err := g.RotateKeys(roles...)
	switch {
	case errors.Is(err, tufrepo.ErrMissingKeys):
		http.Error(w, "the repository does not hold its root keys: rotate it offline with fleetsim tuf-repo rotate", http.StatusConflict)
	case err != nil:
		g.log.Error("rotating keys", "roles", roles, "err", err)
		http.Error(w, "key rotation failed", http.StatusInternalServerError)
	default:
		writeJSON(w, http.StatusOK, rot)
	}
}
