package fleetrun

import (
	"bytes"
	"fmt"
	"net/http"
	"strings"
	"time"

	"github.com/fleetsim/fleetsim/agent"
	"github.com/fleetsim/fleetsim/devicemodel"
	"github.com/fleetsim/fleetsim/devicemodel/mcuboot/image"
	"github.com/fleetsim/fleetsim/scenarios"
)

// attackerBuild is the build number of the attacker's firmware: no rollout
// publishes it, so a device that runs it is compromised.
const attackerBuild = 6666

// attacker is a malicious repository between the devices and the gateway
// (a compromised CDN or gateway front end): while an attack is on, it
// answers metadata and firmware requests itself.
type attacker struct {
	attack string // the attack under way, "" for none
	// oldest and latest are the first and the last TUF metadata each tag's
	// devices were given, by tag and path; frozen is latest when a freeze
	// began.
	oldest, latest, frozen map[string]answer
	// image is the attacker's firmware, signed with a key no device trusts.
	image []byte
}

// answer is a recorded response.
type answer struct {
	status, headerBytes int
	body                []byte
}

// metadataPath reports whether path is top-level TUF metadata the
// attacker can replay.
func metadataPath(path string) bool {
	name, ok := strings.CutPrefix(path, "/repo/")
	return ok && (strings.HasSuffix(name, "timestamp.json") || strings.HasSuffix(name, "snapshot.json") || strings.HasSuffix(name, "targets.json"))
}

func tagOf(req *agent.Request) string {
	for _, f := range req.Header {
		if strings.EqualFold(f.Name, "x-ats-tags") {
			return f.Value
		}
	}
	return ""
}

// serve answers req itself when the attack under way covers it.
func (a *attacker) serve(req *agent.Request, buf []byte) (agent.Response, int, bool) {
	key := tagOf(req) + " " + req.Path
	var ans answer
	var ok bool
	switch {
	case a.attack == "arbitrary-image" && strings.HasPrefix(req.Path, "/mcu/files/"):
		return a.serveImage(req, buf)
	case !metadataPath(req.Path):
		return agent.Response{}, 0, false
	case a.attack == "freeze":
		ans, ok = a.frozen[key]
	case a.attack == "rollback":
		ans, ok = a.oldest[key]
	case a.attack == "mix-and-match" && strings.HasSuffix(req.Path, "targets.json"):
		ans, ok = a.oldest[key]
	}
	if !ok || ans.headerBytes+len(ans.body) > len(buf) {
		return agent.Response{}, 0, false
	}
	copy(buf[ans.headerBytes:], ans.body)
	return agent.Response{Status: ans.status, HeaderBytes: ans.headerBytes, Body: buf[ans.headerBytes : ans.headerBytes+len(ans.body)]}, ans.headerBytes + len(ans.body), true
}

// serveImage answers a range of a firmware file with the attacker's bytes.
func (a *attacker) serveImage(req *agent.Request, buf []byte) (agent.Response, int, bool) {
	const header = 128
	start, end := req.RangeStart, req.RangeEnd
	if req.RangeEnd <= 0 {
		start, end = 0, int64(len(a.image))-1
	}
	if start >= int64(len(a.image)) {
		return agent.Response{Status: http.StatusRequestedRangeNotSatisfiable, HeaderBytes: header}, header, true
	}
	end = min(end, int64(len(a.image))-1)
	n := int(end - start + 1)
	if header+n > len(buf) {
		return agent.Response{}, 0, false
	}
	copy(buf[header:], a.image[start:end+1])
	return agent.Response{Status: http.StatusPartialContent, HeaderBytes: header, Body: buf[header : header+n]}, header + n, true
}

// record keeps a metadata answer the gateway gave.
func (a *attacker) record(req *agent.Request, resp agent.Response) {
	if req.Method != "GET" || resp.Status != http.StatusOK || !metadataPath(req.Path) {
		return
	}
	key := tagOf(req) + " " + req.Path
	ans := answer{status: resp.Status, headerBytes: resp.HeaderBytes, body: bytes.Clone(resp.Body)}
	if _, ok := a.oldest[key]; !ok {
		a.oldest[key] = ans
	}
	a.latest[key] = ans
}

// scheduleAttack arms a malicious-repo fault: the attacker records the
// metadata devices get from the start, and answers in the gateway's place
// from At for For.
func (w *world) scheduleAttack(f scenarios.Fault) error {
	if w.attacker == nil {
		b := w.cohorts[0].board
		img, err := w.attackerImage(b)
		if err != nil {
			return err
		}
		w.attacker = &attacker{oldest: map[string]answer{}, latest: map[string]answer{}, image: img}
	}
	a := w.attacker
	at := Epoch.Add(time.Duration(f.At))
	w.at(at, func() {
		a.attack = f.Attack
		a.frozen = make(map[string]answer, len(a.latest))
		for k, v := range a.latest {
			a.frozen[k] = v
		}
		w.stats.attacks++
	})
	w.at(at.Add(time.Duration(f.For)), func() { a.attack = "" })
	return nil
}

// attackerImage is firmware of the rollout's size, signed with a key of
// the attacker's own.
func (w *world) attackerImage(b devicemodel.Board) ([]byte, error) {
	key, err := image.GenerateKey(image.KeyEd25519, w.rand("attacker", 0))
	if err != nil {
		return nil, err
	}
	payload := make([]byte, int(w.s.Rollout.ImageSize))
	for i := range payload {
		payload[i] = 0x66
	}
	img, err := image.Sign(payload, image.SignOptions{Key: key, Version: image.Version{Major: 1, Build: attackerBuild}, HeaderSize: 0x200, PadHeader: true, Align: b.ImageAlign})
	if err != nil {
		return nil, fmt.Errorf("the attacker's image: %w", err)
	}
	return img, nil
}

// underAttack reports whether a malicious repository is answering now.
func (w *world) underAttack() bool { return w.attacker != nil && w.attacker.attack != "" }
